# rvm_mp/diag.py: the random device id of boards without machine.unique_id,
# the heap figures of `stat heap`, the one-line native fallback note.
import kt
from rvm_mp import diag


def test_random16_gives_distinct_16_byte_ids():
    ids = set()
    for _ in range(8):
        b = diag.random16()
        assert type(b) is bytes and len(b) == 16
        ids.add(b)
    assert len(ids) == 8


def test_heap_figures():
    free, block = diag.heap_figures()
    if kt.IS_MP:
        assert free > 0 and 0 < block <= free
    else:
        assert (free, block) == (0, 0) or free >= block


def test_native_fallback_is_one_line_and_never_raises():
    diag.native_fallback("x_viper", ValueError("incompatible .mpy arch"))
    diag.native_fallback("y_native", ImportError("no module"))
