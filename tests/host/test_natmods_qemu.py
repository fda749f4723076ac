"""The cross-built natmods loaded and run on the emulated Cortex-M3 board
(MicroPython 1.29 firmware, qemu mps2-an385): the armv6m and the armv7m
builds each run one script of vectors (SHA-256 of every length 0..119
against the board's hashlib, chain link and window verify with the heap
locked, CRC against binascii, the mincut step/phase/merge against a
portable copy, P1 refusal codes, the pick). The same script runs on the
unix port with the x64 build: every arch must print the same lines. The
armv7emsp build (Cortex-M4F) is refused by this M3 board with a clean
ValueError. Runner: tests/host/natmod_qemu.py.
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import natmod_qemu as Q  # noqa: E402

ROOT = Q.ROOT
OUT = os.path.join(ROOT, "build", "natmods")
MODS = ("rvmn_crc", "rvmn_cut", "rvmn_link", "rvmn_p1", "rvmn_pick")

SCRIPT = r'''
import array, binascii, hashlib, micropython, time
import rvmn_link, rvmn_crc, rvmn_cut, rvmn_p1, rvmn_pick
res = []
o = bytearray(32)
for n in range(120):
    m = bytes([(7 * i + 3) & 255 for i in range(n)])
    rvmn_link.digest3_into(m[:n // 2], b'', m, n // 2, n - n // 2, o)
    assert bytes(o) == hashlib.sha256(m).digest(), n
res.append('sha ok')
ring = bytearray(bytes([(5 * i + 1) & 255 for i in range(4 * 64)]))
head = bytearray(hashlib.sha256(b'a').digest())
anchor = bytes(head)
rvmn_link.link_range(head, ring, 0, 4, 4)
res.append(binascii.hexlify(head).decode())
h = hashlib.sha256(b'RVMW'); h.update(anchor); h.update(ring[0:32])
assert h.digest() == ring[32:64]
res.append(rvmn_link.verify(anchor, ring, 4))
ring[2 * 64 + 5] ^= 1
head[:] = ring[96:128]      # relink from record 1: the window verifies again
k = k2 = 0                  # globals exist before the heap is locked
micropython.heap_lock()
try:
    k = rvmn_link.verify(anchor, ring, 4)
    rvmn_link.link_range(head, ring, 2, 2, 4)
    k2 = rvmn_link.verify(anchor, ring, 4)
    rvmn_link.digest3_into(b'RVMW', head, ring, 64, 32, o)
finally:
    micropython.heap_unlock()
res.append((k, k2))
for n in (0, 1, 9, 100, 257):
    d = bytes([(3 * i) & 255 for i in range(n)])
    assert rvmn_crc.crc32(d) == binascii.crc32(d) & 0xffffffff, n
    assert rvmn_crc.crc32(d[n // 2:], rvmn_crc.crc32(d[:n // 2])) == rvmn_crc.crc32(d)
res.append(rvmn_crc.crc32(b'123456789'))

def step_py(w, n, act, m, added, key):
    best = -1
    bk = -1
    for i in range(m):
        v = act[i]
        if not added[v] and key[v] > bk:
            bk = key[v]
            best = v
    if best < 0:
        return -1
    added[best] = 1
    for i in range(m):
        v = act[i]
        if not added[v]:
            key[v] += w[best * n + v]
    return best

n = 12
w = array.array('i', [0] * (n * n))
s = 7
for i in range(n):
    for j in range(i + 1, n):
        s = (s * 1103515245 + 12345) & 0x7fffffff
        w[i * n + j] = w[j * n + i] = s % 1000
act = array.array('H', range(n))
a1, a2 = bytearray(n), bytearray(n)
k1, k2 = array.array('i', [0] * n), array.array('i', [0] * n)
order = []
while True:
    v1 = step_py(w, n, act, n, a1, k1)
    v2 = rvmn_cut.ma_step(w, n, act, n, a2, k2)
    assert v1 == v2 and list(k1) == list(k2)
    if v1 < 0:
        break
    order.append(v1)
a3, k3 = bytearray(n), array.array('i', [0] * n)
r = rvmn_cut.ma_phase(w, n, act, n, a3, k3, n, False)
assert r == (order[-2] << 16) | order[-1]
res.append((order, list(k3)))
res.append((rvmn_cut.merge(w, n, act, n, order[-2], order[-1]), list(act)[:n - 1], sum(w)))

class G:
    pass
g = G()
g._tables = {1: array.array('i', [1 << 16] * 4)}
g._per = 4
g._key = array.array('i', [0] * 8)
g._rights = bytearray(8)
g._tables[1][2] = (3 << 16) | 5
g._key[4] = (2 << 16) | 7
g._rights[4] = 3
rvmn_p1.init('ESTATE', 'EBADHANDLE', 'ESTALE', 'EWRONGOBJ', 'ERIGHTS')
cases = ((1, 0x302, 2, 7, 1), (1, 0x302, 2, 7, 4), (2, 0x302, 2, 7, 1),
         (1, 0x202, 2, 7, 1), (1, 0x302, 3, 7, 1), (1, 0x302, 2, -1, 3),
         (1, 0x302, 0, -1, 0), (1, 255, 2, 7, 1), (1, 0x309, 2, 7, 1),
         ('1', 0x302, 2, 7, 1), (1, True, 2, 7, 1), (1, 0x303, 2, 7, 1),
         (1, 0x103, 2, 7, 1))
res.append([rvmn_p1.p1(g, *c) for c in cases])

rvmn_pick.init(time.ticks_add(0, -1))

class T:
    def __init__(self, name, state, fl, dl):
        self.name = name
        self.state = state
        self.fl = fl
        self.deadline = time.ticks_add(1000, dl)

class S:
    # the fields and the two callbacks the C pick uses (rvm_mp/scheduler.py)
    def __init__(self, mode, rq, far=False, far_until=50, rstart=0):
        self.mode = mode
        self.horizon = 100
        self.rq = list(rq)
        self.nrq = len(rq)
        self.far_until = time.ticks_add(1000, far_until) if far else None
        self.e_reflex = 0
        self.reflex_start = rstart
        self.reflex_budget_us = 5000
        self.reflex_overruns = 0
        self.calls = []

    def clock_us(self):
        return 9000

    def _rq_del(self, i):
        self.calls.append('del')
        self.rq.pop(i)
        self.nrq -= 1

    def pick_scan(self, now):
        self.calls.append('scan')
        return self.rq[-1]

soft, hard = T('soft', 0, 0, 20), T('hard', 0, 1, 20)
stale, late = T('stale', 1, 0, 0), T('late', 0, 0, -150)
cases = ((0, [soft]), (1, [soft]), (0, [hard, soft]), (1, [hard, soft]),
         (2, [soft, hard]), (0, [stale, soft]), (0, [late, soft]),
         (0, [soft, hard], True), (0, [soft], True, -50), (0, [stale]),
         (2, [stale]), (1, [hard, soft], False, 50, 6000))
picks = []
for c in cases:
    s = S(*c)
    t = rvmn_pick.pick(s, 1000)
    picks.append((t.name if t else None, s.mode, s.e_reflex,
                  s.far_until is not None, s.calls))
res.append(picks)

class Q:
    def __init__(self, name, fl, boost, dl, last):
        self.name = name
        self.fl = fl
        self.boost = boost
        self.wboost = 0
        self.deadline = time.ticks_add(-20, dl)   # across the tick wrap
        self.last = last
        self.hidx = -1

class H:
    pass
h = H()
h.rq = [None] * 8
h.nrq = 0
qs = [Q('a', 0, 0, 50, 1), Q('b', 1, 0, 90, 2), Q('c', 0, 160, 55, 3),
      Q('d', 0, 0, 50, 0), Q('e', 0, 0, 10, 4), Q('f', 1, 0, 30, 5)]
for q in qs:   # push: a hole at the end, sifted up
    h.nrq += 1
    rvmn_pick.sift(h, q, h.nrq - 1)
order = []
while h.nrq:   # pop the top: the last entry into slot 0, sifted down
    top = h.rq[0]
    order.append(top.name)
    h.nrq -= 1
    m = h.rq[h.nrq]
    h.rq[h.nrq] = None
    if h.nrq:
        rvmn_pick.sift(h, m, 0)
res.append(order)

head = bytearray(32)
ring = bytearray(3 * 64)
for sq in range(7):   # pack + link at emit (WitnessLog.emit's C path)
    rvmn_link.rec_link(head, ring, (sq % 3) * 64, sq, -5, 0x12345, 0x1FF, 2,
                       -1, 70000, sq << 40, -sq, 7, 1 << 31)
res.append(binascii.hexlify(head).decode() + " " +
           binascii.hexlify(ring[64:96]).decode())
for x in res:
    print(x)
'''


def _need(arch):
    d = os.path.join(OUT, arch)
    missing = [m for m in MODS if not os.path.exists(os.path.join(d, m + ".mpy"))]
    if missing:
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        import natmods
        if arch != "x64" and not natmods.toolchain_ok(arch):
            pytest.skip("arm-none-eabi-gcc missing: `make natmods` installs it")
        done, failed = natmods.build((arch,), OUT, log=lambda s: None)
        assert not failed, failed
    return d


def _unix_lines(tmp_path):
    d = _need("x64")
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    p = subprocess.run([mp, "-c", "import sys\nsys.path.insert(0, %r)\n" % d + SCRIPT],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip().splitlines()


def _board_lines(arch):
    why = Q.available()
    if why:
        pytest.skip(why)
    d = _need(arch)
    with Q.QemuBoard() as b:
        for m in MODS:
            b.put("/%s.mpy" % m, open(os.path.join(d, m + ".mpy"), "rb").read())
        out = b.run(SCRIPT, timeout=120)
        arch_no = int(b.run("import sys; print(sys.implementation._mpy >> 10)").strip())
    return out.strip().splitlines(), arch_no


@pytest.mark.parametrize("arch", ["armv6m", "armv7m"])
def test_cross_built_natmods_run_on_the_cortex_m3_board(arch, tmp_path):
    want = _unix_lines(tmp_path)
    assert want[0] == "sha ok"
    assert want[2] == "4" and want[3] == "(2, 4)"
    assert want[7] == str([4, "ERIGHTS", "ESTATE", "ESTALE", "EWRONGOBJ", 4, 4,
                           "EBADHANDLE", "EBADHANDLE", "ESTATE", "EBADHANDLE",
                           "ESTALE", "EBADHANDLE"])
    # the pick: heap top, Reflex entry, overrun/Recovery/late/far -> the
    # scan, stale tops dropped (rvm_mp/scheduler.py pick_py)
    assert want[8] == str([
        ("soft", 0, 0, False, []), ("soft", 0, 0, False, []),
        ("hard", 1, 1, False, []), ("soft", 1, 0, False, ["scan"]),
        ("hard", 2, 0, False, ["scan"]), ("soft", 0, 0, False, ["del"]),
        ("soft", 0, 0, False, ["scan"]), ("hard", 0, 0, True, ["scan"]),
        ("soft", 0, 0, False, []), (None, 0, 0, False, ["del"]),
        (None, 2, 0, False, ["del"]), ("hard", 1, 0, False, [])])
    # the ready heap's sift: hard first, then boost - deadline, then last
    assert want[9] == str(["f", "b", "e", "c", "d", "a"])
    # rec_link packs like struct.pack_into (each field cut to its width)
    import struct
    assert want[10].split()[1] == struct.pack(
        "<IIHBBHHIIII", 4, 0xFFFFFFFB, 0x2345, 0xFF, 2, 0xFFFF, 70000 & 0xFFFF,
        0, (-4) & 0xFFFFFFFF, 7, 1 << 31).hex()
    got, board_arch = _board_lines(arch)
    assert board_arch == 6        # the firmware is armv7em-class (M3 board)
    assert got == want


def test_m4f_build_is_refused_cleanly_by_the_m3_board():
    why = Q.available()
    if why:
        pytest.skip(why)
    d = _need("armv7emsp")
    with Q.QemuBoard() as b:
        b.put("/rvmn_crc.mpy", open(os.path.join(d, "rvmn_crc.mpy"), "rb").read())
        out = b.run("try:\n import rvmn_crc\n print('loaded')\n"
                    "except ValueError as e:\n print('refused', e)\n")
        assert out.strip() == "refused incompatible .mpy arch"
        assert b.run("print(1 + 1)").strip() == "2"   # the board keeps running
