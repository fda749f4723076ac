# Proof gate P1/P2 at the Seed profile's limits (8 partitions x 16 handles): the
# gate's refusal codes and witnesses, the ownership-chain check against a
# corrupted table, the nonce window (5, 4101, 5), quota, time window, and
# no allocation on the P1/P2 path. The gate runs on the real L1 parts
# (CapTable, PartitionTable, WitnessLog) at the Seed profile's limits; the
# Kernel facade is tested in the other modules. HEAP is 104K, not the
# board's 64K: compiling these modules from source peaks at ~50 KB on the
# unix port (a board runs the kernel frozen into firmware, where bytecode
# costs no heap); test_seed_tables_fit measures the heap the Seed tables
# themselves take. P3 proofs are tested through the kernel in test_attacks.
import kt
from rvm_mp import errors, kinds, proofgate
from rvm_mp.compat import micropython, mem_alloc, collect, ticks_add
from rvm_mp.witness import WitnessLog, unpack
from rvm_mp.captable import (CapTable, R_READ, R_WRITE, R_GRANT,
                             OT_CHANNEL, OT_DEVICE)
from rvm_mp.partition import (Partition, PartitionTable, ST_RUNNING,
                              ST_SUSPENDED)
from rvm_mp.proofgate import ProofGate, OP_SEND, OP_RECV, OP_GRANT

HEAP = "104K"  # 96K before the natmods: loading one needs a block its code size
_PARTS = 8   # seed-64k limits
_PER = 16


class Host:
    """What the gate reads from the kernel, built from the real parts."""

    def __init__(self):
        self.t = 1000
        self.log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=32,
                              clock=self.clock)
        self.caps = CapTable(_PARTS * _PER + _PER, _PER)
        self.parts = PartitionTable(_PARTS)
        self.device_key = kt.KEY
        self.trusted_ed25519 = []

    def clock(self):
        return self.t

    def add(self, pid, state=ST_RUNNING):
        p = Partition(pid, 0, "", 0, 0, 0)
        p.state = state
        self.parts.add(p)
        self.caps.open(pid)
        return p


def _setup():
    h = Host()
    h.add(1)
    h.add(2)
    g = ProofGate(h)
    root, ci = h.caps.mint(1, OT_CHANNEL, 4, R_READ | R_WRITE | R_GRANT)
    return h, g, root, ci


def _last(h):
    return unpack(h.log.record(h.log.next_seq - 1))


def _p1_impls():
    """Every P1 implementation this port has: the portable method, the
    native-emitter gate_native.p1 where the emitter exists, and the C
    natmod rvmn_p1 where it loaded (what check() calls, proofgate._P1)."""
    impls = [proofgate.p1_portable]
    try:
        from rvm_mp.gate_native import p1
        if kt.IS_MP:
            impls.append(p1)
    except (ImportError, SyntaxError):
        pass
    if proofgate._P1 not in impls:
        impls.append(proofgate._P1)
    return impls


def test_p1_refusal_codes():
    if kt.IS_MP:
        assert len(_p1_impls()) >= 2   # the unix port has the native emitter
    for p1 in _p1_impls():
        h, g, root, ci = _setup()
        assert p1(g, 1, root, OT_CHANNEL, 4, R_READ) == ci
        assert p1(g, 1, root, OT_CHANNEL, -1, R_READ | R_WRITE) == ci
        assert p1(g, 1, root, 0, -1, R_READ) == ci
        assert p1(g, 1, "256", OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, True, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, 255, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, -300, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, 0x10000, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, 1 << 70, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, (1 << 8) | _PER, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, (1 << 8) | 3, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 1, (2 << 8) | 0, OT_CHANNEL, 4, R_READ) is errors.ESTALE
        assert p1(g, 1, root, OT_DEVICE, 4, R_READ) is errors.EWRONGOBJ
        assert p1(g, 1, root, OT_DEVICE, -1, R_READ) is errors.EWRONGOBJ
        assert p1(g, 1, root, OT_CHANNEL, 5, R_READ) is errors.EWRONGOBJ
        assert p1(g, 1, root, OT_CHANNEL, 4, 16) is errors.ERIGHTS
        assert p1(g, 1, root, OT_CHANNEL, 4, R_READ | 64) is errors.ERIGHTS
        assert p1(g, 2, root, OT_CHANNEL, 4, R_READ) is errors.EBADHANDLE
        assert p1(g, 3, root, OT_CHANNEL, 4, R_READ) is errors.ESTATE
        assert p1(g, "1", root, OT_CHANNEL, 4, R_READ) is errors.ESTATE
        # freed slot: the old handle is stale, the new one works
        h.caps.delete(ci)
        assert p1(g, 1, root, OT_CHANNEL, 4, R_READ) is errors.ESTALE
        r2, c2 = h.caps.mint(1, OT_CHANNEL, 4, R_READ)
        assert r2 == root + 256 and p1(g, 1, r2, OT_CHANNEL, 4, R_READ) == c2


def test_check_witnesses_refusal_with_tier():
    h, g, root, ci = _setup()
    n = h.log.next_seq
    assert g.check(1, root, OT_CHANNEL, 4, 16, OP_SEND) is errors.ERIGHTS
    assert h.log.next_seq == n + 1
    f = _last(h)
    assert f[3] == kinds.CAP_DENIED
    assert f[4] == 1 | (1 << 2)          # denied, tier 1
    assert f[5] == 1 and f[6] == 4       # actor, object id
    assert f[7:11] == (root, errors.ERIGHTS.code, 16, OP_SEND)
    h.parts.get(1).state = ST_SUSPENDED
    assert g.check(1, root, OT_CHANNEL, 4, R_READ, OP_RECV) is errors.ESTATE
    f = _last(h)
    assert f[4] == 1 | (2 << 2) and f[8] == errors.ESTATE.code
    # a success emits nothing
    h.parts.get(1).state = ST_RUNNING
    n = h.log.next_seq
    assert g.check(1, root, OT_CHANNEL, 4, R_READ, OP_RECV) == ci
    assert h.log.next_seq == n


def test_ownership_chain_detects_corrupt_tables():
    h, g, root, ci = _setup()
    caps = h.caps
    hc, cc = caps.child(ci, 2, R_READ, 0, False)
    assert g.p2(2, cc, OP_RECV) == 0
    # a child whose rights were widened behind the kernel's back
    caps.rights[cc] = R_READ | R_WRITE | 16
    assert g.p2(2, cc, OP_RECV) is errors.EOWNER
    caps.rights[cc] = R_READ
    # a parent slot reused for another capability (serial mismatch)
    caps.pser[cc] += 1
    assert g.p2(2, cc, OP_RECV) is errors.EOWNER
    caps.pser[cc] -= 1
    # parent naming another object
    caps.oid[ci] = 9
    assert g.p2(2, cc, OP_RECV) is errors.EOWNER
    caps.oid[ci] = 4
    # depth not increasing along the chain, or a root with depth > 0
    caps.depth[cc] = 0
    assert g.p2(2, cc, OP_RECV) is errors.EOWNER
    caps.depth[cc] = 1
    caps.depth[ci] = 1
    caps.depth[cc] = 2
    assert g.p2(2, cc, OP_RECV) is errors.EOWNER
    caps.depth[ci] = 0
    caps.depth[cc] = 9
    assert g.p2(2, cc, OP_RECV) is errors.EDEPTH
    caps.depth[cc] = 1
    assert g.p2(2, cc, OP_RECV) == 0


def test_nonce_jump_ahead_and_back():
    h, g, root, ci = _setup()
    p = h.parts.get(1)
    assert g.nonce_ok(p, 5) == 0
    assert g.nonce_ok(p, 4101) == 0
    assert g.nonce_ok(p, 5) is errors.ENONCE       # the Rust RVM accepts this
    assert g.nonce_ok(p, 4101) is errors.ENONCE
    assert g.nonce_ok(p, 4101 - 64) is errors.ENONCE  # below the window
    assert g.nonce_ok(p, 4101 - 63) == 0           # never seen, in window
    assert g.nonce_ok(p, 4101 - 63) is errors.ENONCE
    assert g.nonce_ok(p, 4090) == 0                # out of order, once
    assert g.nonce_ok(p, 4090) is errors.ENONCE
    assert g.nonce_ok(p, 4102) == 0
    for bad in (-1, 1 << 30, "7", None):
        assert g.nonce_ok(p, bad) is errors.ENONCE


def test_nonce_window_slides_exactly():
    h, g, root, ci = _setup()
    p = h.parts.get(2)
    for n in range(0, 200, 3):
        assert g.nonce_ok(p, n) == 0
    top = 198
    for n in range(0, 200):
        r = g.nonce_ok(p, n)
        if n <= top - 64 or n % 3 == 0:
            assert r is errors.ENONCE, n
        else:
            assert r == 0, n


def test_nonce_refusal_through_check_is_witnessed():
    h, g, root, ci = _setup()
    assert g.check(1, root, OT_CHANNEL, 4, R_READ, OP_GRANT, 5) == ci
    assert g.check(1, root, OT_CHANNEL, 4, R_READ, OP_GRANT, 4101) == ci
    assert g.check(1, root, OT_CHANNEL, 4, R_READ, OP_GRANT, 5) is errors.ENONCE
    f = _last(h)
    assert f[3] == kinds.CAP_DENIED and f[8] == errors.ENONCE.code
    assert f[4] == 1 | (2 << 2) and f[10] == OP_GRANT


def test_quota_and_time_window():
    h, g, root, ci = _setup()
    p = h.parts.get(1)
    p.msg_quota = 2
    p.msgs_used = 2
    assert g.p2(1, ci, OP_SEND) is errors.EQUOTA
    assert g.p2(1, ci, OP_RECV) == 0
    p.msgs_used = 1
    assert g.p2(1, ci, OP_SEND) == 0
    hc, cc = h.caps.child(ci, 2, R_READ, h.t + 50, True)
    assert g.p2(2, cc, OP_RECV) == 0
    h.t += 50
    assert g.p2(2, cc, OP_RECV) is errors.EEXPIRED
    # ticks wrap: a window across the wrap still works
    h.t = ticks_add(0, -10)
    hc, cc = h.caps.child(ci, 2, R_READ, ticks_add(h.t, 40), True)
    h.t = ticks_add(h.t, 20)
    assert g.p2(2, cc, OP_RECV) == 0
    h.t = ticks_add(h.t, 20)
    assert g.p2(2, cc, OP_RECV) is errors.EEXPIRED


def test_bounds():
    h, g, root, ci = _setup()
    assert g.bounds(0, 16, 16) == 0
    assert g.bounds(8, 9, 16) is errors.EBOUNDS
    assert g.bounds(-1, 1, 16) is errors.EBOUNDS
    assert g.bounds(0, -1, 16) is errors.EBOUNDS


def test_p1_p2_check_do_not_allocate():
    for p1 in _p1_impls():
        h, g, root, ci = _setup()
        hc, cc = h.caps.child(ci, 2, R_READ, 0, False)
        g.check(2, hc, OT_CHANNEL, 4, R_READ, OP_RECV)   # warm up
        p1(g, 2, hc, OT_CHANNEL, 4, R_READ)
        micropython.heap_lock()
        try:
            for _ in range(50):
                a = p1(g, 2, hc, OT_CHANNEL, 4, R_READ)
                b = g.p2(2, a, OP_RECV)
                c = g.check(2, hc, OT_CHANNEL, -1, R_READ, OP_RECV)
                d = p1(g, 2, hc + 256, OT_CHANNEL, 4, R_READ)  # refusal path
        finally:
            micropython.heap_unlock()
        assert a == cc and b == 0 and c == cc and d is errors.ESTALE


def test_seed_tables_fit():
    # the whole capability state of a Seed board: 8 partitions x 16 handles
    collect()
    before = mem_alloc()
    caps = CapTable(_PARTS * _PER + _PER, _PER)
    for pid in range(1, _PARTS + 1):
        caps.open(pid)
    collect()
    used = mem_alloc() - before
    if kt.IS_MP:
        assert 0 < used < 8192, used
    assert caps.live() == 0 and len(caps.tables) == _PARTS
