# Proof gate and IPC bench (kernel: runs on MicroPython and CPython).
#
# Rows: P1 capability check (gate.p1), the full gate P1+P2 (gate.check on
# its success path: table lookup, partition state, ownership chain of a
# depth-2 capability, time window), IPC send+recv of a 16-byte message
# through the Kernel facade (gate, copy, witness records, edge counters),
# and a floor measured in the same run: an empty method call with the same
# five arguments. Ratios against the floor are their own rows. Goals on the
# MicroPython unix port (ADR-132 DC-3): P1 <= 1 us, P1+P2 <= 10 us.
# Also: heap taken by the Seed profile's kernel objects (MicroPython only).
import benchutil
from benchutil import per_op_us
from rvm_mp import board
from rvm_mp.compat import mem_alloc, collect, IS_MICROPYTHON
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.captable import CapTable, R_READ, R_WRITE, R_GRANT, OT_CHANNEL
from rvm_mp.proofgate import OP_RECV
from rvm_mp import proofgate
from rvm_mp import witness  # noqa: F401 (imported before the heap is measured)

N = 20000


def _min(a, b):
    return b if a is None or b < a else a


class _Floor:
    def call(self, a, b, c, d, e):
        return a


def bench(emit):
    prof = board.load_file("boards/seed-64k.json")
    pl = Platform("/tmp", device_id=bytes(16), key=bytes(range(32)))
    collect()
    m0 = mem_alloc()
    k = Kernel(pl, prof)
    for _ in range(3):
        k.part_start(0, k.part_create(0))
    collect()
    if IS_MICROPYTHON:
        emit("seed kernel state heap (Kernel() + 3 partitions)", mem_alloc() - m0,
             "bytes", "witness ring and tables; code and profile excluded")
        collect()
        m1 = mem_alloc()
        ct = CapTable(k.caps.n, k.caps.per)
        for pid in range(1, 9):
            ct.open(pid)
        collect()
        emit("seed capability tables (144-entry pool + 8 x 16 handles)",
             mem_alloc() - m1, "bytes")
        del ct
    rx = k.chan_create(1)
    mid = k.cap_derive(1, rx, R_READ | R_WRITE | R_GRANT)
    h = k.cap_grant(1, mid, 2, R_READ)          # depth 2, in another table
    tx = k.cap_grant(1, rx, 2, R_WRITE)
    g = k.gate
    fl = _Floor()

    def floor(n):
        c = fl.call
        for _ in range(n):
            c(2, h, OT_CHANNEL, -1, R_READ)

    def p1(n):
        c = g.p1
        for _ in range(n):
            c(2, h, OT_CHANNEL, -1, R_READ)

    def full(n):
        c = g.check
        for _ in range(n):
            c(2, h, OT_CHANNEL, -1, R_READ, OP_RECV)

    payload = b"0123456789abcdef"

    def ipc(n):
        # the kernel loop calls log.service() after each scheduler step; here
        # every 8 pairs (16 records, half the Seed ring), its cost included
        s = k.send
        r = k.recv
        svc = k.log.service
        for i in range(n):
            s(2, tx, payload)
            r(1, rx)
            if i & 7 == 7:
                svc()

    assert g.p1(2, h, OT_CHANNEL, -1, R_READ) >= 0
    assert g.check(2, h, OT_CHANNEL, -1, R_READ, OP_RECV) >= 0
    # best of INNER of each (1 under tools/bench.py, whose repeats give the
    # min and median), interleaved so a burst of machine load hits all rows
    t_floor = t_p1 = t_full = t_ipc = None
    for _ in range(benchutil.INNER):
        t_floor = _min(t_floor, per_op_us(floor, N, 1))
        t_p1 = _min(t_p1, per_op_us(p1, N, 1))
        t_full = _min(t_full, per_op_us(full, N, 1))
        t_ipc = _min(t_ipc, per_op_us(ipc, N // 10, 1))
    assert k.recv(1, rx) is not None
    emit("floor: empty method call, 5 args", t_floor, "us/op")
    emit("P1 capability check (gate.p1)", t_p1, "us/op",
         "goal <= 1 us on MicroPython; native emitter" if proofgate._p1_native
         is not None and IS_MICROPYTHON else "goal <= 1 us on MicroPython")
    emit("full gate P1+P2 (gate.check, depth-2 cap)", t_full, "us/op",
         "goal <= 10 us on MicroPython")
    emit("IPC send+recv 16 B (Kernel.send + Kernel.recv)", t_ipc, "us/op",
         "2 witness records + amortized log.service, h32 of the payload")
    if t_floor > 0:
        emit("P1 / floor", t_p1 / t_floor, "x")
        emit("P1+P2 / floor", t_full / t_floor, "x")
        emit("IPC send+recv / floor", t_ipc / t_floor, "x")
    if t_p1 > 0:
        emit("P1+P2 / P1", t_full / t_p1, "x")
