# Tiers move real bytes: HOT <-> DORMANT (deflate or RLE) <-> COLD (flash),
# WARM by sharing; each move witnessed; policies static and scored.
import kt
from rvm_mp import errors, kinds, tiers
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp.region import RegionManager

HEAP = "256K"  # modules compiled from source live in the heap too; boards load .mpy


def _patterns():
    pr = bytearray(1024)
    x = 12345
    for i in range(1024):  # deterministic pseudo-random bytes
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        pr[i] = (x >> 16) & 0xFF
    mixed = bytearray(1000)
    for i in range(1000):
        mixed[i] = (i // 37) if (i // 100) % 2 else 0
    return [b"", b"a", b"ab", b"aaa", b"\x00" * 4096, bytes(range(256)) * 3,
            bytes(pr), bytes(mixed), b"abc" * 200 + b"\x00" * 131 + b"z",
            b"\x01" * 130 + b"\x02" * 131 + b"\x03" * 129]


def test_rle_round_trip_exact():
    for p in _patterns():
        blob = tiers.rle_encode(p)
        out = bytearray(len(p))
        assert tiers.rle_decode_into(blob, out) == len(p)
        assert bytes(out) == p
    assert len(tiers.rle_encode(b"\x00" * 4096)) <= 64
    # malformed blobs are refused, never overrun
    assert tiers.rle_decode_into(b"\x05ab", bytearray(6)) == -1
    assert tiers.rle_decode_into(b"\xff\x00", bytearray(10)) == -1


def test_best_codec_detected_and_round_trips():
    c = tiers.best_codec()
    assert c in (tiers.CODEC_DEFLATE, tiers.CODEC_RLE)
    if kt.IS_MP:
        assert c == (tiers.CODEC_DEFLATE if tiers.can_deflate() else tiers.CODEC_RLE)
    else:
        assert c == tiers.CODEC_DEFLATE  # zlib
    for p in _patterns():
        blob = tiers.encode(c, p)
        out = bytearray(len(p))
        assert tiers.decode_into(c, blob, out) == len(p) and bytes(out) == p


def _mgr(root=None, arena=4096, policy=None):
    t = [0]
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=512)
    m = RegionManager(log, arena, root=root, policy=policy,
                      clock=lambda: t[0])
    return log, m, t


def test_round_trip_every_tier_preserves_bytes():
    d = kt.tmpdir("tier")
    log, m, t = _mgr(d)
    pats = _patterns()
    rids = []
    for p in pats[1:]:
        rid = m.alloc(1, len(p))
        m.write(1, rid, 0, p)
        rids.append(rid)
    used = m.buddy.used
    for tier in (tiers.DORMANT, tiers.COLD, tiers.HOT, tiers.COLD,
                 tiers.DORMANT, tiers.HOT):
        for rid in rids:
            assert m.move(rid, tier) == 0
            assert m.tier_of(rid) == tier
            assert m.verify_region(rid) is True
        if tier != tiers.HOT:
            assert m.buddy.used == 0   # the arena really gave the bytes up
        for i in range(len(rids)):
            assert m.read(1, rids[i], 0, len(pats[i + 1])) == pats[i + 1]
            assert m.tier_of(rids[i]) == tiers.HOT  # access faulted it in
    assert m.buddy.used == used
    moves = log.query(kind=kinds.TIER_MOVE)
    assert len(moves) == m.stats_moves and len(moves) > 50
    f = unpack(moves[0])
    assert f[7] == rids[0] and f[8] == tiers.HOT and f[9] == tiers.DORMANT
    m.close()
    kt.rmtree(d)


def test_dormant_really_compresses():
    log, m, t = _mgr()
    rid = m.alloc(1, 2048)
    m.write(1, rid, 0, b"sensor:0042;" * 40)  # then zeros: a typical buffer
    assert m.move(rid, tiers.DORMANT) == 0
    r = m.regions[rid]
    assert r.off == -1 and len(r.blob) < 2048 // 3
    assert m.buddy.used == 0
    # no flash root: no COLD tier, refused and witnessed
    assert errors.is_err(m.move(rid, tiers.COLD))
    assert m.tier_of(rid) == tiers.DORMANT
    assert m.read(1, rid, 0, 24) == b"sensor:0042;" * 2


def test_cold_file_corruption_is_detected_not_read():
    d = kt.tmpdir("cold")
    log, m, t = _mgr(d)
    rid = m.alloc(2, 64)
    m.write(2, rid, 0, b"Q" * 64)
    assert m.move(rid, tiers.COLD) == 0
    path = m.ckpts.cold_path(rid)
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    raw[40] ^= 0xFF
    with open(path, "wb") as f:
        f.write(raw)
    assert m.verify_region(rid) is False
    assert m.read(2, rid, 0, 4) is errors.ECORRUPT
    # F3 rebuilds it from the deltas and brings it back hot
    assert m.rollback_region(rid) == 0
    assert m.read(2, rid, 0, 64) == b"Q" * 64
    m.close()
    kt.rmtree(d)


def test_static_policy_demotes_by_idle_time():
    d = kt.tmpdir("pol")
    log, m, t = _mgr(d, policy=tiers.StaticTierPolicy(100, 1000))
    a = m.alloc(1, 256)
    b = m.alloc(2, 256)
    m.write(1, a, 0, b"a" * 256)
    m.write(2, b, 0, b"b" * 256)
    t[0] = 50
    m.read(2, b, 0, 1)
    assert m.tick(90) == 0
    assert m.tick(120) == 1 and m.tier_of(a) == tiers.DORMANT
    assert m.tier_of(b) == tiers.HOT
    assert m.tick(1200) == 2
    assert m.tier_of(a) == tiers.COLD and m.tier_of(b) == tiers.COLD
    assert m.buddy.used == 0
    t[0] = 1300
    assert m.read(1, a, 0, 256) == b"a" * 256 and m.tier_of(a) == tiers.HOT
    m.close()
    kt.rmtree(d)


def test_scored_policy_uses_cut_value_and_survives_engine_failure():
    cut = {1: 100, 2: 0}

    def cut_value(pid):
        if pid == 3:
            raise RuntimeError("engine down")
        return cut.get(pid)

    pol = tiers.ScoredTierPolicy(cut_value, half_ms=100, weight=50,
                                 dormant_below=40, cold_below=5)
    log, m, t = _mgr(policy=pol)
    a = m.alloc(1, 64)
    b = m.alloc(2, 64)
    c = m.alloc(3, 64)
    # idle 300 ms: recency 25 for all; partition 1 is coupled (cut value 100)
    assert pol.score(m.regions[a], 300) == 25 + 50
    assert pol.score(m.regions[b], 300) == 25
    assert pol.score(m.regions[c], 300) == 25   # failure counts as 0
    m.tick(300)
    assert m.tier_of(a) == tiers.HOT
    assert m.tier_of(b) == tiers.DORMANT and m.tier_of(c) == tiers.DORMANT
    # the engine now rates partition 2 highly: it is promoted again
    cut[2] = 100
    m.tick(300)
    assert m.tier_of(b) == tiers.HOT
    f = unpack(log.query(kind=kinds.TIER_MOVE)[-1])
    assert f[7] == b and f[9] == tiers.HOT and f[10] == 75


def test_warm_regions_are_never_demoted():
    log, m, t = _mgr(policy=tiers.StaticTierPolicy(10, 20))
    a = m.alloc(1, 64)
    m.share(1, a, 2)
    assert m.tick(1000) == 0 and m.tier_of(a) == tiers.WARM
    assert m.move(a, tiers.DORMANT) is errors.ESTATE


def test_cold_files_of_a_previous_boot_are_reclaimed():
    import os
    d = kt.tmpdir("cold2")
    log, m, t = _mgr(d)
    rid = m.alloc(1, 64)
    assert m.move(rid, tiers.COLD) == 0
    assert len(os.listdir(d + "/cold")) == 1
    m.close()
    log2, m2, t2 = _mgr(d)          # reboot
    assert os.listdir(d + "/cold") == [] and m2.regions == {}
    m2.close()
    kt.rmtree(d)
