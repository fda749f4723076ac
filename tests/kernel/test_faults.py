# Faults F1-F4: restart, rebuild from checkpoint, stop, MemoryError,
# region rollback, kernel invariant failure -> seal + reset. Every step and
# escalation witnessed; the other agents keep running.
import kt
import agentkit as K
from rvm_mp import kinds, errors, hal
from rvm_mp import faults as F
from rvm_mp import scheduler as S

HEAP = "512K"

TICKER = """
N = [0]
async def main(rvm):
    while True:
        await rvm.sleep_ms(5)
        N[0] += 1
"""


def _g(rt, pid):
    return rt.sched.task(pid).globals


def test_f1_then_f2_then_stop_others_unaffected():
    pol = F.FaultPolicy(max_restarts=2, max_rebuilds=1, restart_delay_ms=10)
    pf, k, rt = K.make(policy=pol)
    try:
        bad = K.load(rt, "bad", """
async def main(rvm):
    await rvm.sleep_ms(3)
    raise ValueError("boom")
""")
        tick = K.load(rt, "tick", TICKER)
        rt.run(max_ms=2000)
        kinds_seq = []
        for rec in rt.log.iter_range(0):
            kd = rec[10]
            tgt = rec[14] | (rec[15] << 8)
            if kd in (kinds.FAULT_F1_RESTART, kinds.FAULT_ESCALATE,
                      kinds.FAULT_F2_REBUILD, kinds.AGENT_EXIT,
                      kinds.PART_TERMINATE) and tgt == bad:
                kinds_seq.append(kd)
        assert kinds_seq == [kinds.FAULT_F1_RESTART, kinds.FAULT_F1_RESTART,
                             kinds.FAULT_ESCALATE, kinds.FAULT_F2_REBUILD,
                             kinds.FAULT_F1_RESTART, kinds.FAULT_F1_RESTART,
                             kinds.FAULT_ESCALATE, kinds.AGENT_EXIT,
                             kinds.PART_TERMINATE]
        esc = K.recs(rt.log, kinds.FAULT_ESCALATE)
        assert (esc[0][7], esc[0][8]) == (F.F1, F.F2)
        assert (esc[1][7], esc[1][8]) == (F.F2, F.STOP)
        af = K.recs(rt.log, kinds.AGENT_FAULT)
        assert len(af) == 6 and af[-1][10] == 6
        assert af[0][7] == F.fault_class(ValueError()) == 4 and af[0][9] == 0
        # F2 ran in Recovery mode and came back to Flow
        mc = [(m[7], m[8]) for m in K.recs(rt.log, kinds.MODE_CHANGE)]
        assert mc == [(S.MODE_FLOW, S.MODE_RECOVERY), (S.MODE_RECOVERY, S.MODE_FLOW)]
        assert k.part_state(bad) == 5   # terminated
        assert rt.sched.task(bad) is None
        assert _g(rt, tick)["N"][0] > 100  # never stopped
        assert rt.running is False and rt.stop_reason == 1
    finally:
        K.done(rt)


def test_memory_error_in_agent_is_contained():
    pf, k, rt = K.make()
    try:
        hog = K.load(rt, "hog", """
async def main(rvm):
    await rvm.yield_()
    x = [0] * (1 << 40)
""")
        tick = K.load(rt, "tick", TICKER)
        rt.run(max_ms=100)
        af = K.recs(rt.log, kinds.AGENT_FAULT)
        assert af and af[0][6] == hog and af[0][8] == errors.ENOMEM.code
        assert af[0][7] == F.fault_class(MemoryError()) == 2
        f1 = K.recs(rt.log, kinds.FAULT_F1_RESTART)
        assert f1 and f1[0][8] == errors.ENOMEM.code
        assert _g(rt, tick)["N"][0] >= 10
    finally:
        K.done(rt)


def test_f2_rebuilds_from_checkpoint():
    pol = F.FaultPolicy(max_restarts=0, max_rebuilds=2)
    pf, k, rt = K.make(mem=True, policy=pol)
    try:
        pid = K.load(rt, "st", """
LOG = []
async def main(rvm):
    LOG.append(rvm.restored)
    if rvm.restored is None:
        rid = await rvm.alloc(16)
        await rvm.write(rid, 0, b"0123456789abcdef")
        await rvm.checkpoint(b"rid=%d" % rid)
        await rvm.write(rid, 0, b"XXXX")
        raise RuntimeError("after checkpoint")
    rid = int(rvm.restored[4:])
    LOG.append(await rvm.read(rid, 0, 16))
""")
        rt.run(max_ms=500)
        log = _g(rt, pid)["LOG"]  # the module was reloaded fresh by F2
        assert log[0].startswith(b"rid=")
        assert bytes(log[1]) == b"0123456789abcdef"   # the checkpointed bytes
        f2 = K.recs(rt.log, kinds.FAULT_F2_REBUILD)
        assert len(f2) == 1 and f2[0][8] == 0 and f2[0][9] == 1
        assert K.recs(rt.log, kinds.FAULT_F1_RESTART) == []
        st = [(r[7], r[8]) for r in K.recs(rt.log, kinds.PART_STATE)
              if r[6] == pid]
        assert (1, 4) in st and (4, 1) in st   # Running -> Recovering -> Running
    finally:
        K.done(rt)


def test_f3_rolls_back_a_corrupted_region():
    pol = F.FaultPolicy(verify_every=1)
    pf, k, rt = K.make(mem=True, policy=pol)
    try:
        pid = K.load(rt, "own", """
RID = [0]
async def main(rvm):
    rid = await rvm.alloc(16)
    RID[0] = rid
    await rvm.write(rid, 0, b"good bytes here!")
    await rvm.checkpoint()
    while True:
        await rvm.sleep_ms(50)
""")
        rt.run(max_ms=60)
        h = _g(rt, pid)["RID"][0]
        rid = k.cap_lookup(pid, h)[1]   # the agent holds a handle, not the id
        r = k.mem.regions[rid]
        k.mem.arena[r.off + 3] ^= 0xFF   # a bit flip behind the kernel's back
        assert k.mem.verify_region(rid) is False
        rt.run(max_ms=300)
        f3 = K.recs(rt.log, kinds.FAULT_F3_ROLLBACK)
        assert len(f3) == 1 and f3[0][6] == pid and f3[0][7] == rid
        assert f3[0][8] == 0
        assert k.mem.verify_region(rid) is not False
        assert bytes(k.region_read(pid, h, 0, 16)) == b"good bytes here!"
        mc = [(m[7], m[8]) for m in K.recs(rt.log, kinds.MODE_CHANGE)]
        assert (S.MODE_FLOW, S.MODE_RECOVERY) in mc and mc[-1][1] == S.MODE_FLOW
    finally:
        K.done(rt)


def test_f4_invariant_failure_seals_and_resets():
    pf, k, rt = K.make()
    try:
        K.load(rt, "t", TICKER)
        rt.run(max_ms=30)
        t = rt.sched.tasks[0]
        # the partition table and the scheduler no longer agree (a
        # corrupted kernel structure): an invariant failure
        k.parts.get(t.pid).state = 5
        reason = rt.run(max_ms=1000)
        assert reason == 2 and pf.resets == [hal.EXIT_F4]
        f4 = K.recs(rt.log, kinds.FAULT_F4_RESET)
        assert len(f4) == 1 and f4[0][7] == hal.EXIT_F4
        assert f4[0][8] == errors.ESTATE.code
        # after the F4 record: SHUTDOWN (reason 2) and a final seal
        tail = [r[10] for r in rt.log.iter_range(f4[0][0])]
        assert tail[0:3] == [kinds.FAULT_F4_RESET, kinds.SHUTDOWN, kinds.SEAL]
        sd = K.recs(rt.log, kinds.SHUTDOWN)
        assert sd[0][7] == 2
    finally:
        K.done(rt)


def test_f4_exits_with_distinct_code_on_hosted_runtimes():
    log = K.recs  # noqa
    from rvm_mp.witness import WitnessLog
    pf = hal.Platform(kt.tmpdir("f4"), kt.DEVICE_ID, kt.KEY)
    w = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=16)
    fm = F.FaultManager(w, F.FaultPolicy(), pf)
    e = kt.raises(SystemExit, fm.kernel_fault, errors.ECORRUPT.code)
    assert e.args[0] == hal.EXIT_F4 == 86
    assert w.query(kind=kinds.FAULT_F4_RESET)


def test_policy_thresholds_from_profile():
    p = F.policy_from_profile({"faults": {"max_restarts": 5,
                                          "verify_every": 9}})
    assert p.max_restarts == 5 and p.verify_every == 9 and p.max_rebuilds == 3
    assert [p.classify_agent_fault(r, 0) for r in (0, 4, 5)] == [F.F1, F.F1, F.F2]
    assert p.classify_agent_fault(5, 3) == F.STOP
    assert F.policy_from_profile({}).max_restarts == 3
