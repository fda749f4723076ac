"""Board profiles name their watchdog hardware (rvm_mp/hal_wdt.py): every
"watchdog" entry is one the kernel can build, real boards ship it disabled
(a MicroPython WDT cannot be stopped, so a stopped kernel would reset the
board under `rvm deploy`), and the emulated board's peripheral sits where
the firmware and the harness agree nothing else lives."""
import json
import os
import sys

from host_tools.rvm import boards
from rvm_mp import hal_wdt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemuboard as Q  # noqa: E402


def _profiles():
    for n in boards.names():
        with open(boards.path(n)) as f:
            yield n, json.load(f)


def test_every_watchdog_entry_is_well_formed():
    seen = 0
    for name, p in _profiles():
        w = p.get("watchdog")
        if w is None:
            continue
        seen += 1
        assert w.get("hw") in ("machine", "mem32"), name
        assert isinstance(w.get("timeout_ms"), int) and 100 <= w["timeout_ms"] <= 8388, name
        assert isinstance(w.get("strikes", 2), int) and w.get("strikes", 2) >= 1, name
        if w["hw"] == "mem32":
            assert hal_wdt.addr(w["base"]) % 4 == 0, name
        sc = w.get("scratch")
        if isinstance(sc, dict):
            assert hal_wdt.addr(sc["mem32"]) % 4 == 0, name
        else:
            assert sc in (None, "rtc"), name
        if not p.get("simulated") and p.get("port") != "qemu":
            assert w.get("enabled") is False, "%s: a real board's WDT cannot be stopped" % name
    assert seen >= 2


def test_emulated_peripheral_is_outside_flash_heap_and_romfs():
    with open(boards.path("qemu-an385")) as f:
        w = json.load(f)["watchdog"]
    base = hal_wdt.addr(w["base"])
    assert w.get("enabled", True) and w["hw"] == "mem32"
    assert base == Q.WDT_BASE
    # SSRAM2/3 (0x20000000, 4 MiB): littlefs takes the first MiB; the
    # firmware's image, heap and stack are in SSRAM1 below 0x00400000
    assert Q.FLASH_ADDR + Q.FLASH_SIZE <= base and base + 16 <= 0x20400000
    assert base + 16 <= Q.ROMFS_ADDR
    # the firmware links nothing there (its only load segment)
    fw = Q.FIRMWARE
    if os.path.exists(fw):
        import struct
        with open(fw, "rb") as f:
            elf = f.read()
        phoff, = struct.unpack_from("<I", elf, 28)
        phentsize, phnum = struct.unpack_from("<HH", elf, 42)
        for i in range(phnum):
            (typ, _off, vaddr, _pa, _fsz, memsz) = struct.unpack_from(
                "<IIIIII", elf, phoff + i * phentsize)
            if typ == 1:
                assert vaddr + memsz <= 0x00400000 or vaddr >= base + 16
