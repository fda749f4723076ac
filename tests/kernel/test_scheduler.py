# Scheduler mechanism: order under both signals, Reflex/Flow/Recovery,
# sleeper heap, quotas, epoch summaries, degraded mode, no-alloc switch path.
import kt
from rvm_mp import kinds
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp import scheduler as S

HEAP = "256K"  # code compiled from source lives in the heap too


class Clock:
    def __init__(self, t=1000):
        self.t = t
        self.us = t * 1000

    def ms(self):
        return self.t

    def us_(self):
        return self.us

    def adv(self, ms):
        from rvm_mp.compat import ticks_add
        self.t = ticks_add(self.t, ms)
        self.us = ticks_add(self.us, ms * 1000)


def _mk(signal=None, n=3, clock=None, **kw):
    c = clock or Clock()
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=64, clock=c.ms)
    s = S.Scheduler(log, c.ms, c.us_, capacity=n, signal=signal, **kw)
    ts = []
    for i in range(n):
        t = S.Task(i + 1, "t%d" % (i + 1))
        s.add(t)
        s.make_ready(t, c.ms())
        ts.append(t)
    s.start(c.ms())
    return s, ts, c, log


def _kinds(log, kind):
    return [unpack(r) for r in log.query(kind=kind)]


def test_earlier_deadline_runs_first():
    s, ts, c, log = _mk(n=2)
    a, b = ts
    a.deadline_ms = 200
    b.deadline_ms = 50
    s.make_ready(a, c.ms())
    s.make_ready(b, c.ms())
    assert s.pick(c.ms()) is b
    # equal deadlines: least recently run first
    a.deadline_ms = b.deadline_ms = 100
    s.make_ready(a, c.ms())
    s.make_ready(b, c.ms())
    s.ran(b, c.ms(), 1, 1)
    assert s.pick(c.ms()) is a
    s.ran(a, c.ms(), 1, 1)
    assert s.pick(c.ms()) is b


def test_pressure_boost_reorders_same_deadline():
    # same deadline, no boost: pid 1 first (listed first, neither ran)
    s, ts, c, log = _mk(signal=S.StaticSignal({}), n=2)
    assert s.pick(c.ms()) is ts[0]
    # cut pressure on pid 2 moves it ahead
    sig = S.StaticSignal({2: 5000})
    s2, ts2, c2, log2 = _mk(signal=sig, n=2)
    assert ts2[1].boost == 5000 * s2.boost_weight // 10000 > 0
    assert s2.pick(c2.ms()) is ts2[1]
    # ... but a much earlier deadline still wins over the boost
    ts2[0].deadline_ms = 10
    s2.make_ready(ts2[0], c2.ms())
    assert s2.pick(c2.ms()) is ts2[0]


def test_reflex_before_flow_and_no_ipc():
    s, ts, c, log = _mk(n=3)
    hard = ts[2]
    hard.hard = True
    hard.deadline_ms = 500      # even with a later deadline
    s.make_ready(hard, c.ms())
    assert s.pick(c.ms()) is hard
    assert s.mode == S.MODE_REFLEX
    assert not s.ipc_allowed(hard)
    assert s.e_reflex == 1
    # hard task sleeps -> back to Flow, flow tasks run and may use IPC
    s.sleep(hard, c.ms() + 100)
    t = s.pick(c.ms())
    assert t in (ts[0], ts[1])
    assert s.mode == S.MODE_FLOW and s.ipc_allowed(t)


def test_reflex_is_bounded():
    s, ts, c, log = _mk(n=2, reflex_budget_us=5000)
    hard = ts[1]
    hard.hard = True
    s.make_ready(hard, c.ms())
    assert s.pick(c.ms()) is hard
    c.adv(10)  # the hard task hogs past the budget
    t = s.pick(c.ms())
    assert t is ts[0] and s.reflex_overruns == 1
    assert s.pick(c.ms()) is hard  # Reflex again afterwards


def test_recovery_mode_runs_only_recovery_work():
    s, ts, c, log = _mk(n=3)
    ts[1].fl |= S.F_RECOVERY
    s.set_mode(S.MODE_RECOVERY, 7)
    for _ in range(3):
        assert s.pick(c.ms()) is ts[1]
        s.ran(ts[1], c.ms(), 1, 1)
    ts[1].state = S.T_SLEEP
    assert s.pick(c.ms()) is None
    s.set_mode(S.MODE_FLOW)
    assert s.pick(c.ms()) is ts[0]
    mc = _kinds(log, kinds.MODE_CHANGE)
    assert [(m[7], m[8], m[9]) for m in mc] == [(0, 2, 7), (2, 0, 0)]


def test_sleepers_wake_in_time_order_across_tick_wrap():
    from rvm_mp.compat import ticks_add
    c = Clock(0)
    c.t = ticks_add(0, -30)  # 30 ms before ticks_ms wraps
    s, ts, c, log = _mk(n=5, clock=c)
    order = [40, 10, 70, 25, 5]
    for t, d in zip(ts, order):
        s.sleep(t, ticks_add(c.ms(), d))
    assert s.pick(c.ms()) is None
    assert s.next_timeout(c.ms()) == 5
    woke = []
    for _ in range(80):
        c.adv(1)
        s.wake_due(c.ms())
        for t in ts:
            if t.state == S.T_READY and t not in woke:
                woke.append(t)
    assert [t.pid for t in woke] == [5, 2, 4, 1, 3]
    assert s.nheap == 0


def test_heap_remove_middle_keeps_order():
    s, ts, c, log = _mk(n=5)
    for i, t in enumerate(ts):
        s.sleep(t, c.ms() + 10 * (5 - i))
    s.make_ready(ts[2], c.ms())  # a message woke it early
    assert s.nheap == 4 and s.rq[ts[2].hidx] is ts[2]  # in the ready heap
    got = []
    while s.nheap:
        t = s.heap[0]
        got.append(t.pid)
        s.unheap(t)
    assert got == [5, 4, 2, 1]


def test_cpu_quota_throttles_until_next_epoch():
    s, ts, c, log = _mk(n=2, epoch_ms=100)
    a = ts[0]
    a.cpu_quota_us = 3000
    s.ran(a, c.ms(), 10, 2000)
    assert a.state == S.T_READY
    s.ran(a, c.ms(), 10, 2000)
    assert a.state == S.T_THROTTLED
    s.ran(a, c.ms(), 10, 2000)  # witnessed once per epoch
    assert s.pick(c.ms()) is ts[1]
    th = _kinds(log, kinds.QUOTA_THROTTLE)
    assert len(th) == 1
    assert th[0][6] == 1 and th[0][7:11] == (S.Q_CPU, 4000, 3000, 0)
    # the throttled task makes the idle wait end at the epoch boundary
    ts[1].state = S.T_SLEEP
    assert s.next_timeout(c.ms()) == 100
    c.adv(100)
    assert s.epoch_due(c.ms())
    s.end_epoch(c.ms())
    assert a.state == S.T_READY and a.cpu_us == 0


def test_epoch_summary_once_per_epoch():
    s, ts, c, log = _mk(n=3, epoch_ms=50)
    for i in range(30):
        t = s.pick(c.ms())
        s.ran(t, c.ms(), 7, 1)
    assert log.query(kind=kinds.EPOCH_SUMMARY) == []
    c.adv(50)
    s.end_epoch(c.ms())
    c.adv(50)
    s.end_epoch(c.ms())  # nothing ran: no record
    recs = _kinds(log, kinds.EPOCH_SUMMARY)
    assert len(recs) == 1
    f = recs[0]
    assert f[7] == 0 and f[8] == 30
    assert f[9] & 0xFFFFFF == 30 * 7
    assert f[10] & 0x7 == 0x7  # pids 1..3 active
    assert f[10] >> 31 == 1    # degraded (no coherence engine)
    assert s.epoch == 2


def test_deadline_miss_counted_and_witnessed_once():
    s, ts, c, log = _mk(n=1, epoch_ms=1000)
    t = ts[0]
    t.deadline_ms = 5
    s.make_ready(t, c.ms())
    c.adv(20)
    assert s.pick(c.ms()) is t
    s.miss(t, c.ms())   # the runtime calls this when it picks a late task
    s.miss(t, c.ms())
    m = _kinds(log, kinds.DEADLINE_MISS)
    assert len(m) == 1 and m[0][6] == 1 and m[0][8] == 15
    assert s.e_misses == 2


def test_degraded_witnessed_once_and_exit():
    class Flaky:
        available = True
        ok = False

        def refresh(self, now):
            return self.ok

        def boost(self, pid):
            return 10000
    sig = Flaky()
    s, ts, c, log = _mk(signal=sig, n=2, epoch_ms=10)
    for _ in range(4):
        c.adv(10)
        s.end_epoch(c.ms())
    assert len(log.query(kind=kinds.DEGRADED_ENTER)) == 1
    assert s.degraded and log.degraded and ts[0].boost == 0
    sig.ok = True
    c.adv(10)
    s.end_epoch(c.ms())
    assert not s.degraded and ts[0].boost == s.boost_weight
    ex = _kinds(log, kinds.DEGRADED_EXIT)
    assert len(ex) == 1 and ex[0][8] == 50  # degraded since start
    # a signal that raises degrades, never propagates
    class Broken(Flaky):
        def refresh(self, now):
            raise ValueError("engine died")
    s.signal = Broken()
    s.end_epoch(c.ms())
    assert s.degraded


def test_null_signal_degraded_once():
    s, ts, c, log = _mk(n=2, epoch_ms=10)
    for _ in range(5):
        c.adv(10)
        s.end_epoch(c.ms())
    e = _kinds(log, kinds.DEGRADED_ENTER)
    assert len(e) == 1 and e[0][7] == S.DEG_NO_ENGINE


def test_switch_path_does_not_allocate():
    from rvm_mp.compat import micropython
    s, ts, c, log = _mk(n=4)
    now = c.ms()
    for t in ts:  # warm up
        s.ran(t, now, 1, 1)
    micropython.heap_lock()
    try:
        for i in range(200):
            t = s.pick(now)
            s.ran(t, now, 3, 5)
            if i % 3 == 0:
                s.sleep(t, now + 1)
                s.wake_due(now + 1)
            else:
                s.make_ready(t, now)
    finally:
        micropython.heap_unlock()
    assert s.e_switches == 204


def _picks():
    """(name, pick) of every implementation this runtime has."""
    from rvm_mp import runtime
    runtime.use_native(True)
    assert runtime.NATIVE == kt.IS_MP
    picks = [("heap", S.Scheduler.pick_py)]
    try:
        from rvm_mp import switch_native
        picks.append(("native", switch_native.pick))
    except (ImportError, SyntaxError):
        pass
    if S.natmod_pick() is not None:
        picks.append(("natmod", S.natmod_pick()))
    return picks


def _sifts():
    """(name, sift) of every implementation of the ready heap's sift."""
    sifts = [("portable", S._rq_sift_py)]
    try:
        from rvm_mp import switch_native
        sifts.append(("native", switch_native.sift))
    except (ImportError, SyntaxError):
        pass
    if (S.natmod_pick() and S._PICK_C[1]) is not None:
        sifts.append(("natmod", (S.natmod_pick() and S._PICK_C[1])))
    return sifts


def pick_scenario(picks, seed, t0=1000, n=7, steps=300, horizon_ms=60,
                  sift=None):
    """Drive a scheduler through its own API (make_ready at moving times
    with deadlines inside and beyond the horizon, sleep, wait, throttle,
    wake boosts, per-epoch boosts, ran, suspends behind its back, mode
    changes) and check at every step that every pick gives the answer and
    the mode state of the reference scan (pick_scan). A small horizon puts
    tasks past both clamp edges. `sift`: the ready heap's sift to run."""
    from rvm_mp.compat import ticks_add
    old = S.rq_sift
    S.rq_sift = sift or old
    try:
        return _scenario(picks, seed, t0, n, steps, horizon_ms, ticks_add)
    finally:
        S.rq_sift = old


def _scenario(picks, seed, t0, n, steps, horizon_ms, ticks_add):
    sig = StaticPressure()
    s, ts, c, log = _mk(signal=sig, n=n, clock=Clock(t0),
                        reflex_budget_us=3000, horizon_ms=horizon_ms,
                        boost_weight=40 * S.PRIO_Q, wake_weight=20 * S.PRIO_Q)
    sig.wake = lambda src, dst: (src * 977 + dst * 131) % 10001
    st = [seed]

    def rnd(k):
        st[0] = (st[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (st[0] >> 8) % k
    counts = [0, 0]
    for step in range(steps):
        t = ts[rnd(n)]
        r = rnd(26)
        now = c.ms()
        if r < 6:
            t.deadline_ms = (5, 20, 30, 50, 70)[rnd(5)] if rnd(25) else 150
            if rnd(6) == 0:
                t.fl ^= S.F_HARD
            if rnd(5) == 0:
                t.fl ^= S.F_RECOVERY
            s.make_ready(t, now)
        elif r < 8:
            s.sleep(t, ticks_add(now, rnd(30)))
        elif r < 9:
            s.wait(t, 3, rnd(40) - 10, now)
        elif r < 10:
            t.state = S.T_SUSPENDED      # behind the scheduler's back
        elif r < 11:
            s.throttle(t, S.Q_MSGS, 1, 0)
        elif r < 13:
            s.wake_boost(t, ts[rnd(n)].pid)
        elif r < 15 or r >= 20:   # the picked task runs and yields
            x = S.Scheduler.pick_scan(s, now)
            if x is not None:
                s.ran(x, now, 1, 1)
                if rnd(3):
                    s.make_ready(x, now)
        elif r < 16:
            for u in ts:
                sig.pressure[u.pid] = rnd(3) * rnd(10001)
            s.refresh_signal(now)
        elif r < 17:
            s.mode = (S.MODE_FLOW, S.MODE_REFLEX, S.MODE_RECOVERY)[rnd(3)
                                                                   % 2 + rnd(2)]
            s.reflex_start = ticks_add(c.us_(), -rnd(6000))
        elif r < 18:
            s.wake_due(now)
        elif r < 19:
            if s.epoch_due(now):
                s.end_epoch(now)
        else:
            s.rq_rebuild(now)
        c.adv(rnd(8))
        now = c.ms()
        saved = (s.mode, s.e_reflex, s.reflex_start, s.reflex_overruns)
        want = S.Scheduler.pick_scan(s, now)
        after = (s.mode, s.e_reflex, s.reflex_start, s.reflex_overruns)
        counts[want is None] += 1
        for name, f in picks:
            s.mode, s.e_reflex, s.reflex_start, s.reflex_overruns = saved
            got = f(s, now)
            assert got is want, (name, seed, step, got and got.pid,
                                 want and want.pid)
            assert (s.mode, s.e_reflex, s.reflex_start,
                    s.reflex_overruns) == after, (name, seed, step)
        # the heap holds each ready task once, at its index, in heap order
        for i in range(s.nrq):
            assert s.rq[i].hidx == i
            assert i == 0 or not S._rq_before(s.rq[i], s.rq[(i - 1) >> 1])
        for u in ts:
            if u.state == S.T_READY:
                assert 0 <= u.hidx < s.nrq and s.rq[u.hidx] is u
    return counts


class StaticPressure(S.StaticSignal):
    pass


def test_every_pick_matches_the_scan():
    from rvm_mp.compat import ticks_add
    picks = _picks()
    for name, sift in _sifts():
        for seed in (1, 2, 3):
            counts = pick_scenario(picks, seed, sift=sift)
            assert counts[0] > 100 and counts[1] > 5   # both answers
        # across the wrap of ticks_ms
        pick_scenario(picks, 9, t0=ticks_add(0, -2000), steps=200, sift=sift)


def test_heap_pick_follows_deadline_boost_and_lru():
    # the order the heap keeps is the priority order (DC-4) on its own
    s, ts, c, log = _mk(n=4, horizon_ms=1000)
    a, b, d, e = ts
    for t, dm in zip(ts, (40, 10, 30, 10)):
        t.deadline_ms = dm
        s.make_ready(t, c.ms())
    assert s.pick(c.ms()) is b             # earliest deadline; b before e (added first)
    s.ran(b, c.ms(), 1, 1)
    assert s.pick(c.ms()) is e             # same deadline, b ran more recently
    s.rq_out(e)
    e.state = S.T_SLEEP
    assert s.pick(c.ms()) is b
    b.state = S.T_SUSPENDED                # left behind the heap's back
    assert s.pick(c.ms()) is d and s.nrq == 2 and b.hidx == -1


class _WakeSig:
    """Signal contract with the optional wake(src, dst)."""
    available = True

    def __init__(self, bp):
        self.bp = bp
        self.calls = 0

    def refresh(self, now):
        return True

    def boost(self, pid):
        return 0

    def wake(self, src, dst):
        self.calls += 1
        return self.bp


def test_wake_boost_runs_the_receiver_next_then_decays():
    sig = _WakeSig(10000)
    s, ts, c, log = _mk(signal=sig, n=3, wake_weight=10 * S.PRIO_Q)
    a, b, r = ts
    # r became ready last: it has the latest deadline and would run last
    s.make_ready(a, c.ms())
    c.adv(4)
    s.make_ready(b, c.ms())
    c.adv(4)
    s.make_ready(r, c.ms())
    assert s.pick(c.ms()) is a
    # a message from a is queued for r: r gets the transient boost
    assert s.wake_boost(r, a.pid) == 10 * S.PRIO_Q
    assert sig.calls == 1 and r.wboost == 10 * S.PRIO_Q
    assert s.pick(c.ms()) is r
    s.ran(r, c.ms(), 1, 1)             # spent at its first run
    assert r.wboost == 0
    s.make_ready(r, c.ms())
    assert s.pick(c.ms()) is a
    # the boost is bounded: a deadline more than wake_weight earlier wins
    s.wake_boost(r, a.pid)
    s.make_ready(a, c.ms() - 30)
    assert s.pick(c.ms()) is a
    # proportional to the signal's bp for the pair
    sig.bp = 2500
    r.wboost = 0
    assert s.wake_boost(r, b.pid) == 10 * S.PRIO_Q // 4


def test_no_wake_boost_without_engine_or_while_degraded():
    s, ts, c, log = _mk(n=2)               # NullSignal
    assert s.wake_boost(ts[1], 1) == 0 and ts[1].wboost == 0
    sig = _WakeSig(10000)
    s2, ts2, c2, log2 = _mk(signal=sig, n=2)
    assert s2.wake_boost(ts2[1], 1) > 0
    sig.refresh = lambda now: False        # engine unhealthy: degraded
    s2.end_epoch(c2.ms() + 1000)
    assert s2.degraded
    s2.ran(ts2[1], c2.ms(), 1, 1)          # the earlier boost is spent
    assert s2.wake_boost(ts2[1], 1) == 0 and sig.calls == 1
    assert ts2[1].wboost == 0
    s3, ts3, c3, log3 = _mk(signal=_WakeSig(10000), n=2, wake_weight=0)
    assert s3.wake_boost(ts3[1], 1) == 0


def test_wake_boost_does_not_allocate_with_the_engine_signal():
    from rvm_mp.compat import micropython
    from rvm_mp.coherence.engine import CoherenceEngine
    from rvm_mp.coherence.signal import CoherenceSignal
    c = Clock()
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=64, clock=c.ms)
    e = CoherenceEngine(log, max_nodes=8, budget_us=1 << 20,
                        wake_floor_bp=2000, witness_degraded=False)
    for i in range(40):
        e.on_message(1, 2, 4000)
        e.on_message(2, 3, 8)
    for _ in range(3):
        e.epoch()
    sig = CoherenceSignal(e)
    s = S.Scheduler(log, c.ms, c.us_, capacity=4, signal=sig)
    ts = []
    for i in range(3):
        t = S.Task(i + 1)
        s.add(t)
        s.make_ready(t, c.ms())
        ts.append(t)
    s.start(c.ms())
    assert not s.degraded
    # a coupled pair is boosted more than a light one; floor for strangers
    assert sig.wake(1, 2) > sig.wake(2, 3) > sig.wake(1, 3) == 2000
    now = c.ms()
    micropython.heap_lock()
    try:
        for i in range(200):
            t = ts[i % 3]
            s.wake_boost(t, ts[(i + 1) % 3].pid)
            x = s.pick(now)
            s.ran(x, now, 1, 1)
    finally:
        micropython.heap_unlock()
    assert s.e_switches == 200
