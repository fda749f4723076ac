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
        return _board.load_file(p)
    except ValueError as e:
        raise RvmToolError("board profile %s is invalid: %s" % (p, e))


def heap_arg(profile):
    """The -X heapsize value that caps the unix port at the board's RAM."""
    return str(_board.heap_bytes(profile))
