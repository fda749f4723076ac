# The demo board setup (boards/seed-64k.json + agents/): runs for a bounded
# time on a fake clock; the pipeline works while the misbehaving agents are
# contained. (The same demo under a 256 KB heap with the kernel as .mpy, as
# `rvm build` ships it, is tests/host/test_demo_heap.py.)
import json

import kt
import agentkit as K
from rvm_mp import kinds, board, bundle
from rvm_mp.boot import Boot
from rvm_mp import faults as F
from rvm_mp import scheduler as S
from rvm_mp.witness import unpack

HEAP = "512K"


def _setup(console=False):
    root = kt.repo_root()
    with open(root + "/boards/seed-64k.json") as f:
        prof = json.load(f)
    prof["console"] = console
    bundles = {}
    for a in prof["agents"]:
        with open(root + "/agents/%s.py" % a["name"], "rb") as f:
            src = f.read()
        # the verifier is host-side (tests/host/test_demo_heap.py runs it)
        bundles[a["name"]] = bundle.pack(src, {"name": a["name"]}, kt.KEY,
                                         verdict=bundle.unverified(src))
    fs = kt.tmpdir("demo")
    pf = K.FakePlatform(fs)
    b = Boot(fs=fs, platform=pf, profile=prof, bundles=bundles)
    return b, pf


def test_demo_runs_and_contains_misbehaving_agents():
    b, pf = _setup()
    rt = b.run()
    try:
        assert [r for n, r in b.started] == [1, 2, 3, 4, 5, 6]
        pids = b.pids
        rt.run(max_ms=45000)
        cr = pids["crasher"]
        fl = pids["flooder"]
        sn = pids["sensor"]
        # one streaming pass over the log (it does not fit in RAM as a list)
        sends = 0
        last_send = 0
        denied_imports = 0
        f1 = 0
        f2 = 0
        esc = []
        throttles = []
        summaries = 0
        degraded = 0
        all_flagged = True
        for rec in rt.log.iter_range(0):
            f = unpack(rec)
            kd = f[3]
            if kd == kinds.IPC_SEND and f[5] == sn:
                sends += 1
                last_send = f[1]
            elif kd == kinds.IMPORT_DENIED and f[6] == cr:
                denied_imports += 1
            elif kd == kinds.FAULT_F1_RESTART and f[6] == cr:
                f1 += 1
            elif kd == kinds.FAULT_F2_REBUILD and f[6] == cr:
                f2 += 1
            elif kd == kinds.FAULT_ESCALATE and f[6] == cr:
                esc.append((f[7], f[8]))
            elif kd == kinds.QUOTA_THROTTLE and f[6] == fl:
                throttles.append(f[7])
            elif kd == kinds.EPOCH_SUMMARY:
                summaries += 1
                all_flagged = all_flagged and bool(f[4] & 2)
            elif kd == kinds.DEGRADED_ENTER:
                degraded += 1
        # pipeline: sensor -> filter -> actuator drove the leased relay
        relay = pf.devices["relay"]
        assert [op for op, a in relay.ops if op in ("on", "off")]
        assert len(pf.devices["temp"].ops) > 0
        assert sends >= 150
        # crasher: refused import, F1 restarts, F2 rebuilds, finally stopped
        assert denied_imports >= 1
        assert f1 >= 6 and f2 == 2
        assert esc[0] == (F.F1, F.F2) and esc[-1] == (F.F2, F.STOP)
        assert rt.sched.task(cr) is None
        # flooder: throttled on its message quota in the epochs it floods
        assert len(throttles) >= 10 and throttles[0] == S.Q_MSGS
        # the others never stopped: the sensor sent in the last second too
        assert pf.ticks_ms() - last_send < 1000
        for name in ("supervisor", "sensor", "filter", "actuator", "flooder"):
            t = rt.sched.task(pids[name])
            assert t is not None and t.faults == 0
        # one summary per epoch with switches; degraded (no engine) once
        assert 40 <= summaries <= 46
        assert degraded == 1 and all_flagged
    finally:
        rt.shutdown()


def test_demo_log_verifies_after_shutdown():
    from rvm_mp.witness import chain_link, genesis_link, unpack
    from rvm_mp.hmac256 import Hmac256
    b, pf = _setup()
    rt = b.run()
    rt.run(max_ms=3000)
    rt.shutdown()
    prev = genesis_link(kt.DEVICE_ID)
    hm = Hmac256(kt.KEY)
    seals = 0
    n = 0
    for rec in rt.log.iter_range(0):
        assert rec[32:64] == chain_link(prev, rec)
        if rec[10] == kinds.SEAL:
            assert rec[16:32] == hm.mac(b"RVMS" + prev + rec[0:16])[0:16]
            seals += 1
        prev = rec[32:64]
        n += 1
    assert n > 100 and seals >= 1
    assert rt.log.record(n - 1)[10] == kinds.SEAL
