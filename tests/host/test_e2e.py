"""End to end through a real pty and pyserial: rvm sim, rvm deploy (real
mpremote), ps, a console session, bad input on the wire, pull (also across a
reboot in the middle), verify, audit.

Runs on seed-512k: the kernel and the six demo agents do not fit the heap of
seed-64k/256k yet (docs/boards.md has the figures)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import serial

from rvm_mp import frame as F
from host_tools.rvm import audit as A, cli, console
from host_tools.rvm import verify as V
from host_tools.rvm.transport import SerialTransport

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARD = "seed-512k"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    key = os.urandom(32)
    (d / "dev.key").write_bytes(key)
    link = str(d / "port")
    p = subprocess.Popen([sys.executable, "-m", "host_tools.rvm.cli", "sim", "--board", BOARD,
                          "--fs", str(d / "fs"), "--link", link, "--quiet"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == link
        rc = cli.main(["deploy", "--board", BOARD, "--port", link, "--key", str(d / "dev.key"),
                       "-o", str(d / "dist"), "--wait", "30"])
        assert rc == 0
        yield {"dir": d, "port": link, "key": key, "fs": d / "fs"}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def test_deployed_files(dev):
    fs = dev["fs"]
    assert (fs / "main.py").exists() and (fs / "board.json").exists()
    assert (fs / "rvm_key.bin").read_bytes() == dev["key"]
    assert (fs / "rvm_mp" / "kernel.mpy").exists() and not (fs / "rvm_mp" / "kernel.py").exists()
    assert sorted(os.listdir(fs / "agents"))[0].endswith(".rvmb")
    from rvm_mp import bundle as B
    p = B.parse((fs / "agents" / "sensor.rvmb").read_bytes())
    assert p.ctype == B.CODE_MPY  # compiled for the board by rvm deploy


def test_ps_and_console_session(dev, capsys):
    assert cli.main(["ps", "--port", dev["port"], "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in parts]
    assert names[0] == "control" and "sensor" in names and len(parts) >= 3
    pid = {p["name"]: p["pid"] for p in parts}
    rc = cli.main(["console", "--port", dev["port"], "-c", "help", "-c", "lease led 800",
                   "-c", "lease led 800", "-c", "suspend %d" % pid["sensor"],
                   "-c", "resume %d" % pid["sensor"], "-c", "checkpoint %d" % pid["supervisor"],
                   "-c", "kill %d" % pid["flooder"], "-c", "caps %d" % pid["sensor"],
                   "-c", "log 3", "-c", "frobnicate"])
    out = capsys.readouterr().out
    assert rc == 1  # the second lease (EBUSY) and frobnicate were refused
    assert "EBUSY" in out and "unknown command" in out
    assert "state: suspended" in out and "state: running" in out
    assert "checkpoint_seq" in out and "state: terminated" in out


def test_human_mode_over_the_pty(dev):
    s = serial.Serial(dev["port"], 115200, timeout=0)
    try:
        s.reset_input_buffer()
        s.write(b"\r")
        s.write(b"pz\x7fs\r")  # a typo, backspace, fixed
        out = b""
        end = time.monotonic() + 5
        while time.monotonic() < end and b"flooder" not in out:
            out += s.read(4096)
            time.sleep(0.05)
        assert b"rvm> pz\x08 \x08s\r\n" in out  # echo with the edit
        assert b"PID" in out and b"sensor" in out
        s.write(b"kill 4095\r")
        out = b""
        end = time.monotonic() + 5
        while time.monotonic() < end and b"refused" not in out:
            out += s.read(4096)
            time.sleep(0.05)
        assert b"error: kill refused" in out
    finally:
        s.close()


def _raw_request(s, line, seq):
    s.write(F.encode(F.T_REQ, seq, line.encode()))


def _frames(s, timeout=3.0):
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out += s.read(4096)
        time.sleep(0.02)
    return F.decode(out)


def test_bad_input_on_the_wire(dev):
    s = serial.Serial(dev["port"], 115200, timeout=0)
    try:
        s.reset_input_buffer()
        rnd = bytes(b for b in os.urandom(600) if b not in (3, 4))  # no Ctrl-C/D
        s.write(rnd)
        good = F.encode(F.T_REQ, 501, b"stat")
        i = good.find(b"stat")
        s.write(good[:i] + b"X" + good[i + 1:])          # corrupted
        s.write(good[:7])                                 # truncated ...
        s.write(F.encode(F.T_REQ, 502, b"hello"))        # ... by the next frame
        s.write(bytes([F.SOF]) + b"Q" * 2000 + bytes([F.EOF]))  # oversize
        s.write(F.encode(F.T_REQ, 503, b"x" * 400))      # unknown command
        s.write(b"frobnicate\r")                          # unknown, human mode
        items = _frames(s)
        errs = [json.loads(p)["err"] for r, ft, q, p in items if r == F.R_FRAME and ft == F.T_ERR]
        for e in ("ECRC", "EABORT", "ETOOBIG", "EINVAL"):
            assert e in errs, (e, errs)
        hello = [json.loads(p) for r, ft, q, p in items if r == F.R_FRAME and q == 502 and ft == F.T_ANS]
        assert hello and hello[0]["proto"] == 1
    finally:
        s.close()
    # still alive and counting
    t = SerialTransport(dev["port"])
    try:
        st = console.run_command(t, "stat")
        assert st["bad_frames"] >= 3
    finally:
        t.close()


def test_pull_verify_audit(dev, capsys):
    out = str(dev["dir"] / "log.rvmw")
    assert cli.main(["pull", "--port", dev["port"], "-o", out, "--quiet"]) == 0
    assert cli.main(["verify", out, "--key-hex", dev["key"].hex(), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rep["verdict"] == "verified" and rep["unsealed_tail"] == 0
    db = str(dev["dir"] / "a.sqlite")
    assert cli.main(["audit", out, "--db", db, "--key-hex", dev["key"].hex()]) == 0
    capsys.readouterr()
    assert cli.main(["audit", "--db", db, "query", "--kind", "OP_COMMAND", "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)
    assert len(ops) >= 6 and all(r["actor"] == 1 for r in ops)  # the control partition
    assert cli.main(["audit", "--db", db, "query", "--kind", "LEASE_DENIED", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)  # the second lease, refused
    png = str(dev["dir"] / "t.png")
    assert cli.main(["audit", "--db", db, "timeline", "-o", png]) == 0
    assert os.path.getsize(png) > 5000


def test_pull_resumes_across_a_reboot(dev):
    out = str(dev["dir"] / "log2.rvmw")
    t = SerialTransport(dev["port"])
    before = console.run_command(t, "hello")["boot"]

    def reboot_once(client, n):
        if n == 1:
            client.request("reboot")
    try:
        rep = console.pull(t, out, window=16, timeout=2.0, reboot_wait=30,
                           after_window=reboot_once)
        after = console.run_command(t, "hello")["boot"]
    finally:
        t.close()
    assert after == before + 1
    assert rep["resumed"] >= 1
    v = V.verify_file(out, dev["key"])
    assert v["verdict"] == "verified" and v["records"] == rep["records"]
    assert v["unsealed_tail"] == 0


def test_pull_deltas_and_reconstruct(dev, capsys):
    """rvm pull --deltas --ckpt-dir while the kernel runs, then rvm
    reconstruct on the pulled files: the supervisor's counter region at its
    witnessed writes, checked against the records and the board's own file."""
    from rvm_mp import kinds
    from rvm_mp.reconstruct import hash32
    t = SerialTransport(dev["port"])
    try:
        parts = console.ps(t)
        sup = [p["pid"] for p in parts if p["name"] == "supervisor"][0]
        ck = console.run_command(t, "checkpoint %d" % sup)["checkpoint_seq"]
    finally:
        t.close()
    d = dev["dir"]
    out, deltas, ckd = str(d / "tt.rvmw"), str(d / "tt.deltas"), str(d / "ttck")
    import struct
    for attempt in range(8):  # the supervisor writes every 250 ms
        assert cli.main(["pull", "--port", dev["port"], "-o", out, "--deltas", deltas,
                         "--ckpt-dir", ckd, "--quiet"]) == 0
        said = capsys.readouterr().out
        data = open(out, "rb").read()[V.HDR:]
        writes = []
        for i in range(0, len(data), 64):
            f = struct.unpack_from("<IIHBBHHIIII", data, i)
            if f[3] == kinds.REGION_WRITE and f[5] == sup:
                writes.append(f)
        if len([w for w in writes if w[0] > ck]) >= 2:
            break
        time.sleep(1.0)
    assert "delta log" in said and "checkpoint file(s)" in said
    pulled = open(deltas, "rb").read()
    assert len(pulled) > 0
    assert (dev["fs"] / "mem" / "deltas.log").read_bytes().startswith(pulled)
    assert sorted(os.listdir(ckd)) and all(n.endswith(".ck") for n in os.listdir(ckd))
    for n in os.listdir(ckd):
        assert (dev["fs"] / "mem" / "ckpt" / n).read_bytes() == open(os.path.join(ckd, n), "rb").read()
    assert len(writes) >= 3
    key = dev["key"].hex()
    prev = None
    used_ck = False
    picks = writes[:2] + [w for w in writes if w[0] > ck][:2] + writes[-1:]
    for w in picks:
        seq, rid, off, ln, crc = w[0], w[7], w[8], w[9], w[10]
        assert cli.main(["reconstruct", out, deltas, "--region", str(rid), "--seq", str(seq),
                         "--key-hex", key, "--ckpt-dir", ckd, "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        got = bytes.fromhex(rep["bytes"])
        assert len(got) == 16 and rep["deltas_checked"] > 0
        assert hash32(got[off:off + ln]) == crc  # what the board wrote at seq
        if seq > ck:
            assert 0 < rep["base_seq"] <= seq  # started from a pulled checkpoint
            used_ck = True
        counters = struct.unpack_from("<II", got, 0)
        if prev is not None and prev[0] == rid:
            assert counters >= prev[1]  # reports, drained only grow
        prev = (rid, counters)
    assert used_ck
    # without the checkpoint files: the same bytes from the deltas alone
    w = picks[-1]
    assert cli.main(["reconstruct", out, deltas, "--region", str(w[7]), "--seq", str(w[0]),
                     "--key-hex", key, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == rep["bytes"]
