# Board profiles: JSON files in boards/ (shipped to the device as board.json).
# A profile names RAM, the mpy-cross arch, flash layout, devices and kernel
# limits; `load` fills in defaults so the kernel can rely on every key.
import json

_DEFAULT_LIMITS = {
    "partitions": 8,          # max live partitions (ids are still 1..4095)
    "caps_per_partition": 16,
    "queue_depth": 8,
    "payload_max": 64,        # bytes per IPC message
    "arena": 8192,            # bytes in the region arena
    "graph_nodes": 8,
}
_DEFAULT_WITNESS = {"ring": 64, "seal_every": 64, "segment_records": 256}


def _merge(dst, defaults):
    for k in defaults:
        if k not in dst:
            dst[k] = defaults[k]
    return dst


def from_dict(d):
    p = dict(d)
    if "name" not in p:
        raise ValueError("board profile has no name")
    p["limits"] = _merge(dict(p.get("limits", {})), _DEFAULT_LIMITS)
    p["witness"] = _merge(dict(p.get("witness", {})), _DEFAULT_WITNESS)
    p.setdefault("devices", {})
    p.setdefault("coherence", False)
    p.setdefault("agents", [])
    p.setdefault("ram", 65536)
    return p


def load_file(path):
    with open(path) as f:
        return from_dict(json.load(f))


def load(name, dirs=("boards", "/boards", ".")):
    """Load boards/NAME.json from the first directory that has it."""
    for d in dirs:
        try:
            return load_file("%s/%s.json" % (d, name))
        except OSError:
            continue
    raise ValueError("unknown board %s" % name)


def heap_bytes(profile):
    """The heap cap for the unix port simulating this board."""
    return profile.get("heap", profile["ram"])
