"""The Seed RAM budget on a 32-bit board: kernel + 4 partitions + the witness
ring + the console take at most 28 KB of data RAM (docs/performance.md,
"RAM": gc.mem_alloc after gc.collect around Boot.run, code excluded) on the
emulated Cortex-M3 board (real MicroPython firmware, kernel from ROMFS).
The measurement is tools/bench/hb_ram32.py's; skipped only without the
firmware (../shared) or qemu."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import qemuboard as Q  # noqa: E402

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(Q.skip_reason() is not None, reason=Q.skip_reason() or "")]

BUDGET = 28 * 1024


def test_seed_kernel_with_console_fits_28k_on_the_32_bit_board(tmp_path):
    import hb_ram32
    img = hb_ram32._romfs()
    b = Q.QemuBoard(str(tmp_path / "q"), romfs=img)
    port = b.start()
    try:
        n, late = hb_ram32._measure(port, True)
    finally:
        b.stop(keep_flash=False)
    # code imported during the boot would be counted as data: name it
    assert late == "-", "the boot imported %s after the baseline" % late
    # a boot that did nothing would measure a few hundred bytes
    assert 16 * 1024 < n <= BUDGET, "%d bytes (budget %d)" % (n, BUDGET)
