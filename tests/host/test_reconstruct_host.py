"""Host time travel from a pulled log + delta file equals the board's bytes
at every seq of the scripted run (the same run the kernel test uses)."""
import io
import json
import os
import shutil
import struct

import pytest

import kt
import test_reconstruct as TR
from host_tools.rvm import cli
from host_tools.rvm.errors import RvmToolError
from host_tools.rvm.reconstruct import reconstruct, load_deltas
from rvm_mp import errors


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tt"))
    st, log, m = TR.scripted_run(d)
    m.flush()
    path = os.path.join(d, "dev.rvmw")
    with open(path, "wb") as f:
        log.export(f)
    rids = sorted({r for s in log.snaps for r in log.snaps[s]})
    yield d, path, log, m, rids
    m.close()
    st.close()


def test_host_rebuild_equals_board_at_every_seq(run):
    d, path, log, m, rids = run
    deltas = d + "/mem/deltas.log"
    n = 0
    for k in range(log.next_seq):
        snap = log.snaps.get(k)
        if snap is None:
            continue
        for rid in rids:
            rep = reconstruct(path, deltas, rid, k, kt.KEY, d + "/mem/ckpt")
            assert rep["bytes"] == snap.get(rid), (rid, k)
            assert rep["deltas_checked"] == len(load_deltas(deltas))
            n += 1
    assert n > 200


def test_host_uses_checkpoint_base(run):
    d, path, log, m, rids = run
    k = log.next_seq - 1
    with_ck = reconstruct(path, d + "/mem/deltas.log", rids[0], k, kt.KEY,
                          d + "/mem/ckpt")
    without = reconstruct(path, d + "/mem/deltas.log", rids[0], k, kt.KEY)
    assert with_ck["bytes"] == without["bytes"] == m.region_at(rids[0], k)
    assert with_ck["base_seq"] > 0
    assert with_ck["deltas_applied"] < without["deltas_applied"]


def test_forged_delta_is_refused(run, tmp_path):
    d, path, log, m, rids = run
    raw = bytearray(open(d + "/mem/deltas.log", "rb").read())
    # find the first WRITE delta and change its payload, fixing its CRC so
    # only the witness record can tell
    pos = 0
    while raw[pos + 1] != 2:
        pos += 20 + struct.unpack_from("<H", raw, pos + 2)[0]
    n = struct.unpack_from("<H", raw, pos + 2)[0]
    raw[pos + 20] ^= 0x55
    from rvm_mp.reconstruct import hash32
    struct.pack_into("<I", raw, pos + 16, hash32(bytes(raw[pos + 20:pos + 20 + n])))
    forged = tmp_path / "deltas.log"
    forged.write_bytes(bytes(raw))
    with pytest.raises(RvmToolError) as e:
        reconstruct(path, str(forged), rids[0], 5, kt.KEY)
    assert "does not match its witness record" in str(e.value)


def test_tampered_log_is_refused(run, tmp_path):
    d, path, log, m, rids = run
    raw = bytearray(open(path, "rb").read())
    raw[64 + 64 * 3 + 20] ^= 1
    bad = tmp_path / "bad.rvmw"
    bad.write_bytes(bytes(raw))
    with pytest.raises(RvmToolError) as e:
        reconstruct(str(bad), d + "/mem/deltas.log", rids[0], 5, kt.KEY)
    assert e.value.code == 1


def test_cli_reconstruct(run, tmp_path, capsys):
    d, path, log, m, rids = run
    k = log.next_seq - 1
    out = tmp_path / "r.bin"
    rc = cli.main(["reconstruct", path, d + "/mem/deltas.log", "--region",
                   str(rids[0]), "--seq", str(k), "--key-hex", kt.KEY.hex(),
                   "--ckpt-dir", d + "/mem/ckpt", "--out", str(out)])
    assert rc == 0 and out.read_bytes() == m.region_at(rids[0], k)
    capsys.readouterr()
    rc = cli.main(["reconstruct", path, d + "/mem/deltas.log", "--region",
                   "999", "--seq", "3", "--key-hex", kt.KEY.hex(), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 3 and rep["bytes"] is None
    rc = cli.main(["reconstruct", path, d + "/nope.log", "--region", "1",
                   "--seq", "3", "--key-hex", kt.KEY.hex()])
    assert rc == 2


def test_host_after_compaction(tmp_path):
    d = str(tmp_path)
    st, log, m = TR.scripted_run(d)
    m.compact()
    path = os.path.join(d, "dev.rvmw")
    with open(path, "wb") as f:
        log.export(f)
    a = sorted(m.regions)[0]
    h = m.horizon(a)
    k = log.next_seq - 1
    rep = reconstruct(path, d + "/mem/deltas.log", a, k, kt.KEY, d + "/mem/ckpt")
    assert rep["bytes"] == m.region_at(a, k)
    with pytest.raises(RvmToolError) as e:
        reconstruct(path, d + "/mem/deltas.log", a, h - 1, kt.KEY, d + "/mem/ckpt")
    assert e.value.code == 4 and "compacted" in str(e.value)
    m.close()
    st.close()
