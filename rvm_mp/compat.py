# Compat layer: one source for MicroPython and CPython.
# Gives CPython `const`, the wrapping ticks_* functions and the micropython
# decorators/heap_lock as no-ops, so kernel modules import from here only.
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
    import micropython
except ImportError:  # CPython
    def const(x):
        return x

    class _MicroPythonShim:
        """The bits of the `micropython` module the kernel uses, as no-ops."""

        @staticmethod
        def native(f):
            return f

        @staticmethod
        def viper(f):
            return f

        @staticmethod
        def heap_lock():
            return 0

        @staticmethod
        def heap_unlock():
            return 0

        @staticmethod
        def schedule(f, arg):
            f(arg)

    micropython = _MicroPythonShim()

try:
    from time import ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms
except ImportError:  # CPython: emulate the 30-bit wrapping tick counters
    import time as _time

    _TICKS_PERIOD = 1 << 30
    _TICKS_MAX = _TICKS_PERIOD - 1
    _TICKS_HALF = _TICKS_PERIOD // 2

    def ticks_ms():
        return int(_time.monotonic_ns() // 1000000) & _TICKS_MAX

    def ticks_us():
        return int(_time.monotonic_ns() // 1000) & _TICKS_MAX

    def ticks_add(t, delta):
        return (t + delta) & _TICKS_MAX

    def ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)

try:
    import gc as _gc

    def mem_alloc():
        try:
            return _gc.mem_alloc()
        except AttributeError:
            return 0

    def collect():
        _gc.collect()
except ImportError:  # pragma: no cover
    def mem_alloc():
        return 0

    def collect():
        pass


def u32(x):
    return x & 0xFFFFFFFF


def u16(x):
    return x & 0xFFFF

