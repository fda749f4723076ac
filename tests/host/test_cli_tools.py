"""rvm keys / bundle / flash: files, command lines, one-line errors."""
import os
import subprocess
import sys

import pytest

from rvm_mp import bundle as B
from host_tools.rvm import cli, flash


def test_keys_gen(tmp_path, capsys):
    out = tmp_path / "dev.key"
    assert cli.main(["keys", "gen", "-o", str(out)]) == 0
    hexkey = capsys.readouterr().out.strip()
    assert len(bytes.fromhex(hexkey)) == 32 and out.read_bytes().hex() == hexkey
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_bundle_roundtrip_and_bad_key(tmp_path, capsys):
    agent = tmp_path / "blink.py"
    agent.write_text("async def main(rvm):\n    await rvm.sleep_ms(1)\n")
    key = bytes(range(32))
    out = tmp_path / "blink.rvmb"
    assert cli.main(["bundle", str(agent), "--key-hex", key.hex(), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert not B.errors.is_err(B.check(data, key))
    assert B.errors.is_err(B.check(data, bytes(32)))
    capsys.readouterr()
    assert cli.main(["bundle", str(agent), "--key-hex", "abcd", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "rvm: bad key: 2 bytes, expected 32\n"
    assert cli.main(["bundle", str(tmp_path / "nope.py"), "--key-hex", key.hex()]) == 2


def test_esptool_command_lines(tmp_path):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9" + b"\0" * 100)
    from host_tools.rvm import boards
    cmds = flash.esptool_cmds(boards.load("esp32"), "/dev/ttyUSB0", str(fw))
    assert cmds[0][1:] == ["-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0",
                           "--baud", "460800", "erase-flash"]
    assert cmds[1][-4:] == ["write-flash", "-z", "0x1000", str(fw)]
    for board, off, chip in (("esp32-s3", "0x0", "esp32s3"), ("esp32-c3", "0x0", "esp32c3"),
                             ("esp8266", "0x0", "esp8266")):
        c = flash.esptool_cmds(boards.load(board), "P", "F", baud=115200)[-1]
        assert c[c.index("--chip") + 1] == chip and c[-2] == off and "115200" in c
    # esptool itself accepts these command lines: run against a missing port
    # it gets past argument parsing and fails on opening the port
    for cmd in flash.esptool_cmds(boards.load("esp32"), "/dev/nonexistent-rvm", str(fw)):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        assert p.returncode != 0 and "Could not open /dev/nonexistent-rvm" in out, out[-500:]
        assert "Usage:" not in out and "No such option" not in out


def test_flash_errors_are_one_line(tmp_path, capsys):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9" * 10)
    rc = cli.main(["flash", "--board", "esp32", "--port", "/dev/nonexistent-tty", "--firmware", str(fw)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "does not exist" in err
    rc = cli.main(["flash", "--board", "rp2-pico", "--port", "/dev/x", "--firmware", str(fw)])
    err = capsys.readouterr().err
    assert rc == 2 and "BOOTSEL" in err and err.count("\n") == 1
    rc = cli.main(["flash", "--board", "seed-64k", "--port", "/dev/x", "--firmware", str(fw)])
    assert rc == 2 and "rvm sim" in capsys.readouterr().err
    rc = cli.main(["flash", "--board", "esp32", "--port", "/dev/x", "--firmware", str(tmp_path / "no.bin")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = cli.main(["flash", "--board", "esp32", "--port", "/dev/x", "--firmware", str(fw), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "write-flash -z 0x1000" in out


def test_flash_reports_esptool_failure(tmp_path):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(b"\xe9" * 10)

    class P:
        returncode = 2
        stdout = "esptool v5\nA fatal error occurred: Could not open /dev/x"
        stderr = ""
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return P()
    port = tmp_path / "tty"
    port.write_text("")
    from host_tools.rvm.errors import RvmToolError
    with pytest.raises(RvmToolError) as e:
        flash.flash("esp8266", str(port), str(fw), run=fake_run, out=lambda m: None)
    assert "Could not open" in str(e.value) and len(calls) == 1
