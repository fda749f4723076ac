# Process partitions (CPython on Linux): the cost of a syscall when the
# agent is a child process, against the same agent in-process, measured in
# the same run; spawn time and RSS per child.
#
# Rows:
#   syscall round trip, in-process   µs per kernel call (send or recv on a
#                                    loop-back channel), one run per repeat
#   syscall round trip, process      the same agent as a child process
#   process / in-process             ratio (same run)
#   floor: raw pipe ping-pong        µs per round trip of 20 bytes between two
#                                    Python processes over a socketpair (poll,
#                                    read, write; no kernel work): what any
#                                    process boundary costs on this machine now
#   process - in-process - floor     what the frames and the child's driver add
#   spawn to READY                   median µs from Popen to the child's READY
#                                    frame (fresh interpreter, confinement,
#                                    agent source compiled)
#   RSS per child                    median VmRSS of 5 live children
#   send or recv of 4 KB             µs per call with 4 KB payloads, in-process
#                                    and process (the bytes cross the pipe: no
#                                    zero-copy)
# Each run is K2 - K1 iterations' time difference, so spawn and fixed costs
# cancel; the two modes run back to back in each repeat (tools/bench.py
# gives the min and median over repeats).
import os
import statistics
import sys
import tempfile
import time

from rvm_mp import board, kinds
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.runtime import Runtime
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp import bundle

KEY = bytes(range(32))
DEV = bytes(range(16))
AGENT = """
async def main(rvm):
    h = await rvm.handle("loop")
    p = b"x" * %d
    for i in range(%d):
        await rvm.send(h, p)
        await rvm.recv(h)
    await rvm.exit(0)
"""
IDLE = """
async def main(rvm):
    while True:
        await rvm.sleep_ms(50)
"""


def _rt(isolation):
    prof = board.from_dict({
        "name": "bench", "ram": 1 << 28, "isolation": isolation,
        "witness": {"ring": 1 << 16, "seal_every": 0, "segment_records": 64},
        "limits": {"partitions": 16, "caps_per_partition": 16,
                   "queue_depth": 8, "payload_max": 8192, "arena": 1 << 16,
                   "graph_nodes": 8},
        "process": {"budget_ms": 60000}})
    root = tempfile.mkdtemp(prefix="hb_proc")
    pf = Platform(root, DEV, KEY)
    log = WitnessLog(DEV, key=KEY, ring=1 << 16, clock=pf.ticks_ms)
    k = Kernel(pf, prof, log=log)
    rt = Runtime(k, pf, prof, fs=root)
    rt.sched.start(pf.ticks_ms())
    return rt


def _load(rt, name, src):
    return rt.load(bundle.pack(src.encode(), {"name": name}, KEY,
                               verdict=bundle.unverified(src.encode())), {}, 0, 0,
                   name)


def _exited(rt, pid):
    t = rt.sched.task(pid)
    return t is None or t.coro is None


def _run(isolation, iters, size=1):
    rt = _rt(isolation)
    pid = _load(rt, "loop", AGENT % (size, iters))
    h = rt.k.chan_create(pid, 8)
    rt.set_handle(pid, "loop", h)
    if rt.procs is not None:   # wait for the child to be up
        while rt.procs.os_pid(pid) is None or not rt.log.query(
                kind=kinds.PROC_SPAWN):
            rt.step()
    t0 = time.perf_counter()
    t = rt.sched.task(pid)
    step = rt.step
    while t.coro is not None:
        step()
    dt = time.perf_counter() - t0
    rt.shutdown()
    return dt


def _per_call(isolation, size=1, k1=100, k2=1100):
    return (_run(isolation, k2, size) - _run(isolation, k1, size)) \
        / ((k2 - k1) * 2) * 1e6


_ECHO = ("import os\nwhile True:\n    b = os.read(0, 65536)\n"
         "    if not b:\n        break\n    os.write(0, b)\n")


def _floor(n=2000):
    import select
    import socket
    import subprocess
    a, b = socket.socketpair()
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", _ECHO],
                         stdin=b.fileno(), close_fds=True)
    b.close()
    fd = a.fileno()
    a.setblocking(False)
    po = select.poll()
    po.register(fd, select.POLLIN)
    msg = b"x" * 20

    def rt(k):
        t0 = time.perf_counter()
        for _ in range(k):
            os.write(fd, msg)
            po.poll(1000)
            os.read(fd, 65536)
        return (time.perf_counter() - t0) / k * 1e6
    rt(200)
    v = rt(n)
    a.close()
    p.wait()
    return v


def _rss_kb(ospid):
    with open("/proc/%d/status" % ospid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench(emit):
    if not sys.platform.startswith("linux"):
        emit("process partitions", 0, "-", "Linux only: skipped")
        return
    inp, proc, big, bigi, fl = [], [], [], [], []
    import benchutil
    for _ in range(benchutil.INNER):   # 1 under tools/bench.py: its repeats
        inp.append(_per_call("inprocess"))
        proc.append(_per_call("process"))
        fl.append(_floor())
        bigi.append(_per_call("inprocess", 4096, 100, 600))
        big.append(_per_call("process", 4096, 100, 600))
    mi, mp = statistics.median(inp), statistics.median(proc)
    mf = statistics.median(fl)
    emit("syscall round trip, in-process", mi, "us",
         "")
    emit("syscall round trip, process", mp, "us",
         "goal <= 50")
    emit("process / in-process", mp / mi, "x", "same run")
    emit("floor: raw pipe ping-pong, two processes", mf, "us",
         "")
    emit("process - in-process - floor", mp - mi - mf, "us",
         "frames + child driver")
    emit("send or recv of 4 KB, in-process",
         statistics.median(bigi), "us", "per call")
    emit("send or recv of 4 KB, process",
         statistics.median(big), "us", "per call; bytes copied, no zero-copy")
    rt = _rt("process")
    pids = [_load(rt, "idle%d" % i, IDLE) for i in range(5)]
    t0 = time.monotonic()
    while len(rt.log.query(kind=kinds.PROC_SPAWN)) < 5 and \
            time.monotonic() - t0 < 60:
        rt.step()
    sp = [unpack(r)[9] for r in rt.log.query(kind=kinds.PROC_SPAWN)]
    rss = [_rss_kb(rt.procs.os_pid(p)) for p in pids
           if rt.procs.os_pid(p) is not None]
    rt.shutdown()
    emit("spawn to READY (median of 5, started together)",
         statistics.median(sp) / 1000.0, "ms", "min %.1f" % (min(sp) / 1000.0))
    emit("RSS per child partition (median of 5)", statistics.median(rss),
         "KB", "fresh python -I -S + agent")
