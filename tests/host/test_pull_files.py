"""rvm pull --deltas/--ckpt-dir against an in-process board with a region
store on disk (real Kernel, RegionManager, Control): files equal the
board's, a delta log compacted mid-pull is fetched again, a checkpoint
rotated away is skipped, a board without a region store is one line, and
rvm reconstruct runs on what was pulled."""
import json
import os

import pytest

from host_tools.rvm import cli, console
from rvm_mp import errors
from rvm_mp.region import RegionManager

from boardkit import Board, KEY


@pytest.fixture
def brd(tmp_path):
    b = Board(str(tmp_path / "board"))
    k = b.kernel
    k.mem = RegionManager(k.log, 4096, root=b.path + "/mem", delta_max=0)
    b.pid = k.part_create(0, name="w")
    b.rid = k.mem.alloc(b.pid, 64)
    assert not errors.is_err(b.rid)
    return b


def _writes(b, n, start=0):
    for i in range(start, start + n):
        assert not errors.is_err(b.kernel.mem.write(b.pid, b.rid, (i * 7) % 56,
                                                    bytes([i & 255] * 8)))


def _file(path):
    with open(path, "rb") as f:
        return f.read()


def test_pull_deltas_and_checkpoints_then_reconstruct(brd, tmp_path, capsys):
    _writes(brd, 40)
    ck = brd.kernel.mem.checkpoint(brd.pid)
    _writes(brd, 120, 40)  # > 2048 bytes of deltas: several fileread requests
    want = bytes(brd.kernel.mem.read(brd.pid, brd.rid, 0, 64))
    seq = brd.kernel.log.next_seq - 1
    out, d, c = str(tmp_path / "l.rvmw"), str(tmp_path / "d.bin"), str(tmp_path / "ck")
    assert cli.main(["pull", "--port", "x", "-o", out, "--deltas", d, "--ckpt-dir", c],
                    transport=brd.t) == 0
    cap = capsys.readouterr()
    assert "delta log" in cap.out and "1 checkpoint file(s)" in cap.out
    assert "deltas.log" in cap.err  # progress
    assert _file(d) == _file(brd.path + "/mem/deltas.log") and len(_file(d)) > 2048
    names = os.listdir(c)
    assert names == os.listdir(brd.path + "/mem/ckpt")
    assert _file(os.path.join(c, names[0])) == _file(brd.path + "/mem/ckpt/" + names[0])
    assert cli.main(["reconstruct", out, d, "--region", str(brd.rid), "--seq", str(seq),
                     "--key-hex", KEY.hex(), "--ckpt-dir", c, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert bytes.fromhex(rep["bytes"]) == want and rep["base_seq"] == ck


def test_delta_log_compacted_mid_pull_is_fetched_again(brd, tmp_path, monkeypatch):
    _writes(brd, 150)
    brd.kernel.mem.checkpoint(brd.pid)
    orig = console.Client.fileread
    calls = []

    def fileread(self, name, off, timeout=None):
        r = orig(self, name, off, timeout)
        calls.append(off)
        if len(calls) == 1:  # the board compacts its delta log after the first piece
            brd.kernel.mem.compact()
            _writes(brd, 5, 200)
        return r
    monkeypatch.setattr(console.Client, "fileread", fileread)
    out, d = str(tmp_path / "l.rvmw"), str(tmp_path / "d.bin")
    rep = console.pull(brd.t, out, deltas=d)
    assert calls.count(0) == 2  # restarted from the beginning
    assert _file(d) == _file(brd.path + "/mem/deltas.log")
    assert rep["files"]["deltas"] == len(_file(d))


def test_checkpoint_rotated_away_is_skipped(brd, tmp_path, monkeypatch):
    brd.kernel.mem.checkpoint(brd.pid)
    orig = console.Client.request

    def request(self, line, timeout=None):
        r = orig(self, line, timeout)
        if line == "files":
            r["ckpt"].insert(0, ["ckpt/p0009-00000001.ck", 100])  # gone since
        return r
    monkeypatch.setattr(console.Client, "request", request)
    rep = console.pull(brd.t, str(tmp_path / "l.rvmw"), ckpt_dir=str(tmp_path / "ck"))
    assert len(rep["files"]["ckpt"]) == 1 and rep["files"]["deltas"] is None
    assert os.listdir(str(tmp_path / "ck")) == rep["files"]["ckpt"]


def test_board_without_region_store_is_one_line(tmp_path, capsys):
    b = Board(str(tmp_path / "board"))
    b.kernel.mem = None
    out = str(tmp_path / "l.rvmw")
    rc = cli.main(["pull", "--port", "x", "-o", out, "--deltas", str(tmp_path / "d"),
                   "--quiet"], transport=b.t)
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "no region store" in err
    assert os.path.exists(out)  # the witness log itself was pulled
