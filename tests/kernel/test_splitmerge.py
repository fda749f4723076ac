# Split and merge with ADR-132's rules on the real kernel and memory manager:
# DC-8 (capabilities follow their objects, shared ones read-only, witnessed),
# DC-9 (regions to the higher weighted score), DC-11 (seven merge
# preconditions, each refusal witnessed with its number), DC-6 (none while
# degraded).
import kt
from rvm_mp import kinds, errors, board
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.region import RegionManager
from rvm_mp.witness import unpack
from rvm_mp.captable import (R_READ, R_WRITE, R_GRANT, R_REVOKE, OT_CHANNEL,
                             OT_DEVICE, OT_PARTITION, OT_GRAPH)
from rvm_mp.coherence.engine import CoherenceEngine
from rvm_mp.coherence import splitmerge as sm

HEAP = "512K"  # kernel + memory manager + engine compiled from source


def _setup():
    prof = board.from_dict({
        "name": "t", "devices": {"led": {"type": "led", "pin": 2},
                                 "relay": {"type": "pin", "pin": 5}},
        "limits": {"partitions": 8, "caps_per_partition": 16,
                   "graph_nodes": 8}})
    plat = Platform(kt.tmpdir("sm"), kt.DEVICE_ID, kt.KEY)
    k = Kernel(plat, prof)
    k.mem = RegionManager(k.log, 4096)
    e = CoherenceEngine(k.log, max_nodes=8, budget_us=1 << 20)
    k.ipc_observer = e
    return k, e


def _part(k, name):
    pid = k.part_create(0, name=name)
    assert k.part_start(0, pid) == 0
    return pid


def _couple(e, a, b, n=40, epochs=5):
    for _ in range(epochs):
        for _ in range(n):
            e.on_message(a, b, 8)
        e.epoch()


def _recs(k, kind):
    return [unpack(r) for r in k.log.query(kind=kind)]


def _caps(k, pid):
    out = {}
    for h, ot, oid, rights, depth in k.cap_list(pid):
        out[(ot, oid)] = rights
    return out


def test_dc9_region_score_weights():
    # all accesses from B, equal memory -> B
    side, sa, sb = sm.region_side((0, 0, 10, 1000), 100, 0, 0)
    assert side == sm.SIDE_B and sb > sa
    # 50/50 hotspot: tie stays with the source (no oscillation)
    side, sa, sb = sm.region_side((5, 500, 5, 500), 100, 0, 0)
    assert side == sm.SIDE_A and sa == sb
    # the weights are 0.5 / 0.3 / 0.2 in basis points
    assert sm.region_score(10, 10, 0, 100, 0, 0, 100) == 5000 + 0 + 0
    assert sm.region_score(0, 10, 100, 100, 0, 100, 100) == 3000 + 2000 * 5000 // 10000
    # local access fraction outweighs byte volume: 8 small accesses from A,
    # 2 bulk from B -> A (0.5*0.8 + 0.3*0.2 > 0.5*0.2 + 0.3*0.8)
    side, sa, sb = sm.region_side((8, 80, 2, 320), 64, 0, 0)
    assert side == sm.SIDE_A
    # the size term: a side already holding most memory loses a close call
    side, sa, sb = sm.region_side((5, 500, 4, 400), 1000, 9000, 0)
    assert side == sm.SIDE_B
    # a naive majority-accessor rule would have picked A in that case
    assert sa < sb


def test_split_caps_follow_objects_shared_attenuated_dc8():
    k, e = _setup()
    p = _part(k, "src")
    q = _part(k, "peer")
    h_a = k.chan_create(p)           # stays (side A)
    h_b = k.chan_create(p)           # goes to the new side
    h_s = k.chan_create(p)           # shared by both sides
    cid = {}
    for h in (h_a, h_b, h_s):
        cid[h] = k.cap_lookup(p, h)[1]
    dev = k.cap_mint(p, OT_DEVICE, k.device_id("led"), R_READ | R_WRITE)
    _couple(e, p, q)
    assert e.allowed()
    plan = sm.SplitPlan(side_b=[(OT_CHANNEL, cid[h_b]),
                                (OT_DEVICE, k.device_id("led"))],
                        shared=[(OT_CHANNEL, cid[h_s])])
    before = len(k.cap_list(p))
    new = sm.split(k, e, p, plan)
    assert not errors.is_err(new) and new not in (p, q)
    assert k.part_state(new) == 1
    cp = _caps(k, p)
    cn = _caps(k, new)
    full = R_READ | R_WRITE | R_GRANT | R_REVOKE
    # side A object: only in the source, rights intact
    assert cp[(OT_CHANNEL, cid[h_a])] == full
    assert (OT_CHANNEL, cid[h_a]) not in cn
    # side B objects: only in the new partition (moved, not copied)
    assert (OT_CHANNEL, cid[h_b]) not in cp and cn[(OT_CHANNEL, cid[h_b])] == full
    assert (OT_DEVICE, k.device_id("led")) not in cp
    assert cn[(OT_DEVICE, k.device_id("led"))] == R_READ | R_WRITE
    # shared: read-only in both
    assert cp[(OT_CHANNEL, cid[h_s])] == R_READ
    assert cn[(OT_CHANNEL, cid[h_s])] == R_READ
    # nothing duplicated blindly: total authority did not grow
    assert len(k.cap_list(p)) + len(k.cap_list(new)) == before + 1
    # the moved capability still works for its new holder, not the old one
    hb_new = [c[0] for c in k.cap_list(new) if c[1] == OT_CHANNEL and c[2] == cid[h_b]][0]
    assert k.send(new, hb_new, b"hi") == 0
    assert errors.is_err(k.send(p, h_b, b"hi"))
    # a shared read-only capability cannot write any more
    assert errors.is_err(k.send(p, h_s, b"x"))
    att = _recs(k, kinds.CAP_ATTENUATE_SPLIT)
    assert len(att) == 1
    r = att[0]
    assert r[6] == new and r[7] == 2 and r[8] == 1 and r[10] == p
    sp = _recs(k, kinds.SPLIT)
    assert sp[-1][6] == p and sp[-1][7] == new and sp[-1][9] == 2
    assert e.graph.slot(new) >= 0


def test_split_regions_by_score_dc9():
    k, e = _setup()
    p = _part(k, "src")
    q = _part(k, "peer")
    _couple(e, p, q)
    mem = k.mem
    r_a = mem.alloc(p, 256)
    r_b = mem.alloc(p, 256)
    r_hot = mem.alloc(p, 512)
    assert not errors.is_err(r_hot)
    acc = sm.RegionAccess()
    for _ in range(9):
        acc.on_access(r_a, sm.SIDE_A, 16)
        acc.on_access(r_b, sm.SIDE_B, 16)
    acc.on_access(r_b, sm.SIDE_A, 16)
    # cross-cut hotspot: equal use from both sides stays with the source
    for _ in range(5):
        acc.on_access(r_hot, sm.SIDE_A, 32)
        acc.on_access(r_hot, sm.SIDE_B, 32)
    new = sm.split(k, e, p, sm.SplitPlan(access=acc))
    assert not errors.is_err(new)
    assert mem.regions[r_a].owner == p
    assert mem.regions[r_b].owner == new
    assert mem.regions[r_hot].owner == p
    ra = _recs(k, kinds.REGION_ASSIGN)
    assert len(ra) == 1 and ra[0][6] == new and ra[0][7] == r_b
    assert ra[0][8] > 5000 and ra[0][9] == p
    assert _recs(k, kinds.SPLIT)[-1][8] == 1   # b = regions moved


def test_split_refused_while_degraded_and_for_bad_state():
    k, e = _setup()
    p = _part(k, "src")
    q = _part(k, "peer")
    _couple(e, p, q)
    e.fail("injected")
    assert not e.allowed()
    r = sm.split(k, e, p, sm.SplitPlan())
    assert r is errors.EDEGRADED
    d = _recs(k, kinds.SPLIT)
    assert d and d[-1][4] & kinds.F_DENIED and d[-1][8] == errors.EDEGRADED.code
    assert sm.split(k, None, p, sm.SplitPlan()) is errors.EDEGRADED
    k2, e2 = _setup()
    p2 = _part(k2, "src")
    _couple(e2, p2, _part(k2, "peer"))
    assert k2.part_suspend(0, p2) == 0
    assert sm.split(k2, e2, p2, sm.SplitPlan()) is errors.ESTATE
    assert sm.split(k2, e2, 99, sm.SplitPlan()) is errors.ENOENT
    assert len(k2.part_list()) == 2           # nothing was created


def _merge_pair():
    k, e = _setup()
    a = _part(k, "a")
    b = _part(k, "b")
    c = _part(k, "c")
    _couple(e, a, b, 60)
    for _ in range(3):
        e.on_message(a, c, 0)
    e.epoch()
    return k, e, a, b, c


def _refusal(k):
    r = _recs(k, kinds.MERGE_REFUSED)[-1]
    assert r[4] & kinds.F_DENIED
    return r[9]          # c = failed precondition number


def test_merge_when_all_preconditions_hold():
    k, e, a, b, c = _merge_pair()
    hb = k.chan_create(b)
    rb = k.mem.alloc(b, 128)
    n_before = len(k.cap_list(a)) + len(k.cap_list(b))
    assert sm.merge(k, e, a, b) == a
    assert k.part_state(b) == 5               # absorbed partition is gone
    assert k.mem.regions[rb].owner == a
    assert len(k.cap_list(a)) == n_before
    m = _recs(k, kinds.MERGE)[-1]
    assert m[6] == a and m[7] == b and m[8] == 1 and m[10] > e.merge_bp
    assert e.graph.slot(b) == -1


def test_merge_precondition_1_no_edge():
    k, e, a, b, c = _merge_pair()
    d = _part(k, "d")
    assert errors.is_err(sm.merge(k, e, a, d))
    assert _refusal(k) == 1


def test_merge_precondition_2_weak_coherence():
    k, e, a, b, c = _merge_pair()
    assert e.pair_score(a, c) < e.merge_bp
    assert errors.is_err(sm.merge(k, e, a, c))
    assert _refusal(k) == 2


def test_merge_precondition_3_conflicting_leases():
    k, e, a, b, c = _merge_pair()
    ha = k.cap_mint(a, OT_DEVICE, k.device_id("led"), R_READ | R_WRITE)
    hb = k.cap_mint(b, OT_DEVICE, k.device_id("relay"), R_READ | R_WRITE)
    assert not errors.is_err(k.lease(a, ha, "led", 60000))
    assert sm.merge_check(k, e, a, b) == 0    # one side holding a lease is fine
    assert not errors.is_err(k.lease(b, hb, "relay", 60000))
    assert sm.merge(k, e, a, b) is errors.EBUSY
    assert _refusal(k) == 3


def test_merge_precondition_4_shared_mutable_region():
    k, e, a, b, c = _merge_pair()
    r = k.mem.alloc(a, 64)
    assert k.mem.share(a, r, b) == r
    assert errors.is_err(sm.merge(k, e, a, b))
    assert _refusal(k) == 4


def test_merge_precondition_5_capability_intersection():
    k, e, a, b, c = _merge_pair()
    # b holds write authority over a itself: merged, it would govern itself
    k.cap_mint(b, OT_PARTITION, a, R_READ | R_WRITE)
    assert sm.merge(k, e, a, b) is errors.ERIGHTS
    assert _refusal(k) == 5
    k, e, a, b, c = _merge_pair()
    led = k.device_id("led")
    n = 0
    while len(k.cap_list(a)) + len(k.cap_list(b)) <= k.caps.per and n < 40:
        assert not errors.is_err(k.cap_mint(a if n % 2 else b, OT_DEVICE, led, R_READ))
        n += 1
    assert len(k.cap_list(a)) <= k.caps.per and len(k.cap_list(b)) <= k.caps.per
    assert sm.merge(k, e, a, b) is errors.EQUOTA
    assert _refusal(k) == 5


def test_merge_precondition_6_lifecycle():
    k, e, a, b, c = _merge_pair()
    assert k.part_set_state(0, b, 4) == 0     # Recovering
    assert sm.merge(k, e, a, b) is errors.ESTATE
    assert _refusal(k) == 6
    k, e, a, b, c = _merge_pair()
    assert k.part_suspend(0, b) == 0          # Suspended is allowed
    assert sm.merge_check(k, e, a, b) == 0


def test_merge_precondition_7_authority():
    k, e, a, b, c = _merge_pair()
    # c has no capability on (OT_GRAPH, a): P2 refuses
    assert errors.is_err(sm.merge(k, e, a, b, caller=c, handle=0x101))
    assert _refusal(k) == 7
    # with the capability, P3 (merge is a high-stakes op) still needs proofs
    h = k.cap_mint(c, OT_GRAPH, a, R_READ | R_WRITE)
    assert errors.is_err(sm.merge(k, e, a, b, caller=c, handle=h))
    assert _refusal(k) == 7
    assert k.part_state(b) == 1               # nothing happened


def test_merge_refused_while_degraded():
    k, e, a, b, c = _merge_pair()
    e.fail("injected")
    assert sm.merge(k, e, a, b) is errors.EDEGRADED
    r = _recs(k, kinds.MERGE_REFUSED)[-1]
    assert r[8] == errors.EDEGRADED.code and r[7] == b
    assert k.part_state(b) == 1


def test_channels_survive_with_their_new_holder():
    k, e, a, b, c = _merge_pair()
    hb = k.chan_create(b)
    cid = k.cap_lookup(b, hb)[1]
    assert sm.merge(k, e, a, b) == a
    ha = [x[0] for x in k.cap_list(a) if x[1] == OT_CHANNEL and x[2] == cid][0]
    assert k.send(a, ha, b"still here") == 0
    # split: a moved channel is not closed when the source terminates
    k2, e2 = _setup()
    p = _part(k2, "src")
    _couple(e2, p, _part(k2, "peer"))
    h = k2.chan_create(p)
    cid2 = k2.cap_lookup(p, h)[1]
    new = sm.split(k2, e2, p, sm.SplitPlan(side_b=[(OT_CHANNEL, cid2)]))
    assert k2.part_terminate(0, p) == 0
    hn = k2.cap_list(new)[0][0]
    assert k2.send(new, hn, b"ok") == 0


def test_split_authority_through_the_proof_gate():
    k, e = _setup()
    p = _part(k, "src")
    q = _part(k, "peer")
    _couple(e, p, q)
    n0 = len(k.part_list())
    # q holds no capability on (OT_GRAPH, p): refused by P1, witnessed
    r = sm.split(k, e, p, sm.SplitPlan(), caller=q, handle=0x101)
    assert errors.is_err(r) and len(k.part_list()) == n0
    h = k.cap_mint(q, OT_GRAPH, p, R_READ)     # READ is not enough
    assert errors.is_err(sm.split(k, e, p, sm.SplitPlan(), caller=q, handle=h))
    h = k.cap_mint(q, OT_GRAPH, p, R_READ | R_WRITE)
    # the capability alone is not enough: P3 bound to this split
    assert errors.is_err(sm.split(k, e, p, sm.SplitPlan(), caller=q, handle=h))
    import struct
    from rvm_mp.proofgate import OP_SPLIT, P3_HMAC
    from rvm_mp.hmac256 import hmac_sha256
    msg = k.op_statement(OP_SPLIT, q, p, struct.pack("<H", p), k.log.next_seq - 1)
    proofs = [(P3_HMAC, msg, hmac_sha256(kt.KEY, msg))]
    new = sm.split(k, e, p, sm.SplitPlan(), caller=q, handle=h, proofs=proofs)
    assert not errors.is_err(new) and len(k.part_list()) == n0 + 1


def test_split_regions_from_live_access_traffic_and_the_cut():
    # DC-9 fed by the memory manager's access hook; the new side is the
    # partitions across the engine's last cut from the source
    k, e = _setup()
    traffic = sm.RegionTraffic()
    e.region_traffic = traffic
    k.mem.access_observer = traffic
    p = _part(k, "src")
    x = _part(k, "x")
    q = _part(k, "q")
    y = _part(k, "y")
    for _ in range(5):
        for _ in range(30):
            e.on_message(p, x, 0)
            e.on_message(q, y, 0)
        e.on_message(p, q, 0)
        e.epoch()
    assert e.side_of(p) == e.side_of(x) != e.side_of(q) == e.side_of(y)
    mine = k.mem.alloc(p, 128)
    theirs = k.mem.alloc(p, 128)
    assert k.mem.share(p, theirs, q) == theirs
    assert k.mem.share(p, theirs, y) == theirs
    for _ in range(6):
        assert k.mem.read(q, theirs, 0, 64) is not None
        assert k.mem.read(y, theirs, 0, 32) is not None
        assert k.mem.read(p, mine, 0, 16) is not None
    k.mem.read(p, theirs, 0, 8)          # the source touches it once
    assert traffic.side_stats(theirs, {q, y}) == (1, 8, 12, 576)
    new = sm.split(k, e, p, sm.SplitPlan())
    assert not errors.is_err(new)
    assert k.mem.regions[theirs].owner == new
    assert k.mem.regions[mine].owner == p
    ra = _recs(k, kinds.REGION_ASSIGN)
    assert len(ra) == 1 and ra[0][7] == theirs
    # an explicit peer set overrides the cut: nothing counts for side B
    k2, e2 = _setup()
    t2 = sm.RegionTraffic()
    e2.region_traffic = t2
    k2.mem.access_observer = t2
    p2 = _part(k2, "src")
    q2 = _part(k2, "q")
    _couple(e2, p2, q2)
    r2 = k2.mem.alloc(p2, 64)
    k2.mem.share(p2, r2, q2)
    for _ in range(4):
        k2.mem.read(q2, r2, 0, 64)
    new2 = sm.split(k2, e2, p2, sm.SplitPlan(peers_b=()))
    assert k2.mem.regions[r2].owner == p2


def test_region_traffic_is_bounded():
    t = sm.RegionTraffic(max_regions=2)
    for rid in (1, 1, 2, 3, 1):
        t.on_region_access(rid, 5, 10, False)
    # 3 evicted 2 (least used); 1 kept its counts
    assert sorted(t.stats) == [1, 3] and t.dropped == 1
    assert t.side_stats(1, {5}) == (0, 0, 3, 30)
    assert t.side_stats(2, {5}) == (0, 0, 0, 0)
    t.forget(1)
    assert t.side_stats(1, {5}) == (0, 0, 0, 0)
