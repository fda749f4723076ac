# Coherence engine: score direction, pressure, budget overrun -> degraded,
# degraded enter/exit witnessed, boost 0 while degraded, engine faults contained.
import kt
from rvm_mp import kinds
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp.coherence.engine import CoherenceEngine, REASON_BUDGET, REASON_FAILED
from rvm_mp.coherence import score

HEAP = "512K"  # kernel, runtime and engine compiled from source; boards load .mpy


def _log():
    return WitnessLog(kt.DEVICE_ID, boot=1, ring=64)


def _kinds(log, kind):
    return [unpack(r) for r in log.query(kind=kind)]


class FakeClock:
    def __init__(self, step):
        self.t = 0
        self.step = step

    def __call__(self):
        self.t = (self.t + self.step) & 0x3FFFFFFF
        return self.t


def _traffic(e, pairs, epochs=6):
    for _ in range(epochs):
        for a, b, n in pairs:
            for _ in range(n):
                e.on_message(a, b, 0)
        e.epoch()


def test_score_direction_coupled_pairs_score_high():
    e = CoherenceEngine(_log(), max_nodes=8, budget_us=1 << 20)
    _traffic(e, ((1, 2, 50), (1, 3, 2), (2, 4, 1), (3, 4, 40)))
    g = e.graph
    hi = e.pair_score(1, 2)
    lo = e.pair_score(1, 3)
    assert hi > 8000 and lo < 1000 and hi > lo
    # the cut keeps the talking pairs together and separates the clusters
    assert e.side_of(1) == e.side_of(2)
    assert e.side_of(3) == e.side_of(4)
    assert e.side_of(1) != e.side_of(3)
    # a domain of coupled partitions scores high; a mixed one low
    assert score.group_bp(g, (1, 2)) > 9000
    assert score.group_bp(g, (1, 4)) < 1000
    # boost follows coupling: after 1 ran, 2 is boosted more than 3
    assert e.boost(2, 1) > e.boost(3, 1)
    assert e.boost(2, 1) <= e.boost_max
    runs = _kinds(e.log, kinds.MINCUT_RUN)
    assert runs and runs[-1][7] == 4            # a = nodes


def test_pressure_rises_when_heavy_traffic_crosses_the_cut():
    e = CoherenceEngine(_log(), max_nodes=8, budget_us=1 << 20)
    _traffic(e, ((1, 2, 60), (3, 4, 60), (2, 3, 3)))
    p_before = e.pressure(2)
    assert p_before < 1000
    # traffic shifts: 2 now talks heavily with 3, but 1 and 4 keep their ties
    _traffic(e, ((1, 2, 60), (3, 4, 60), (2, 3, 3), (1, 4, 70)), epochs=1)
    # pressure on the old sides before the engine re-cuts
    s = e.graph.slot(1)
    grp = bytearray(e.graph.n)
    for p in (3, 4):
        grp[e.graph.slot(p)] = 1
    out = [0] * e.graph.n
    score.pressure_into(e.graph, grp, out)
    assert out[s] > p_before + 2000
    assert out[e.graph.slot(4)] > 2000
    # heavy traffic inside one side puts no pressure on it
    assert out[e.graph.slot(3)] < 1000


def test_pressure_witnessed_when_crossing_threshold():
    e = CoherenceEngine(_log(), max_nodes=8, budget_us=1 << 20, pressure_bp=3000)
    # triangle-ish: 5 talks equally to two clusters, so any cut stresses it
    _traffic(e, ((1, 2, 40), (3, 4, 40), (5, 1, 30), (5, 3, 30)))
    recs = _kinds(e.log, kinds.PRESSURE)
    assert recs
    r = recs[0]
    assert r[7] >= 3000 and r[10] == 1           # a = pressure bp, d = rising
    assert r[6] == 5 or e.pressure(r[6]) >= 3000


def test_budget_overrun_keeps_last_cut_and_degrades():
    clk = FakeClock(100)       # every step "takes" 100 us
    e = CoherenceEngine(_log(), max_nodes=8, budget_us=1 << 20, max_slices=4,
                        clock_us=clk)
    _traffic(e, ((1, 2, 50), (3, 4, 50), (2, 3, 1)), epochs=2)
    assert e.cut_value >= 0 and not e.degraded
    good = e.cut_value
    side1 = e.side_of(1)
    e.budget_us = 50           # now one step per epoch: 4 nodes need 9 steps
    _traffic(e, ((1, 2, 50), (3, 4, 50), (2, 3, 9), (5, 6, 20)), epochs=4)
    assert e.degraded and e.reason == REASON_BUDGET
    assert e.cut_value == good and e.side_of(1) == side1   # stale cut kept
    ex = _kinds(e.log, kinds.MINCUT_BUDGET_EXCEEDED)
    assert len(ex) == 1
    assert ex[0][7] == 50 and ex[0][8] >= 400 and ex[0][10] == 4
    ent = _kinds(e.log, kinds.DEGRADED_ENTER)
    assert len(ent) == 1 and ent[0][7] == REASON_BUDGET
    assert ent[0][4] & kinds.F_DEGRADED
    assert e.log.degraded
    # degraded: no boost, static tiers, no split/merge
    assert e.boost(2, 1) == 0 and e.boost(2) == 0
    assert e.cut_value_of(1) == -1
    assert not e.allowed()
    # budget restored: the next run finishes and the engine leaves degraded
    e.budget_us = 1 << 20
    n = 0
    while e.degraded and n < 200:
        e.epoch()
        n += 1
    assert not e.degraded and not e.log.degraded
    ext = _kinds(e.log, kinds.DEGRADED_EXIT)
    assert len(ext) == 1 and ext[0][7] == REASON_BUDGET
    assert e.allowed() and e.boost(2, 1) > 0


def test_overrun_backs_off_instead_of_flooding():
    clk = FakeClock(100)
    e = CoherenceEngine(_log(), max_nodes=8, budget_us=10, max_slices=2,
                        clock_us=clk)
    _traffic(e, ((1, 2, 5), (3, 4, 5), (5, 6, 5), (2, 3, 1)), epochs=60)
    ex = len(_kinds(e.log, kinds.MINCUT_BUDGET_EXCEEDED))
    assert 2 <= ex <= 8
    assert len(_kinds(e.log, kinds.DEGRADED_ENTER)) == 1
    assert e.cut_value == -1 and not e.allowed()


class Boom:
    def on_message(self, *a):
        raise MemoryError("injected")

    def epoch(self):
        raise ValueError("injected")


def test_engine_fault_is_contained_and_witnessed():
    e = CoherenceEngine(_log(), max_nodes=4, budget_us=1 << 20)
    _traffic(e, ((1, 2, 5),), epochs=2)
    real = e.graph
    e.graph = Boom()
    e.on_message(1, 2, 0)             # does not raise
    assert e.epoch() is False         # does not raise
    assert e.degraded and e.reason == REASON_FAILED and e.failures == 2
    assert len(_kinds(e.log, kinds.DEGRADED_ENTER)) == 1
    assert e.boost(2, 1) == 0
    e.graph = real
    e.epoch()
    assert not e.degraded
    assert _kinds(e.log, kinds.DEGRADED_EXIT)[0][7] == REASON_FAILED


def test_forget_drops_the_node():
    e = CoherenceEngine(_log(), max_nodes=4, budget_us=1 << 20)
    _traffic(e, ((1, 2, 5), (2, 3, 5)), epochs=2)
    e.forget(2)
    assert e.graph.slot(2) == -1 and e.pressure(2) == 0 and e.side_of(2) == -1
    e.epoch()
    assert e.cut.nodes == 2


def test_from_profile():
    prof = {"limits": {"graph_nodes": 16},
            "coherence": {"enabled": True, "budget_us": 77, "max_slices": 3}}
    e = CoherenceEngine.from_profile(_log(), prof)
    assert e.graph.n == 16 and e.budget_us == 77 and e.max_slices == 3
    e2 = CoherenceEngine.from_profile(_log(), {"limits": {}, "coherence": False})
    assert e2.graph.n == 8 and e2.budget_us > 0


def test_placement_groups_clusters_within_capacity():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import place, crossing
    g = CommGraph(12)
    # three clusters of four with shuffled ids, light links between them
    clusters = ((7, 2, 11, 4), (1, 9, 5, 12), (3, 10, 6, 8))
    for c in clusters:
        for i in range(4):
            for j in range(i + 1, 4):
                g.set_weight(c[i], c[j], 100 + 7 * i + j)
    g.set_weight(2, 9, 5)
    g.set_weight(12, 3, 4)
    g.set_weight(8, 7, 3)
    where = place(g, 3, 4)
    for c in clusters:
        s = where[g.slot(c[0])]
        for p in c:
            assert where[g.slot(p)] == s
    sizes = [0, 0, 0]
    for p in g.nodes():
        sizes[where[g.slot(p)]] += 1
    assert sizes == [4, 4, 4]
    assert crossing(g, where) == 12
    # a tighter capacity still respects the bound
    where = place(g, 6, 2)
    sizes = [0] * 6
    for p in g.nodes():
        sizes[where[g.slot(p)]] += 1
    assert max(sizes) == 2


def _kernel_with_engine(budget_us=1 << 20):
    from rvm_mp import board
    from rvm_mp.hal import Platform
    from rvm_mp.kernel import Kernel
    from rvm_mp.region import RegionManager
    from rvm_mp.coherence import signal as csig
    prof = board.from_dict({"name": "t", "coherence": {"budget_us": budget_us},
                            "limits": {"partitions": 8, "graph_nodes": 8}})
    k = Kernel(Platform(kt.tmpdir("cs"), kt.DEVICE_ID, kt.KEY), prof)
    k.mem = RegionManager(k.log, 4096)
    sig = csig.make(k, prof)
    return k, sig


def _talk(k, a, b, n):
    from rvm_mp.captable import R_READ, R_WRITE
    h = k.chan_create(b)
    hs = k.cap_grant(b, h, a, R_WRITE)
    for _ in range(n):
        assert k.send(a, hs, b"ping") == 0
        assert k.recv(b, h)[0] == a


def test_signal_drives_the_real_scheduler_and_tiers():
    from rvm_mp import scheduler as S
    from rvm_mp import tiers
    from rvm_mp.compat import ticks_ms, ticks_us
    k, sig = _kernel_with_engine()
    e = k.coherence
    assert k.ipc_observer is e
    assert k.mem.access_observer is e.region_traffic is not None
    pids = []
    for i in range(4):
        p = k.part_create(0, name="p%d" % i)
        k.part_start(0, p)
        pids.append(p)
    a, b, c, d = pids
    _talk(k, a, b, 6)                 # IPC through the kernel feeds the graph
    _talk(k, c, d, 1)
    _talk(k, b, c, 1)
    sch = S.Scheduler(k.log, ticks_ms, ticks_us, capacity=8, signal=sig)
    for p in pids:
        sch.add(S.Task(p))
    sch.refresh_signal(ticks_ms())
    assert e.graph.weight(a, b) > e.graph.weight(c, d) > 0
    ta, tc = sch.task(a), sch.task(c)
    assert not sch.degraded
    assert ta.boost > tc.boost > 0    # the talkative pair ranks first
    # tier policy: scored while healthy, static thresholds while degraded
    pol = k.mem.policy
    assert pol.scored is not None and pol._p() is pol.scored
    assert isinstance(pol.static, tiers.StaticTierPolicy)
    # over budget: the scheduler (not the engine) witnesses degraded mode
    e.budget_us = 0
    e.max_slices = 1
    _talk(k, a, d, 3)
    n0 = len(_kinds(k.log, kinds.DEGRADED_ENTER))
    sch.refresh_signal(ticks_ms())
    assert e.degraded and sch.degraded
    assert ta.boost == 0 and tc.boost == 0
    assert pol._p() is pol.static
    ent = _kinds(k.log, kinds.DEGRADED_ENTER)
    assert len(ent) == n0 + 1
    assert len(_kinds(k.log, kinds.MINCUT_BUDGET_EXCEEDED)) == 1
    e.budget_us = 1 << 20
    e.max_slices = 128
    for _ in range(80):
        sch.refresh_signal(ticks_ms())
        if not sch.degraded:
            break
    assert not sch.degraded and not e.degraded
    assert len(_kinds(k.log, kinds.DEGRADED_EXIT)) == 1
    assert ta.boost > 0


def test_kernel_runs_without_the_engine():
    # DC-1: the runtime's signal factory falls back to the NullSignal
    from rvm_mp import scheduler as S
    from rvm_mp.runtime import make_signal
    s = make_signal({"scheduler": {"signal": "none"}})
    assert isinstance(s, S.NullSignal) and s.boost(1) == 0


def test_placer_adopts_only_clear_gains_and_witnesses():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import Placer
    log = _log()
    g = CommGraph(8)
    for p in range(1, 9):
        g.add(p)
    # static affinity: 1..4 on slot 0, 5..8 on slot 1; traffic pairs 1-5, 2-6..
    pl = Placer(g, 2, 4, every=2, log=log, initial=lambda p: (p - 1) // 4)
    assert [pl.slot_of(p) for p in range(1, 9)] == [0, 0, 0, 0, 1, 1, 1, 1]
    for a in range(1, 5):
        g.set_weight(a, a + 4, 100)
    assert pl.epoch() == 0                   # not due yet
    moved = pl.epoch()
    assert moved == 4 and pl.replans == 1    # pairs now share a slot
    for a in range(1, 5):
        assert pl.slot_of(a) == pl.slot_of(a + 4)
    sizes = [0, 0]
    for p in range(1, 9):
        sizes[pl.slot_of(p)] += 1
    assert sizes == [4, 4]
    rec = _kinds(log, kinds.PLACEMENT)
    assert len(rec) == 1 and rec[0][7] == 4 and rec[0][8] == 400 and rec[0][9] == 0
    # a small possible gain (< gain_pct) does not move anyone
    g.set_weight(1, 2, 3)
    g.set_weight(1, 3, 3)
    pl.epoch()
    assert pl.epoch() == 0 and pl.replans == 1
    # not allowed (degraded engine): no plan at all
    pl2 = Placer(g, 2, 4, every=1)
    assert pl2.epoch(False) == 0 and pl2.replans == 0


def test_placer_backs_off_when_plans_do_not_hold():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import Placer
    g = CommGraph(8)
    for p in range(1, 9):
        g.add(p)
    pl = Placer(g, 2, 4, every=1)
    pairs = (((1, 5), (2, 6), (3, 7), (4, 8)), ((1, 2), (3, 4), (5, 6), (7, 8)),
             ((1, 6), (2, 5), (3, 8), (4, 7)))
    checks = 0
    for r in range(12):
        for a in range(1, 9):
            for b in range(a + 1, 9):
                g.set_weight(a, b, 0)
        # adversarial: every epoch the pairs change and cross the last plan
        for a, b in pairs[r % 3]:
            if pl.slot_of(a) == pl.slot_of(b):
                b2 = [x for x in range(1, 9) if pl.slot_of(x) != pl.slot_of(a)][r % 4]
                g.set_weight(a, b2, 100)
            else:
                g.set_weight(a, b, 100)
        pl.epoch()
    assert pl._scale > 1                    # the interval grew
    assert pl.replans < 8


def test_wake_signal_from_pair_weight_and_group_membership():
    from rvm_mp.coherence.placement import Placer
    log = _log()
    e = CoherenceEngine(log, max_nodes=8, budget_us=1 << 20)
    assert e.wake_floor == 7000          # the default floor
    for _ in range(4):
        for i in range(30):
            e.on_message(1, 2, 8)
            e.on_message(3, 4, 8)
        for i in range(3):
            e.on_message(1, 3, 8)
        e.epoch()
    assert e.cut_value >= 0 and e.side_of(1) == e.side_of(2)
    heavy = e.wake_bp(1, 2)
    light = e.wake_bp(1, 3)
    # pairs that talk more get more; a pair never seen gets the floor
    assert 10000 >= heavy > light > e.wake_bp(2, 4) == 7000
    assert e.wake_bp(1, 9) == 7000
    # the mincut separates {1,2} from {3,4}: the light pair crosses it, so
    # its share counts half
    assert e.side_of(1) != e.side_of(3)
    pair = score.pair_bp(e.graph, 1, 3)
    assert light == 7000 + (3000 * (pair >> 1)) // 10000
    # with the runtime's placement, its slots are the groups
    e.placer = Placer(e.graph, 2)
    e.placer.where.update({1: 0, 2: 0, 3: 0, 4: 1})
    assert e.wake_bp(1, 3) > light and e.wake_bp(1, 2) == heavy
    e.placer.where[2] = 1
    assert 7000 < e.wake_bp(1, 2) < heavy
    # messages are counted against the placement in force
    m, x = e.msgs, e.cross
    e.on_message(1, 2, 8)
    e.on_message(1, 3, 8)
    assert e.msgs == m + 2 and e.cross == x + 1
    e.fail("test")
    assert e.wake_bp(1, 2) == 0          # degraded: no boost


def test_placer_skips_graphs_above_its_planning_bound():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import Placer
    g = CommGraph(8)
    for a, b in ((1, 2), (3, 4), (5, 6)):
        for _ in range(20):
            g.on_message(a, b, 8)
    g.epoch()
    p = Placer(g, 2, every=1, gain_pct=0, max_nodes=4)
    assert p.epoch() == 0 and p.skipped == 1 and p.replans == 0
    p.max_nodes = 8
    p.epoch()
    assert p.skipped == 1 and p.replans == 1


def test_placer_plans_at_once_when_partitions_come_and_keeps_blocks():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import Placer, crossing
    g = CommGraph(8)
    pl = Placer(g, 2, every=4)           # created before any partition
    for a, b in ((1, 2), (3, 4), (5, 6), (7, 8), (1, 3), (5, 7)):
        for _ in range(20):
            g.on_message(a, b, 8)
    for p in range(1, 9):
        pl.slot_of(p)                    # round robin by arrival
    g.epoch()
    # new nodes: the plan comes at the next epoch, not after `every`
    assert pl.epoch() > 0 and pl.replans == 1
    # contiguous blocks {1..4} {5..8} are optimal here: the plan is as good
    cur = pl._current()
    assert crossing(g, cur) == crossing(g, pl._blocks(4)) == 0
    assert pl.epoch() == 0               # nothing new, not due


def test_placer_does_not_back_off_for_a_plan_made_on_arrival():
    from rvm_mp.coherence.graph import CommGraph
    from rvm_mp.coherence.placement import Placer
    g = CommGraph(8)
    pl = Placer(g, 2, every=2)
    for p in (1, 2, 3, 4):
        g.add(p)
        pl.slot_of(p)                    # 1, 3 on slot 0; 2, 4 on slot 1
    for a, b in ((1, 2), (3, 4)):        # what the arrival plan sees
        for _ in range(20):
            g.on_message(a, b, 8)
    g.epoch()
    assert pl.epoch() > 0                # planned on arrival
    for _ in range(6):                   # the traffic it saw was not typical
        for a, b in ((1, 3), (2, 4)):
            for _ in range(20):
                g.on_message(a, b, 8)
        g.epoch()
    pl.epoch()
    pl.epoch()
    assert pl.replans == 2 and pl._scale == 1   # corrected, no back-off
