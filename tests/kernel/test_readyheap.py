# The ready heap on the real switch path: a runtime with a request/reply
# pair (wake boosts), hogs with different deadlines, a sleeper, a hard
# (Reflex) agent and one that faults and is restarted. At every step the
# pick (heap top: portable, native or C, whichever the runtime installed)
# must give the task and mode of the reference scan, and every ready task
# must sit in the heap at its index (check_invariants).
import kt
import agentkit as K
from rvm_mp import scheduler as S
from rvm_mp import runtime

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
        try:   # refused while a hard agent runs (Reflex: no IPC)
            await rvm.send(req, b"p")
            await rvm.recv(rep, 30)
            N[0] += 1
        except OSError:
            pass
        await rvm.yield_()
"""

HOG = """
async def main(rvm):
    while True:
        await rvm.yield_()
"""

SLEEPY = """
async def main(rvm):
    while True:
        await rvm.sleep_ms(3)
        await rvm.yield_()
"""

HARD = """
N = [0]
async def main(rvm):
    while True:
        N[0] += 1
        await rvm.sleep_ms(25)
"""

CRASH = """
async def main(rvm):
    for i in range(5):
        await rvm.yield_()
    raise ValueError("boom")
"""


class _Sig:
    available = True

    def refresh(self, now):
        return True

    def boost(self, pid):
        return (pid * 3001) % 10001

    def wake(self, src, dst):
        return 10000


def _run(native):
    pf, k, rt = K.make(step_us=700, signal=_Sig())
    try:
        runtime.use_native(native)   # after make: the profile chose native
        assert rt.step == (rt.step_py if not runtime.NATIVE else rt.step)
        assert S.rq_sift is not S._rq_sift_py or not runtime.NATIVE
        srv = K.load(rt, "srv", SERVER)
        cli = K.load(rt, "cli", CLIENT)
        for i, dm in enumerate((60, 150, 100)):
            K.load(rt, "hog%d" % i, HOG, {"deadline_ms": dm})
        K.load(rt, "sleepy", SLEEPY)
        hard = K.load(rt, "hard", HARD, {"hard": True, "deadline_ms": 5})
        K.load(rt, "crash", CRASH)
        assert rt.connect("req", cli, srv) == 0
        assert rt.connect("rep", srv, cli) == 0
        s = rt.sched
        s.start(pf.ticks_ms())
        pick = s.pick
        seen = {}
        bad = []   # (the kernel loop turns an exception into a kernel fault)

        def checked(now):
            # (reflex_start is left out: this fake clock moves per read)
            saved = (s.mode, s.e_reflex, s.reflex_start, s.reflex_overruns)
            want = S.Scheduler.pick_scan(s, now)
            after = (s.mode, s.e_reflex, s.reflex_overruns)
            s.mode, s.e_reflex, s.reflex_start, s.reflex_overruns = saved
            t = pick(now)
            if t is not want or (s.mode, s.e_reflex,
                                 s.reflex_overruns) != after:
                bad.append((rt.steps, t and t.pid, want and want.pid))
            if t is not None:
                seen[t.pid] = seen.get(t.pid, 0) + 1
            if rt.check_invariants():
                bad.append((rt.steps, "invariants"))
            return t
        s.pick = checked
        assert rt.run(max_steps=600) == 1   # the limit: no kernel fault
        assert bad == [] and rt.steps > 500
        assert rt.check_invariants() == 0
        return seen, rt.sched.task(cli).globals["N"][0], \
            rt.sched.task(hard).globals["N"][0]
    finally:
        K.done(rt)
        runtime.use_native(True)


def test_switch_path_keeps_the_heap_in_pick_order():
    for native in (False, True):
        seen, rounds, hard_runs = _run(native)
        assert len(seen) == 8          # every agent ran
        assert rounds > 3 and hard_runs > 5


def test_switch_path_does_not_allocate_on_either_path():
    # the portable path (seed-64k) and the native/C one (bigger profiles):
    # yields, sleeps (sleeper heap -> ready heap) and Reflex, with the heap
    # locked (IPC is left out: the kernel's recv allocates the message)
    from rvm_mp.compat import micropython
    for native in (False, True):
        pf, k, rt = K.make(step_us=40, signal=_Sig())  # no epoch end
        try:
            runtime.use_native(native)
            for i, dm in enumerate((60, 150, 100)):
                K.load(rt, "hog%d" % i, HOG, {"deadline_ms": dm})
            K.load(rt, "sleepy", SLEEPY)
            hard = K.load(rt, "hard", HARD, {"hard": True, "deadline_ms": 5})
            rt.sched.start(pf.ticks_ms())
            for _ in range(60):
                rt.step()
            s0 = rt.steps
            micropython.heap_lock()
            try:
                for _ in range(300):
                    rt.step()
            finally:
                micropython.heap_unlock()
            assert rt.steps - s0 > 250 and rt.check_invariants() == 0
            assert rt.sched.task(hard).globals["N"][0] > 1   # Reflex ran
        finally:
            K.done(rt)
            runtime.use_native(True)
