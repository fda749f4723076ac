# Console file reads (rvm_mp/control_files.py): `files` and `fileread`
# serve the region delta log and checkpoint files under the kernel's mem/
# directory, nothing else; refusals are witnessed OP_DENIED, reads OP_PULL.
# Runs on CPython and on the MicroPython unix port.
import json
import struct

import kt
from rvm_mp import board, control, errors, kinds
from rvm_mp import frame as F
from rvm_mp.hal import Platform, MemConsole
from rvm_mp.kernel import Kernel
from rvm_mp.reconstruct import read_deltas, rebuild
from rvm_mp.region import RegionManager
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore

HEAP = "512K"  # kernel + region manager + control compiled from source


class _Buf:
    """Just enough of a file for read_deltas over pulled bytes."""

    def __init__(self, data):
        self.d = data
        self.p = 0

    def readinto(self, b):
        n = min(len(b), len(self.d) - self.p)
        b[0:n] = self.d[self.p:self.p + n]
        self.p += n
        return n

    def read(self, n):
        out = self.d[self.p:self.p + n]
        self.p += len(out)
        return out


def _setup(mem=True):
    prof = board.load("seed-64k", dirs=(kt.repo_root() + "/boards",))
    d = kt.tmpdir("ctlf")
    pf = Platform(d, device_id=kt.DEVICE_ID, key=kt.KEY)
    con = pf.attach_console(MemConsole())
    st = WitnessStore(d + "/wit", seg_records=16, genesis=genesis_link(kt.DEVICE_ID))
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=256, store=st)
    k = Kernel(pf, prof, log=log)
    if mem:
        k.mem = RegionManager(log, 4096, root=d + "/mem")
    c = control.Control(k, pf, board="seed-64k", banner=False)
    return k, c, con, d


def _ask(c, con, line, seq):
    con.feed(F.encode(F.T_REQ, seq, line.encode()))
    c.poll()
    return F.decode(con.take())


def _answer(items):
    buf = b""
    for r, ft, seq, payload in items:
        if r == F.R_FRAME and ft == F.T_MORE:
            buf += payload
        elif r == F.R_FRAME and ft in (F.T_ANS, F.T_ERR):
            return ft, json.loads(buf + payload)
    raise AssertionError("no answer frame")


def _read(c, con, name, seq):
    """Whole file through fileread requests: (bytes, last END object)."""
    out = bytearray()
    end = None
    while True:
        items = _ask(c, con, "fileread %s %d" % (name, len(out)), seq)
        end = None
        for r, ft, s, p in items:
            assert r == F.R_FRAME and s == seq
            if ft == F.T_DATA:
                assert struct.unpack_from("<I", p, 0)[0] == len(out)
                assert len(p) <= 4 + 256
                out += p[4:]
            elif ft == F.T_END:
                end = json.loads(p)
            elif ft == F.T_ERR:
                return None, json.loads(p)
        assert end is not None
        if end["count"] == 0 or end["next"] >= end["size"]:
            return bytes(out), end


def _write_regions(k, pid, n):
    m = k.mem
    rid = m.alloc(pid, 64)
    assert not errors.is_err(rid)
    for i in range(n):
        r = m.write(pid, rid, (i * 5) % 60, bytes(((i + j) & 255 for j in range(4))))
        assert not errors.is_err(r)
    return rid


def test_fileread_deltas_equals_the_file_and_rebuilds():
    k, c, con, d = _setup()
    pid = k.part_create(0, name="w")
    rid = _write_regions(k, pid, 150)  # > 2048 bytes of deltas: several requests
    # nothing flushed yet: fileread must sync the buffered appends first
    data, end = _read(c, con, "deltas.log", 7)
    assert data is not None and end["size"] == len(data) > 2048
    with open(d + "/mem/deltas.log", "rb") as f:
        assert f.read() == data
    ents = list(read_deltas(_Buf(data)))
    state, n = rebuild(ents, rid, k.log.next_seq)
    assert bytes(state) == bytes(k.mem.read(pid, rid, 0, 64))
    assert n == 151
    pulls = [r for r in k.log.iter_range(0, k.log.next_seq) if r[10] == kinds.OP_PULL]
    assert len(pulls) >= 2
    total = 0
    for r in pulls:
        target, a, b, cc, dd = struct.unpack_from("<HIIII", r, 14)
        assert target == 1 and a == total
        assert dd == F.crc32(data[a:a + b])
        assert cc == F.crc32(b"deltas.log")
        total += b
    assert total == len(data)


def test_files_lists_checkpoints_and_fileread_serves_them():
    k, c, con, d = _setup()
    pid = k.part_create(0, name="w")
    _write_regions(k, pid, 3)
    seq = k.mem.checkpoint(pid)
    assert not errors.is_err(seq)
    ft, ls = _answer(_ask(c, con, "files", 3))
    assert ft == F.T_ANS and ls["deltas"] > 0 and len(ls["ckpt"]) == 1
    name, size = ls["ckpt"][0]
    assert name.startswith("ckpt/p") and name.endswith(".ck")
    data, end = _read(c, con, name, 4)
    assert len(data) == size == end["size"]
    with open(d + "/mem/" + name, "rb") as f:
        assert f.read() == data
    recs = [r for r in k.log.iter_range(0, k.log.next_seq) if r[10] == kinds.OP_PULL]
    assert struct.unpack_from("<H", recs[-1], 14)[0] == 2


def test_path_escapes_are_refused_and_witnessed():
    k, c, con, d = _setup()
    with open(d + "/secret.bin", "wb") as f:
        f.write(b"not for the console")
    bad = ("../secret.bin", "/etc/passwd", "ckpt/../../secret.bin",
           "ckpt/../deltas.log", "wit/seg00000000.rvw", "ckpt/x.ck/../../secret.bin",
           "mem/deltas.log", "ckpt/..ck", "ckpt/P0001-00000001.CK", "deltas.log/..")
    seq = 20
    for name in bad:
        before = k.log.next_seq
        items = _ask(c, con, "fileread %s 0" % name, seq)
        assert not [1 for r, ft, s, p in items if ft == F.T_DATA], name
        errs = [json.loads(p) for r, ft, s, p in items if ft == F.T_ERR]
        assert errs and errs[0]["err"] == "ERIGHTS", (name, errs)
        new = list(k.log.iter_range(before, k.log.next_seq))
        assert [r[10] for r in new] == [kinds.OP_DENIED], name
        assert struct.unpack_from("<II", new[0], 16) == (20, errors.ERIGHTS.code)
        seq += 1
    # a well-formed checkpoint name that does not exist: ENOENT
    ft, e = _answer(_ask(c, con, "fileread ckpt/p0001-00000001.ck 0", seq))
    assert ft == F.T_ERR and e["err"] == "ENOENT"
    # usage errors and human mode
    ft, e = _answer(_ask(c, con, "fileread", seq + 1))
    assert ft == F.T_ERR and e["err"] == "EINVAL"
    ft, e = _answer(_ask(c, con, "fileread deltas.log -5", seq + 2))
    assert ft == F.T_ERR and e["err"] == "EINVAL"
    before = k.log.next_seq
    con.feed(b"fileread deltas.log 0\r")
    c.poll()
    out = con.take()
    assert b"framed-only" in out and b"\x44" not in out.split(b"\r\n")[1][:1]
    assert [r[10] for r in k.log.iter_range(before, k.log.next_seq)] == [kinds.OP_DENIED]
    # the console still serves
    ft, h = _answer(_ask(c, con, "hello", seq + 3))
    assert ft == F.T_ANS and h["proto"] == 1


def test_no_region_store_is_enoent():
    k, c, con, d = _setup(mem=False)
    k.mem = None
    ft, e = _answer(_ask(c, con, "files", 2))
    assert ft == F.T_ERR and e["err"] == "ENOENT"
    ft, e = _answer(_ask(c, con, "fileread deltas.log 0", 3))
    assert ft == F.T_ERR and e["err"] == "ENOENT"
    assert kinds.OP_DENIED in [r[10] for r in k.log.iter_range(0, k.log.next_seq)]


def test_offset_past_the_end_sends_nothing():
    k, c, con, d = _setup()
    pid = k.part_create(0, name="w")
    _write_regions(k, pid, 2)
    items = _ask(c, con, "fileread deltas.log 100000", 5)
    ends = [json.loads(p) for r, ft, s, p in items if ft == F.T_END]
    assert ends and ends[0]["count"] == 0 and ends[0]["next"] == 100000
    assert not [1 for r, ft, s, p in items if ft == F.T_DATA]


def test_gen_changes_when_the_delta_log_is_compacted():
    k, c, con, d = _setup()
    pid = k.part_create(0, name="w")
    _write_regions(k, pid, 20)
    k.mem.checkpoint(pid)
    g1 = _answer(_ask(c, con, "files", 2))[1]["gen"]
    assert _answer(_ask(c, con, "files", 3))[1]["gen"] == g1
    k.mem.compact()
    g2 = _answer(_ask(c, con, "files", 4))[1]["gen"]
    assert g2 != g1 and g2 >> 16 == g1 >> 16 == k.log.boot
    data, end = _read(c, con, "deltas.log", 5)
    assert end["gen"] == g2
