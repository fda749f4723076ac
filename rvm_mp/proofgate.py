# ProofGate: the one gate every privileged mutation passes (ADR-132 DC-3).
#
#   request (caller pid, handle, object, rights, op[, nonce][, proofs])
#      |
#      v
#   P1  capability: the gate resolves (caller, handle) in the caller's OWN
#      |  table -- it never accepts a capability object from the caller --
#      |  then compares object type, object id and rights.  No allocation.
#      v
#   P2  policy: caller partition Running; ownership chain from the entry up
#      |  to a kernel-minted root intact (parent serials, same object, rights
#      |  never widen, depth increasing and <= 8); capability time window;
#      |  nonce freshness; message quota for sends.
#      v
#   P3  deep proofs, only for ops in kernel.p3_ops (code load, migration,
#         merge; device lease by profile): hash preimage, witness-chain
#         linkage, Merkle inclusion in a sealed range (RFC 9162), HMAC-SHA256
#         under the device key, Ed25519 from the host (CPython only).
#
# A refusal returns the preallocated RvmError and is witnessed with
# CAP_DENIED (denied flag, tier reached, code in b); nothing raises.
#
# Nonce window (per partition): the highest nonce seen `hi` and a 64-bit
# ring bitmap of the nonces hi-63..hi.  A nonce <= hi - 64 is refused even if
# it was never seen, so jumping ahead (5, 4101) and coming back (5) cannot
# replay: the Rust RVM's ring accepted exactly that.
import hashlib
import struct

from .compat import const, ticks_diff
from . import errors
from . import impls
from . import kinds
from .captable import MAX_DEPTH, F_EXPIRES, R_GRANT, R_GRANT_ONCE
from .partition import ST_RUNNING

OP_DERIVE = const(1)
OP_GRANT = const(2)
OP_REVOKE = const(3)
OP_DELETE = const(4)
OP_SPAWN = const(5)
OP_STATE = const(6)
OP_TERMINATE = const(7)
OP_CHAN_CREATE = const(8)
OP_CHAN_CLOSE = const(9)
OP_SEND = const(10)
OP_RECV = const(11)
OP_LEASE = const(12)
OP_DEVICE = const(13)
OP_LEASE_REVOKE = const(14)
OP_CODE_LOAD = const(15)
OP_MIGRATE = const(16)
OP_MERGE = const(17)
OP_SPLIT = const(18)
OP_REGION = const(19)

P3_PREIMAGE = const(1)
P3_LINKAGE = const(2)
P3_HMAC = const(3)
P3_INCLUSION = const(4)
P3_ED25519 = const(5)

_NONCE_MAX = const(0x3FFFFFFF)

_EBADHANDLE = errors.EBADHANDLE
_ESTALE = errors.ESTALE
_ERIGHTS = errors.ERIGHTS
_EWRONGOBJ = errors.EWRONGOBJ
_ESTATE = errors.ESTATE
_EDEPTH = errors.EDEPTH
_EOWNER = errors.EOWNER
_EEXPIRED = errors.EEXPIRED
_ENONCE = errors.ENONCE
_EQUOTA = errors.EQUOTA


_INT = int


def h32(data):
    """First 4 bytes of SHA-256(data) as a little-endian u32."""
    return struct.unpack("<I", hashlib.sha256(bytes(data)).digest()[0:4])[0]


class ProofGate:
    def __init__(self, kernel):
        self.k = kernel
        self.caps = kernel.caps
        self.parts = kernel.parts.parts
        # P1 reads these directly (one attribute lookup each)
        self._tables = kernel.caps.tables
        self._per = kernel.caps.per
        self._key = kernel.caps.key
        self._rights = kernel.caps.rights
        self.roots = {}       # (lo, hi) -> 32-byte root of a sealed range
        self._root_order = []
        self.stats_denied = 0

    # ---- P1: no allocation ---------------------------------------------
    def p1(self, pid, handle, otype, oid, rights):
        """Pool index of the capability, or an RvmError. oid -1: any object
        of type otype; otype 0 (with oid -1): any capability. Replaced at
        import by the native-emitter copy in gate_native.py when the port
        has one (same code, same vectors in test_proofgate)."""
        if pid.__class__ is not _INT:
            return _ESTATE
        t = self._tables.get(pid)
        if t is None:
            return _ESTATE
        if handle.__class__ is not _INT or handle < 256 or handle > 0xFFFF:
            return _EBADHANDLE
        s = handle & 0xFF
        if s >= self._per:
            return _EBADHANDLE
        v = t[s]
        if v >> 16 != handle >> 8:
            return _ESTALE
        ci = (v & 0xFFFF) - 1
        if ci < 0:
            return _EBADHANDLE
        k = self._key[ci]
        if oid >= 0:
            if k != (otype << 16) | oid:
                return _EWRONGOBJ
        elif otype and k >> 16 != otype:
            return _EWRONGOBJ
        if rights & ~self._rights[ci]:
            return _ERIGHTS
        return ci

    # ---- P2 --------------------------------------------------------------
    def p2(self, pid, ci, op, nonce=-1):
        """0 or an RvmError. Consumes the nonce when everything else holds."""
        p = self.parts.get(pid)
        if p is None or p.state != ST_RUNNING:
            return _ESTATE
        caps = self.caps
        if caps.depth[ci] > MAX_DEPTH:
            return _EDEPTH
        otype = caps.otype
        oid = caps.oid
        rights = caps.rights
        depth = caps.depth
        parent = caps.parent
        serial = caps.serial
        flags = caps.flags
        now = self.k.clock()
        i = ci
        steps = 0
        while True:
            if flags[i] & F_EXPIRES and ticks_diff(caps.expiry[i], now) <= 0:
                return _EEXPIRED
            par = parent[i]
            if par < 0:
                break
            if (not otype[par] or serial[par] != caps.pser[i]
                    or otype[par] != otype[i] or oid[par] != oid[i]
                    or depth[par] >= depth[i]):
                return _EOWNER
            allowed = rights[par]
            if allowed & R_GRANT:
                allowed |= R_GRANT_ONCE
            if rights[i] & ~allowed:
                return _EOWNER
            steps += 1
            if steps > MAX_DEPTH:
                return _EOWNER
            i = par
        if depth[i] != 0:
            return _EOWNER
        if op == OP_SEND and p.msg_quota and p.msgs_used >= p.msg_quota:
            return _EQUOTA
        if nonce >= 0:
            return self.nonce_ok(p, nonce)
        return 0

    def nonce_ok(self, p, nonce):
        """Freshness of `nonce` for partition record p; consumes it."""
        if type(nonce) is not int or nonce < 0 or nonce > _NONCE_MAX:
            return _ENONCE
        hi = p.nonce_hi
        bits = p.nonce_bits
        if nonce > hi:
            if nonce - hi >= 64:
                for j in range(8):
                    bits[j] = 0
            else:
                n = hi + 1
                while n < nonce:
                    b = n & 63
                    bits[b >> 3] &= ~(1 << (b & 7))
                    n += 1
            b = nonce & 63
            bits[b >> 3] |= 1 << (b & 7)
            p.nonce_hi = nonce
            return 0
        if nonce <= hi - 64:
            return _ENONCE
        b = nonce & 63
        m = 1 << (b & 7)
        if bits[b >> 3] & m:
            return _ENONCE
        bits[b >> 3] |= m
        return 0

    # ---- the entry point ---------------------------------------------------
    def check(self, pid, handle, otype, oid, rights, op, nonce=-1):
        """P1 then P2. Pool index or an RvmError (witnessed)."""
        ci = _P1(self, pid, handle, otype, oid, rights)
        if type(ci) is not int:
            self.refuse(pid, oid, ci, 1, handle, rights, op)
            return ci
        r = self.p2(pid, ci, op, nonce)
        if r:
            self.refuse(pid, self.caps.oid[ci], r, 2, handle, rights, op)
            return r
        return ci

    def refuse(self, pid, target, err, tier, handle, rights, op):
        self.stats_denied += 1
        self.k.log.deny(kinds.CAP_DENIED, pid if type(pid) is int else 0,
                        target if type(target) is int and target > 0 else 0,
                        err.code, tier, handle if type(handle) is int else 0,
                        rights if type(rights) is int else 0, op)

    def bounds(self, off, n, size):
        if (type(off) is not int or type(n) is not int or off < 0 or n < 0
                or off + n > size):
            return errors.EBOUNDS
        return 0

    # ---- P3 (rvm_mp/proof3.py, loaded on first use) -------------------------
    def p3(self, pid, op, target, proofs):
        """Check every proof; 0 or the first failure (each witnessed)."""
        from .proof3 import p3
        return p3(self, pid, op, target, proofs)

    def commit_root(self, lo, hi):
        """Root of witness records [lo, hi) (which must be sealed); kept in a
        bounded cache for later inclusion proofs and witnessed."""
        from .proof3 import commit_root
        return commit_root(self, lo, hi)


# P1: the C natmod rvmn_p1 when present, else the native-emitter copy
# (gate_native.py), else the portable method, which stays reachable for
# tests as p1_portable (impls.py). check() calls _P1, the chosen function.
p1_portable = ProofGate.p1


def _choose():
    nat = impls.natmod("rvmn_p1")
    if nat is not None:
        nat.init(_ESTATE, _EBADHANDLE, _ESTALE, _EWRONGOBJ, _ERIGHTS)
        f = nat.p1

        # MicroPython binds no `self` to a C function stored on a Python
        # class, so the method is a thin wrapper around it
        def p1(self, pid, handle, otype, oid, rights):
            return f(self, pid, handle, otype, oid, rights)
        ProofGate.p1 = p1
        impls.chose("p1", "natmod")
        return f, None
    try:
        from .gate_native import p1
    except (ImportError, SyntaxError):  # port without the native emitter
        impls.chose("p1", "portable")
        return p1_portable, None
    ProofGate.p1 = p1
    impls.chose("p1", "native" if impls.MP else "portable")
    return p1, p1


_P1, _p1_native = _choose()
del _choose
