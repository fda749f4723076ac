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
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, hmac as c_hmac

from rvm_mp import kinds
from rvm_mp.hmac256 import key_id as _key_id

from .errors import RvmToolError

REC = 64
HDR = 64
EXIT_OK, EXIT_BAD, EXIT_USAGE, EXIT_UNSEALED = 0, 1, 2, 3


def genesis(device_id):
    return hashlib.sha256(b"RVMW-genesis" + device_id).digest()


def parse_header(data):
    """Return (device_id, anchor, first_seq) or raise ValueError(reason)."""
    if len(data) < HDR:
        raise ValueError("bad header: file shorter than the 64-byte header")
    if data[0:4] != b"RVMW":
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


def _seal_mac(key, prev_link, rec16):
    h = c_hmac.HMAC(key, hashes.SHA256())
    h.update(b"RVMS" + prev_link + rec16)
    return h.finalize()[:16]


def verify_bytes(data, key):
    """Verify a whole .rvmw image. Returns a report dict (never raises for
    bad logs; the verdict says what is wrong)."""
    rep = {"verdict": None, "records": 0, "first_seq": None, "last_seq": None,
           "sealed_through": None, "seals": 0, "unsealed_tail": 0,
           "bad_seq": None, "reason": None, "device_id": None}
    try:
        device_id, anchor, first = parse_header(data)
    except ValueError as e:
        rep.update(verdict="tampered", reason=str(e))
        return rep
    rep["device_id"] = device_id.hex()
    rep["first_seq"] = first
    body = memoryview(data)[HDR:]
    nrec, extra = divmod(len(body), REC)
    rep["records"] = nrec
    kid = _key_id(key)

    prev = anchor
    sha = hashlib.sha256
    seq_expect = first
    last_seal = None
    bad = None
    unpack_seq = struct.Struct("<I").unpack_from
    for i in range(nrec):
        off = i * REC
        rec = body[off:off + REC]
        head = rec[0:32]
        h = sha(b"RVMW")
        h.update(prev)
        h.update(head)
        link = h.digest()
        seq = unpack_seq(rec, 0)[0]
        if seq != (seq_expect & 0xFFFFFFFF):
            bad = (seq_expect, "seq %d found where %d was expected (record "
                   "dropped, duplicated, reordered or spliced)" % (seq, seq_expect))
            break
        if link != rec[32:64]:
            bad = (seq_expect, "link mismatch: record contents or chain altered")
            break
        if rec[10] == kinds.SEAL:
            actor = rec[12] | (rec[13] << 8)
            target = rec[14] | (rec[15] << 8)
            if actor != 0:
                bad = (seq_expect, "seal record with non-kernel actor %d" % actor)
                break
            if target != kid:
                bad = (seq_expect, "seal made with another key (key id %04x, "
                       "given key has %04x)" % (target, kid))
                break
            if _seal_mac(key, prev, bytes(rec[0:16])) != bytes(rec[16:32]):
                bad = (seq_expect, "seal MAC does not verify with the given key")
                break
            last_seal = seq_expect
            rep["seals"] += 1
        prev = link
        seq_expect += 1
    if nrec:
        rep["last_seq"] = first + nrec - 1
    if bad is None and extra:
        bad = (first + nrec, "truncated: %d trailing bytes are not a whole record" % extra)
    if bad is not None:
        rep.update(verdict="tampered", bad_seq=bad[0], reason=bad[1])
        if last_seal is not None:
            rep["sealed_through"] = last_seal
        return rep
    if nrec == 0:
        rep.update(verdict="unsealed", reason="log holds no records")
        return rep
    if last_seal is None:
        rep.update(verdict="unsealed", unsealed_tail=nrec,
                   reason="chain intact but no seal: nothing is authenticated")
        return rep
    rep["sealed_through"] = last_seal
    rep["unsealed_tail"] = rep["last_seq"] - last_seal
    rep["verdict"] = "verified"
    return rep


def verify_file(path, key):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE)
    return verify_bytes(data, key)


def exit_code(rep):
    return {"verified": EXIT_OK, "unsealed": EXIT_UNSEALED}.get(rep["verdict"], EXIT_BAD)


def summary_line(rep, path="log"):
    if rep["verdict"] == "verified":
        s = ("verified: %s: %d records, seq %d..%d, sealed through seq %d"
             % (path, rep["records"], rep["first_seq"], rep["last_seq"],
                rep["sealed_through"]))
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
