# Timing helpers shared by bench modules (MicroPython and CPython).
# tools/bench.py sets QUICK (smaller sizes), INNER (inner repeats a module
# may take inside one repeat: 1, the driver's repeats give min/median) and
# ROUND (which repeat this process is: 0, 1, ...) before a group runs.
try:
    from time import ticks_us, ticks_diff
except ImportError:
    import time as _t

    def ticks_us():
        return int(_t.perf_counter_ns() // 1000)

    def ticks_diff(a, b):
        return a - b

QUICK = False
INNER = 3
ROUND = 0


def size(full, quick):
    """The number of operations to time: `quick` under --quick."""
    return quick if QUICK else full


def per_op_us(fn, n, repeat=None):
    """Best of `repeat` (default INNER) runs of fn(n) (n operations): us per op."""
    best = None
    for _ in range(repeat or INNER):
        t = ticks_us()
        fn(n)
        dt = ticks_diff(ticks_us(), t)
        if best is None or dt < best:
            best = dt
    return best / n


def time_us(fn, n):
    """One run of fn(n): us per operation."""
    t = ticks_us()
    fn(n)
    return ticks_diff(ticks_us(), t) / n


def pair(a, b, n):
    """Time fn a(n) and b(n) once each, the first one alternating with the
    repeat (ROUND), so neither side always runs on a warmer or colder cache:
    (us per op of a, us per op of b)."""
    if ROUND & 1:
        tb = time_us(b, n)
        ta = time_us(a, n)
    else:
        ta = time_us(a, n)
        tb = time_us(b, n)
    return ta, tb
