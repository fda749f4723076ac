# The hardware watchdog as the last resort (rvm_mp/watchdog.py), with the
# hardware faked through the platform layer: a reset by the watchdog is
# witnessed on the next boot (F4 reset + the culprit's CPU-overrun fault),
# strikes are counted across boots, a culprit with too many starts held
# while the others run, the kernel alone feeds and marks, and an agent
# reaches none of it. Both runtimes.
import sys

import kt
import agentkit as K
from rvm_mp import hal, kinds, errors, watchdog, hal_wdt
from rvm_mp.boot import Boot
from rvm_mp.witness import unpack

HEAP = "512K"

VICTIM = """
T = []
async def main(rvm):
    while True:
        T.append(await rvm.now())
        await rvm.sleep_ms(20)
"""

# the culprit of a (simulated) watchdog reset: on the fake clock it must
# not really spin, the tests check whether it runs at all
CULPRIT = """
N = [0]
async def main(rvm):
    while True:
        N[0] += 1
        await rvm.sleep_ms(20)
"""

SPEC = {"timeout_ms": 1000, "strikes": 2}


class FakeWDT:
    """Watchdog hardware as a board has it: a timer the kernel starts and
    feeds, a reset cause, a word that survives the reset."""

    def __init__(self, cause=False, word=0):
        self.c = cause
        self.w = word
        self.started = None
        self.feeds = 0
        self.stopped = False
        self.marked = []     # distinct non-zero words written

    def start(self, ms):
        self.started = ms

    def feed(self):
        self.feeds += 1

    def stop(self):
        self.stopped = True
        return True

    def cause(self):
        return self.c

    def scratch(self):
        return self.w

    def mark(self, v):
        self.w = v
        if v and v not in self.marked:
            self.marked.append(v)

    def clear_boot(self):
        self.c = False
        self.w = 0


class WdtPlatform(K.FakePlatform):
    def __init__(self, root, hw):
        K.FakePlatform.__init__(self, root)
        self.hw = hw

    def watchdog(self, spec):
        return self.hw


def _prof(spec=SPEC, culprit=CULPRIT):
    return K.profile(agents=[{"name": "victim"}, {"name": "spin"}],
                     watchdog=dict(spec))


def _boot(root, hw, spec=SPEC, culprit=CULPRIT):
    pf = WdtPlatform(root, hw)
    b = Boot(fs=root, platform=pf, profile=_prof(spec),
             bundles={"victim": K.pack("victim", VICTIM),
                      "spin": K.pack("spin", culprit)},
             module_root=kt.repo_root() + "/rvm_mp")
    rt = b.run()
    return b, rt, pf


def _recs(rt, kind):
    return [unpack(r) for r in rt.log.iter_range(0) if r[10] == kind]


def _this_boot(rt, kind, boot):
    return [r for r in _recs(rt, kind) if r[2] == boot]


def test_no_reset_kernel_starts_feeds_marks_and_stops():
    root = kt.tmpdir("wdt")
    hw = FakeWDT()
    b, rt, pf = _boot(root, hw)
    try:
        assert rt.wdog is not None and rt.guard.wd is rt.wdog
        assert hw.started == 1000
        # the boot half left RAM after phase 6
        assert "rvm_mp.watchdog_boot" not in sys.modules
        assert _recs(rt, kinds.FAULT_F4_RESET) == []
        rt.run(max_ms=3000)   # fake time: the agents sleep, the kernel idles
        assert rt.stop_reason == 1
        # fed at least every timeout/4 of (fake) time, never flooding it
        assert 3000 // 1000 * 2 <= hw.feeds <= 3000 // 250 + 2, hw.feeds
        # every resume marked its partition, and the word was cleared after
        pids = b.pids
        assert watchdog.word(pids["victim"], "victim") in hw.marked
        assert watchdog.word(pids["spin"], "spin") in hw.marked
        assert hw.w == 0
        assert len(rt.sched.task(pids["victim"]).globals["T"]) > 50
    finally:
        rt.shutdown()
    assert hw.stopped


def test_the_word_names_a_partition_and_stays_a_small_int():
    w = watchdog.word(4095, "some-agent")
    assert w >> 28 == 2 and w & 0xFFF == 4095 and w < (1 << 30)
    assert watchdog.word(7, "a") != watchdog.word(7, "b")
    assert watchdog.word(1, "a") & 0xFFF == 1


def _reset_by(root, pid, name, spec=SPEC, culprit=CULPRIT):
    """Boot after a watchdog reset while `name` ran as `pid`."""
    hw = FakeWDT(True, watchdog.word(pid, name))
    b, rt, pf = _boot(root, hw, spec, culprit)
    return b, rt, pf, hw


def test_reset_is_witnessed_on_the_next_boot_and_counted():
    root = kt.tmpdir("wdt")
    b, rt, pf = _boot(root, FakeWDT())
    pid = b.pids["spin"]
    vpid = b.pids["victim"]
    rt.shutdown()
    b, rt, pf, hw = _reset_by(root, pid, "spin")
    try:
        f4 = _this_boot(rt, kinds.FAULT_F4_RESET, b.boot_no)
        assert len(f4) == 1
        r = f4[0]
        assert r[5] == 0 and r[7] == hal.EXIT_WDT == 88
        assert r[8] == errors.ETIMEOUT.code and r[9] == pid and r[10] == 1
        af = _this_boot(rt, kinds.AGENT_FAULT, b.boot_no)
        assert len(af) == 1
        a = af[0]
        assert a[5] == 0 and a[6] == pid
        assert a[8] == errors.ETIMEOUT.code and a[9] == hal.EXIT_WDT and a[10] == 1
        # recorded in phase 5, before any partition of this boot exists
        seqs = [x[0] for x in _this_boot(rt, kinds.BOOT_PHASE, b.boot_no)]
        assert seqs[3] < r[0] < a[0] < seqs[4]
        pc = _this_boot(rt, kinds.PART_CREATE, b.boot_no)
        assert pc and a[0] < pc[0][0]
        import json
        st = json.loads(pf.read_file(watchdog.STRIKES_FILE))
        assert st["spin"][0] == 1
        # one strike: it starts as usual (the reset was its restart)
        assert rt.wdog.held == [] and rt.wdog.culprit == (pid, "spin", 1)
        rt.run(max_ms=500)
        assert rt.sched.task(pid).globals["N"][0] > 5
        assert len(rt.sched.task(vpid).globals["T"]) > 5
        # the hardware's cause and word were consumed: a soft reset does
        # not count the same strike again
        assert hw.c is False
    finally:
        rt.shutdown()


def test_culprit_with_too_many_strikes_is_held_others_run():
    root = kt.tmpdir("wdt")
    b, rt, pf = _boot(root, FakeWDT())
    pid = b.pids["spin"]
    rt.shutdown()
    for strike in (1, 2):
        b, rt, pf, hw = _reset_by(root, pid, "spin")
        if strike == 1:
            assert rt.wdog.held == [] and "spin" in b.pids
            rt.shutdown()
    try:
        # the second strike: its code does not run at all this boot (a
        # module top level that spins would otherwise reset every boot)
        assert rt.wdog.held == ["spin"] and "spin" not in b.pids
        assert ("spin", errors.ETIMEOUT) in b.started
        esc = _this_boot(rt, kinds.FAULT_ESCALATE, b.boot_no)
        assert len(esc) == 1
        e = esc[0]
        assert e[5] == 0 and e[6] == 0 and e[7] == 4 and e[8] == watchdog.HELD == 6
        assert e[9] == errors.ETIMEOUT.code and e[10] == 2
        rej = _this_boot(rt, kinds.BUNDLE_REJECT, b.boot_no)
        assert len(rej) == 1 and rej[0][4] & 1 and rej[0][0] == e[0] + 1
        data = K.pack("spin", CULPRIT)
        from rvm_mp import faults
        assert rej[0][7] == faults.h32(data) and rej[0][8] == errors.ETIMEOUT.code
        assert rej[0][9] == len(data)
        vpid = b.pids["victim"]
        rt.run(max_ms=1000)
        assert rt.stop_reason == 1
        assert len(rt.sched.task(vpid).globals["T"]) > 20  # the others run
        # the operator starts it again by hand (console `spawn`)
        p2 = rt.spawn("spin")
        assert not errors.is_err(p2)
        rt.run(max_ms=300)
        assert rt.sched.task(p2).globals["N"][0] > 3
    finally:
        rt.shutdown()
    # held again at the next boot, even without a new reset
    b, rt, pf = _boot(root, FakeWDT())
    try:
        assert rt.wdog.held == ["spin"] and "spin" not in b.pids
        assert _this_boot(rt, kinds.FAULT_F4_RESET, b.boot_no) == []
    finally:
        rt.shutdown()


def test_a_module_top_level_spinner_is_held_before_its_code_runs():
    """The watchdog runs while the agents load (phase 6, fed between
    loads), so a top level that spins is caught and, at the limit, never
    run again."""
    root = kt.tmpdir("wdt")
    hw = FakeWDT()
    b, rt, pf = _boot(root, hw)
    assert hw.started == 1000
    rt.shutdown()
    # the marks at load name the loading partition: the word of `spin`
    assert watchdog.word(b.pids["spin"], "spin") in hw.marked
    top = "X = []\nfor i in range(3):\n    X.append(i)\n" + CULPRIT
    pid = b.pids["spin"]
    for _ in range(2):
        b, rt, pf, hw = _reset_by(root, pid, "spin", culprit=top)
        rt.shutdown()
    b, rt, pf, hw = _reset_by(root, pid, "spin", culprit=top)
    try:
        assert rt.wdog.held == ["spin"] and "spin" not in b.pids
        assert rt.wdog.culprit == (pid, "spin", 3)
        rt.run(max_ms=200)
        # none of its code ran: no resume or load was ever marked with its
        # name, while the victim's were
        from rvm_mp import faults
        h = faults.h32("spin") & 0xFFFF
        assert hw.marked and [w for w in hw.marked if (w >> 12) & 0xFFFF == h] == []
    finally:
        rt.shutdown()


def test_a_new_bundle_starts_without_strikes():
    root = kt.tmpdir("wdt")
    b, rt, pf = _boot(root, FakeWDT())
    pid = b.pids["spin"]
    rt.shutdown()
    for _ in range(2):
        b, rt, pf, hw = _reset_by(root, pid, "spin")
        rt.shutdown()
    fixed = CULPRIT.replace("sleep_ms(20)", "sleep_ms(25)")
    b, rt, pf = _boot(root, FakeWDT(), culprit=fixed)
    try:
        assert rt.wdog.held == []
        import json
        assert "spin" not in json.loads(pf.read_file(watchdog.STRIKES_FILE))
        rt.run(max_ms=300)
        assert rt.sched.task(b.pids["spin"]).globals["N"][0] > 3
    finally:
        rt.shutdown()


def test_reset_while_the_kernel_ran_blames_no_agent():
    for word in (0, 0x1234567, 0x30000005):   # cleared, garbage, no marker
        root = kt.tmpdir("wdt")
        hw = FakeWDT(True, word)
        b, rt, pf = _boot(root, hw)
        try:
            f4 = _this_boot(rt, kinds.FAULT_F4_RESET, b.boot_no)
            assert len(f4) == 1 and f4[0][7] == hal.EXIT_WDT
            assert f4[0][9] == 0 and f4[0][10] == 0
            assert _this_boot(rt, kinds.AGENT_FAULT, b.boot_no) == []
            assert rt.wdog.held == []
            assert pf.read_file(watchdog.STRIKES_FILE) is None
        finally:
            rt.shutdown()


def test_unknown_name_is_witnessed_without_a_strike():
    root = kt.tmpdir("wdt")
    b, rt, pf, hw = _reset_by(root, 9, "gone-agent")
    try:
        f4 = _this_boot(rt, kinds.FAULT_F4_RESET, b.boot_no)
        assert f4[0][9] == 9 and f4[0][10] == 0
        af = _this_boot(rt, kinds.AGENT_FAULT, b.boot_no)
        assert len(af) == 1 and af[0][6] == 9 and af[0][10] == 0
        assert pf.read_file(watchdog.STRIKES_FILE) is None
    finally:
        rt.shutdown()


def test_corrupt_strikes_file_is_ignored():
    root = kt.tmpdir("wdt")
    b, rt, pf = _boot(root, FakeWDT())
    pid = b.pids["spin"]
    rt.shutdown()
    for junk in (b"\xff\x00", b"[1, 2]", b'{"spin": "x"}', b'{"spin": [9]}'):
        pf.write_file(watchdog.STRIKES_FILE, junk)
        b, rt, pf2, hw = _reset_by(root, pid, "spin")
        try:
            assert rt.wdog.held == []
            assert rt.wdog.culprit[2] == 1
        finally:
            rt.shutdown()
        pf.write_file(watchdog.STRIKES_FILE, b"{}")


def test_hosted_platform_has_no_watchdog_and_loads_nothing():
    assert hal.Platform(kt.tmpdir("wdt")).watchdog(SPEC) is None
    sys.modules.pop("rvm_mp.watchdog", None)
    sys.modules.pop("rvm_mp.watchdog_boot", None)
    root = kt.tmpdir("wdt")
    pf = K.FakePlatform(root)
    b = Boot(fs=root, platform=pf, profile=_prof(),
             bundles={"victim": K.pack("victim", VICTIM),
                      "spin": K.pack("spin", CULPRIT)},
             module_root=kt.repo_root() + "/rvm_mp")
    rt = b.run()
    try:
        assert rt.wdog is None and rt.guard.wd is None
        assert "rvm_mp.watchdog" not in sys.modules
        assert "rvm_mp.watchdog_boot" not in sys.modules
        assert _recs(rt, kinds.FAULT_F4_RESET) == []
    finally:
        rt.shutdown()


ATTACKER = """
FOUND = []
async def main(rvm):
    try:
        import machine
        FOUND.append(machine)
    except ImportError:
        pass
    try:
        m = __import__("rvm_mp.watchdog")
        FOUND.append(m)
    except ImportError:
        pass
    FOUND.append(rvm)
    for k in dir(rvm):
        try:
            FOUND.append(getattr(rvm, k))
        except Exception:
            pass
    while True:
        await rvm.sleep_ms(20)
"""


def _reach(objs, depth=0):
    out = []
    if depth > 3:
        return out
    for o in objs:
        out.append(o)
        t = type(o)
        if t is dict:
            out += _reach(list(o.values()), depth + 1)
        elif t is list or t is tuple:
            out += _reach(list(o), depth + 1)
        else:
            try:
                d = o.__dict__
            except Exception:
                d = None
            if type(d) is dict:
                out += _reach(list(d.values()), depth + 1)
    return out


def test_an_agent_cannot_reach_feed_or_mark_the_watchdog():
    root = kt.tmpdir("wdt")
    hw = FakeWDT()
    pf = WdtPlatform(root, hw)
    prof = K.profile(agents=[{"name": "victim"}, {"name": "evil"}],
                     watchdog=dict(SPEC))
    b = Boot(fs=root, platform=pf, profile=prof,
             bundles={"victim": K.pack("victim", VICTIM),
                      "evil": K.pack("evil", ATTACKER)},
             module_root=kt.repo_root() + "/rvm_mp")
    rt = b.run()
    try:
        pid = b.pids["evil"]
        rt.run(max_ms=500)
        assert rt.stop_reason == 1
        t = rt.sched.task(pid)
        found = t.globals["FOUND"]
        assert len(found) >= 1   # it got its rvm object, nothing more
        bad = [rt.wdog, hw, rt.guard.wmark, rt, pf, rt.guard]
        for o in _reach(found):
            for x in bad:
                assert o is not x, "the agent reached %r" % (x,)
            assert type(o).__name__ != "module", "the agent reached %r" % (o,)
        den = [r for r in _recs(rt, kinds.IMPORT_DENIED) if r[5] == pid]
        assert len(den) >= 2   # machine, rvm_mp.watchdog: refused, witnessed
        # the only words marked are the kernel's own, one per partition
        assert sorted(hw.marked) == sorted(
            [watchdog.word(b.pids["victim"], "victim"),
             watchdog.word(pid, "evil")])
    finally:
        rt.shutdown()


class _Mem(dict):
    def __getitem__(self, a):
        return self.get(a, 0)


class _FakeMachine:
    WDT_RESET = 3

    def __init__(self, cause=0):
        self.mem32 = _Mem()
        self.cause = cause
        self.made = []
        self.rtcmem = bytearray(b"")

    def reset_cause(self):
        return self.cause

    def WDT(self, timeout=0):
        m = self

        class W:
            fed = 0

            def feed(self):
                W.fed += 1
        w = W()
        m.made.append((timeout, w))
        return w

    def RTC(self):
        m = self

        class R:
            def memory(self, b=None):
                if b is None:
                    return bytes(m.rtcmem)
                m.rtcmem = bytearray(b)
        return R()


def _with_machine(fm, fn):
    old = sys.modules.get("machine")
    sys.modules["machine"] = fm
    try:
        return fn()
    finally:
        if old is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = old


def test_emulated_peripheral_words():
    fm = _FakeMachine()
    base = 0x203FFF00

    def go():
        w = hal_wdt.make({"hw": "mem32", "base": "0x203fff00"})
        assert type(w) is hal_wdt.Mem32WDT and w.base == base
        m = fm.mem32
        m[base + 12] = 1
        m[base + 8] = 0x20001005
        assert w.cause() and w.scratch() == 0x20001005
        w.clear_boot()
        assert not w.cause() and w.scratch() == 0
        w.start(4000)
        assert m[base] == 4000
        f0 = m[base + 4]
        w.feed()
        w.feed()
        assert m[base + 4] == f0 + 2
        w.mark(0x20002007)
        assert m[base + 8] == 0x20002007
        assert w.stop() is True and m[base] == 0
    _with_machine(fm, go)


def test_machine_wdt_with_each_scratch_kind():
    for scratch in ({"mem32": 0x4005800C}, "rtc", None):
        fm = _FakeMachine(cause=3)

        def go():
            w = hal_wdt.make({"hw": "machine", "scratch": scratch})
            assert type(w) is hal_wdt.MachineWDT
            assert w.cause() is True
            w.start(5000)
            assert fm.made[0][0] == 5000
            w.feed()
            assert fm.made[0][1].fed == 1
            w.mark(0x2ABCD123)
            if scratch is None:
                assert w.scratch() == 0   # no word: the culprit is unnamed
            else:
                assert w.scratch() == 0x2ABCD123
            w.clear_boot()
            assert w.scratch() == 0
            assert w.stop() is False   # a real WDT runs until the reset
        _with_machine(fm, go)
    fm = _FakeMachine(cause=1)
    assert _with_machine(fm, lambda: hal_wdt.make({}).cause()) is False


def test_a_port_without_the_hardware_gets_none():
    class NoWDT:
        pass
    assert _with_machine(NoWDT(), lambda: hal_wdt.make({"hw": "machine"})) is None
    assert _with_machine(NoWDT(), lambda: hal_wdt.make({"hw": "mem32", "base": 1})) \
        is None
    assert hal_wdt.make({"hw": "nope"}) is None


def test_a_disabled_watchdog_is_not_started():
    root = kt.tmpdir("wdt")
    hw = FakeWDT(True, watchdog.word(3, "spin"))
    spec = dict(SPEC)
    spec["enabled"] = False
    b, rt, pf = _boot(root, hw, spec)
    try:
        assert rt.wdog is None and rt.guard.wmark is None
        assert hw.started is None and hw.c is True   # nothing read or cleared
        assert _recs(rt, kinds.FAULT_F4_RESET) == []
    finally:
        rt.shutdown()


class SlowWDT(FakeWDT):
    """Every resume takes 0.9 of the timeout (the clock moves when the
    partition is marked): the kernel must feed before the next one, or a
    long-running agent could let the timer run out in its neighbour's
    resume and get the neighbour blamed."""

    def __init__(self):
        FakeWDT.__init__(self)
        self.pf = None
        self.events = []

    def feed(self):
        FakeWDT.feed(self)
        self.events.append(("feed", self.pf.ticks_ms()))

    def mark(self, v):
        FakeWDT.mark(self, v)
        if v:
            self.events.append(("run", self.pf.ticks_ms()))
            self.pf.adv(900)


def test_the_kernel_feeds_between_long_resumes():
    root = kt.tmpdir("wdt")
    hw = SlowWDT()
    pf = WdtPlatform(root, hw)
    hw.pf = pf
    b = Boot(fs=root, platform=pf, profile=_prof(),
             bundles={"victim": K.pack("victim", VICTIM),
                      "spin": K.pack("spin", CULPRIT)},
             module_root=kt.repo_root() + "/rvm_mp")
    rt = b.run()
    try:
        hw.events = []
        rt.run(max_steps=40)
        ev = hw.events
        runs = [i for i, e in enumerate(ev) if e[0] == "run"]
        assert len(runs) >= 10
        for i, j in zip(runs, runs[1:]):
            assert ("feed" in [e[0] for e in ev[i:j]]), ev[i:j + 1]
        # and the timer never ran longer than one resume plus a feed period
        last = None
        for kind, t in ev:
            if kind == "feed":
                if last is not None:
                    assert t - last < 1000 + 250, (t - last)
                last = t
    finally:
        rt.shutdown()


def test_switch_path_with_the_watchdog_does_not_allocate():
    from rvm_mp.compat import micropython
    import array
    pf, k, rt = K.make()

    class M:
        mem32 = array.array("I", [0] * 16)
    try:
        a = K.load(rt, "a", """
N = [0]
async def main(rvm):
    while True:
        await rvm.yield_()
        N[0] += 1
""")
        hw = _with_machine(M(), lambda: hal_wdt.make({"hw": "mem32", "base": 0}))
        wd = watchdog.Watchdog(hw, SPEC, pf, rt.log)
        rt.wdog = wd
        rt.guard.wd = wd
        rt.guard.wnames = wd.names
        rt.guard.wmark = hw.mark
        wd.start()
        for _ in range(10):
            rt.step()
        assert M.mem32[8] == 0
        micropython.heap_lock()
        try:
            for _ in range(200):
                rt.step()      # marks and clears the word
                wd.feed()      # rate-limited: the clock did not move
        finally:
            micropython.heap_unlock()
        f0 = M.mem32[4]
        pf.adv(wd.period)
        micropython.heap_lock()
        try:
            wd.feed()          # due: the hardware is fed
        finally:
            micropython.heap_unlock()
        assert rt.sched.task(a).globals["N"][0] >= 200
        assert M.mem32[4] == f0 + 1 and M.mem32[0] == 1000   # fed, started
        assert wd.names == {"a": watchdog.word(0, "a")} and M.mem32[8] == 0
    finally:
        K.done(rt)
