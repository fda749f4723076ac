# Watchdog bench (MicroPython unix port and CPython): what the board's
# watchdog costs the kernel. The same runtime runs its loop (Runtime.run:
# a partition switch per step, the feed every fourth step, rate-limited)
# with the watchdog attached and without, interleaved repeats: ratio.
# Attached means Guard.arm/disarm write the partition word and the loop
# feeds, through hal_wdt.Mem32WDT over a C-level word store standing in for
# machine.mem32 (an array: the unix port's mem32 maps /dev/mem).
import sys

from benchutil import ticks_us, ticks_diff
from kb_sched import _boot, YIELDER


def _stats(xs):
    xs = sorted(xs)
    return xs[0], xs[len(xs) // 2]


class _FakeMachine:
    def __init__(self):
        import array
        self.mem32 = array.array("I", [0] * 16)


def bench(emit):
    from rvm_mp import hal_wdt
    from rvm_mp.watchdog import Watchdog
    b, rt = _boot(2, YIELDER, "wdt", native=True)
    old = sys.modules.get("machine")
    sys.modules["machine"] = _FakeMachine()
    try:
        hw = hal_wdt.make({"hw": "mem32", "base": 0})
    finally:
        if old is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = old
    wd = Watchdog(hw, {"timeout_ms": 4000}, rt.pf, rt.log)
    wd.start()
    g = rt.guard
    n = 2000
    for _ in range(50):
        rt.step()

    def switch(on):
        if g is not None:
            g.wd = wd if on else None
            g.wnames = wd.names
            g.wmark = hw.mark if on else None
        t = ticks_us()
        for _ in range(n):
            rt.step()
        return ticks_diff(ticks_us(), t) / n

    def loop(on):   # Runtime.run: the feed every fourth step
        rt.wdog = wd if on else None
        if g is not None:
            g.wd = wd if on else None
            g.wnames = wd.names
            g.wmark = hw.mark if on else None
        t = ticks_us()
        rt.run(max_steps=n)
        return ticks_diff(ticks_us(), t) / n

    for name, fn, what in (("partition switch", switch, "marks the word"),
                           ("kernel loop step", loop, "marks and feeds")):
        on, off = [], []
        for _ in range(15):          # interleaved: both see the same load
            on.append(fn(True))
            off.append(fn(False))
        mn_on, md_on = _stats(on)
        mn_off, md_off = _stats(off)
        emit("%s, watchdog on (%s)" % (name, what), mn_on, "us",
             "min of 15; median %.2f" % md_on)
        emit("%s, watchdog off (floor)" % name, mn_off, "us",
             "min of 15; median %.2f" % md_off)
        emit("watchdog cost, %s (min)" % name, mn_on / mn_off, "x",
             "same runtime, interleaved")
        emit("watchdog cost, %s (median)" % name, md_on / md_off, "x", "")
    emit("feeds in the loop runs", wd.feeds, "feeds",
         "rate-limited to one per timeout/4 = %d ms" % wd.period)
    rt.wdog = None
    if g is not None:
        g.wd = None
        g.wmark = None
    rt.shutdown()
