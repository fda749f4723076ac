"""Off-device verification of .rvmw witness logs (DESIGN.md section 6).

verify_bytes() is the plain function; `rvm verify` is the thin CLI over it.
The chain is recomputed from the header's anchor; every seal's HMAC is
checked with the `cryptography` package; the first bad record is reported
with its seq and the reason. Verdicts:

  verified   chain intact and sealed through the last record, or with an
             unsealed tail that is reported (exit 0)
  unsealed   chain intact but no valid seal at all (exit 3): nothing is
             authenticated, so it is not called verified
  tampered   a link, seal, seq or header check failed (exit 1)

How the check is organised (and why it is fast and local):

  record i passes when  seq_i == first + i                       (seq)
                  and   SHA-256(b"RVMW" + L_{i-1} + rec_i[0:32]) == L_i (link)
                  and   for a SEAL: actor 0, key id, HMAC over L_{i-1}  (seal)
  where L_{i-1} is the link STORED in record i-1 (the header's anchor for
  i = 0) and L_i the link stored in record i.

Checking each record against the stored link of its predecessor gives the
same first bad record as recomputing the chain left to right: if records
0..i-1 pass, their stored links are the true chain, so record i is judged
against the true previous link. Two consequences:
  * speed: L_{i-1} and rec_i[0:32] are adjacent in the file, so the hash
    input of record i is one slice (file[o-32:o+32]); seqs are compared as a
    whole u32 column, seal records found by scanning the kind column.
  * locality: whether record i passes depends only on the bytes of records
    i-1 and i (and the header for i = 0). A change inside record r makes the
    first bad record r (the seq or the link check of r fails); scan() on a
    window [lo, hi) is therefore the full verdict for a change inside it,
    given that the unchanged log passes. The tamper tests use this.
"""
import array
import hashlib
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rvm_mp import eseal, kinds
from rvm_mp.hmac256 import key_id as _key_id

from .errors import RvmToolError

REC = 64
HDR = 64
EXIT_OK, EXIT_BAD, EXIT_USAGE, EXIT_UNSEALED = 0, 1, 2, 3
_M32 = 0xFFFFFFFF
_LINK_BASE = hashlib.sha256(b"RVMW")  # copied per record: saves one update
_SEAL = kinds.SEAL
_ESEAL = kinds.SEAL_ED25519
_PART = kinds.SEAL_PART
_ROTATE = kinds.KEY_ROTATE
_SEAL_KINDS = re.compile(bytes([0x5B, _SEAL, _ESEAL, _ROTATE, 0x5D]))  # [...]
_STOP = object()


def genesis(device_id):
    return hashlib.sha256(b"RVMW-genesis" + bytes(device_id)).digest()


def parse_header(data):
    """Return (device_id, anchor, first_seq) or raise ValueError(reason)."""
    if len(data) < HDR:
        raise ValueError("bad header: file shorter than the 64-byte header")
    if bytes(data[0:4]) != b"RVMW":
        raise ValueError("bad header: magic is not RVMW")
    version, recsize = struct.unpack_from("<HH", data, 4)
    if version != 1:
        raise ValueError("bad header: unsupported format version %d" % version)
    if recsize != REC:
        raise ValueError("bad header: record size %d, expected 64" % recsize)
    reserved = struct.unpack_from("<I", data, 60)[0]
    if reserved != 0:
        raise ValueError("bad header: reserved field is not zero")
    device_id = bytes(data[8:24])
    anchor = bytes(data[24:56])
    first = struct.unpack_from("<I", data, 56)[0]
    if first == 0 and anchor != genesis(device_id):
        raise ValueError("bad header: anchor of a log starting at seq 0 is not "
                         "the genesis link of its device id")
    return device_id, anchor, first


def seal_mac(key, prev_link, rec16):
    """HMAC-SHA256(key, b"RVMS" + prev_link + rec16)[0:16] (cryptography)."""
    h = c_hmac.HMAC(key, hashes.SHA256())
    h.update(b"RVMS" + bytes(prev_link) + bytes(rec16))
    return h.finalize()[:16]


def ed_verify(pub, msg, sig):
    """Ed25519 verification with the `cryptography` package."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes(pub)).verify(bytes(sig), bytes(msg))
        return True
    except (InvalidSignature, ValueError):
        return False


class _SealState:
    """Seal checks of one scan, left to right: which key is in force (it
    changes at a KEY_ROTATE sealed by the old key), which keys were rotated
    out, how far the valid seals reach."""

    def __init__(self, key, pubkey, device_id, info, first):
        self.first = first
        self.key = key
        self.kid = _key_id(key) if key else None
        self.pub = bytes(pubkey) if pubkey else None
        self.ekid = eseal.key_id(pubkey) if pubkey else None
        self.dev = bytes(device_id or bytes(16))
        self.info = info if info is not None else {}
        self.info.setdefault("unchecked", 0)
        self.info.setdefault("rotations", [])
        self.revoked = {}      # key id -> seq of the KEY_ROTATE that retired it
        self.pending = None    # (index of KEY_ROTATE, new public key)
        self.seals = []
        self.skip = 0          # parts of a checked group are not re-scanned

    def seq(self, i):
        return (self.first + i) & _M32

    def _parts(self, data, i, n, lim):
        """Check the n SEAL_PART records after index i; (bad, reason),
        _STOP when the log ends inside the group, or None."""
        o = HDR + i * REC
        for p in range(1, n + 1):
            if i + p >= lim:
                return _STOP
            q = o + p * REC
            if data[q + 10] != _PART or data[q + 12] | data[q + 13] or \
                    (data[q + 14] | (data[q + 15] << 8)) != p or \
                    data[q + 4:q + 10] != data[o + 4:o + 10] or data[q + 11] != data[o + 11]:
                return i + p, ("record %d after the %s at seq %d is not its "
                               "SEAL_PART %d" % (p, kinds.name(data[o + 10]),
                                                 self.seq(i), p))
        return None

    def check(self, data, i, lim, anchor):
        o = HDR + i * REC
        kind = data[o + 10]
        actor = data[o + 12] | (data[o + 13] << 8)
        target = data[o + 14] | (data[o + 15] << 8)
        prev = anchor if i == 0 else data[o - 32:o]
        if kind == _SEAL:
            if self.key is None:
                self.info["unchecked"] += 1
                return None
            if actor != 0:
                return i, "seal record with non-kernel actor %d" % actor
            if target != self.kid:
                return i, ("seal made with another key (key id %04x, given key "
                           "has %04x)" % (target, self.kid))
            if seal_mac(self.key, prev, data[o:o + 16]) != data[o + 16:o + 32]:
                return i, "seal MAC does not verify with the given key"
            self.seals.append(i)
            return None
        if self.pub is None:
            if kind == _ESEAL:
                self.info["unchecked"] += 1
            return None
        if self.pending is not None and kind == _ROTATE:
            return i, "key rotation inside a key rotation"
        if kind == _ROTATE:
            r = self._parts(data, i, 1, lim)
            if r is not None:
                return r
            new = bytes(data[o + 16:o + 32]) + bytes(data[o + 80:o + 96])
            if target != eseal.key_id(new):
                return i, "KEY_ROTATE target is not the key id of the key it carries"
            if i + 2 >= lim:
                return _STOP
            if data[o + 128 + 10] != _ESEAL:
                return i + 2, ("key rotation at seq %d is not sealed by the old "
                               "key right after it" % self.seq(i))
            self.pending = (i, new)
            self.skip = i + 2
            return None
        # SEAL_ED25519
        if data[o + 11] & 1:  # a refused seal (no RAM to sign): not a seal
            return None
        if actor != 0:
            return i, "Ed25519 seal with non-kernel actor %d" % actor
        if target != self.ekid:
            if target in self.revoked:
                return i, ("seal signed with a revoked key (key id %04x, rotated out "
                           "at seq %d)" % (target, self.seq(self.revoked[target])))
            return i, ("Ed25519 seal made with another key (key id %04x, given "
                       "public key has %04x)" % (target, self.ekid))
        r = self._parts(data, i, 3, lim)
        if r is not None:
            return r
        sig = b"".join(data[o + p * REC + 16:o + p * REC + 32] for p in range(4))
        if not ed_verify(self.pub, eseal.message(self.dev, prev, data[o:o + 16]), sig):
            return i, "Ed25519 seal signature does not verify with the given public key"
        self.seals.append(i + 3)
        self.skip = i + 4
        if self.pending is not None:
            j, new = self.pending
            self.pending = None
            self.revoked[self.ekid] = j
            self.info["rotations"].append({"seq": self.seq(j), "old_key_id": self.ekid,
                                           "new_pubkey": new.hex()})
            self.pub, self.ekid = new, eseal.key_id(new)
        return None


def _seq_column(data, lo, hi):
    a = array.array("I")
    a.frombytes(data[HDR + lo * REC:HDR + hi * REC])
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a[0::16]


def _expected_seqs(first, lo, hi):
    s = (first + lo) & _M32
    n = hi - lo
    if s + n <= 1 << 32:
        return array.array("I", range(s, s + n))
    return array.array("I", range(s, 1 << 32)) + array.array("I", range(0, s + n - (1 << 32)))


def scan(data, key, first, anchor, lo, hi, pubkey=None, device_id=None,
         info=None):
    """Check records lo..hi-1 (indices into the file image `data`), each
    against the stored link of its predecessor (`anchor` for index 0).
    HMAC seals are checked with `key`, Ed25519 seals and key rotations
    with `pubkey` (the key in force at index lo; `device_id` enters the
    signed message); a seal whose key is not given is counted in
    info["unchecked"]. Returns (bad_index or None, reason or None, [index of
    the last record each valid seal authenticates, before the bad index])."""
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    bad, reason = None, None
    # 1. seq column, compared as a whole
    col = _seq_column(data, lo, hi)
    exp = _expected_seqs(first, lo, hi)
    stop = hi
    if col != exp:
        for j in range(len(exp)):
            if col[j] != exp[j]:
                break
        stop = lo + j
        bad = stop
        if stop == 0:
            reason = ("first record has seq %d but the header says the file starts "
                      "at seq %d (header or record altered)" % (col[j], exp[j]))
        else:
            reason = ("seq %d found where %d was expected (record dropped, "
                      "duplicated, reordered or spliced)" % (col[j], exp[j]))
    # 2. links up to the first seq mismatch
    i = lo
    if i == 0 and stop > 0:
        h = _LINK_BASE.copy()
        h.update(anchor)
        h.update(data[HDR:HDR + 32])
        if h.digest() != data[HDR + 32:HDR + 64]:
            stop = 0
        i = 1
    if stop > i:
        cp = _LINK_BASE.copy
        end = HDR + stop * REC
        for o in range(HDR + i * REC, end, REC):
            h = cp()
            h.update(data[o - 32:o + 32])
            if h.digest() != data[o + 32:o + 64]:
                end = o
                break
        stop = (end - HDR) // REC
    if bad is None or stop < bad:
        bad = stop if stop < hi else None
        if bad is not None:
            reason = "link mismatch: record contents or chain altered"
    # 3. seals before the first bad record
    lim = hi if bad is None else bad
    kcol = data[HDR + 10 + lo * REC:HDR + lim * REC:REC]
    st = _SealState(key, pubkey, device_id, info, first)
    for m in _SEAL_KINDS.finditer(kcol):
        i = lo + m.start()
        if i < st.skip:
            continue
        r = st.check(data, i, lim, anchor)
        if r is _STOP:
            break
        if r is not None:
            bad, reason = r
            break
    return bad, reason, st.seals


def verify_bytes(data, key=None, pubkey=None, info=None):
    """Verify a whole .rvmw image: HMAC seals with `key`, Ed25519 seals with
    `pubkey` (either may be None). Returns a report dict (never raises for
    bad logs; the verdict says what is wrong)."""
    rep = {"verdict": None, "records": 0, "first_seq": None, "last_seq": None,
           "sealed_through": None, "seals": 0, "unsealed_tail": 0,
           "bad_seq": None, "reason": None, "device_id": None,
           "unchecked_seals": 0, "key_rotations": [],
           "pubkey_end": pubkey.hex() if pubkey else None}
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    try:
        device_id, anchor, first = parse_header(data)
    except ValueError as e:
        rep.update(verdict="tampered", reason=str(e))
        return rep
    rep["device_id"] = device_id.hex()
    rep["first_seq"] = first
    nrec, extra = divmod(len(data) - HDR, REC)
    rep["records"] = nrec
    info = {} if info is None else info
    bad_i, reason, seals = scan(data, key, first, anchor, 0, nrec, pubkey,
                                device_id, info)
    rep["seals"] = len(seals)
    info["seal_idx"] = seals
    rep["unchecked_seals"] = info["unchecked"]
    rep["key_rotations"] = info["rotations"]
    if info["rotations"]:
        rep["pubkey_end"] = info["rotations"][-1]["new_pubkey"]
    last_seal = (first + seals[-1]) & _M32 if seals else None
    if nrec:
        rep["last_seq"] = (first + nrec - 1) & _M32
    if bad_i is None and extra:
        bad_i, reason = nrec, ("truncated: %d trailing bytes are not a whole record"
                               % extra)
    if bad_i is not None:
        rep.update(verdict="tampered", bad_seq=(first + bad_i) & _M32, reason=reason)
        rep["sealed_through"] = last_seal
        return rep
    if nrec == 0:
        rep.update(verdict="unsealed", reason="log holds no records")
        return rep
    if last_seal is None:
        why = "chain intact but no seal: nothing is authenticated"
        if info["unchecked"]:
            why = ("chain intact but none of its %d seals could be checked with the "
                   "key given (%s)" % (info["unchecked"], "Ed25519 seals need --pubkey"
                                       if pubkey is None else "HMAC seals need --key-hex"))
        rep.update(verdict="unsealed", unsealed_tail=nrec, reason=why)
        return rep
    rep["sealed_through"] = last_seal
    rep["unsealed_tail"] = nrec - 1 - seals[-1]
    rep["verdict"] = "verified"
    return rep


def read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE)


def verify_file(path, key=None, pubkey=None):
    return verify_bytes(read_log(path), key, pubkey)


def exit_code(rep):
    return {"verified": EXIT_OK, "unsealed": EXIT_UNSEALED}.get(rep["verdict"], EXIT_BAD)


def summary_line(rep, path="log"):
    if rep["verdict"] == "verified":
        s = ("verified: %s: %d records, seq %d..%d, sealed through seq %d"
             % (path, rep["records"], rep["first_seq"], rep["last_seq"],
                rep["sealed_through"]))
        if rep.get("key_rotations"):
            s += "; key rotated at seq %s" % ", ".join(
                str(r["seq"]) for r in rep["key_rotations"])
        if rep["unsealed_tail"]:
            s += ("; unsealed tail of %d records (seq %d..%d): chain intact, "
                  "not authenticated" % (rep["unsealed_tail"], rep["sealed_through"] + 1,
                                         rep["last_seq"]))
        return s
    if rep["verdict"] == "unsealed":
        return "unsealed: %s: %d records: %s" % (path, rep["records"], rep["reason"])
    if rep["bad_seq"] is None:
        return "tampered: %s: %s" % (path, rep["reason"])
    return "tampered: %s: first bad record seq %d: %s" % (path, rep["bad_seq"], rep["reason"])


def parse_key_hex(text):
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise RvmToolError("bad key: --key-hex is not hexadecimal", EXIT_USAGE)
    if len(key) < 16:
        raise RvmToolError("bad key: need at least 16 bytes (32 hex digits)", EXIT_USAGE)
    return key


def parse_pubkey(text):
    """--pubkey: 64 hex digits, or a file holding the 32 raw bytes or the hex
    (`rvm keys gen --ed25519` writes FILE.pub). RvmToolError otherwise."""
    import os
    t = (text or "").strip()
    if os.path.isfile(t):
        try:
            with open(t, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise RvmToolError("cannot read public key %s: %s" % (t, e.strerror), EXIT_USAGE)
        if len(raw) == 32:
            return raw
        try:
            t = raw.decode().strip()
        except UnicodeDecodeError:
            raise RvmToolError("bad public key file %s: %d bytes, expected 32 raw "
                               "bytes or 64 hex digits" % (t, len(raw)), EXIT_USAGE)
    try:
        pub = bytes.fromhex(t)
    except ValueError:
        raise RvmToolError("bad public key: %r is neither a file nor hexadecimal"
                           % text[:40], EXIT_USAGE)
    if len(pub) != 32:
        raise RvmToolError("bad public key: %d bytes, an Ed25519 public key has 32"
                           % len(pub), EXIT_USAGE)
    try:
        Ed25519PublicKey.from_public_bytes(pub)
    except ValueError:
        raise RvmToolError("bad public key: not a point of Ed25519", EXIT_USAGE)
    return pub
