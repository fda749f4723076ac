# RegionManager: regions from the arena, bounds-checked views, witnessed
# writes, sharing (WARM), refusals, quota, double free, DC-9 reassignment.
import kt
from rvm_mp import errors, kinds, tiers
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp.region import RegionManager, OP_WRITE, OP_FREE
from rvm_mp.reconstruct import hash32

HEAP = "256K"  # modules compiled from source live in the heap too; boards load .mpy


def _mgr(arena=4096, **kw):
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=64)
    return log, RegionManager(log, arena, **kw)


def _last(log, kind):
    recs = log.query(kind=kind)
    return unpack(recs[-1]) if recs else None


def test_alloc_write_read_witnessed():
    log, m = _mgr()
    rid = m.alloc(3, 100)
    assert rid >= 1 and m.regions_of(3) == [rid]
    f = _last(log, kinds.REGION_ALLOC)
    assert f[5] == 3 and f[6] == 3 and f[7] == rid and f[8] == 100
    assert m.read(3, rid, 0, 100) == bytes(100)   # zero-filled
    assert m.write(3, rid, 10, b"hello") == 5
    f = _last(log, kinds.REGION_WRITE)
    assert (f[5], f[6], f[7], f[8], f[9], f[10]) == (3, 3, rid, 10, 5,
                                                      hash32(b"hello"))
    assert m.read(3, rid, 8, 9) == b"\x00\x00hello\x00\x00"
    assert m.verify_region(rid) is True


def test_refusals_are_witnessed_and_change_nothing():
    log, m = _mgr()
    rid = m.alloc(3, 64)
    m.write(3, rid, 0, b"abc")
    before = m.read(3, rid, 0, 64)
    assert m.write(3, rid, 62, b"xyz") is errors.EBOUNDS
    assert m.write(3, rid, -1, b"x") is errors.EBOUNDS
    assert m.write(4, rid, 0, b"x") is errors.ERIGHTS    # not the owner
    assert m.read(4, rid, 0, 1) is errors.ERIGHTS
    assert m.read(3, rid, 60, 5) is errors.EBOUNDS
    assert m.write(3, 999, 0, b"x") is errors.ENOENT
    assert m.write(3, rid, 0, 12345) is errors.EINVAL
    assert m.alloc(3, 0) is errors.EINVAL
    assert m.alloc(3, 1 << 20) is errors.ENOMEM
    assert m.alloc(5000, 10) is errors.EBADID
    assert m.read(3, rid, 0, 64) == before
    denied = log.query(kind=kinds.REGION_DENIED)
    assert len(denied) == 10
    f = unpack(denied[0])
    assert f[4] & 1 and f[8] == errors.EBOUNDS.code and f[10] == OP_WRITE
    assert f[7] == rid and f[9] == 62


def test_double_free_detected():
    log, m = _mgr()
    rid = m.alloc(2, 32)
    assert m.free(3, rid) is errors.ERIGHTS
    assert m.free(2, rid) == 0
    assert m.free(2, rid) is errors.EDOUBLEFREE
    f = _last(log, kinds.REGION_DENIED)
    assert f[8] == errors.EDOUBLEFREE.code and f[10] == OP_FREE
    assert m.read(2, rid, 0, 1) is errors.ENOENT
    assert m.buddy.free_bytes() == 4096


def test_freed_bytes_never_leak_to_next_owner():
    log, m = _mgr(arena=256)
    a = m.alloc(1, 200)
    m.write(1, a, 0, b"\xaa" * 200)
    m.free(1, a)
    b = m.alloc(2, 200)
    assert m.read(2, b, 0, 200) == bytes(200)


def test_view_is_bounds_checked_and_read_only():
    log, m = _mgr()
    rid = m.alloc(1, 16)
    m.write(1, rid, 0, b"0123456789abcdef")
    v = m.view(1, rid)
    assert len(v) == 16 and v[3] == ord("3") and v[-1] == ord("f")
    assert v[2:5] == b"234" and v.read(10, 3) == b"abc"
    kt.raises(IndexError, v.__getitem__, 16)
    assert v.read(10, 7) is errors.EBOUNDS
    assert not hasattr(v, "write") and not hasattr(v, "__setitem__")
    assert m.view(2, rid) is errors.ERIGHTS
    m.free(1, rid)
    assert v.read(0, 1) is errors.ENOENT  # the view does not outlive the region


def test_share_makes_warm_read_only_then_hot_again():
    log, m = _mgr()
    rid = m.alloc(1, 32)
    m.write(1, rid, 0, b"weights")
    assert m.share(1, rid, 2) == rid and m.share(1, rid, 3) == rid
    assert m.tier_of(rid) == tiers.WARM
    assert m.read(2, rid, 0, 7) == b"weights" == m.read(3, rid, 0, 7)
    assert m.write(1, rid, 0, b"x") is errors.ESTATE
    assert m.write(2, rid, 0, b"x") is errors.ERIGHTS
    assert m.share(2, rid, 4) is errors.ERIGHTS
    assert len(log.query(kind=kinds.REGION_SHARE)) == 2
    assert m.unshare(1, rid, 2) == 0 and m.tier_of(rid) == tiers.WARM
    assert m.unshare(3, rid, 3) == 0 and m.tier_of(rid) == tiers.HOT
    assert m.read(2, rid, 0, 1) is errors.ERIGHTS
    assert m.write(1, rid, 0, b"W") == 1


def test_quota_and_region_limit():
    log, m = _mgr(max_regions=3)
    m.set_quota(1, 100)
    a = m.alloc(1, 60)
    assert m.alloc(1, 50) is errors.EQUOTA
    assert m.alloc(1, 40) >= 1
    assert m.alloc(2, 16) >= 1
    assert m.alloc(2, 16) is errors.ENOMEM  # 3 regions max
    m.free(1, a)
    assert m.alloc(1, 60) >= 1


def test_drop_partition_frees_everything():
    log, m = _mgr()
    a = m.alloc(5, 100)
    b = m.alloc(5, 200)
    c = m.alloc(6, 50)
    m.share(6, c, 5)
    assert m.drop_partition(5) == 2
    assert m.regions_of(5) == [] and m.tier_of(c) == tiers.HOT
    assert m.read(5, c, 0, 1) is errors.ERIGHTS
    assert m.free(5, a) is errors.EDOUBLEFREE and m.tier_of(b) is errors.ENOENT
    assert m.buddy.check()


def test_reassign_dc9():
    log, m = _mgr()
    rid = m.alloc(1, 32)
    assert m.reassign(rid, 2) == 0
    f = _last(log, kinds.REGION_REASSIGN)
    assert f[6] == 2 and f[7] == rid and f[8] == 1
    assert m.write(1, rid, 0, b"x") is errors.ERIGHTS
    assert m.write(2, rid, 0, b"x") == 1
    assert m.reassign(rid, 0) is errors.EBADID


def test_pressure_demotes_least_recently_used():
    t = [0]
    log, m = _mgr(arena=1024, clock=lambda: t[0])
    a = m.alloc(1, 512)
    m.write(1, a, 0, b"A" * 512)
    t[0] = 10
    b = m.alloc(2, 512)
    m.write(2, b, 0, b"B" * 100)
    t[0] = 20
    c = m.alloc(3, 512)          # no room: a (oldest) goes dormant
    assert c >= 1 and m.tier_of(a) == tiers.DORMANT
    assert m.read(1, a, 0, 512) == b"A" * 512   # faulted back; b demoted
    assert m.tier_of(a) == tiers.HOT and m.tier_of(b) == tiers.DORMANT
    assert m.read(2, b, 0, 100) == b"B" * 100
    assert m.buddy.check()


def test_kernel_region_syscalls_through_capabilities():
    from rvm_mp import hal, board
    from rvm_mp.kernel import Kernel
    from rvm_mp.captable import R_READ
    d = kt.tmpdir("kreg")
    prof = board.from_dict({"name": "t", "limits": {"arena": 2048}})
    pf = hal.Platform(d, device_id=kt.DEVICE_ID, key=kt.KEY)
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=128)
    k = Kernel(pf, prof, log=log)
    assert k.region_alloc(1, 16) is errors.ENOENT       # no memory manager
    k.mem = RegionManager(log, 2048, root=d + "/mem")
    p1 = k.part_create(0, name="a")
    p2 = k.part_create(0, name="b")
    k.part_start(0, p1)
    k.part_start(0, p2)
    h = k.region_alloc(p1, 64)
    assert not errors.is_err(h)
    otype, rid, rights, depth = k.cap_lookup(p1, h)
    assert k.mem.regions[rid].owner == p1
    assert k.region_write(p1, h, 4, b"data") == 4
    assert k.region_read(p1, h, 4, 4) == b"data"
    assert k.region_read(p1, h, 62, 4) is errors.EBOUNDS
    assert errors.is_err(k.region_read(p2, h, 0, 4))    # p2 holds no such cap
    h2 = k.region_share(p1, h, p2)
    assert not errors.is_err(h2) and k.cap_lookup(p2, h2)[2] == R_READ
    assert k.region_read(p2, h2, 4, 4) == b"data"
    assert errors.is_err(k.region_write(p2, h2, 0, b"x"))  # READ only
    assert k.mem.tier_of(rid) == tiers.WARM
    s = k.region_checkpoint(p1, p1, b"me")
    assert not errors.is_err(s) and log.record(s)[10] == kinds.CHECKPOINT
    assert k.region_checkpoint(p2, p1) is errors.ERIGHTS
    assert k.region_free(p1, h) == 0
    assert errors.is_err(k.cap_lookup(p2, h2))          # caps naming it gone
    assert k.mem.regions_of(p1) == []
    h3 = k.region_alloc(p2, 32)
    k.part_terminate(0, p2)
    assert k.mem.regions_of(p2) == [] and not errors.is_err(h3)
    k.mem.close()
    kt.rmtree(d)


def test_access_observer_sees_traffic_and_cannot_break_the_kernel():
    log, m = _mgr()
    seen = []

    class Obs:
        def on_region_access(self, rid, pid, n, is_write):
            seen.append((rid, pid, n, is_write))
            if len(seen) == 2:
                raise RuntimeError("engine failure")

    m.access_observer = Obs()
    rid = m.alloc(1, 32)
    m.share(1, rid, 2)
    assert m.read(2, rid, 0, 8) == bytes(8)
    m.unshare(1, rid, 2)
    assert m.write(1, rid, 0, b"abc") == 3
    assert m.read(1, rid, 0, 3) == b"abc"
    assert m.read(1, rid, 30, 8) is errors.EBOUNDS   # refusals are not traffic
    assert seen == [(rid, 2, 8, False), (rid, 1, 3, True), (rid, 1, 3, False)]
    assert m.observer_errors == 1
