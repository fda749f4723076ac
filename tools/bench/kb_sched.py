# Scheduler/runtime bench (MicroPython unix port and CPython). Groups:
#   switch, switch128  a partition switch (runtime.step: pick + resume +
#         dispatch + accounting) on the seed-64k profile as the board runs
#         it ("scheduler": {"native": false}: the portable step and pick),
#         2 or 128 yielding agents, against an asyncio task switch with as
#         many tasks (sleep(0)), both measured once per repeat, back to
#         back; ratio per repeat. Then the native-emitter path on the same
#         runtime against asyncio again (MicroPython), and the switch path's
#         heap allocation (and a run under heap_lock).
#   pick  Scheduler pick + account + make_ready with 8 partitions
#   ram   kernel data RAM on the Seed profile: kernel + 4 partitions + the
#         witness ring, with the console (the board ships it) and without.
#         Data RAM = gc.mem_alloc() after gc.collect() after boot minus the
#         same just before boot, in a process that has already imported
#         every module the boot imports (kernel modules and natmods), so
#         the code (bytecode, module dicts, natmod code) is excluded and
#         everything the boot allocates -- the profile dict, kernel tables,
#         the arena, the ring, each agent's task, API objects, globals and
#         the agents' own compiled code (4 tiny agents) -- is included. A
#         note names any module the boot imported late (that code would be
#         counted). One boot per process (ram: with the console, ram0:
#         without): a second boot would find one-time allocations made.
#   boot  in-process boot (code imported first): to the first witness and
#         the 7 phases; boot from .mpy in a fresh process is hb_boot.
import gc
import os
import sys

sys.path.append(__file__.rsplit("/", 3)[0] + "/build/natmods/x64")

from benchutil import ticks_us, ticks_diff, size, ROUND  # noqa: E402

GROUPS = ("switch", "switch128", "pick", "ram", "ram0", "boot")
HEAP = "4M"

IS_MP = sys.implementation.name == "micropython"
KEY = bytes(range(32, 64))
DEV = bytes(range(16))
YIELDER = b"""
async def main(rvm):
    while True:
        await rvm.yield_()
"""
SLEEPER = b"""
async def main(rvm):
    while True:
        await rvm.sleep_ms(100)
"""


def _tmp(tag):
    base = "/tmp/rvm-bench-%s-%s" % (tag, "".join(
        "%02x" % b for b in os.urandom(4)))
    os.mkdir(base)
    return base


def _seed_profile(agents, console=False):
    import json
    from rvm_mp import board
    root = os.getenv("RVM_REPO") or "."
    try:
        f = open(root + "/boards/seed-64k.json")
    except OSError:
        f = open("boards/seed-64k.json")
    with f:
        p = json.load(f)
    p["agents"] = agents
    p["channels"] = []
    p["console"] = console
    return board.from_dict(p)


def _mem():
    gc.collect()
    try:
        return gc.mem_alloc()
    except AttributeError:
        return 0


def _boot(nagents, src, tag, console=False, native=None, partitions=None):
    from rvm_mp import hal, bundle
    from rvm_mp.boot import Boot
    fs = _tmp(tag)
    names = ["a%d" % i for i in range(nagents)]
    agents = [{"name": n} for n in names]
    os.mkdir(fs + "/agents")
    for n in names:  # on the board's fs, as `rvm deploy` puts them
        with open("%s/agents/%s.rvmb" % (fs, n), "wb") as f:
            f.write(bundle.pack(src, {"name": n}, KEY,
                                verdict=bundle.unverified(src)))
    pf = hal.Platform(fs, DEV, KEY)
    prof = _seed_profile(agents, console)
    if partitions:
        prof["limits"]["partitions"] = partitions
    if native is not None:
        prof.setdefault("scheduler", {})["native"] = native
    b = Boot(fs=fs, platform=pf, profile=prof)
    rt = b.run()
    return b, rt



def _asyncio_fn(k):
    """fn(n): n task switches among k asyncio tasks (sleep(0)); None
    without asyncio. Task creation is outside the timed part."""
    try:
        import asyncio
    except ImportError:
        return None
    cnt = [0, 0]

    async def task(n):
        while cnt[0] < n:
            cnt[0] += 1
            await asyncio.sleep(0)

    async def runner(n):
        cnt[0] = 0
        ts = [asyncio.create_task(task(n)) for _ in range(k)]
        await asyncio.sleep(0)   # every task has started
        cnt[0] = 0
        t = ticks_us()
        for x in ts:
            await x
        cnt[1] = ticks_diff(ticks_us(), t)

    def run(n):
        asyncio.run(runner(n))
        return cnt[1]
    return run


def _steps_fn(rt):
    def run(n):
        step = rt.step
        t = ticks_us()
        for _ in range(n):
            step()
        return ticks_diff(ticks_us(), t)
    return run


def _pair_us(a, b, n):
    """a(n), b(n) -> us; both once, the first alternating per repeat."""
    if ROUND & 1:
        tb = b(n)
        ta = a(n)
    else:
        ta = a(n)
        tb = b(n)
    return ta / n, tb / n


def _switch(emit, k):
    from rvm_mp import runtime
    b, rt = _boot(k, YIELDER, "sw%d" % k, partitions=max(8, k + 2))
    for _ in range(4 * k + 50):   # every agent started and yielding
        rt.step()
    n = size(4000 if k <= 8 else 20000, 1000 if k <= 8 else 4000)
    ours = _steps_fn(rt)
    peer = _asyncio_fn(k)
    path = "native" if runtime.NATIVE else "portable"
    tag = "%d partitions" % k
    if peer is None:
        emit("partition switch, %s, %s path" % (tag, path),
             ours(n) / n, "us/switch", "no asyncio on this runtime")
    else:
        peer(64)
        gc.collect()
        sw, asw = _pair_us(ours, peer, n)
        emit("partition switch, %s, %s path (seed-64k)" % (tag, path), sw,
             "us/switch", "runtime.step(), one agent resumed per step")
        emit("asyncio task switch, %d tasks" % k, asw, "us/switch",
             "sleep(0), same repeat")
        emit("partition switch / asyncio, %s, %s path" % (tag, path),
             sw / asw, "x", "goal <= %s" % ("0.8" if k <= 2 else "1.0"))
        if not runtime.NATIVE and runtime.use_native(True):
            ours(64)
            gc.collect()
            sw, asw = _pair_us(ours, peer, n)
            emit("partition switch, %s, native path" % tag, sw, "us/switch",
                 "Runtime.step/Scheduler.pick native (profiles with native: true)")
            emit("partition switch / asyncio, %s, native path" % tag,
                 sw / asw, "x", "same repeat")
            runtime.use_native(False)
    # allocation on the switch path (the board's path)
    gc.collect()
    if IS_MP:
        gc.disable()
        a = gc.mem_alloc()
        for _ in range(1000):
            rt.step()
        a2 = gc.mem_alloc()
        gc.enable()
        emit("switch path heap allocation, %s" % tag, (a2 - a) / 1000.0,
             "bytes/switch", "gc.mem_alloc delta, gc disabled")
        import micropython
        locked_ok = 1
        micropython.heap_lock()
        try:
            for _ in range(500):
                rt.step()
        except MemoryError:
            locked_ok = 0
        finally:
            micropython.heap_unlock()
        emit("switch path runs under heap_lock, %s" % tag, locked_ok, "bool",
             "1 = 500 switches with the heap locked")
    rt.shutdown()


def bench_switch(emit):
    _switch(emit, 2)


def bench_switch128(emit):
    _switch(emit, 128)


def bench_pick(emit):
    from rvm_mp import scheduler as S
    from rvm_mp.witness import WitnessLog
    from rvm_mp.compat import ticks_ms
    log = WitnessLog(DEV, key=KEY, ring=32)
    s = S.Scheduler(log, ticks_ms, ticks_us, capacity=8)
    now = ticks_ms()
    for i in range(8):
        t = S.Task(i + 1)
        t.deadline_ms = 10 * (i + 1)
        s.add(t)
        s.make_ready(t, now)
    n = size(5000, 1000)
    t0 = ticks_us()
    for _ in range(n):
        t = s.pick(now)
        s.ran(t, now, 0, 0)
        s.make_ready(t, now)
    emit("scheduler pick+account+ready, 8 partitions",
         ticks_diff(ticks_us(), t0) / n, "us/op", "Scheduler.pick as the class has it")


# what the seed boot imports (the ram group imports it all first: code is
# not data); a module the boot imports beyond these is named in the note
_BOOT_MODULES = (
    "api", "blockdev", "board", "boot", "buddy", "bundle", "captable",
    "checkpoint", "compat", "errors", "faults", "flashfs", "hal", "hmac256",
    "impls", "importgate", "ipc", "kernel", "kinds", "lease", "partition",
    "preempt", "proof3", "proofgate", "reconstruct", "region", "runtime",
    "scheduler", "syscalls", "tiers", "witness", "witness_store",
    "witness_verify", "control", "frame")
_NATMODS = ("rvmn_link", "rvmn_p1", "rvmn_crc")


def _import_all():
    for m in _BOOT_MODULES:
        try:
            __import__("rvm_mp." + m)
        except ImportError:
            pass
    from rvm_mp import impls
    for m in _NATMODS:
        impls.natmod(m)
    import json  # noqa: F401
    import hashlib  # noqa: F401
    import struct  # noqa: F401


def _data_ram(console):
    before = set(sys.modules)
    a0 = _mem()
    b, rt = _boot(4, SLEEPER, "ram", console=console)
    a1 = _mem()
    late = sorted(m for m in sys.modules if m not in before)
    rt.run(max_ms=300)
    a2 = _mem()
    rt.shutdown()
    return (a1 - a0) / 1024.0, (a2 - a0) / 1024.0, late


def _ram(emit, console):
    if not IS_MP:
        emit("kernel data RAM", None, "KB", "MicroPython only")
        return
    _import_all()
    kb, kb_run, late = _data_ram(console)
    note = "; late imports counted: " + ",".join(late) if late else ""
    if console:
        emit("data RAM: kernel + 4 partitions + ring + console", kb, "KB",
             "seed-64k on the 64-bit unix port (the 28 KB goal is the "
             "32-bit board's: hb_ram32)" + note)
        emit("data RAM with console, after 0.3 s running", kb_run, "KB", "")
    else:
        emit("data RAM: kernel + 4 partitions + ring, no console", kb, "KB",
             note[2:])


def bench_ram(emit):
    _ram(emit, True)


def bench_ram0(emit):
    # its own process: a second boot in the same process would find the
    # one-time allocations of the first (caches, preallocated errors) made
    _ram(emit, False)


def bench_boot(emit):
    _import_all()
    t = ticks_us()
    b, rt = _boot(4, SLEEPER, "boot")
    total = ticks_diff(ticks_us(), t) / 1000.0
    emit("boot to first witness (seed, code imported)", b.t_first_witness_ms,
         "ms", "goal <= 50 ms on the unix port")
    emit("boot total (seed, 4 agents, code imported)", total, "ms",
         "7 phases incl. hashing the kernel modules, 4 bundles verified")
    rt.shutdown()


def bench(emit):
    for g in GROUPS:
        globals()["bench_" + g](emit)
