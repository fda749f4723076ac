"""Every board profile loads, on the host and with the device loader, and
carries what the tools and the kernel need."""
import json
import os

import pytest

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


def test_sim_heap_is_board_ram():
    assert boards.heap_arg(boards.load("seed-64k")) == "65536"
    assert boards.heap_arg(boards.load("seed-256k")) == str(256 * 1024)
