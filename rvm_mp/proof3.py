# Deep proofs (P3) of the proof gate, loaded only when a high-stakes
# mutation asks for one (code load, device lease, migration, merge), so the
# P1/P2 gate stays small in RAM. Every function takes the ProofGate as
# `self`; ProofGate.p3 and ProofGate.commit_root delegate here.
#
#   P3_PREIMAGE  (1, digest32, data)                 sha256(data) == digest
#   P3_LINKAGE   (2, seq, record64)                  record is the live log's
#                                                    record seq; its link chains
#   P3_HMAC      (3, msg, mac32)                     HMAC-SHA256(device key)
#   P3_INCLUSION (4, record64, seq, lo, hi, path)    RFC 9162 inclusion in the
#                                                    committed sealed range
#   P3_ED25519   (5, pubkey32, msg, sig64)           trusted host key (CPython)
import hashlib
import struct

from .compat import const
from . import errors
from . import kinds
from .proofgate import (h32, P3_PREIMAGE, P3_LINKAGE, P3_HMAC, P3_INCLUSION,
                        P3_ED25519)

_ROOTS_MAX = const(8)
_EPROOF = errors.EPROOF
_ESIG = errors.ESIG
_EINVAL = errors.EINVAL
_ENOTSUP = errors.ENOTSUP


def p3(self, pid, op, target, proofs):
    """Check every proof; 0 or the first failure (each witnessed)."""
    if not proofs or not isinstance(proofs, (list, tuple)):
        e = _EINVAL if proofs and not isinstance(proofs, (list, tuple)) \
            else _EPROOF
        self.k.log.deny(kinds.PROOF_P3, pid, target, e.code, 3, 0, 0, op)
        return e
    for pr in proofs:
        kind, r, inp = _one(self, pr)
        if r:
            self.k.log.deny(kinds.PROOF_P3, pid, target, r.code, 3,
                            kind, h32(inp), op)
            return r
        self.k.log.emit(kinds.PROOF_P3, pid, target, kind, 0, h32(inp),
                        op, 3 << kinds.TIER_SHIFT)
    return 0


def _one(self, pr):
    """(kind, 0 or error, bytes that identify the proof input)."""
    try:
        kind = pr[0]
        if kind == P3_PREIMAGE:
            digest, data = pr[1], pr[2]
            ok = len(digest) == 32 and \
                hashlib.sha256(bytes(data)).digest() == bytes(digest)
            return kind, (0 if ok else _EPROOF), data
        if kind == P3_LINKAGE:
            return kind, _linkage(self, pr[1], pr[2]), pr[2]
        if kind == P3_HMAC:
            return kind, _hmac(self, pr[1], pr[2]), pr[1]
        if kind == P3_INCLUSION:
            return kind, _inclusion(self, pr[1], pr[2], pr[3], pr[4],
                                    pr[5]), pr[1]
        if kind == P3_ED25519:
            return kind, _ed25519(self, pr[1], pr[2], pr[3]), pr[2]
        return 0, _EINVAL, b""
    except (IndexError, TypeError, ValueError, AttributeError):
        return 0, _EINVAL, b""


def _linkage(self, seq, rec):
    """rec is the live log's record `seq` and chains from its anchor."""
    from .witness_verify import verify_window
    log = self.k.log
    if len(rec) != 64 or type(seq) is not int:
        return _EPROOF
    live = log.record(seq)
    anchor = log.anchor_for(seq)
    if live is None or anchor is None:
        return _EPROOF
    rec = bytes(rec)
    if rec != live or verify_window(anchor, rec, 1) != 1:
        return _EPROOF
    return 0


def _hmac(self, msg, mac):
    from .hmac256 import Hmac256, ct_equal
    key = self.k.device_key
    if not key:
        return _ENOTSUP
    if len(mac) != 32 or not ct_equal(Hmac256(key).mac(bytes(msg)),
                                      bytes(mac)):
        return _ESIG
    return 0


def _ed25519(self, pub, msg, sig):
    from . import ed25519
    if not ed25519.available():
        return _ENOTSUP
    pub = bytes(pub)
    if pub not in [bytes(x) for x in self.k.trusted_ed25519]:
        return _ESIG
    return 0 if ed25519.verify(pub, msg, sig) else _ESIG


def _inclusion(self, rec, seq, lo, hi, path):
    from . import merkle   # only inclusion proofs and roots need it
    root = self.roots.get((lo, hi))
    if root is None or len(rec) != 64 or not lo <= seq < hi:
        return _EPROOF
    if struct.unpack_from("<I", bytes(rec), 0)[0] != seq & 0xFFFFFFFF:
        return _EPROOF
    if not merkle.verify_inclusion(bytes(rec), seq - lo, hi - lo, path,
                                   root):
        return _EPROOF
    return 0


def commit_root(self, lo, hi):
    """Root of witness records [lo, hi) (which must be sealed); kept in a
    bounded cache for later inclusion proofs and witnessed."""
    log = self.k.log
    if (type(lo) is not int or type(hi) is not int or lo < 0 or hi <= lo
            or hi - 1 > log.last_seal_seq or log.record(lo) is None):
        log.deny(kinds.MERKLE_ROOT, 0, 0, _EINVAL.code, 3,
                 lo if type(lo) is int else 0, 0, 0)
        return _EINVAL
    for s in range(lo, hi):
        if log.record(s) is None:
            log.deny(kinds.MERKLE_ROOT, 0, 0, _EPROOF.code, 3, lo, 0, 0)
            return _EPROOF
    from . import merkle
    root = merkle.root(lambda i: log.record(lo + i), hi - lo)
    key = (lo, hi)
    if key not in self.roots:
        self._root_order.append(key)
        if len(self._root_order) > _ROOTS_MAX:
            self.roots.pop(self._root_order.pop(0), None)
    self.roots[key] = root
    log.emit(kinds.MERKLE_ROOT, 0, 0, lo, hi,
             struct.unpack("<I", root[0:4])[0], log.last_seal_seq)
    return root
