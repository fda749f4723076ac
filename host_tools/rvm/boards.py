"""Board profiles for the host tools: boards/NAME.json, loaded with the same
rvm_mp.board loader the device uses, with a clear error for unknown names."""
import os

from rvm_mp import board as _board

from .errors import RvmToolError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS_DIR = os.path.join(ROOT, "boards")


def names(boards_dir=BOARDS_DIR):
    try:
        return sorted(n[:-5] for n in os.listdir(boards_dir) if n.endswith(".json"))
    except OSError:
        return []


def path(name, boards_dir=BOARDS_DIR):
    return os.path.join(boards_dir, name + ".json")


def load(name, boards_dir=BOARDS_DIR):
    """The profile dict for board `name` (defaults filled in)."""
    p = path(name, boards_dir)
    if not os.path.exists(p):
        raise RvmToolError("unknown board %r (known: %s)"
                           % (name, ", ".join(names(boards_dir)) or "none"))
    try:
        prof = _board.load_file(p)
    except ValueError as e:
        raise RvmToolError("board profile %s is invalid: %s" % (p, e))
    if "mpy_march" not in prof and prof.get("arch") in CORTEX_M:
        # every Cortex-M loads armv6m .mpy; a profile names a wider arch
        # (armv7m, armv7emsp, ...) in mpy_march when its firmware takes it
        prof["mpy_march"] = "armv6m"
    return prof


CORTEX_M = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")


def heap_arg(profile):
    """The -X heapsize value for the unix port simulating this board: the
    board's RAM, plus the profile's `sim.code_heap` when the board runs its
    kernel from flash (the unix port holds that bytecode in its heap; see
    simfw_args and docs/boards.md)."""
    sim = profile.get("sim") or {}
    if sim.get("code_in_flash"):
        return str(data_heap(profile) + int(sim.get("code_heap", 786432)))
    return str(_board.heap_bytes(profile))


def data_heap(profile):
    """Heap the simulated board keeps for data: its RAM times the profile's
    `sim.word_scale`. MicroPython objects are made of machine words, so the
    same objects take twice the bytes on the 64-bit unix port as on a 32-bit
    board; word_scale 2 keeps a 64 KB board's data budget equivalent (byte
    buffers such as the witness ring do not double, so it is slightly
    generous by their size; docs/boards.md)."""
    sim = profile.get("sim") or {}
    return int(profile["ram"] * sim.get("word_scale", 1))


def simfw_args(profile):
    """Extra simfw arguments: `--ram=N` pins the heap left for data to the
    board's RAM after the kernel code is loaded as if from flash."""
    sim = profile.get("sim") or {}
    if sim.get("code_in_flash"):
        return ["--ram=%d" % data_heap(profile)]
    return []
