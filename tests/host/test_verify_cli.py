"""`rvm verify FILE --key-hex HEX [--json]`: exit codes, output, bad input.

Exit 0 verified, 1 tampered or broken, 2 usage or I/O error, 3 unsealed.
Expected failures print one line (`rvm: ...` on stderr) and never a traceback.
"""
import json
import os
import subprocess
import sys

import pytest

import wvectors
from rvm_mp import kinds
from rvm_mp.witness import WitnessLog
from host_tools.rvm import cli

KEYHEX = wvectors.KEY.hex()


class _Buf:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b


def _write_log(path, n=30, seal=True, flip=None):
    log = WitnessLog(wvectors.DEVICE_ID, boot=1, key=wvectors.KEY, ring=64,
                     clock=wvectors.FixedClock())
    for i in range(n):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    if seal:
        log.seal()
        log.emit(kinds.IPC_RECV, 2, 1, 0)  # one record of unsealed tail
    b = _Buf()
    log.export(b)
    if flip is not None:
        b.data[flip] ^= 0x10
    with open(path, "wb") as f:
        f.write(b.data)
    return str(path)


def _run(capsys, *argv):
    rc = cli.main(["verify"] + list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_verified_exit_0_and_summary(tmp_path, capsys):
    p = _write_log(tmp_path / "ok.rvmw")
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX)
    assert rc == 0 and err == ""
    assert out.startswith("verified: %s: 32 records, seq 0..31, sealed through seq 30" % p)
    assert "unsealed tail of 1 records (seq 31..31)" in out
    assert len(out.strip().splitlines()) == 1


def test_tampered_exit_1_with_first_bad_seq(tmp_path, capsys):
    p = _write_log(tmp_path / "bad.rvmw", flip=64 + 7 * 64 + 20)
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX)
    assert rc == 1
    assert out.strip() == ("tampered: %s: first bad record seq 7: link mismatch: "
                           "record contents or chain altered" % p)


def test_bad_header_exit_1(tmp_path, capsys):
    p = _write_log(tmp_path / "hdr.rvmw", flip=0)
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX)
    assert rc == 1 and out.startswith("tampered: %s: bad header: magic" % p)


def test_unsealed_exit_3(tmp_path, capsys):
    p = _write_log(tmp_path / "unsealed.rvmw", seal=False)
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX)
    assert rc == 3 and out.startswith("unsealed: %s: 30 records" % p)


def test_json_report(tmp_path, capsys):
    p = _write_log(tmp_path / "ok.rvmw")
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX, "--json")
    rep = json.loads(out)
    assert rc == 0
    assert rep["verdict"] == "verified" and rep["records"] == 32
    assert rep["first_seq"] == 0 and rep["last_seq"] == 31
    assert rep["sealed_through"] == 30 and rep["unsealed_tail"] == 1
    assert rep["seals"] == 1 and rep["bad_seq"] is None
    assert rep["device_id"] == wvectors.DEVICE_ID.hex()
    p = _write_log(tmp_path / "bad.rvmw", flip=64 + 3 * 64 + 1)
    rc, out, err = _run(capsys, p, "--key-hex", KEYHEX, "--json")
    rep = json.loads(out)
    assert rc == 1 and rep["verdict"] == "tampered" and rep["bad_seq"] == 3


@pytest.mark.parametrize("case", ["missing", "directory", "badhex", "shortkey",
                                  "oddhex", "emptykey"])
def test_usage_and_io_errors_one_line_exit_2(tmp_path, capsys, case):
    p = _write_log(tmp_path / "ok.rvmw")
    key = KEYHEX
    if case == "missing":
        p = str(tmp_path / "nope.rvmw")
    elif case == "directory":
        p = str(tmp_path)
    elif case == "badhex":
        key = "zz" * 16
    elif case == "shortkey":
        key = "ab" * 15  # 15 bytes
    elif case == "oddhex":
        key = KEYHEX[:-1]
    elif case == "emptykey":
        key = ""
    rc, out, err = _run(capsys, p, "--key-hex", key)
    assert rc == 2, (case, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rvm: "), err
    assert "Traceback" not in err
    want = {"missing": "cannot read", "directory": "cannot read",
            "badhex": "not hexadecimal", "oddhex": "not hexadecimal",
            "shortkey": "at least 16 bytes", "emptykey": "at least 16 bytes"}[case]
    assert want in lines[0]


def test_missing_key_option_is_usage_error(tmp_path, capsys):
    p = _write_log(tmp_path / "ok.rvmw")
    with pytest.raises(SystemExit) as e:
        cli.main(["verify", p])
    assert e.value.code == 2
    assert "--key-hex" in capsys.readouterr().err


def test_console_script_end_to_end(tmp_path):
    """The installed `rvm` command: real process, exit codes, no traceback."""
    rvm = os.path.join(os.path.dirname(sys.executable), "rvm")
    if not os.path.exists(rvm):
        pytest.skip("rvm console script not installed (run make setup)")
    ok = _write_log(tmp_path / "ok.rvmw")
    bad = _write_log(tmp_path / "bad.rvmw", flip=64 + 64 + 40)
    r = subprocess.run([rvm, "verify", ok, "--key-hex", KEYHEX],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("verified:")
    r = subprocess.run([rvm, "verify", bad, "--key-hex", KEYHEX],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "first bad record seq 1" in r.stdout
    r = subprocess.run([rvm, "verify", str(tmp_path / "x"), "--key-hex", KEYHEX],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("rvm: cannot read")
