# Time travel: for every seq k of a scripted run, every region rebuilt at k
# (nearest checkpoint + deltas) equals its bytes when record k was emitted.
import kt
from rvm_mp import errors, kinds, tiers
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore
from rvm_mp.region import RegionManager
from rvm_mp.reconstruct import (DeltaLog, MemDeltaLog, rebuild, D_WRITE,
                                D_ALLOC)
from rvm_mp.flashfs import OS

HEAP = "256K"  # modules compiled from source live in the heap too; boards load .mpy


class SnapLog(WitnessLog):
    """A WitnessLog that remembers every region's bytes at each emit."""

    def __init__(self, *a, **kw):
        WitnessLog.__init__(self, *a, **kw)
        self.mgr = None
        self.snaps = {}   # seq -> {rid: bytes}

    def emit(self, kind, actor=0, target=0, a=0, b=0, c=0, d=0, flags=0):
        seq = WitnessLog.emit(self, kind, actor, target, a, b, c, d, flags)
        m = self.mgr
        if m is not None:
            snap = {}
            for rid in m.regions:
                snap[rid] = bytes(m._contents(m.regions[rid]))
            self.snaps[seq] = snap
        return seq


def scripted_run(d, n_writes=40):
    """A run touching every kind of region change. Returns (log, mgr, rids)."""
    st = WitnessStore(d + "/wit", seg_records=32, genesis=genesis_link(kt.DEVICE_ID))
    log = SnapLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=16, seal_every=25,
                  store=st)
    t = [0]
    m = RegionManager(log, 2048, root=d + "/mem", clock=lambda: t[0],
                      policy=tiers.StaticTierPolicy(50, 200))
    log.mgr = m
    a = m.alloc(1, 200)
    b = m.alloc(2, 64)
    for i in range(n_writes):
        t[0] += 7
        m.write(1, a, (i * 13) % 190, b"w%02d!" % i)
        if i % 3 == 0:
            m.write(2, b, i % 60, b"%d" % (i % 10))
        if i == 10:
            m.checkpoint(1, b"p1")
        if i == 15:
            m.move(a, tiers.DORMANT)
        if i == 20:
            m.move(b, tiers.COLD)
        if i == 22:
            m.share(1, a, 2)
            m.unshare(1, a, 2)
        if i == 25:
            m.checkpoint(2)
            m.free(2, b)
            b = m.alloc(2, 32)       # a new region, fresh history
        if i == 30:
            m.arena[m.regions[a].off + 3] ^= 0xFF   # corruption...
            m.rollback_region(a)                    # ...rolled back (F3)
        if i == 33:
            m.restore_partition(1)                  # F2 back to i == 10
        if i % 5 == 4:
            log.service()
    t[0] += 1000
    m.tick()
    log.service()
    return st, log, m


def test_region_at_every_seq_matches_the_run():
    d = kt.tmpdir("tt")
    st, log, m = scripted_run(d)
    rids = set()
    for s in log.snaps:
        for r in log.snaps[s]:
            rids.add(r)
    assert len(rids) == 3
    checked = 0
    for k in range(log.next_seq):
        snap = log.snaps.get(k)
        if snap is None:  # seals: nothing changed since the previous record
            continue
        for rid in rids:
            got = m.region_at(rid, k)
            if rid in snap:
                assert got == snap[rid], (rid, k)
            else:
                assert got is errors.ENOENT, (rid, k)
            checked += 1
    assert checked > 200  # 3 regions x every non-seal record of the run
    assert m.region_at(1, log.next_seq) is errors.EINVAL
    m.close()
    st.close()
    kt.rmtree(d)


def test_deltas_match_witness_records():
    d = kt.tmpdir("dw")
    st, log, m = scripted_run(d, 12)
    n = 0
    for pos, op, seq, rid, off, payload in m.deltas.entries():
        rec = log.record(seq)
        assert rec is not None
        if op == D_WRITE:
            assert rec[10] == kinds.REGION_WRITE
            f = (rec[16] | rec[17] << 8, rec[20] | rec[21] << 8)
            assert f == (rid, off)
            assert (rec[28] | rec[29] << 8 | rec[30] << 16 | rec[31] << 24) == \
                __import__("rvm_mp.reconstruct").reconstruct.hash32(payload)
            n += 1
        elif op == D_ALLOC:
            assert rec[10] == kinds.REGION_ALLOC
    assert n >= 16
    m.close()
    st.close()
    kt.rmtree(d)


def test_torn_delta_tail_cut_and_orphans_dropped_at_boot():
    d = kt.tmpdir("dt")
    fs = OS
    dl = DeltaLog(d + "/deltas.log", fs)
    dl.append(D_ALLOC, 0, 1, 8, b"")
    dl.append(D_WRITE, 1, 1, 0, b"abcd")
    dl.append(D_WRITE, 2, 1, 4, b"efgh")
    dl.close()
    with open(d + "/deltas.log", "ab") as f:
        f.write(b"\xd7\x02\x04\x00\x03\x00")    # half a header: torn
    dl = DeltaLog(d + "/deltas.log", fs)
    assert dl.torn == 1 and len(list(dl.entries())) == 3
    state, n = rebuild(dl.entries(), 1, 2)
    assert bytes(state) == b"abcdefgh" and n == 3
    state, n = rebuild(dl.entries(), 1, 1)
    assert bytes(state) == b"abcd\x00\x00\x00\x00"
    dl.truncate_from(2)       # seq 2 never became durable in the witness log
    assert [e[2] for e in dl.entries()] == [0, 1]
    dl.close()
    mem = MemDeltaLog()
    mem.append(D_ALLOC, 5, 2, 4, b"")
    mem.append(D_WRITE, 6, 2, 1, b"z")
    mem.truncate_from(6)
    assert rebuild(mem.entries(), 2, 9)[0] == bytearray(4)
    kt.rmtree(d)


def test_compaction_keeps_history_after_horizon_and_survives_reboot():
    d = kt.tmpdir("cmp")
    st, log, m = scripted_run(d)
    before = m.deltas.size()
    rids = set()
    for s in log.snaps:
        for r in log.snaps[s]:
            rids.add(r)
    saved = m.compact()
    assert saved > 0 and m.deltas.size() == before - saved
    f = log.query(kind=kinds.DELTA_COMPACT)
    assert len(f) == 1
    live = sorted(m.regions)
    for rid in live:
        assert m.horizon(rid) > 0
    answered = 0
    for k in range(log.next_seq):
        snap = log.snaps.get(k)
        if snap is None:
            continue
        for rid in rids:
            got = m.region_at(rid, k)
            if k < m.horizon(rid):
                assert got is errors.EEXPIRED, (rid, k)
            elif rid in snap:
                assert got == snap[rid], (rid, k)
                answered += 1
            else:
                assert got is errors.ENOENT, (rid, k)
    assert answered > 10
    # F3 still works after compaction
    a = live[0]
    good = m.read(0, a, 0, m.regions[a].size)
    m.arena[m.regions[a].off] ^= 0xFF
    assert m.rollback_region(a) == 0 and m.read(0, a, 0, len(good)) == good
    k = log.next_seq - 1
    want = m.region_at(a, k)
    log.flush()
    m.close()
    st.close()
    # reboot: horizons come back from the markers
    st2 = WitnessStore(d + "/wit", seg_records=32, genesis=genesis_link(kt.DEVICE_ID))
    log2 = WitnessLog(kt.DEVICE_ID, boot=2, key=kt.KEY, ring=16, store=st2)
    m2 = RegionManager(log2, 2048, root=d + "/mem")
    assert m2.horizon(a) == m.horizon(a) and m2.region_at(a, k) == want
    assert m2.region_at(a, m.horizon(a) - 1) is errors.EEXPIRED
    m2.close()
    st2.close()
    kt.rmtree(d)
