# Preemption bench (MicroPython unix port and CPython):
#   the cost of the preemption guard on the partition switch path (the same
#   runtime stepped with its Guard and without, once each per repeat, back
#   to back: ratio per repeat),
#   and how long a spinning agent runs before it is stopped.
from benchutil import ticks_us, ticks_diff, pair, size
from kb_sched import _boot, YIELDER

SPIN = b"""
async def main(rvm):
    while True:
        await rvm.yield_()
        n = 0
        while True:
            n += 1
"""


def bench_switch_cost(emit):
    # the seed-64k profile as the board runs it (portable switch path)
    b, rt = _boot(2, YIELDER, "pre")
    g = rt.guard
    for _ in range(50):
        rt.step()
    n = size(4000, 1000)

    def run(guard):
        def f(k):
            rt.guard = guard
            for _ in range(k):
                rt.step()
        return f

    on, off = pair(run(g), run(None), n)   # once each, back to back
    rt.guard = g
    emit("partition switch, preemption guard on", on, "us/switch",
         "seed-64k path")
    emit("partition switch, guard off (floor)", off, "us/switch", "same repeat")
    emit("guard cost on the switch path", on / off, "x",
         "same runtime, per-repeat ratio")
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


GROUPS = ("switch_cost", "stop_time")


def bench(emit):
    bench_switch_cost(emit)
    bench_stop_time(emit)
