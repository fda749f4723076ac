# Every capability and proof attack, each refused with a clear error, each witnessed
# (denied flag, proof tier reached, error code) and each leaving the kernel's
# security state byte-for-byte unchanged (Kernel.snapshot before/after).
# Plus forged P3 proofs. Both runtimes.
import hashlib

import kt
from rvm_mp import board, errors, kinds, merkle
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.witness import unpack
from rvm_mp.captable import (R_READ, R_WRITE, R_GRANT, R_REVOKE, R_EXECUTE,
                             R_GRANT_ONCE, R_ALL, OT_CHANNEL, OT_DEVICE,
                             OT_REGION)
from rvm_mp.proofgate import (OP_CODE_LOAD, OP_MERGE, OP_SEND, P3_PREIMAGE,
                              P3_LINKAGE, P3_HMAC, P3_INCLUSION, P3_ED25519)
from rvm_mp.hmac256 import hmac_sha256

HEAP = "256K"  # the whole kernel compiled from source lives in the heap


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


def _k(clock=None):
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = Platform(kt.tmpdir("atk"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof, clock=clock)
    for _ in range(3):
        k.part_start(0, k.part_create(0))
    return k


def _world(clock=None):
    """Partitions 1..3 Running; 1 owns channel `rx` and granted 2 a
    write-only capability `tx`."""
    k = _k(clock)
    rx = k.chan_create(1)
    tx = k.cap_grant(1, rx, 2, R_WRITE)
    k.send(2, tx, b"queued")
    return k, rx, tx


def _refused(k, fn, args, code, kind, tier):
    """Run the attack; check refusal, its witness record and that nothing
    changed. Returns the denied record's fields."""
    before = k.snapshot()
    n = k.log.next_seq
    r = fn(*args)
    assert r is code, (r, code)
    assert k.log.next_seq > n, "refusal not witnessed"
    f = unpack(k.log.record(k.log.next_seq - 1))
    assert f[3] == kind, (kinds.name(f[3]), kinds.name(kind))
    assert f[4] & 1, "denied flag"
    assert (f[4] >> 2) & 3 == tier, ((f[4] >> 2) & 3, tier)
    assert f[8] == code.code
    assert k.snapshot() == before, "kernel state changed"
    return f


def test_forged_handles():
    k, rx, tx = _world()
    for h in (0, 1, 255, 0xFFFF, 0x10000, -256, 1 << 40, 7 * 256 + 3):
        _refused(k, k.send, (2, h, b"x"), errors.EBADHANDLE
                 if h != 7 * 256 + 3 else errors.ESTALE, kinds.CAP_DENIED, 1)
    for h in ("256", None, 256.0, b"\x01\x00"):
        _refused(k, k.send, (2, h, b"x"), errors.EBADHANDLE,
                 kinds.CAP_DENIED, 1)
    # a handle number from another partition's table names nothing in ours
    _refused(k, k.recv, (3, rx), errors.EBADHANDLE, kinds.CAP_DENIED, 1)
    _refused(k, k.cap_derive, (3, rx, R_READ), errors.EBADHANDLE,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_grant, (3, rx, 3, R_READ), errors.EBADHANDLE,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_revoke, (3, rx), errors.EBADHANDLE, kinds.CAP_DENIED, 1)


def test_stale_generation():
    k, rx, tx = _world()
    extra = k.cap_derive(1, rx, R_READ)
    assert k.cap_delete(1, extra) == 1
    f = _refused(k, k.recv, (1, extra), errors.ESTALE, kinds.CAP_DENIED, 1)
    assert f[7] == extra and f[10] == 11
    # the slot is reused: the old handle still does not reach the new entry
    again = k.cap_derive(1, rx, R_READ | R_WRITE)
    assert again & 0xFF == extra & 0xFF
    _refused(k, k.send, (1, extra, b"x"), errors.ESTALE, kinds.CAP_DENIED, 1)


def test_rights_escalation_on_derive_and_grant():
    k, rx, tx = _world()
    f = _refused(k, k.cap_derive, (2, tx, R_WRITE | R_READ), errors.ERIGHTS,
                 kinds.CAP_DENIED, 1)
    assert f[9] == R_WRITE | R_READ
    _refused(k, k.cap_derive, (2, tx, R_WRITE | R_GRANT), errors.ERIGHTS,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_derive, (1, rx, R_EXECUTE), errors.ERIGHTS,
             kinds.CAP_DENIED, 1)
    # tx has no GRANT: it cannot be passed on at all
    _refused(k, k.cap_grant, (2, tx, 3, R_WRITE), errors.ERIGHTS,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_grant, (1, rx, 3, R_ALL), errors.ERIGHTS,
             kinds.CAP_DENIED, 1)


def test_depth_nine_refused():
    k, rx, tx = _world()
    h = rx
    for _ in range(8):
        h = k.cap_derive(1, h, R_READ | R_WRITE | R_GRANT)
    assert k.cap_lookup(1, h)[3] == 8
    _refused(k, k.cap_derive, (1, h, R_READ), errors.EDEPTH,
             kinds.CAP_DENIED, 2)
    _refused(k, k.cap_grant, (1, h, 2, R_READ), errors.EDEPTH,
             kinds.CAP_DENIED, 2)


def test_regrant_of_grant_once_child():
    k, rx, tx = _world()
    once = k.cap_derive(1, rx, R_READ | R_GRANT_ONCE)
    child = k.cap_grant(1, once, 2, R_READ)
    assert not errors.is_err(child)
    _refused(k, k.cap_grant, (2, child, 3, R_READ), errors.ERIGHTS,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_grant, (1, once, 3, R_READ), errors.ESTALE,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_derive, (2, child, R_READ | R_GRANT_ONCE),
             errors.ERIGHTS, kinds.CAP_DENIED, 1)


def test_nonce_replay_jump_ahead_and_back():
    k, rx, tx = _world()
    assert not errors.is_err(k.cap_grant(1, rx, 3, R_READ, 0, 5))
    assert not errors.is_err(k.cap_grant(1, rx, 3, R_READ, 0, 4101))
    f = _refused(k, k.cap_grant, (1, rx, 3, R_READ, 0, 5), errors.ENONCE,
                 kinds.CAP_DENIED, 2)
    assert f[10] == 2  # OP_GRANT
    _refused(k, k.cap_grant, (1, rx, 3, R_READ, 0, 4101), errors.ENONCE,
             kinds.CAP_DENIED, 2)
    assert not errors.is_err(k.cap_grant(1, rx, 3, R_READ, 0, 4100))
    _refused(k, k.cap_grant, (1, rx, 3, R_READ, 0, 4100), errors.ENONCE,
             kinds.CAP_DENIED, 2)


def test_sender_cannot_be_chosen():
    k, rx, tx = _world()
    # partition 3 gets its own write capability; whatever it puts in the
    # payload, the kernel records 3 as the sender
    t3 = k.cap_grant(1, rx, 3, R_WRITE)
    assert k.send(3, t3, b"\x02\x00from 2") == 0
    assert k.recv(1, rx) == (2, b"queued")
    assert k.recv(1, rx) == (3, b"\x02\x00from 2")
    # 3 cannot use 2's handle to look like 2: it names 3's own table
    k.cap_delete(3, t3)
    _refused(k, k.send, (3, tx, b"as 2"), errors.ESTALE, kinds.CAP_DENIED, 1)
    # the kernel itself has no handle table to send from
    _refused(k, k.send, (0, tx, b"as kernel"), errors.ESTATE,
             kinds.CAP_DENIED, 1)


def test_receive_without_the_right():
    k, rx, tx = _world()
    f = _refused(k, k.recv, (2, tx), errors.ERIGHTS, kinds.CAP_DENIED, 1)
    assert f[9] == R_READ
    buf = bytearray(64)
    _refused(k, k.recv_into, (2, tx, buf), errors.ERIGHTS, kinds.CAP_DENIED, 1)
    assert bytes(buf) == bytes(64)


def test_oversize_payload():
    k, rx, tx = _world()
    pmax = k.limits["payload_max"]
    f = _refused(k, k.send, (2, tx, b"A" * (pmax + 1)), errors.ETOOBIG,
                 kinds.IPC_DENIED, 2)
    assert f[9] == pmax + 1
    _refused(k, k.send, (2, tx, b"A" * 5000), errors.ETOOBIG,
             kinds.IPC_DENIED, 2)


def test_full_queue_refused_not_dropped():
    k, rx, tx = _world()
    while k.pending(1, rx) < k.limits["queue_depth"]:
        k.send(2, tx, b"m")
    _refused(k, k.send, (2, tx, b"one more"), errors.EFULL, kinds.IPC_FULL, 2)


def test_ids_zero_and_4096():
    k, rx, tx = _world()
    for bad in (0, 4096):
        _refused(k, k.part_create, (0, 0, bad), errors.EBADID,
                 kinds.PART_DENIED, 0)
        _refused(k, k.part_suspend, (0, bad), errors.EBADID,
                 kinds.PART_DENIED, 0)
        _refused(k, k.part_terminate, (0, bad), errors.EBADID,
                 kinds.PART_DENIED, 0)
        _refused(k, k.cap_grant, (1, rx, bad, R_READ), errors.EBADID,
                 kinds.CAP_DENIED, 0)
    assert k.part_state(0) is errors.EBADID
    assert k.part_state(4096) is errors.EBADID
    # a capability naming partition 4096 cannot be minted either
    assert k.cap_mint(4096, OT_REGION, 1, R_READ) is errors.EINVAL


def test_operations_on_a_terminated_partition():
    clk = Clock()
    k, rx, tx = _world(clk)
    dev = k.cap_mint(2, OT_DEVICE, k.device_id("led"), R_READ | R_WRITE)
    k.part_terminate(0, 2)
    _refused(k, k.send, (2, tx, b"x"), errors.ESTATE, kinds.CAP_DENIED, 1)
    _refused(k, k.recv, (2, tx), errors.ESTATE, kinds.CAP_DENIED, 1)
    _refused(k, k.cap_derive, (2, tx, R_WRITE), errors.ESTATE,
             kinds.CAP_DENIED, 1)
    _refused(k, k.cap_grant, (1, rx, 2, R_READ), errors.ESTATE,
             kinds.CAP_DENIED, 2)
    _refused(k, k.chan_create, (2,), errors.ESTATE, kinds.IPC_DENIED, 0)
    _refused(k, k.lease, (2, dev, "led", 10), errors.ESTATE,
             kinds.CAP_DENIED, 1)
    _refused(k, k.part_resume, (0, 2), errors.ESTATE, kinds.PART_DENIED, 0)
    _refused(k, k.part_terminate, (0, 2), errors.ESTATE, kinds.PART_DENIED, 0)
    _refused(k, k.part_create, (2,), errors.ESTATE, kinds.PART_DENIED, 0)


def test_suspended_partition_cannot_act():
    k, rx, tx = _world()
    k.part_suspend(0, 2)
    _refused(k, k.send, (2, tx, b"x"), errors.ESTATE, kinds.CAP_DENIED, 2)


def test_expired_lease():
    clk = Clock()
    k = _k(clk)
    dev = k.cap_mint(1, OT_DEVICE, k.device_id("relay"), R_READ | R_WRITE)
    px = k.lease(1, dev, "relay", 20)
    assert px.on() == 0
    clk.t += 20
    px.on()                      # notices the expiry (LEASE_EXPIRE)
    _refused(k, px.on, (), errors.EEXPIRED, kinds.LEASE_DENIED, 2)
    _refused(k, px.read, (), errors.EEXPIRED, kinds.LEASE_DENIED, 2)
    _refused(k, px.write, (b"x",), errors.EEXPIRED, kinds.LEASE_DENIED, 2)
    # another partition cannot take over the old proxy's lease either
    dev2 = k.cap_mint(2, OT_DEVICE, k.device_id("relay"), R_READ | R_WRITE)
    p2 = k.lease(2, dev2, "relay", 100)
    _refused(k, px.on, (), errors.EEXPIRED, kinds.LEASE_DENIED, 2)
    assert p2.on() == 0


def test_quota_exhaustion():
    k = _k()
    pid = k.part_create(0, msg_quota=2)
    k.part_start(0, pid)
    h = k.chan_create(pid)
    assert k.send(pid, h, b"1") == 0 and k.send(pid, h, b"2") == 0
    _refused(k, k.send, (pid, h, b"3"), errors.EQUOTA, kinds.CAP_DENIED, 2)
    k.quota_reset(pid)
    assert k.send(pid, h, b"3") == 0


# ---- P3: forged deep proofs --------------------------------------------------

def test_p3_required_for_high_stakes_ops():
    k = _k()
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, None), errors.EPROOF,
             kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_MERGE, 2, []), errors.EPROOF,
             kinds.PROOF_P3, 3)
    assert k.prove(1, OP_SEND, 1, None) == 0   # not a P3 operation


def test_p3_preimage():
    k = _k()
    code = b"async def main(rvm): pass\n"
    d = hashlib.sha256(code).digest()
    assert k.prove(1, OP_CODE_LOAD, 1, [(P3_PREIMAGE, d, code)]) == 0
    f = unpack(k.log.record(k.log.next_seq - 1))
    assert f[3] == kinds.PROOF_P3 and f[4] == 3 << 2 and f[7] == P3_PREIMAGE
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, [(P3_PREIMAGE, d, code + b"#")]),
             errors.EPROOF, kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, [(P3_PREIMAGE, d[:31], code)]),
             errors.EPROOF, kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, [(P3_PREIMAGE,)]),
             errors.EINVAL, kinds.PROOF_P3, 3)


def test_p3_witness_linkage():
    k = _k()
    seq = k.log.next_seq - 2
    rec = k.log.record(seq)
    assert k.prove(1, OP_CODE_LOAD, 2, [(P3_LINKAGE, seq, rec)]) == 0
    for i in (0, 10, 16, 40, 63):
        bad = bytearray(rec)
        bad[i] ^= 0x01
        _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_LINKAGE, seq, bytes(bad))]),
                 errors.EPROOF, kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_LINKAGE, seq + 1, rec)]),
             errors.EPROOF, kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_LINKAGE, 10 ** 6, rec)]),
             errors.EPROOF, kinds.PROOF_P3, 3)


def test_p3_merkle_inclusion_of_a_sealed_fact():
    k, rx, tx = _world()
    lo = k.log.next_seq - 8
    fact = k.log.next_seq - 3
    hi = k.log.next_seq
    # not sealed yet: no root can be committed
    assert k.merkle_commit(lo, hi) is errors.EINVAL
    k.log.seal()
    root = k.merkle_commit(lo, hi)
    assert len(root) == 32
    f = unpack(k.log.record(k.log.next_seq - 1))
    assert f[3] == kinds.MERKLE_ROOT and f[7] == lo and f[8] == hi
    recs = [k.log.record(s) for s in range(lo, hi)]
    assert root == merkle.root_of(recs)
    rec = k.log.record(fact)
    path = merkle.inclusion_path(lambda i: recs[i], hi - lo, fact - lo)
    proof = (P3_INCLUSION, rec, fact, lo, hi, path)
    assert k.prove(1, OP_CODE_LOAD, 2, [proof]) == 0
    # a forged fact, a wrong position, a bent path, an uncommitted range
    bad = bytearray(rec)
    bad[20] ^= 4
    bent = bytearray(path[0])
    bent[31] ^= 0x80
    for p in ((P3_INCLUSION, bytes(bad), fact, lo, hi, path),
              (P3_INCLUSION, rec, fact - 1, lo, hi, path),
              (P3_INCLUSION, rec, fact, lo, hi, path[1:]),
              (P3_INCLUSION, rec, fact, lo, hi, [bytes(bent)] + path[1:]),
              (P3_INCLUSION, rec, fact, lo + 1, hi, path)):
        _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [p]), errors.EPROOF,
                 kinds.PROOF_P3, 3)


def test_p3_hmac_signature():
    k = _k()
    msg = b"load bundle sensor v3"
    mac = hmac_sha256(kt.KEY, msg)
    assert k.prove(1, OP_CODE_LOAD, 1, [(P3_HMAC, msg, mac)]) == 0
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, [(P3_HMAC, msg + b"!", mac)]),
             errors.ESIG, kinds.PROOF_P3, 3)
    wrong = hmac_sha256(b"k" * 32, msg)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1, [(P3_HMAC, msg, wrong)]),
             errors.ESIG, kinds.PROOF_P3, 3)
    # every proof must hold: one good and one forged is refused
    _refused(k, k.prove, (1, OP_CODE_LOAD, 1,
                          [(P3_HMAC, msg, mac), (P3_HMAC, msg, wrong)]),
             errors.ESIG, kinds.PROOF_P3, 3)


def test_p3_ed25519_host_signature():
    k = _k()
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import \
            Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        Ed25519PrivateKey = None
    msg = b"migrate partition 2 to board B"
    if Ed25519PrivateKey is None:
        # MicroPython: refused with a clear error, never accepted unchecked
        _refused(k, k.prove, (1, OP_CODE_LOAD, 2,
                              [(P3_ED25519, b"\x00" * 32, msg, b"\x00" * 64)]),
                 errors.ENOTSUP, kinds.PROOF_P3, 3)
        return
    sk = Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    sig = sk.sign(msg)
    # a key the kernel does not trust is refused even with a valid signature
    _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_ED25519, pub, msg, sig)]),
             errors.ESIG, kinds.PROOF_P3, 3)
    k.trusted_ed25519.append(pub)
    assert k.prove(1, OP_CODE_LOAD, 2, [(P3_ED25519, pub, msg, sig)]) == 0
    bad = bytearray(sig)
    bad[5] ^= 1
    _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_ED25519, pub, msg, bytes(bad))]),
             errors.ESIG, kinds.PROOF_P3, 3)
    _refused(k, k.prove, (1, OP_CODE_LOAD, 2, [(P3_ED25519, pub, msg + b".", sig)]),
             errors.ESIG, kinds.PROOF_P3, 3)


def test_rfc8032_vector_1():
    # RFC 8032 section 7.1 TEST 1 (empty message)
    from rvm_mp import ed25519
    pub = bytes.fromhex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    if not ed25519.available():
        assert ed25519.verify(pub, b"", sig) is None
        return
    assert ed25519.verify(pub, b"", sig) is True
    assert ed25519.verify(pub, b"x", sig) is False
    assert ed25519.verify(pub[:31], b"", sig) is False


def test_garbage_arguments_never_raise():
    # every kernel entry point with junk in each position of an otherwise
    # valid call: a value or an RvmError, never an exception, and the
    # kernel keeps working afterwards
    clk = Clock()
    k, rx, tx = _world(clk)
    dev = k.cap_mint(1, OT_DEVICE, k.device_id("led"), R_ALL & ~R_GRANT_ONCE)
    reg = k.cap_mint(1, OT_REGION, 3, R_READ | R_WRITE | R_GRANT | R_REVOKE)
    junk = (None, "x", -1, 0, 4096, 1 << 70, 3.5, b"", (), [()], True)
    calls = (
        (k.part_create, (1, 0, None, 0, 0, 0, "")),
        (k.part_state, (1,)),
        (k.part_set_state, (0, 3, 2, 0, 0)),
        (k.part_terminate, (0, 3, 0, 0)),
        (k.cap_mint, (1, OT_REGION, 9, R_READ)),
        (k.cap_derive, (1, reg, R_READ, 0)),
        (k.cap_grant, (1, reg, 2, R_READ, 0, -1)),
        (k.cap_revoke, (1, reg, 0)),
        (k.cap_delete, (1, reg, 0)),
        (k.cap_lookup, (1, reg)),
        (k.cap_attenuate, (1, reg, R_READ)),
        (k.cap_move, (1, reg, 2)),
        (k.chan_create, (1, 0)),
        (k.chan_close, (1, rx)),
        (k.send, (2, tx, b"x")),
        (k.recv, (1, rx)),
        (k.recv_into, (1, rx, bytearray(64))),
        (k.pending, (1, rx)),
        (k.lease, (1, dev, "led", 10, -1, None)),
        (k.lease_revoke, (1, "led", dev, None)),
        (k.prove, (1, OP_CODE_LOAD, 1, [(P3_PREIMAGE, bytes(32), b"")])),
        (k.merkle_commit, (0, 1)),
        (k.edge, (1, 2)),
        (k.leases_of, (1,)),
        (k.quota_reset, (1,)),
    )
    k2 = _k(clk)
    k2.p3_ops |= 1 << 12   # OP_LEASE: leases need a P3 proof
    d2 = k2.cap_mint(1, OT_DEVICE, k2.device_id("led"), R_READ | R_WRITE)
    calls = calls + ((k2.lease, (1, d2, "led", 10, 5, [(P3_HMAC, bytes(32))])),)
    n = 0
    for fn, base in calls:
        for pos in range(len(base)):
            for j in junk:
                args = list(base)
                args[pos] = j
                try:
                    fn(*args)
                except Exception as e:
                    raise AssertionError("%r%r raised %r" % (fn, tuple(args), e))
                n += 1
    assert n > 500
    k.send(2, tx, b"y")
    # still a working kernel: a new partition talks to partition 1
    p = k.part_create(0)
    assert not errors.is_err(p) and k.part_start(0, p) == 0
    h = k.chan_create(p)
    assert not errors.is_err(h)
    assert k.send(p, h, b"ok") == 0 and k.recv(p, h) == (p, b"ok")


# ---- P3 bound to the operation (merge, migrate, split) ---------------------

def _statement_proof(k, op, actor, target, args, seq=None, key=None):
    if seq is None:
        seq = k.log.next_seq - 1
    msg = k.op_statement(op, actor, target, args, seq)
    return [(P3_HMAC, msg, hmac_sha256(key or kt.KEY, msg))]


def test_p3_for_partition_mutations_is_bound_to_the_operation():
    import struct
    from rvm_mp.proofgate import OP_MIGRATE, OP_SPLIT
    k = _k()
    args = struct.pack("<HH", 2, 3)
    # the right statement, signed with the device key: accepted
    assert k.prove(1, OP_MERGE, 2, _statement_proof(k, OP_MERGE, 1, 2, args),
                   args) == 0
    # proofs about anything else: refused and witnessed
    code = b"unrelated"
    seq = k.log.next_seq - 2
    for proofs in (
            [(P3_PREIMAGE, hashlib.sha256(code).digest(), code)],
            [(P3_LINKAGE, seq, k.log.record(seq))],
            _statement_proof(k, OP_MIGRATE, 1, 2, args),    # another op
            _statement_proof(k, OP_MERGE, 3, 2, args),      # another actor
            _statement_proof(k, OP_MERGE, 1, 3, args),      # another target
            _statement_proof(k, OP_MERGE, 1, 2, b"\x02\x00\x04\x00"),
            [(P3_HMAC, b"x" * 78, hmac_sha256(kt.KEY, b"x" * 78))],
            "not a list", [("tuple",)], [None]):
        _refused(k, k.prove, (1, OP_MERGE, 2, proofs, args), errors.EPROOF,
                 kinds.PROOF_P3, 3)
    # a statement made at a seq too far behind the head is stale
    old = k.log.next_seq - 1
    msg = k.op_statement(OP_SPLIT, 1, 2, b"", old)
    for i in range(300):
        k.log.emit(kinds.EPOCH_SUMMARY, 0, 0, i)
    assert k.op_statement(OP_SPLIT, 1, 2, b"", old) is None
    _refused(k, k.prove, (1, OP_SPLIT, 2,
                          [(P3_HMAC, msg, hmac_sha256(kt.KEY, msg))], b""),
             errors.EPROOF, kinds.PROOF_P3, 3)
    # the statement right, the signature not: refused by the signature check
    st = _statement_proof(k, OP_SPLIT, 1, 2, b"", key=b"k" * 32)
    _refused(k, k.prove, (1, OP_SPLIT, 2, st, b""), errors.ESIG,
             kinds.PROOF_P3, 3)
