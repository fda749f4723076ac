# Preemption (rvm_mp/preempt.py) and the per-agent heap quota, on a real
# clock: a spinning agent is stopped within two slices and faulted with
# ETIMEOUT while a victim keeps running; a hoarder faults alone.
import kt
import agentkit as K
from rvm_mp import hal, kinds, errors, preempt
from rvm_mp.compat import ticks_ms, ticks_diff

HEAP = "512K"
SLICE = 150

VICTIM = """
T = []
async def main(rvm):
    while True:
        T.append(await rvm.now())
        await rvm.sleep_ms(20)
"""

SPINNERS = {
    "spin_while": """
async def main(rvm):
    await rvm.yield_()
    while True:
        pass
""",
    "spin_for": """
async def main(rvm):
    await rvm.yield_()
    n = 0
    for i in range(1 << 40):
        n += i
""",
    "spin_rec": """
def busy(d):
    if d > 0:
        return busy(d - 1)
    x = 0
    while True:
        x += 1
async def main(rvm):
    await rvm.yield_()
    busy(20)
""",
    "spin_except": """
async def main(rvm):
    await rvm.yield_()
    try:
        raise ValueError("x")
    except ValueError:
        while True:
            pass
""",
    # not verified code, but still contained: catching Exception does not
    # catch the preemption, and a finally that spins is stopped again
    "spin_finally": """
async def main(rvm):
    await rvm.yield_()
    try:
        while True:
            pass
    except Exception:
        pass
    finally:
        while True:
            pass
""",
}


def _make(slice_ms=SLICE, faults=None):
    from rvm_mp.kernel import Kernel
    from rvm_mp.runtime import Runtime
    from rvm_mp.witness import WitnessLog
    root = kt.tmpdir("pre")
    pf = hal.Platform(root, kt.DEVICE_ID, kt.KEY)
    kw = {"scheduler": {"epoch_ms": 100, "slice_ms": slice_ms}}
    if faults:
        kw["faults"] = faults
    prof = K.profile(**kw)
    prof["witness"]["ring"] = 256
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=256, clock=pf.ticks_ms)
    k = Kernel(pf, prof, log=log)
    rt = Runtime(k, pf, prof, fs=root)
    return pf, k, rt, log


def _faults(log, pid):
    return [r for r in K.recs(log, kinds.AGENT_FAULT) if r[6] == pid]


def test_spinning_agents_are_preempted_within_two_slices():
    pf, k, rt, log = _make(faults={"max_restarts": 1, "max_rebuilds": 0})
    if not preempt.available():
        K.done(rt)
        kt.skip("no preemption mechanism on this port")
    try:
        vic = K.load(rt, "victim", VICTIM)
        pids = {}
        for name in SPINNERS:
            pids[name] = K.load(rt, name, SPINNERS[name])
            assert not errors.is_err(pids[name]), name
        t0 = ticks_ms()
        vt = rt.sched.task(vic)
        while ticks_diff(ticks_ms(), t0) < 60000:
            rt.run(max_ms=200)
            if all(len(_faults(log, p)) >= 2 for p in pids.values()):
                break
        for name in pids:
            fs = _faults(log, pids[name])
            assert len(fs) >= 2, (name, fs)
            for r in fs:   # AGENT_FAULT b = ETIMEOUT: a CPU overrun
                assert r[8] == errors.ETIMEOUT.code, (name, r)
        g = rt.guard
        assert g.overruns >= 2 * len(pids), (g.overruns, g.kicks, g.claimed)
        # stopped within two slices (CPython: CPU time of the main thread).
        # Unix port: process CPU time, and the kick travels through a helper
        # process that a loaded host may schedule a slice late, so the bound
        # checked here is four slices (typical: 1.1-1.2, docs/agents.md)
        bound = 4 * SLICE if kt.IS_MP else 2 * SLICE
        assert g.longest <= bound, g.longest
        # F1 then stop (max_restarts 1, max_rebuilds 0): the spinners are
        # gone, the victim is still running and keeps its period
        esc = K.recs(log, kinds.FAULT_ESCALATE)
        assert len([r for r in esc if r[6] in pids.values()]) >= len(pids), \
            esc
        before = len(vt.globals["T"])
        rt.run(max_ms=1000)
        ts = vt.globals["T"][before:]
        assert len(ts) >= 3, ts
        assert vt.coro is not None
    finally:
        K.done(rt)


def test_victim_runs_between_overruns():
    pf, k, rt, log = _make()
    if not preempt.available():
        K.done(rt)
        kt.skip("no preemption mechanism on this port")
    try:
        vic = K.load(rt, "victim", VICTIM)
        sp = K.load(rt, "spin", SPINNERS["spin_while"])
        vt = rt.sched.task(vic)
        seen = []
        t0 = ticks_ms()
        while len(seen) < 3 and ticks_diff(ticks_ms(), t0) < 30000:
            n = len(_faults(log, sp))
            rt.run(max_ms=50)
            if len(_faults(log, sp)) > n:
                seen.append(len(vt.globals["T"]))
        assert len(seen) == 3, seen
        # the victim made progress between consecutive overruns
        assert seen[0] < seen[1] < seen[2], seen
    finally:
        K.done(rt)


def test_spinning_module_code_is_refused_at_load():
    pf, k, rt, log = _make()
    if not preempt.available():
        K.done(rt)
        kt.skip("no preemption mechanism on this port")
    try:
        r = K.load(rt, "toplevel", "while True:\n    pass\n"
                   "async def main(rvm):\n    pass\n")
        assert r is errors.ETIMEOUT
        rej = K.recs(log, kinds.BUNDLE_REJECT)
        assert rej and rej[-1][8] == errors.ETIMEOUT.code
        # the kernel goes on: another agent loads and runs
        ok = K.load(rt, "victim", VICTIM)
        assert not errors.is_err(ok)
        rt.run(max_ms=100)
        assert rt.sched.task(ok).globals["T"]
    finally:
        K.done(rt)


def test_late_kick_is_ignored():
    class T:
        heap_q = 0
    g = preempt.Guard(1000)
    t = T()
    g.arm(t)
    gen = g.armed
    g.disarm(t)
    # the watcher fired for that generation after the agent yielded
    g.fired = gen
    g.kicks += 1
    assert not g.claim()          # not armed: a real Ctrl-C, not ours
    assert g.stray()              # the kernel loop drops it ...
    assert not g.stray()          # ... once
    g.arm(t)
    g.fired = g.armed
    assert g.claim()              # armed and kicked: an overrun
    g.disarm(t)
    assert g.exc(ValueError("x")).__class__ is ValueError
    assert g.exc(preempt.Overrun("ECPU")) is errors.ETIMEOUT


def test_late_signal_after_disarm_raises_nothing():
    if kt.IS_MP:
        kt.skip("CPython delivery path (interrupt_main)")
    if not preempt.available():
        kt.skip("no preemption mechanism here")
    import _thread
    import signal
    import time

    class T:
        heap_q = 0
    g = preempt.Guard(1000)
    t = T()
    g.arm(t)
    g.fired = g.armed
    g.disarm(t)
    _thread.interrupt_main(signal.SIGUSR1)   # lands after the yield
    for i in range(100000):
        pass
    time.sleep(0.01)   # nothing raised


HOARDER = """
KEEP = []
async def main(rvm):
    while True:
        KEEP.append(bytearray(512))
        await rvm.yield_()
"""

CHURN = """
N = [0]
async def main(rvm):
    while True:
        x = bytearray(2048)   # garbage: not kept past the resume
        N[0] += 1
        await rvm.sleep_ms(1)
"""


def test_heap_hoarder_faults_alone():
    if not kt.IS_MP:
        kt.skip("heap quota: MicroPython only (gc.mem_alloc)")
    pf, k, rt, log = _make()
    try:
        hog = K.load(rt, "hog", HOARDER, {"quota": {"heap": 4096}})
        churn = K.load(rt, "churn", CHURN, {"quota": {"heap": 4096}})
        vic = K.load(rt, "victim", VICTIM)
        rt.run(max_ms=1500)
        hf = _faults(log, hog)
        assert hf and all(r[8] == errors.ENOMEM.code for r in hf), hf
        assert not _faults(log, churn)
        assert not _faults(log, vic)
        assert rt.sched.task(churn).globals["N"][0] > 10
        assert len(rt.sched.task(vic).globals["T"]) > 10
    finally:
        K.done(rt)
