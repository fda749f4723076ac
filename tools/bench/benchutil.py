# Timing helpers shared by bench modules (MicroPython and CPython).
try:
    from time import ticks_us, ticks_diff
except ImportError:
    import time as _t

    def ticks_us():
        return int(_t.perf_counter_ns() // 1000)

    def ticks_diff(a, b):
        return a - b


def per_op_us(fn, n, repeat=3):
    """Best of `repeat` runs of fn(n) (which does n operations): us per op."""
    best = None
    for _ in range(repeat):
        t = ticks_us()
        fn(n)
        dt = ticks_diff(ticks_us(), t)
        if best is None or dt < best:
            best = dt
    return best / n
