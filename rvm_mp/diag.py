# Rarely needed helpers, kept out of the always-loaded modules (RAM): the
# one-line note when a native/viper module does not load, the heap figures
# of `stat heap`, and the random device id of a board without
# machine.unique_id().
import os

from .compat import ticks_us as _ticks_us


def native_fallback(name, e):
    """A native/viper module did not load (no emitter: ImportError or
    SyntaxError; an .mpy built for another arch: ValueError): say so in one
    line; the caller falls back to the portable code."""
    import sys
    if sys.implementation.name == "micropython":
        print("rvm-mp: %s unavailable (%s: %s); portable code" % (
            name, type(e).__name__, e))


def heap_figures():
    """(free heap after a collection, largest block one allocation can get)
    in bytes; the largest block is found by bisection with bytearrays, so
    it costs a few collections. (0, 0) where the runtime has no gc figures."""
    try:
        import gc
        gc.collect()
        free = gc.mem_free()
    except (ImportError, AttributeError):
        return 0, 0
    lo, hi = 0, free
    while hi - lo > 16:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            b = None
            lo = mid
        except MemoryError:
            hi = mid
    return free, lo


def random16():
    """16 random bytes: os.urandom where the port has it, else the port's
    `random` mixed with the tick counter and heap state (ports without a
    hardware RNG: the id is then unique per board only as far as those
    differ; a board keeps it in device.id once made)."""
    try:
        return os.urandom(16)
    except (AttributeError, NotImplementedError, OSError):
        pass
    import hashlib
    h = hashlib.sha256(b"RVM-id")
    try:
        import random
        for _ in range(4):
            h.update(b"%d" % random.getrandbits(32))
    except (ImportError, AttributeError):
        pass
    try:
        import gc
        h.update(b"%d %d" % (_ticks_us(), gc.mem_free()))
    except (ImportError, AttributeError):
        h.update(b"%d" % _ticks_us())
    return h.digest()[0:16]
