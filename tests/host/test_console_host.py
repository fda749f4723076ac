"""Host console protocol client, rvm ps/console/pull against an in-process
board (real Kernel + Control), including bad boards and reboots mid-pull."""
import json
import os

import pytest

from host_tools.rvm import cli, console
from host_tools.rvm import verify as V
from host_tools.rvm.errors import RvmToolError

from boardkit import Board, KEY


@pytest.fixture
def brd(tmp_path):
    return Board(str(tmp_path / "board"))


def test_ps_json_and_table(brd, capsys):
    assert cli.main(["ps", "--port", "x", "--json"], transport=brd.t) == 0
    parts = json.loads(capsys.readouterr().out)
    assert parts[0]["name"] == "control" and parts[0]["state"] == "running"
    assert cli.main(["ps", "--port", "x"], transport=brd.t) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("PID") and "control" in out


def test_console_commands_and_refusals(brd, capsys):
    rc = cli.main(["console", "--port", "x", "-c", "spawn demo", "-c", "ps",
                   "-c", "kill 99", "-c", "lease led 300", "-c", "seal"],
                  transport=brd.t)
    out = capsys.readouterr().out
    assert rc == 1  # kill 99 was refused
    assert "demo" in out and "error: kill" in out and "seal_seq" in out


def test_board_not_answering_is_one_line(brd, capsys):
    brd.t.dead = True
    rc = cli.main(["ps", "--port", "x", "--timeout", "0.3"], transport=brd.t)
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "not answering" in err


def test_no_port_fails_cleanly(capsys):
    rc = cli.main(["ps", "--port", "/nonexistent/ttyRVM"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("rvm: cannot open port") and err.count("\n") == 1


def test_pull_verifies(brd, tmp_path, capsys):
    k = brd.kernel
    for i in range(150):
        k.log.emit(0x32, 2, 3, i)
        if i % 20 == 0:
            k.log.service()
    out = str(tmp_path / "log.rvmw")
    assert cli.main(["pull", "--port", "x", "-o", out], transport=brd.t) == 0
    rep = V.verify_file(out, KEY)
    assert rep["verdict"] == "verified" and rep["records"] >= 150
    assert rep["unsealed_tail"] == 0
    assert "pulled" in capsys.readouterr().out


def test_pull_resumes_across_reboot(brd, tmp_path):
    for i in range(200):
        brd.kernel.log.emit(0x32, 2, 3, i)
    brd.kernel.log.service()

    def hook(client, n):
        if n == 2:
            brd.reboot()
    out = str(tmp_path / "log.rvmw")
    rep = console.pull(brd.t, out, window=32, timeout=0.5, after_window=hook)
    assert brd.boot == 2
    v = V.verify_file(out, KEY)
    assert v["verdict"] == "verified" and v["records"] == rep["records"]
    assert rep["last_seq"] == rep["seal_seq"]


def test_pull_resumes_when_board_goes_silent(brd, tmp_path):
    for i in range(100):
        brd.kernel.log.emit(0x32, 2, 3, i)
    brd.kernel.log.service()
    state = {"n": 0}

    def on_poll(t):  # the board dies during the 3rd logread, comes back rebooted
        state["n"] += 1
        if state["n"] == 5:
            t.dead = True
            t.console.take()

    brd.t.on_poll = on_poll
    out = str(tmp_path / "log.rvmw")
    orig = console.Client.wait_ready

    def wait_ready(self, total=20.0):
        if brd.t.dead:
            brd.t.dead = False
            brd.reboot()
        return orig(self, total)
    console.Client.wait_ready = wait_ready
    try:
        rep = console.pull(brd.t, out, window=16, timeout=0.3)
    finally:
        console.Client.wait_ready = orig
    assert rep["resumed"] >= 1
    assert V.verify_file(out, KEY)["verdict"] == "verified"


def test_pull_gives_up_clearly(brd, tmp_path):
    brd.t.dead = True
    with pytest.raises(RvmToolError) as e:
        console.pull(brd.t, str(tmp_path / "x.rvmw"), timeout=0.2)
    assert "not answering" in str(e.value)
    assert not os.path.exists(str(tmp_path / "x.rvmw"))


def test_interactive_console_reads_lines_until_eof(brd, capsys, monkeypatch, tmp_path):
    import io
    from host_tools.rvm import cmd_console
    monkeypatch.setattr(cmd_console, "HISTORY", str(tmp_path / "hist"))
    monkeypatch.setattr("sys.stdin", io.StringIO("stat\nkill 99\n\nexit\nps\n"))
    assert cli.main(["console", "--port", "x"], transport=brd.t) == 0
    out = capsys.readouterr().out
    assert "connected to loopback" in out and "next_seq:" in out
    assert "error: kill" in out
    assert "PID" not in out  # exit ended the session before ps
