# Agents through the runtime: the request protocol, results and errors,
# blocking IPC, idle waits without busy looping, quotas, Reflex, the import
# gate and signed bundles, spawn rights, the no-allocation switch path.
import kt
import agentkit as K
from rvm_mp import kinds, errors
from rvm_mp import scheduler as S

HEAP = "512K"


def _g(rt, pid):
    return rt.sched.task(pid).globals


def test_calls_return_results():
    pf, k, rt = K.make()
    try:
        pid = K.load(rt, "a", """
OUT = []
async def main(rvm):
    OUT.append(await rvm.my_id())
    t0 = await rvm.now()
    await rvm.sleep_ms(30)
    t1 = await rvm.now()
    OUT.append(t1 - t0)
    r = await rvm.yield_()
    OUT.append(r)
    OUT.append(rvm.name)
""")
        assert pid == 1
        rt.run(max_steps=50)
        out = _g(rt, pid)["OUT"]
        assert out == [1, 30, None, "a"]
        ex = K.recs(rt.log, kinds.AGENT_EXIT)
        assert len(ex) == 1 and ex[0][6] == 1 and ex[0][7] == 0
        st = K.recs(rt.log, kinds.AGENT_START)
        assert len(st) == 1 and st[0][6] == 1
    finally:
        K.done(rt)


def test_errors_are_thrown_into_the_agent():
    pf, k, rt = K.make()
    try:
        pid = K.load(rt, "a", """
OUT = []
async def main(rvm):
    # one Request per agent: each call is awaited right away
    calls = (lambda: rvm.send(999, b"x"), lambda: rvm.sleep_ms(-1),
             lambda: rvm.handle("nope"), lambda: rvm.recv(0, 0))
    for call in calls:
        try:
            await call()
            OUT.append("ok")
        except Exception as e:
            OUT.append(e.args[1])
    OUT.append("alive")
""")
        rt.run(max_steps=50)
        out = _g(rt, pid)["OUT"]
        assert out[0] in ("EBADHANDLE", "ESTALE")
        assert out[1:] == ["EINVAL", "EBADHANDLE", out[3], "alive"]
        assert out[3] != "ok"
        assert K.recs(rt.log, kinds.AGENT_FAULT) == []
    finally:
        K.done(rt)


def test_blocking_recv_is_woken_by_send_and_sender_is_stamped():
    pf, k, rt = K.make()
    try:
        rx = K.load(rt, "rx", """
OUT = []
async def main(rvm):
    h = await rvm.handle("ch")
    OUT.append(await rvm.recv(h))
    OUT.append(await rvm.now())
""")
        tx = K.load(rt, "tx", """
async def main(rvm):
    h = await rvm.handle("ch")
    await rvm.sleep_ms(40)
    await rvm.send(h, b"hello")
""")
        assert rt.connect("ch", tx, rx, 2) == 0
        t0 = pf.ticks_ms()
        rt.run(max_steps=40)
        out = _g(rt, rx)["OUT"]
        assert out[0] == (tx, b"hello")
        assert out[1] - t0 == 40
        # the receiver waited blocked, not spinning
        assert rt.steps < 12
    finally:
        K.done(rt)


def test_recv_timeout():
    pf, k, rt = K.make()
    try:
        rx = K.load(rt, "rx", """
OUT = []
async def main(rvm):
    h = await rvm.handle("ch")
    t0 = await rvm.now()
    try:
        await rvm.recv(h, 70)
    except Exception as e:
        OUT.append(e.args[1])
    OUT.append((await rvm.now()) - t0)
""")
        tx = K.load(rt, "tx", "async def main(rvm):\n    pass\n")
        rt.connect("ch", tx, rx)
        rt.run(max_steps=30)
        assert _g(rt, rx)["OUT"] == ["ETIMEOUT", 70]
    finally:
        K.done(rt)


def test_idle_kernel_sleeps_until_next_deadline():
    pf, k, rt = K.make()
    try:
        K.load(rt, "s", """
async def main(rvm):
    for i in range(3):
        await rvm.sleep_ms(500)
""")
        K.load(rt, "t", """
async def main(rvm):
    await rvm.sleep_ms(1200)
""")
        t0 = pf.ticks_ms()
        rt.run(max_ms=1600)
        # each idle wait lasts until the next event (a wake-up or the end of
        # an epoch in which something ran): no polling, no zero waits
        assert pf.ticks_ms() - t0 >= 1600
        assert rt.idle_waits == len(pf.waits)
        assert 6 <= len(pf.waits) <= 10, pf.waits
        assert min(pf.waits) > 0
        assert sum(pf.waits) >= 1500
        assert rt.steps <= 8  # 4 + 2 agent resumes in all
    finally:
        K.done(rt)


def test_message_quota_throttles_and_others_run():
    prof = K.profile(scheduler={"epoch_ms": 100})
    pf, k, rt = K.make(prof)
    try:
        fl = K.load(rt, "flood", """
N = [0, 0]
async def main(rvm):
    h = await rvm.handle("f")
    while True:
        try:
            await rvm.send(h, b"x")
            N[0] += 1
        except Exception:
            N[1] += 1
            await rvm.yield_()
""", {"quota": {"msgs": 3}})
        sink = K.load(rt, "sink", """
N = [0]
async def main(rvm):
    h = await rvm.handle("f")
    while True:
        await rvm.recv(h)
        N[0] += 1
""")
        tick = K.load(rt, "tick", """
N = [0]
async def main(rvm):
    while True:
        await rvm.sleep_ms(10)
        N[0] += 1
""")
        rt.connect("f", fl, sink, 4)
        rt.run(max_steps=400)
        th = [f for f in K.recs(rt.log, kinds.QUOTA_THROTTLE) if f[6] == fl]
        assert th and th[0][7] == S.Q_MSGS and th[0][9] == 3
        sent = _g(rt, fl)["N"][0]
        epochs = rt.sched.epoch + 1
        assert sent <= 3 * epochs
        assert _g(rt, tick)["N"][0] >= 5   # the others kept running
        assert sent <= _g(rt, sink)["N"][0] <= sent + 1
    finally:
        K.done(rt)


def test_cpu_quota_throttles_busy_agent():
    pf, k, rt = K.make(step_us=200)
    try:
        busy = K.load(rt, "busy", """
async def main(rvm):
    while True:
        await rvm.yield_()
""", {"quota": {"cpu_ms": 2}})
        other = K.load(rt, "other", """
N = [0]
async def main(rvm):
    while True:
        await rvm.yield_()
        N[0] += 1
""")
        rt.run(max_steps=200)
        th = K.recs(rt.log, kinds.QUOTA_THROTTLE)
        assert [f[6] for f in th if f[7] == S.Q_CPU][0] == busy
        assert rt.sched.task(other).last > rt.sched.task(busy).last
    finally:
        K.done(rt)


def test_reflex_agent_runs_first_and_has_no_ipc():
    pf, k, rt = K.make()
    try:
        soft = K.load(rt, "soft", """
ORDER = []
async def main(rvm):
    ORDER.append(await rvm.now())
""")
        hard = K.load(rt, "hard", """
OUT = []
async def main(rvm):
    OUT.append(await rvm.now())
    try:
        await rvm.send(await rvm.handle("c"), b"x")
    except Exception as e:
        OUT.append(e.args[1])
""", {"hard": True, "deadline_ms": 5})
        rt.connect("c", hard, soft)
        rt.run(max_steps=10)
        assert rt.sched.task(hard).last < rt.sched.task(soft).last
        assert _g(rt, hard)["OUT"][1] == "EMODE"
        d = [f for f in K.recs(rt.log, kinds.IPC_DENIED) if f[5] == hard]
        assert d and d[0][8] == errors.EMODE.code
    finally:
        K.done(rt)


def test_gated_imports_in_agents():
    pf, k, rt = K.make()
    try:
        r = K.load(rt, "bad", "import rvm_mp.kernel\nasync def main(rvm):\n    pass\n")
        assert r is errors.EIMPORT
        rej = K.recs(rt.log, kinds.BUNDLE_REJECT)
        assert rej and rej[-1][8] == errors.EIMPORT.code
        pid = K.load(rt, "ok", """
import json
OUT = []
async def main(rvm):
    try:
        import os
        OUT.append("os")
    except ImportError:
        OUT.append("refused")
    dev = await rvm.lease("temp", 1000)
    OUT.append(await dev.read())
    try:
        import os   # a lease opens the device, never os/machine
        OUT.append("os")
    except ImportError:
        OUT.append("refused")
""", {"devices": ["temp"]})
        rt.run(max_steps=20)
        out = _g(rt, pid)["OUT"]
        assert out[0] == "refused" and type(out[1]) is int and out[2] == "refused"
        den = K.recs(rt.log, kinds.IMPORT_DENIED)
        assert len(den) == 3 and den[1][6] == pid and den[1][5] == pid
    finally:
        K.done(rt)


def test_bad_signature_never_runs():
    pf, k, rt = K.make()
    try:
        src = "raise SystemExit(99)\nasync def main(rvm):\n    pass\n"
        data = K.pack("evil", src, key=bytes(32))
        r = rt.load(data, {}, 0, 0, "evil")
        assert r is errors.ESIG
        assert K.recs(rt.log, kinds.PART_CREATE) == []
        assert K.recs(rt.log, kinds.AGENT_START) == []
        rej = K.recs(rt.log, kinds.BUNDLE_REJECT)
        assert len(rej) == 1 and rej[0][4] & 1 and rej[0][8] == errors.ESIG.code
        p3 = K.recs(rt.log, kinds.PROOF_P3)
        assert p3 and p3[0][4] & 1
        # tampered code under a valid-looking bundle: refused as well
        good = bytearray(K.pack("evil", src))
        good[40] ^= 1
        assert errors.is_err(rt.load(bytes(good), {}, 0, 0, "evil"))
        assert rt.sched.tasks == []
    finally:
        K.done(rt)


def test_spawn_needs_the_right():
    pf, k, rt = K.make()
    try:
        rt.add_bundle("child", K.pack("child", "async def main(rvm):\n    pass\n"))
        src = """
OUT = []
async def main(rvm):
    try:
        OUT.append(await rvm.spawn("child"))
    except Exception as e:
        OUT.append(e.args[1])
"""
        a = K.load(rt, "a", src, {"spawn": True})
        b = K.load(rt, "b", src)
        rt.run(max_steps=30)
        got = _g(rt, a)["OUT"][0]
        assert isinstance(got, int) and got > b
        assert _g(rt, b)["OUT"][0] in ("EBADHANDLE", "ERIGHTS")
    finally:
        K.done(rt)


def test_agent_switch_path_does_not_allocate():
    from rvm_mp.compat import micropython
    pf, k, rt = K.make()
    try:
        src = """
N = [0]
async def main(rvm):
    while True:
        await rvm.yield_()
        N[0] += 1
"""
        a = K.load(rt, "a", src)
        b = K.load(rt, "b", src)
        for _ in range(10):
            rt.step()
        n0 = _g(rt, a)["N"][0] + _g(rt, b)["N"][0]
        micropython.heap_lock()
        try:
            for _ in range(200):
                rt.step()
        finally:
            micropython.heap_unlock()
        n1 = _g(rt, a)["N"][0] + _g(rt, b)["N"][0]
        assert n1 - n0 == 200
    finally:
        K.done(rt)


def test_late_pick_is_a_deadline_miss():
    pf, k, rt = K.make(step_us=3000)   # every clock read costs 3 ms
    try:
        hog = K.load(rt, "hog", """
async def main(rvm):
    while True:
        await rvm.yield_()
""", {"deadline_ms": 1000})
        tight = K.load(rt, "tight", """
async def main(rvm):
    while True:
        await rvm.yield_()
""", {"deadline_ms": 1})
        rt.run(max_steps=20)
        m = K.recs(rt.log, kinds.DEADLINE_MISS)
        assert m and m[0][6] == tight and m[0][8] > 0
        assert rt.sched.e_misses >= 1 or K.recs(rt.log, kinds.EPOCH_SUMMARY)
    finally:
        K.done(rt)


MPY_AGENT = bytes.fromhex(  # mpy-cross (bytecode only) of the source below
    "4d06001f0b00166d70796167656e742e7079000f086a736f6e008163790a6d795f696400"
    "06737973000a676174656400064f5554000672766d004d812c080601266480511b021602"
    "2b001608320016035163018338bd400e030960402f224e12081404b0140536005e516836"
    "0159480780511b06c14a1357120adf444c591208140410073601594a015d5163")
# import json / OUT = [] / async def main(rvm): OUT.append(await rvm.my_id())
#     try: import sys / except ImportError: OUT.append("gated")


def test_mpy_bundle_runs_gated_on_micropython():
    pf, k, rt = K.make()
    try:
        from rvm_mp import bundle
        data = bundle.pack(MPY_AGENT, {"name": "mpya"}, kt.KEY,
                           verdict=bundle.unverified(b"mpya source"))
        assert data[6] == bundle.CODE_MPY
        pid = rt.load(data, {}, 0, 0, "mpya")
        if not kt.IS_MP:
            assert pid is errors.ENOTSUP   # CPython cannot run .mpy
            return
        assert pid == 1
        rt.run(max_steps=10)
        assert _g(rt, pid)["OUT"] == [1, "gated"]
        assert K.recs(rt.log, kinds.IMPORT_DENIED)
    finally:
        K.done(rt)


def test_native_step_matches_portable():
    # the native-emitter Runtime.step (MicroPython) against step_py: same
    # agents, same fake clock -> the same witness records and agent results
    from rvm_mp.witness import unpack
    src = """
OUT = []
async def main(rvm):
    h = await rvm.handle("c")
    for i in range(6):
        await rvm.yield_()
        await rvm.sleep_ms(7)
        try:
            await rvm.send(h, b"%d" % i)
        except Exception as e:
            OUT.append(e.args[1])
    OUT.append(await rvm.now())
    raise ValueError("end")
"""
    sink = """
OUT = []
async def main(rvm):
    h = await rvm.handle("c")
    while True:
        OUT.append((await rvm.recv(h, 50))[1])
"""
    from rvm_mp import runtime
    runs = []
    for portable in (True, False):
        pf, k, rt = K.make(step_us=100)
        assert runtime.NATIVE == kt.IS_MP
        try:
            if portable:
                rt.step = rt.step_py
            a = K.load(rt, "a", src)
            b = K.load(rt, "b", sink, {"quota": {"msgs": 3}})
            rt.connect("c", a, b, 2)
            rt.run(max_steps=120)
            recs = []
            for r in rt.log.iter_range(0):
                f = unpack(r)
                recs.append((f[3], f[4], f[5], f[6]) + f[7:11])
            runs.append((recs, _g(rt, b)["OUT"], rt.steps))
        finally:
            K.done(rt)
    assert runs[0] == runs[1]
    assert runs[0][1][0:6] == [b"0", b"1", b"2", b"3", b"4", b"5"]


def test_memory_quota_throttles():
    pf, k, rt = K.make(mem=True)
    try:
        pid = K.load(rt, "m", """
OUT = []
async def main(rvm):
    for i in range(3):
        try:
            OUT.append(await rvm.alloc(16) > 0)
        except Exception as e:
            OUT.append(e.args[1])
""", {"quota": {"mem": 32}})
        rt.run(max_steps=20)
        assert _g(rt, pid)["OUT"] == [True, True, "EQUOTA"]
        th = K.recs(rt.log, kinds.QUOTA_THROTTLE)
        assert th and th[0][6] == pid and th[0][7:10] == (S.Q_MEM, 32, 32)
    finally:
        K.done(rt)


def test_agent_cannot_stop_the_kernel():
    pf, k, rt = K.make()
    try:
        bad = K.load(rt, "bad", """
async def main(rvm):
    await rvm.yield_()
    raise KeyboardInterrupt
""")
        bad2 = K.load(rt, "bad2", """
async def main(rvm):
    await rvm.yield_()
    raise SystemExit(3)
""")
        tick = K.load(rt, "tick", """
N = [0]
async def main(rvm):
    while True:
        await rvm.sleep_ms(5)
        N[0] += 1
""")
        rt.run(max_ms=200)   # returns normally: the kernel was not stopped
        af = [r[6] for r in K.recs(rt.log, kinds.AGENT_FAULT)]
        assert bad in af and bad2 in af
        assert _g(rt, tick)["N"][0] >= 30
        assert rt.stop_reason == 1
    finally:
        K.done(rt)
