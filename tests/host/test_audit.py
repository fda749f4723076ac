"""rvm audit: verify-then-store, refusals, forensic queries, timeline PNG."""
import json
import os

import pytest

from rvm_mp import kinds as K
from rvm_mp.witness import WitnessLog
from host_tools.rvm import audit as A, cli

DEV = bytes(range(16))
KEY = bytes(range(32, 64))


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        self.t += 10
        return self.t


def _log_file(path, n_extra=0, boot=1, clock=None):
    log = WitnessLog(DEV, boot=boot, key=KEY, ring=512, clock=clock or Clock())
    log.emit(K.BOOT_BEGIN, 0, 0, boot)
    log.emit(K.PART_CREATE, 0, 2, 2)
    log.emit(K.REGION_ALLOC, 2, 7, 64)
    log.emit(K.REGION_WRITE, 2, 7, 0, 16)
    log.deny(K.REGION_DENIED, 3, 7, 3, 1)
    log.emit(K.REGION_WRITE, 2, 7, 16, 16)
    log.emit(K.OP_COMMAND, 1, 3, 7)
    log.emit(K.PART_TERMINATE, 1, 3)
    for i in range(n_extra):
        log.emit(K.IPC_SEND, 2, 4, i)
    log.seal()
    with open(path, "wb") as f:
        log.export(f)
    return log


@pytest.fixture
def db(tmp_path):
    f = str(tmp_path / "a.rvmw")
    _log_file(f)
    d = str(tmp_path / "a.sqlite")
    assert cli.main(["audit", f, "--db", d, "--key-hex", KEY.hex()]) == 0
    return d


def test_import_decodes_fields(db):
    con = A.open_db(db)
    rows = A.query(con)
    assert len(rows) == 9
    r = rows[1]
    assert r["kind_name"] == "PART_CREATE" and r["family"] == "partition"
    assert r["target"] == 2 and r["a"] == 2 and r["sealed"] == 1
    den = A.query(con, denied=True)
    assert len(den) == 1 and den[0]["kind_name"] == "REGION_DENIED"
    assert den[0]["b"] == 3 and den[0]["tier"] == 1
    times = [r["time_ms"] for r in rows]
    assert times == sorted(times) and times[0] == 0 and times[-1] > 0


def test_query_cli_filters(db, capsys):
    capsys.readouterr()
    assert cli.main(["audit", "--db", db, "query", "--partition", "2",
                     "--kind", "REGION_WRITE", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["a"] for r in rows] == [0, 16] and all(r["actor"] == 2 for r in rows)
    # who touched region 7 between two times
    con = A.open_db(db)
    all_rows = A.query(con)
    t0, t1 = all_rows[2]["time_ms"], all_rows[4]["time_ms"]
    assert cli.main(["audit", "--db", db, "query", "--since", str(t0), "--until",
                     str(t1), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in rows] == [2, 3, 4]
    assert cli.main(["audit", "--db", db, "query", "--kind", "operator"]) == 0
    out = capsys.readouterr().out
    assert "OP_COMMAND" in out and out.splitlines()[0].startswith("SEQ")
    assert cli.main(["audit", "--db", db, "query", "--since", "seq:7", "--json"]) == 0
    assert [r["seq"] for r in json.loads(capsys.readouterr().out)] == [7, 8]
    assert cli.main(["audit", "--db", db, "query", "--kind", "NOPE"]) == 2
    assert capsys.readouterr().err.startswith("rvm: unknown kind")


def test_tampered_and_wrong_key_refused(tmp_path, capsys):
    f = str(tmp_path / "t.rvmw")
    _log_file(f)
    data = bytearray(open(f, "rb").read())
    data[64 + 3 * 64 + 16] ^= 1  # change a of record 3
    open(f, "wb").write(bytes(data))
    d = str(tmp_path / "t.sqlite")
    assert cli.main(["audit", f, "--db", d, "--key-hex", KEY.hex()]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rvm: refusing") and "tampered" in err and err.count("\n") == 1
    assert A.query(A.open_db(d)) == []
    g = str(tmp_path / "g.rvmw")
    _log_file(g)
    assert cli.main(["audit", g, "--db", d, "--key-hex", bytes(32).hex()]) == 1
    assert cli.main(["audit", g, "--db", d]) == 2  # no key
    assert "no key" in capsys.readouterr().err


def test_reimport_and_fork(tmp_path):
    f = str(tmp_path / "a.rvmw")
    _log_file(f)
    d = str(tmp_path / "a.sqlite")
    con = A.open_db(d)
    assert A.import_log(con, f, KEY)["added"] == 9
    assert A.import_log(con, f, KEY)["added"] == 0
    g = str(tmp_path / "b.rvmw")
    _log_file(g, n_extra=3, clock=Clock())  # same device, other history from seq 8
    from host_tools.rvm.errors import RvmToolError
    with pytest.raises(RvmToolError) as e:
        A.import_log(con, g, KEY)
    assert "forked" in str(e.value)


def test_timeline_png(db, tmp_path, capsys):
    out = str(tmp_path / "tl.png")
    assert cli.main(["audit", "--db", db, "timeline", "-o", out]) == 0
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(out) > 5000
    assert cli.main(["audit", "--db", str(tmp_path / "none.sqlite"), "query"]) == 2
