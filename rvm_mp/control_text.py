# Human-mode text for the control console: the help lines and the reply
# formatter (tables for lists of dicts, "key: value" lines otherwise). Kept
# out of control.py so a board driven only by tools (framed mode) never
# loads it; `rvm console` uses the same formatter on the host.

HELP = (
    "help                      this list",
    "ps                        partitions: pid, name, state, caps, leases",
    "caps [PID]                capabilities of PID (default: control)",
    "log [N]                   the newest N witness records (default 10)",
    "stat                      kernel status: boot, seq, seal, memory",
    "spawn NAME                start agent NAME (a new partition)",
    "kill PID                  terminate a partition",
    "suspend PID / resume PID  stop / restart scheduling a partition",
    "grant PID HANDLE RIGHTS   grant a capability of control to PID",
    "revoke HANDLE             revoke everything derived from HANDLE",
    "lease DEV MS | lease revoke DEV   lease a device to control / end it",
    "checkpoint PID            checkpoint a partition's state",
    "seal                      seal the witness log now",
    "keyrotate                 new Ed25519 seal key, sealed by the old one",
    "reboot                    seal, flush and reset the board",
    "out [PID]                 what agents printed (escaped, per pid)",
)


def format_text(obj):
    """Human text for a reply object: tables for lists of dicts, key: value
    lines otherwise. Used on the device and by `rvm console`."""
    out = []
    if isinstance(obj, dict) and len(obj) == 1:
        v = obj[list(obj)[0]]
        if isinstance(v, list):
            obj = v
    if isinstance(obj, list):
        if obj and isinstance(obj[0], dict):
            cols = sorted(obj[0].keys(), key=_col_order)
            rows = [[_cell(r.get(c)) for c in cols] for r in obj]
            widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
            out.append("  ".join(c.upper() + " " * (widths[i] - len(c)) for i, c in enumerate(cols)).rstrip())
            for r in rows:
                out.append("  ".join(r[i] + " " * (widths[i] - len(r[i])) for i in range(len(cols))).rstrip())
        else:
            for v in obj:
                out.append(_cell(v))
    elif isinstance(obj, dict):
        tables = []
        for key in sorted(obj.keys(), key=_col_order):
            v = obj[key]
            if isinstance(v, list) and v and isinstance(v[0], dict):
                tables.append(v)
            else:
                out.append("%s: %s" % (key, _cell(v)))
        for v in tables:
            out.append(format_text(v).rstrip())
    else:
        out.append(_cell(obj))
    return "\r\n".join(out) + "\r\n"


_ORDER = ("pid", "seq", "name", "state", "kind", "t", "boot", "flags",
          "actor", "target", "a", "b", "c", "d", "handle", "otype", "oid",
          "rights", "depth", "caps", "leases")


def _col_order(key):
    # MicroPython dicts do not keep insertion order: fixed column order
    try:
        return "%03d" % _ORDER.index(key)
    except ValueError:
        return "999" + key


def _cell(v):
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v) or "-"
    if v is None:
        return "-"
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)
