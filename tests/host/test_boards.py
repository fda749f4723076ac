"""Every board profile loads, on the host and with the device loader, and
carries what the tools and the kernel need."""
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rvm_mp import board as devboard
from host_tools.rvm import boards
from host_tools.rvm.errors import RvmToolError

REQUIRED = ["seed-64k", "seed-256k", "esp32", "esp32-s3", "esp32-c3",
            "rp2-pico", "rp2-pico2", "pyboard-v11", "esp8266", "appliance"]
ARCHES = {"x64", "x86", "armv6m", "armv7m", "armv7em", "armv7emsp",
          "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc"}
ESP_OFFSETS = {"esp32": 0x1000, "esp32-s3": 0x0, "esp32-c3": 0x0, "esp8266": 0x0}


def test_required_boards_present():
    assert set(REQUIRED) <= set(boards.names())


@pytest.mark.parametrize("name", boards.names())
def test_profile_loads_and_is_complete(name):
    p = boards.load(name)
    q = devboard.load(name, dirs=(boards.BOARDS_DIR,))
    assert p == q and p["name"] == name
    assert isinstance(p["ram"], int) and p["ram"] >= 32 * 1024
    assert p["mpy_march"] in ARCHES or (p["runtime"] == "cpython" and p["mpy_march"] is None)
    for k in ("ring", "seal_every", "segment_records"):
        assert p["witness"][k] > 0
    assert p["witness"].get("seal", "hmac") in ("hmac", "ed25519")
    for k in ("partitions", "caps_per_partition", "queue_depth", "payload_max", "arena"):
        assert p["limits"][k] > 0
    assert isinstance(p["coherence"], bool) and p["console"] is True
    assert p["devices"] and all("type" in d for d in p["devices"].values())
    fl = p["flash"]
    if name in ESP_OFFSETS:
        assert fl["method"] == "esptool" and int(fl["offset"], 0) == ESP_OFFSETS[name]
    else:
        assert fl["method"] != "esptool" and fl["note"]


def test_unknown_board_is_one_clear_error():
    with pytest.raises(RvmToolError) as e:
        boards.load("no-such-board")
    assert "unknown board" in str(e.value) and "seed-64k" in str(e.value)


def test_sim_heap_models_code_in_flash():
    p = boards.load("seed-64k")
    sim = p["sim"]
    data = 65536 * sim["word_scale"]
    assert boards.data_heap(p) == data
    assert boards.heap_arg(p) == str(data + sim["code_heap"])
    assert boards.simfw_args(p) == ["--ram=%d" % data]
    # a profile without the flash model caps the heap at its RAM, code included
    p512 = boards.load("seed-512k")
    assert boards.heap_arg(p512) == str(512 * 1024)
    assert boards.simfw_args(p512) == []


def _simfw_mem(tmp_path, ram, deploy_kernel):
    """Power a simulated board on with `--ram=ram`; return (mem_free, whether
    a ram/2 bytearray fits in one piece (the REPL that reads the program
    scatters its own objects over the free RAM), whether ram+4K fits)."""
    import shutil
    import subprocess
    import sys
    fs = tmp_path / "fs"
    fs.mkdir()
    if deploy_kernel:
        shutil.copytree(os.path.join(ROOT, "rvm_mp"), fs / "rvm_mp",
                        ignore=shutil.ignore_patterns("__pycache__"))
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    # markers are built at run time: the REPL echoes the program's text
    prog = ("import gc\r\ngc.collect()\r\nprint('FR' + 'EE', gc.mem_free())\r\n"
            "x = bytearray(%d); print('FI' + 'T1')\r\nx = None\r\ngc.collect()\r\n"
            "y = bytearray(%d); print('FI' + 'T2')\r\n" % (ram // 2, ram + 4096))
    cmd = [exe, "-X", "heapsize=%d" % (ram + 786432),
           os.path.join(ROOT, "host_tools", "rvm", "simfw.py"), "--ram=%d" % ram, "t"]
    p = subprocess.run(cmd, cwd=str(fs), input=prog.encode(), capture_output=True,
                       timeout=60)
    out = p.stdout.decode(errors="replace")
    free = int(out.split("FREE ")[-1].split()[0])
    return free, "\nFIT1" in out, "\nFIT2" in out


def test_simfw_leaves_exactly_the_board_ram_for_data(tmp_path):
    free, fit_below, fit_above = _simfw_mem(tmp_path, 65536, True)
    # the REPL that reads this program uses a few KB of the same RAM
    assert 65536 - 8192 <= free <= 65536 + 1024, free
    assert fit_below, "the RAM left for data is fragmented"
    assert not fit_above, "more than the board's RAM is available"
