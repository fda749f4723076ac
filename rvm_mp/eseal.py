# Public-key witness seals: an Ed25519 signature over the chain, carried in
# four chained records, and key rotation (docs/witness-format.md).
#
#   seq i    SEAL_ED25519  actor 0, target = key id,   a..d = sig[0:16]
#   seq i+1  SEAL_PART     actor 0, target = 1,        a..d = sig[16:32]
#   seq i+2  SEAL_PART     actor 0, target = 2,        a..d = sig[32:48]
#   seq i+3  SEAL_PART     actor 0, target = 3,        a..d = sig[48:64]
#
#   sig = Ed25519(seed, b"RVME" + device_id + link[i-1] + rec[i][0:16])
#
# A part copies t_ms, boot and flags of its seal record, so every byte of the
# four records is fixed by the signed bytes and the signature itself. Key
# rotation puts the new public key into the chain and seals it with the OLD
# key right after, so the old key vouches for the new one:
#
#   seq j    KEY_ROTATE    actor = who asked, target = new key id, a..d = new[0:16]
#   seq j+1  SEAL_PART     actor 0, target = 1,        a..d = new[16:32]
#   seq j+2  SEAL_ED25519 (+3 parts) signed with the old key
#
# This module is imported only by profiles that sign (witness.seal =
# "ed25519"); the curve code loads at the first signature.
import hashlib

from . import kinds
from .witness import WitnessLog

DOMAIN = b"RVME"
SEED_FILE = "rvm_ed25519.key"
PUB_FILE = "rvm_ed25519.pub"


def key_id(pub):
    """16-bit id of an Ed25519 public key: SHA-256(b"RVMK-ed" + pub)[0:2]."""
    d = hashlib.sha256(b"RVMK-ed" + bytes(pub)).digest()
    return d[0] | (d[1] << 8)


def message(device_id, prev_link, rec16):
    """The bytes a seal signs (84 bytes)."""
    return DOMAIN + bytes(device_id) + bytes(prev_link) + bytes(rec16)


def signer(s):
    """A Signer from a seed (bytes) or a Signer; loads the curve code."""
    if isinstance(s, (bytes, bytearray)):
        from .ed25519_sign import Signer
        return Signer(s)
    return s


class SignedWitnessLog(WitnessLog):
    """A WitnessLog whose seals are Ed25519 signatures (the profile's
    witness.seal = "ed25519"). Kept out of witness.py so that boards with
    HMAC seals load none of it. `signer`: a 32-byte seed (the Signer, and
    with it the curve code, is made at the first seal) or a Signer."""

    def __init__(self, device_id, signer=None, **kw):
        WitnessLog.__init__(self, device_id, **kw)
        self.signer = signer

    def service(self):
        if self.seal_every and self.signer is not None and \
                self.next_seq - self._seal_base >= self.seal_every:
            self.seal()
        self.link_pending()
        return self.flush()

    def seal(self):
        """Emit a signed seal (4 records); returns the seq of its first
        record, or -1 without a key or without RAM to sign (then a denied
        SEAL_ED25519 witnesses the refusal)."""
        if self.signer is None:
            return WitnessLog.seal(self)
        self._seal_base = self.next_seq + 4
        try:
            self.signer = signer(self.signer)
        except MemoryError:
            self._seal_base = self.next_seq + 1
            self.deny(kinds.SEAL_ED25519, 0, 0, 19)  # 19 = errors.ENOMEM
            return -1
        seq = seal(self, self.signer)
        if seq >= 0:
            self.last_seal_seq = self.next_seq - 1
        return seq


def console_rotate(ctl):
    """The console's `keyrotate` (control.py): ENOENT unless the log signs."""
    if getattr(ctl.log, "signer", None) is None:
        from . import errors
        return errors.ENOENT  # the profile seals with HMAC: no key to rotate
    return rotate_device(ctl.pf, ctl.log, ctl.pid)


def _put(log, seq, payload16, first):
    """Write 16 payload bytes into a..d of record seq; for a part, copy
    t_ms, boot and flags of record `first`."""
    rmv = log._rmv
    o = (seq % log.ring_n) * 64
    rmv[o + 16:o + 32] = payload16
    if first is not None:
        f = (first % log.ring_n) * 64
        rmv[o + 4:o + 10] = rmv[f + 4:f + 10]
        rmv[o + 11] = rmv[f + 11]


def seal(log, sgn):
    """Emit a signed seal (4 records) authenticating every record before it.
    Returns the seq of the SEAL_ED25519 record, or -1 when there was no RAM
    to sign (the record is then a denied SEAL_ED25519, docs/witness-kinds.md)."""
    log.link_pending()
    seq = log.emit_open(kinds.SEAL_ED25519, 0, sgn.kid)
    o = (seq % log.ring_n) * 64
    try:
        sig = sgn.sign(message(log.device_id, log._head, log._rmv[o:o + 16]))
    except MemoryError:
        # the record stays as a witnessed refusal: denied flag, ENOMEM in b,
        # no parts (the record is not linked yet, so it can still change)
        log._rmv[o + 11] |= 1
        log._rmv[o + 16:o + 32] = bytes(16)
        log._rmv[o + 20] = 19  # errors.ENOMEM
        return -1
    _put(log, seq, sig[0:16], None)
    for part in (1, 2, 3):
        s = log.emit_open(kinds.SEAL_PART, 0, part)
        _put(log, s, sig[16 * part:16 * part + 16], seq)
    log.link_pending()
    return seq


def rotate(log, new, actor=0):
    """Introduce key `new` (a seed or Signer) in the chain, sealed by the
    log's current key; later seals of the log use `new`. Returns the seq of
    the KEY_ROTATE record."""
    old = signer(log.signer)
    new = signer(new)
    j = log.emit_open(kinds.KEY_ROTATE, actor, new.kid)
    _put(log, j, new.pub[0:16], None)
    s = log.emit_open(kinds.SEAL_PART, 0, 1)
    _put(log, s, new.pub[16:32], j)
    log.signer = old
    log.seal()
    log.signer = new
    return j


def unpack_sig(recs):
    """The 64-byte signature from the 4 records of a signed seal."""
    return b"".join(bytes(r[16:32]) for r in recs)


def load_seed(pf, generate=False):
    """(seed or None, generated) from the platform's SEED_FILE; with
    generate, a missing seed is made from os.urandom and written along
    with the public key (PUB_FILE) for the auditor to fetch."""
    seed = pf.read_file(SEED_FILE)
    if seed is not None and len(seed) == 32:
        return seed, False
    if not generate:
        return None, False
    import os
    seed = os.urandom(32)
    pf.write_file(SEED_FILE, seed)
    sg = signer(seed)
    pf.write_file(PUB_FILE, sg.pub)
    return sg, True



def rotate_device(pf, log, actor=0):
    """Rotate the board's seal key: a fresh seed from os.urandom, introduced
    in the chain and sealed by the old key (rotate), the log flushed, then
    the key files replaced. Returns {"rotate_seq", "key_id", "pubkey"}.
    Order on a power cut: before the flush nothing changed; after the flush
    and before the key file is written the board boots with the old key,
    whose later seals verifiers refuse as made with a revoked key (loud,
    not silent; rotate again from the console)."""
    import os
    seed = os.urandom(32)
    new = signer(seed)
    j = rotate(log, new, actor)
    log.flush()
    pf.write_file(SEED_FILE, seed)
    pf.write_file(PUB_FILE, new.pub)
    return {"rotate_seq": j, "key_id": new.kid,
            "pubkey": "".join("%02x" % b for b in new.pub)}
