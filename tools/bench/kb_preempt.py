# Preemption bench (MicroPython unix port and CPython):
#   the cost of the preemption guard on the partition switch path (the same
#   runtime stepped with its Guard and without, interleaved repeats: ratio),
#   and how long a spinning agent runs before it is stopped.
from benchutil import ticks_us, ticks_diff
from kb_sched import _boot, YIELDER

SPIN = b"""
async def main(rvm):
    while True:
        await rvm.yield_()
        n = 0
        while True:
            n += 1
"""


def _stats(xs):
    xs = sorted(xs)
    return xs[0], xs[len(xs) // 2]


def bench_switch_cost(emit):
    b, rt = _boot(2, YIELDER, "pre", native=True)
    g = rt.guard
    for _ in range(50):
        rt.step()
    n = 2000

    def run(guard):
        rt.guard = guard
        t = ticks_us()
        for _ in range(n):
            rt.step()
        return ticks_diff(ticks_us(), t) / n

    on, off = [], []
    for _ in range(9):           # interleaved: both see the same load
        on.append(run(g))
        off.append(run(None))
    rt.guard = g
    mn_on, md_on = _stats(on)
    mn_off, md_off = _stats(off)
    emit("partition switch, preemption guard on", mn_on, "us/switch",
         "min of 9; median %.2f" % md_on)
    emit("partition switch, guard off (floor)", mn_off, "us/switch",
         "min of 9; median %.2f" % md_off)
    emit("guard cost on the switch path (min)", mn_on / mn_off, "x",
         "same runtime, interleaved")
    emit("guard cost on the switch path (median)", md_on / md_off, "x", "")
    rt.shutdown()


def bench_stop_time(emit):
    from rvm_mp import preempt
    b, rt = _boot(1, SPIN, "spin", native=True)
    g = rt.guard
    if g is None or not preempt.available():
        emit("preemption available", 0, "bool", "no mechanism on this port")
        rt.shutdown()
        return
    t0 = ticks_us()
    while g.overruns < 3 and ticks_diff(ticks_us(), t0) < 30000000:
        rt.run(max_ms=200)
    emit("preemption available", 1, "bool", "")
    emit("spinning agent stopped after (worst of %d)" % g.overruns,
         g.longest, "ms", "slice %d ms; CPU time of the main thread / "
         "process, from the watcher first seeing the resume" % g.slice_ms)
    emit("stop time / slice", g.longest / g.slice_ms, "x", "goal <= 2")
    rt.shutdown()


def bench(emit):
    bench_switch_cost(emit)
    bench_stop_time(emit)
