# The runtime's coherence hooks: the wake-time boost on the real
# send path (a request/reply pair runs back to back), and DC-7 migration of
# a running agent between partitions (Runtime.migrate).
import kt
import agentkit as K
from rvm_mp import kinds, errors
from rvm_mp import scheduler as S
from rvm_mp.coherence import agentmove

HEAP = "512K"

SERVER = """
async def main(rvm):
    req = await rvm.handle("req")
    rep = await rvm.handle("rep")
    while True:
        m = await rvm.recv(req)
        await rvm.send(rep, m[1])
"""

CLIENT = """
N = [0]
async def main(rvm):
    req = await rvm.handle("req")
    rep = await rvm.handle("rep")
    while True:
        await rvm.send(req, b"p")
        await rvm.recv(rep)
        N[0] += 1
        await rvm.yield_()
"""

HOG = """
async def main(rvm):
    while True:
        await rvm.yield_()
"""


class _AllPairs:
    """A healthy signal: no per-epoch boost, every wake worth 10000 bp."""
    available = True

    def refresh(self, now):
        return True

    def boost(self, pid):
        return 0

    def wake(self, src, dst):
        return 10000


def _pingpong(signal):
    pf, k, rt = K.make(step_us=400, signal=signal)   # time moves per step
    try:
        srv = K.load(rt, "srv", SERVER)
        cli = K.load(rt, "cli", CLIENT)
        for i in range(3):
            K.load(rt, "hog%d" % i, HOG)
        assert rt.connect("req", cli, srv) == 0
        assert rt.connect("rep", srv, cli) == 0
        trace = []
        s = rt.sched
        s.start(pf.ticks_ms())       # boot phase 7: the first signal refresh
        pick = s.pick

        def traced(now):
            t = pick(now)
            if t is not None:
                trace.append(t.pid)
            return t
        s.pick = traced
        rt.run(max_steps=300)
        return trace, srv, cli, rt.sched.task(cli).globals["N"][0]
    finally:
        K.done(rt)


def _back_to_back(trace, srv, cli):
    """Round trips run as client (request) -> server -> client (reply)."""
    n = 0
    for i in range(1, len(trace) - 1):
        if trace[i - 1] == cli and trace[i] == srv and trace[i + 1] == cli:
            n += 1
    return n


def test_wake_boost_runs_request_and_reply_back_to_back():
    trace, srv, cli, n = _pingpong(_AllPairs())
    # the request wakes the server and it runs next; its reply wakes the
    # client and it runs next: every round trip (but the first, at start-up)
    # runs back to back although three hogs are always ready
    assert n > 20
    assert _back_to_back(trace, srv, cli) >= n - 1
    # without an engine (NullSignal: no wake boost) the hogs run in between
    trace0, srv0, cli0, n0 = _pingpong(None)
    assert _back_to_back(trace0, srv0, cli0) < n0 // 2
    assert n > n0 > 0      # more round trips in the same number of steps


MOVER = """
N = [0]
SEEN = [None]
async def main(rvm):
    if rvm.restored is None:
        h = await rvm.alloc(64)
        await rvm.write(h, 0, b"region-bytes-012")
        await rvm.checkpoint(str(h).encode())
    else:
        h = rvm.moved[int(rvm.restored)]
        SEEN[0] = await rvm.read(h, 0, 16)
    while True:
        N[0] += 1
        await rvm.yield_()
"""


def _mover():
    pf, k, rt = K.make(mem=True)
    a = K.load(rt, "mover", MOVER, {"devices": ["temp"]})
    b = k.part_create(0, name="B")
    rt.run(max_steps=20)
    ta = rt.sched.task(a)
    assert ta.globals["N"][0] > 0
    ex = k.mem.ckpts.latest(a)["extra"]    # its restart point: the handle
    assert int(ex) in [c[0] for c in k.cap_list(a)]
    rid = k.mem.regions_of(a)[0]
    return pf, k, rt, a, b, rid


def test_runtime_migrates_a_running_agent():
    pf, k, rt, a, b, rid = _mover()
    try:
        old_temp = rt.handle(a, "temp")
        n = agentmove.migrate(rt, a, b)
        assert not errors.is_err(n) and n > 64
        # A is terminated and empty; its agent is gone from the scheduler
        assert k.part_state(a) == 5
        assert rt.sched.task(a) is None and rt.handle(a, "temp") == 0
        assert k.cap_list(a) == [] and k.mem.regions_of(a) == []
        # B runs the same agent, restarted from its restart point, with the
        # region (its bytes) and capabilities it had in A
        tb = rt.sched.task(b)
        assert tb is not None and tb.name == "mover"
        assert k.part_state(b) == 1 and k.mem.regions[rid].owner == b
        new_temp = rt.handle(b, "temp")
        assert new_temp and new_temp == tb.rvm.moved[old_temp]
        # B has its own restart point (an F2 rebuild there restores it)
        assert k.mem.ckpts.latest(b)["extra"] == k.mem.ckpts.latest(a)["extra"]
        rt.run(max_steps=20)
        assert tb.globals["SEEN"][0] == b"region-bytes-012"
        assert tb.globals["N"][0] > 0 and tb.state != S.T_DONE
        st = K.recs(rt.log, kinds.MIGRATION_START)[-1]
        dn = K.recs(rt.log, kinds.MIGRATION_DONE)[-1]
        assert st[6] == a and st[7] == b and dn[6] == a and dn[7] == b
        assert dn[9] == 1 and dn[10] == n        # one region, image size
        ag = K.recs(rt.log, kinds.AGENT_START)[-1]
        assert ag[6] == b
        # refusals are witnessed: no agent in A any more, B is busy
        assert agentmove.migrate(rt, a, b) is errors.ESTATE
        c = k.part_create(0, name="C")
        other = K.load(rt, "other", HOG)
        assert agentmove.migrate(rt, other, b) is errors.EBUSY
        d = K.recs(rt.log, kinds.MIGRATION_START)[-1]
        assert d[4] & kinds.F_DENIED and d[8] == errors.EBUSY.code
        assert d[6] == other and d[7] == b and d[9] == 100   # budget ms
        assert c > 0
    finally:
        K.done(rt)


def test_runtime_migration_over_budget_keeps_the_agent_in_a():
    pf, k, rt, a, b, rid = _mover()
    try:
        m = agentmove.migrator(rt)
        m.budget_ms = 5

        def slow():            # every clock read costs 3 ms
            pf.adv(3)
            return pf.ticks_ms()
        m.clock = slow
        caps = k.cap_list(a)
        r = agentmove.migrate(rt, a, b)
        assert r is errors.ETIMEOUT
        assert k.part_state(a) == 1 and k.cap_list(a) == caps
        assert k.mem.regions[rid].owner == a and k.cap_list(b) == []
        assert rt.sched.task(b) is None
        ta = rt.sched.task(a)
        n0 = ta.globals["N"][0]
        rt.run(max_steps=20)
        assert ta.globals["N"][0] > n0           # still running in A
        to = K.recs(rt.log, kinds.MIGRATION_TIMEOUT)
        assert len(to) == 1 and to[0][6] == a and to[0][7] == b
        # cooling down: refused and witnessed
        m.clock = pf.ticks_ms
        m.budget_ms = 1000
        assert agentmove.migrate(rt, a, b) is errors.EBUSY
        assert k.part_state(a) == 1
    finally:
        K.done(rt)


def _coherence_eval():
    """tools/coherence_eval.py: the real Runtime on a virtual clock."""
    import sys
    p = kt.repo_root() + "/tools"
    if p not in sys.path:
        sys.path.insert(0, p)
    import coherence_eval
    return coherence_eval


def test_engine_placement_and_wake_signal_help_in_the_runtime():
    # 16 agents in 4 clusters of shuffled ids; one heavy partition computes
    # 1000 us per resume. Naive: no engine. Engine: the profile's coherence
    # settings (wake signal from the pairs' weights, 4 slots placed by the
    # runtime). Latency is virtual time (the sum of the quanta picked), so
    # the figures are counts, not wall-clock timings.
    C = _coherence_eval()
    a = C.run("clustered", 1, "event", False, epochs=30)
    b = C.run("clustered", 1, "event", True, epochs=30)
    assert a["msgs"] > 150
    assert b["msgs"] * 100 >= a["msgs"] * 95         # the same work is done
    # the runtime adopted at least one placement; the traffic crossing its
    # slots is well under the best naive placement of the same traffic
    assert b["replans"] >= 1 and b["moves"] > 0
    naive = min(b["cross_rr"], b["cross_blocks"])
    assert naive > 100 and b["cross"] * 2 <= naive
    # and the messages reach their receivers sooner, tail included
    assert b["p99"] < a["p99"] and b["p50"] < a["p50"]


def test_runtime_places_only_where_the_profile_asks():
    from rvm_mp.coherence import signal as csig
    prof = K.profile(coherence=True)
    pf, k, rt = K.make(prof)
    try:
        assert k.coherence.placer is None     # no slots: no placement
    finally:
        K.done(rt)
    prof = K.profile(coherence=True,
                     scheduler={"epoch_ms": 100, "coherence": {"slots": 2}})
    pf, k, rt = K.make(prof)
    try:
        e = k.coherence
        assert e.placer is not None and e.placer.k == 2
        assert isinstance(rt.sched.signal, csig.CoherenceSignal)
    finally:
        K.done(rt)


SINK = """
async def main(rvm):
    h = await rvm.handle("req")
    while True:
        await rvm.yield_()
"""

ONCE = """
async def main(rvm):
    h = await rvm.handle("req")
    await rvm.send(h, b"x")
    while True:
        await rvm.sleep_ms(1000)
"""

TAKER = """
GOT = [0]
async def main(rvm):
    h = await rvm.handle("req")
    while True:
        await rvm.yield_()
        await rvm.yield_()
        await rvm.recv(h)
        GOT[0] += 1
"""


def test_wake_boost_is_held_to_the_receive_and_ends_with_the_epoch():
    for receiver in (SINK, TAKER):
        pf, k, rt = K.make(signal=_AllPairs())
        try:
            dst = K.load(rt, "dst", receiver)
            src = K.load(rt, "src", ONCE)
            assert rt.connect("req", src, dst) == 0
            s = rt.sched
            s.start(pf.ticks_ms())
            t = s.task(dst)
            boosted = 0
            for _ in range(12):
                rt.step()
                if t.wboost:
                    boosted += 1
            if receiver is SINK:
                # picked several times (yields) without receiving: held
                assert boosted >= 4 and t.wboost > 0
                s.end_epoch(pf.ticks_ms() + 1000)
                assert t.wboost == 0      # at most until the epoch's end
            else:
                # spent by the receive it was given for
                assert t.globals["GOT"][0] == 1
                assert 0 < boosted and t.wboost == 0
        finally:
            K.done(rt)
