# A preallocated error raised again and again (as the kernel throws EFULL or
# EQUOTA into an agent) keeps no traceback from earlier raises once
# errors.forget() ran: MicroPython would otherwise grow it by ~48 bytes per
# raise. Both runtimes (CPython: the traceback is dropped).
import gc

import kt
from rvm_mp import errors

HEAP = "256K"


def _raise(e):
    raise e


def _nested(e):
    try:
        _raise(e)
    except errors.RvmError as x:
        return x


def test_forget_keeps_a_reused_error_from_growing():
    e = errors.EFULL
    for _ in range(50):
        errors.forget(e)
        _nested(e)
    gc.collect()
    a = gc.mem_alloc() if kt.IS_MP else 0
    for _ in range(2000):
        errors.forget(e)
        assert _nested(e) is e
    gc.collect()
    if kt.IS_MP:
        assert gc.mem_alloc() - a < 1024  # without forget: ~96 KB
    errors.forget(e)
    assert e.__traceback__ is None
    assert e.code == 10 and e.name == "EFULL" and e.args[0] == "EFULL"
