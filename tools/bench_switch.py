# Switch and record bench: a partition switch against an asyncio task switch
# at N partitions/tasks, and a witness record with its chain link against
# its floor. Kernel-side (MicroPython unix port or CPython):
#
#   .venv/bin/micropython -X heapsize=4M tools/bench_switch.py [--quick]
#        [--sizes=2,128] [--paths=portable,native] [--no-emit] [--repeats=R]
#
# Every figure is min and median of R interleaved repeats (R = 11, 5 with
# --quick); each ratio pairs the two sides measured back to back in the
# same repeat, and its min/median are over those paired ratios. Each side
# runs once untimed before its timed sample (one gc.collect per repeat).
#
#   switch N portable   Runtime.step_py + Scheduler.pick_py (seed-64k's path)
#   switch N native     switch_native.step + the C pick where rvmn_pick
#                       loads, else the native-emitter pick (bigger profiles)
#   asyncio N           N tasks doing `await asyncio.sleep(0)`
#   emit+link           a record with its link: WitnessLog.emit where it
#                       links in C (rvmn_link.rec_link), else emit +
#                       link_pending per record; checked linked after
#                       each sample
#   floor               struct.pack_into of the 32-byte header into a ring
#                       slot + SHA-256 of the 68 linked bytes + the 32-byte
#                       link stored into the slot (hashlib)
import gc
import os
import sys

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.getcwd() + "/tools/bench")
if sys.implementation.name == "micropython":
    sys.path.insert(0, os.getcwd() + "/build/natmods/x64")

from benchutil import ticks_us, ticks_diff  # noqa: E402
import kb_sched as KS  # noqa: E402

QUICK = "--quick" in sys.argv
R = 5 if QUICK else 11
SIZES = (2, 128)
PATHS = ("portable", "native")
EMIT = "--no-emit" not in sys.argv
for _a in sys.argv:
    if _a.startswith("--sizes="):
        SIZES = [int(x) for x in _a[8:].split(",") if x]
    elif _a.startswith("--repeats="):
        R = int(_a[10:])
    elif _a.startswith("--paths="):
        PATHS = _a[8:].split(",")


def _stats(xs):
    xs = sorted(xs)
    return xs[0], xs[len(xs) // 2]


def _boot(n, native):
    sp = KS._seed_profile

    def prof(agents, console=False):   # room for n partitions
        p = sp(agents, console)
        p["limits"]["partitions"] = n + 2
        return p
    KS._seed_profile = prof
    try:
        b, rt = KS._boot(n, KS.YIELDER, "bsw%d" % n, native=native)
    finally:
        KS._seed_profile = sp
    assert len(rt.sched.tasks) >= n, "only %d partitions booted" % len(
        rt.sched.tasks)
    for _ in range(4 * n + 50):
        rt.step()
    return rt


def _ours(rt, steps):
    def run():
        step = rt.step
        t = ticks_us()
        for _ in range(steps):
            step()
        return ticks_diff(ticks_us(), t) / steps
    return run


def _asyncio(n, steps):
    import asyncio
    cnt = [0]

    async def task():
        while cnt[0] < steps:
            cnt[0] += 1
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*[task() for _ in range(n)])

    def run():
        cnt[0] = 0
        t = ticks_us()
        asyncio.run(main())
        return ticks_diff(ticks_us(), t) / steps
    return run


def _emit_link(n):
    from rvm_mp.witness import WitnessLog
    from rvm_mp import kinds
    log = WitnessLog(bytes(range(16)), boot=1, key=bytes(range(32, 64)),
                     ring=64, clock=lambda: 12345)
    k = kinds.IPC_SEND

    def run():
        emit = log.emit
        link = log.link_pending
        t = ticks_us()
        if getattr(log, "_rl", None) is not None:   # emit links in C
            for i in range(n):
                emit(k, 1, 2, i, 7, 8, 9)
        else:   # packed by emit, linked by link_pending
            for i in range(n):
                emit(k, 1, 2, i, 7, 8, 9)
                link()
        d = ticks_diff(ticks_us(), t) / n
        assert log._linked == log.next_seq   # every record has its link
        return d
    return run


def _floor(n):
    import hashlib
    import struct
    ring = bytearray(64 * 64)
    buf = bytearray(68)
    buf[0:4] = b"RVMW"
    mv = memoryview(ring)
    pack_into = struct.pack_into
    sha = hashlib.sha256

    def run():
        t = ticks_us()
        for i in range(n):
            s = (i & 63) * 64
            pack_into("<IIHBBHHIIII", ring, s, i, 12345, 1, 9, 0, 1, 2, i,
                      7, 8, 9)
            buf[36:68] = mv[s:s + 32]
            mv[s + 32:s + 64] = sha(buf).digest()
        return ticks_diff(ticks_us(), t) / n
    return run


def pair(name, a, b, bname):
    ra = []
    rb = []
    rr = []
    for _ in range(R):
        gc.collect()   # then each side warm (a collect leaves caches cold)
        a()
        x = a()
        b()
        y = b()
        ra.append(x)
        rb.append(y)
        rr.append(x / y)
    print("%-28s min %7.2f  med %7.2f us" % ((name,) + _stats(ra)))
    print("%-28s min %7.2f  med %7.2f us" % ((bname,) + _stats(rb)))
    print("%-28s min %7.3f  med %7.3f x" % ((name + " / " + bname,) +
                                           _stats(rr)))


def main():
    from rvm_mp import runtime, impls
    steps = 1000 if QUICK else 3000
    for n in SIZES:
        for path in PATHS:
            rt = _boot(n, path == "native")
            if path == "native":
                print("  (native: pick %s)" % impls.which().get("pick"))
            pair("switch %d %s" % (n, path), _ours(rt, steps),
                 _asyncio(n, steps), "asyncio %d" % n)
            rt.shutdown()
            runtime.use_native(False)
    if not EMIT:
        return
    n = 1000   # short samples: more of them miss the other load
    a = _emit_link(n)
    print("  (link: %s)" % impls.which().get("link"))
    pair("emit+link", a, _floor(n), "floor")


main()
