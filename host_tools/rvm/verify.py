"""Off-device verification of .rvmw witness logs (DESIGN.md section 6).

verify_bytes() is the plain function (bytes, or a FileImage read on
demand); verify_file() streams a file; `rvm verify` is the thin CLI over it.
The chain is recomputed from the header's anchor; HMAC seals are checked
with the standard library's hmac, Ed25519 seals with the `cryptography`
package; the first bad record is reported with its seq and the reason.
Verdicts:

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
  * parallelism: for the same reason a chunk of records [lo, hi) is checked
    from its own bytes and the 32 before it, in any order, by any process
    (see "the streaming verifier" below); only the seal walk is sequential.

Where the time goes: per record, one hashlib copy, update and digest
(about 0.7 us of CPU on the development host, 80-90 % of the total; the
same work as one `sha256(64 bytes).digest()`). hashlib has no call that
hashes many messages, and for 68 bytes it holds the GIL, so threads do not
help; processes do. The rest (seq column, kind scan, reads) is done on
whole chunks by C code.
"""
import array
import hashlib
import hmac
import re
import struct
import sys

from rvm_mp import kinds
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


def _eseal():
    # loaded for Ed25519 seals only (it pulls in the kernel's witness code)
    from rvm_mp import eseal
    return eseal


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
    """HMAC-SHA256(key, b"RVMS" + prev_link + rec16)[0:16] (the standard
    library's hmac over OpenSSL, not the kernel's rvm_mp.hmac256)."""
    return hmac.digest(key, b"RVMS" + bytes(prev_link) + bytes(rec16), "sha256")[:16]


def hmac_seal_why(key, kid, data, o, prev):
    """Why the SEAL record at offset o of `data` fails with `key` (key id
    `kid`) and the link before it, or None when it verifies."""
    actor = data[o + 12] | (data[o + 13] << 8)
    target = data[o + 14] | (data[o + 15] << 8)
    if actor != 0:
        return "seal record with non-kernel actor %d" % actor
    if target != kid:
        return ("seal made with another key (key id %04x, given key "
                "has %04x)" % (target, kid))
    if seal_mac(key, prev, data[o:o + 16]) != data[o + 16:o + 32]:
        return "seal MAC does not verify with the given key"
    return None


def ed_verify(pub, msg, sig):
    """Ed25519 verification with the `cryptography` package."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        Ed25519PublicKey.from_public_bytes(bytes(pub)).verify(bytes(sig), bytes(msg))
        return True
    except (InvalidSignature, ValueError):
        return False


class _SealState:
    """Seal checks of one scan, left to right: which key is in force (it
    changes at a KEY_ROTATE sealed by the old key), which keys were rotated
    out, how far the valid seals reach."""

    def __init__(self, key, pubkey, device_id, info, first, seals=None):
        self.first = first
        self.key = key
        self.kid = _key_id(key) if key else None
        self.pub = bytes(pubkey) if pubkey else None
        self.ekid = _eseal().key_id(pubkey) if pubkey else None
        self.dev = bytes(device_id or bytes(16))
        self.info = info if info is not None else {}
        self.info.setdefault("unchecked", 0)
        self.info.setdefault("rotations", [])
        self.revoked = {}      # key id -> seq of the KEY_ROTATE that retired it
        self.pending = None    # (index of KEY_ROTATE, new public key)
        self.seals = [] if seals is None else seals
        self.skip = 0          # parts of a checked group are not re-scanned
        # results a worker computed for a record index: for a SEAL the
        # reason it fails ("" when it verifies), for a SEAL_ED25519 whether
        # its signature verifies with the key given at the start (pub0)
        self.pre = {}
        self.pub0 = self.pub

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
            why = self.pre.pop(i, None)
            if why is None:
                why = hmac_seal_why(self.key, self.kid, data, o, prev)
            if why:
                return i, why
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
            if target != _eseal().key_id(new):
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
        ok = self.pre.pop(i, None)
        if ok is None or self.pub != self.pub0:
            ok = ed_verify(self.pub, _eseal().message(self.dev, prev, data[o:o + 16]),
                           _signature(data, o))
        if not ok:
            return i, "Ed25519 seal signature does not verify with the given public key"
        self.seals.append(i + 3)
        self.skip = i + 4
        if self.pending is not None:
            j, new = self.pending
            self.pending = None
            self.revoked[self.ekid] = j
            self.info["rotations"].append({"seq": self.seq(j), "old_key_id": self.ekid,
                                           "new_pubkey": new.hex()})
            self.pub, self.ekid = new, _eseal().key_id(new)
        return None


def _signature(data, o):
    """The 64-byte signature of the SEAL_ED25519 group at offset o."""
    return b"".join(data[o + p * REC + 16:o + p * REC + 32] for p in range(4))


def _seq_column(data, lo, hi, shift=0):
    a = array.array("I")
    a.frombytes(data[HDR - shift + lo * REC:HDR - shift + hi * REC])
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a[0::16]


def _expected_seqs(first, lo, hi):
    s = (first + lo) & _M32
    n = hi - lo
    if s + n <= 1 << 32:
        return array.array("I", range(s, s + n))
    return array.array("I", range(s, 1 << 32)) + array.array("I", range(0, s + n - (1 << 32)))


_RAMP = {}  # n -> (sum of 1 << 32j, sum of j << 32j) for j < n


def _expected_bytes(first, lo, hi):
    """The little-endian u32 seqs of records lo..hi-1: s, s+1, ... as the
    bytes of one integer s * (1, 1, ...) + (0, 1, 2, ...), u32 fields that
    never carry into each other (no Python loop over the records)."""
    s = (first + lo) & _M32
    n = hi - lo
    if s + n > 1 << 32:  # wraps past 2**32 - 1
        exp = _expected_seqs(first, lo, hi)
        if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
            exp.byteswap()
        return exp.tobytes()
    r = _RAMP.get(n)
    if r is None:
        ramp = array.array("I", range(n))
        if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
            ramp.byteswap()
        r = _RAMP[n] = (int.from_bytes(b"\x01\0\0\0" * n, "little"),
                        int.from_bytes(ramp.tobytes(), "little"))
    return (s * r[0] + r[1]).to_bytes(4 * n, "little")


def _chain(data, first, anchor, lo, hi, shift=0):
    """Seq and link checks of records lo..hi-1, record i starting at offset
    HDR + i * REC - shift of `data` (which must also hold the 32 bytes before
    record lo when lo > 0). Returns (first bad index, reason) or (None, None)."""
    bad, reason = None, None
    # 1. seq column, compared as a whole (the column's bytes, read through a
    # strided view of the records, against the expected seqs' bytes)
    with memoryview(data) as mv:
        col = mv[HDR - shift + lo * REC:HDR - shift + hi * REC].cast("I")[::16].tobytes()
    stop = hi
    if col != _expected_bytes(first, lo, hi):
        col = _seq_column(data, lo, hi, shift)
        exp = _expected_seqs(first, lo, hi)
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
    base = HDR - shift
    if i == 0 and stop > 0:
        h = _LINK_BASE.copy()
        h.update(anchor)
        h.update(data[base:base + 32])
        if h.digest() != data[base + 32:base + 64]:
            stop = 0
        i = 1
    if stop > i:
        # the per-record cost is hashlib's (a copy, an update, a digest);
        # offsets come from ranges so the loop does no arithmetic
        cp = _LINK_BASE.copy
        o = base + i * REC
        end = base + stop * REC
        for a, b in zip(range(o - 32, end - 32, REC), range(o + 32, end + 32, REC)):
            h = cp()
            h.update(data[a:b])
            if h.digest() != data[b:b + 32]:
                end = a + 32
                break
        stop = (end - base) // REC
    if bad is None or stop < bad:
        bad = stop if stop < hi else None
        if bad is not None:
            reason = "link mismatch: record contents or chain altered"
    return bad, reason


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
    bad, reason = _chain(data, first, anchor, lo, hi)
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


# --- the streaming verifier ------------------------------------------------
#
# The file is cut into chunks of CHUNK records. A chunk is checked on its
# own (seq and link of each record against the link stored just before it,
# which is the 32 bytes before the chunk), so chunks go to worker processes
# that read them from the file themselves; the parent takes the results in
# file order and keeps only what the seal walk still needs (a few records
# around each seal), so memory does not grow with the file. Seals are walked
# in order in the parent (a key rotation changes the key for the rest of
# the file), but the expensive part is done in the workers: every HMAC seal
# completely, and every Ed25519 signature against the key given at the
# start (the parent redoes it only after a rotation).

CHUNK = 16384          # records per chunk: 1 MiB read at a time
_WINDOW = 4            # records a seal group check reads, from the seal on


class _Bytes:
    """A file image in memory, read like a file."""

    def __init__(self, data, path="log"):
        self.data, self.size, self.path = data, len(data), path

    def read(self, off, n):
        return self.data[off:off + n]


class _File:
    """A regular file read with pread (no shared file offset: the parent
    and forked workers may read the same descriptor)."""

    def __init__(self, path):
        import os
        self.path = path
        try:
            self.f = open(path, "rb")
            self.size = os.fstat(self.f.fileno()).st_size
        except OSError as e:
            raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE)
        self.fd = self.f.fileno()
        self._pread = os.pread

    def read(self, off, n):
        try:
            b = self._pread(self.fd, n, off)
        except OSError as e:
            raise RvmToolError("cannot read %s: %s" % (self.path, e.strerror or e), EXIT_USAGE)
        if len(b) != n and off + n <= self.size:
            raise RvmToolError("cannot read %s: the file shrank while it was being "
                               "verified" % self.path, EXIT_USAGE)
        return b

    def close(self):
        self.f.close()


class _Window:
    """Records i-1 .. i+_WINDOW-1 of a source, indexed by file offset (what
    _SealState.check reads for the seal group at index i)."""
    __slots__ = ("base", "buf")

    def __init__(self, src, i, nrec):
        self.base = HDR + i * REC - (32 if i else 0)
        self.buf = src.read(self.base, HDR + min(i + _WINDOW, nrec) * REC - self.base)

    def __getitem__(self, k):
        n = len(self.buf)
        if isinstance(k, slice):
            a, b = k.start - self.base, k.stop - self.base
            if a < 0 or b > n or k.step is not None:
                raise IndexError("seal check outside its window")
            return self.buf[a:b]
        k -= self.base
        if not 0 <= k < n:
            raise IndexError("seal check outside its window")
        return self.buf[k]


class _Tally:
    """Stands for the list of valid seals when only their count and the
    last one are reported (constant memory)."""
    __slots__ = ("n", "last")

    def __init__(self):
        self.n, self.last = 0, None

    def append(self, i):
        self.n += 1
        self.last = i

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        if k != -1 or not self.n:
            raise IndexError(k)
        return self.last


def _chunk(src, lo, hi, ctx):
    """Check records lo..hi-1 of `src`: (bad index or None, reason, [(index,
    kind, precomputed seal result or None) for each seal-kind record before
    the bad one])."""
    first, anchor, key, kid, pub, ekid, dev = ctx
    shift = HDR + lo * REC - (32 if lo else 0)
    buf = src.read(shift, HDR + hi * REC - shift)
    bad, reason = _chain(buf, first, anchor, lo, hi, shift)
    lim = hi if bad is None else bad
    base = HDR - shift
    seals = []
    for m in _SEAL_KINDS.finditer(buf[base + 10 + lo * REC:base + lim * REC:REC]):
        i = lo + m.start()
        o = base + i * REC
        kind = buf[o + 10]
        pre = None
        prev = anchor if i == 0 else buf[o - 32:o]
        if kind == _SEAL:
            if key is not None:
                pre = hmac_seal_why(key, kid, buf, o, prev) or ""
        elif kind == _ESEAL and pub is not None and i + 3 < lim and \
                not buf[o + 11] & 1 and (buf[o + 14] | (buf[o + 15] << 8)) == ekid:
            pre = ed_verify(pub, _eseal().message(dev, prev, buf[o:o + 16]),
                            _signature(buf, o))
        seals.append((i, kind, pre))
    return bad, reason, seals


def cpu_count():
    """Cores this process may run on."""
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _results(src, ctx, nrec, jobs, chunk):
    """(lo, hi, bad, reason, seals) of every chunk, in file order.

    With more than one job (and a file, and more than one chunk), jobs - 1
    forked processes take chunks k with k % jobs == 1, 2, ...; this process
    checks the chunks k % jobs == 0 itself and reads the others' results
    from their pipes in file order. A worker blocks when its pipe is full,
    so what is in flight is bounded by the pipe: memory stays bounded. A
    worker stops after its first chunk with a bad record; the workers are
    killed as soon as the caller stops reading (first bad record found)."""
    import os
    nchunks = -(-nrec // chunk)
    jobs = min(jobs, nchunks)
    if jobs <= 1 or not isinstance(src, _File) or not hasattr(os, "fork"):
        for k in range(nchunks):
            lo, hi = k * chunk, min(k * chunk + chunk, nrec)
            yield (lo, hi) + _chunk(src, lo, hi, ctx)
        return
    import pickle
    kids = []
    try:
        for w in range(1, jobs):
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker (os._exit)
                code = 1
                try:
                    os.close(r)
                    for _, f in kids:
                        f.close()
                    with os.fdopen(wfd, "wb") as out:
                        for k in range(w, nchunks, jobs):
                            lo, hi = k * chunk, min(k * chunk + chunk, nrec)
                            try:
                                res = _chunk(src, lo, hi, ctx)
                            except RvmToolError as e:
                                res = ("error", str(e))
                            pickle.dump(res, out, pickle.HIGHEST_PROTOCOL)
                            out.flush()
                            if res[0] is not None:
                                break
                    code = 0
                finally:
                    os._exit(code)
            os.close(wfd)
            kids.append((pid, os.fdopen(r, "rb")))
        for k in range(nchunks):
            lo, hi = k * chunk, min(k * chunk + chunk, nrec)
            w = k % jobs
            if w == 0:
                res = _chunk(src, lo, hi, ctx)
            else:
                try:
                    res = pickle.load(kids[w - 1][1])
                except (EOFError, pickle.UnpicklingError):
                    raise RvmToolError("cannot verify %s: a worker process died"
                                       % src.path, EXIT_USAGE)
                if res[0] == "error":
                    raise RvmToolError(res[1], EXIT_USAGE)
            yield (lo, hi) + res
    finally:
        import signal
        for pid, f in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # pragma: no cover - already reaped
                pass
            f.close()
            os.waitpid(pid, 0)


def _verify(src, key, pubkey, info, jobs, chunk, seals=None):
    """Verify the image `src` (_Bytes or _File) chunk by chunk with `jobs`
    processes; returns the report. The verdict is the one scan() gives on
    the whole image. `seals` collects the valid seals (a list by default)."""
    rep = {"verdict": None, "records": 0, "first_seq": None, "last_seq": None,
           "sealed_through": None, "seals": 0, "unsealed_tail": 0,
           "bad_seq": None, "reason": None, "device_id": None,
           "unchecked_seals": 0, "key_rotations": [],
           "pubkey_end": pubkey.hex() if pubkey else None}
    try:
        device_id, anchor, first = parse_header(src.read(0, min(HDR, src.size)))
    except ValueError as e:
        rep.update(verdict="tampered", reason=str(e))
        return rep
    rep["device_id"] = device_id.hex()
    rep["first_seq"] = first
    nrec, extra = divmod(src.size - HDR, REC)
    rep["records"] = nrec
    info = {} if info is None else info
    st = _SealState(key, pubkey, device_id, info, first, seals)
    ctx = (first, anchor, key, st.kid, st.pub, st.ekid, st.dev)
    pending = []   # seal-kind indices not walked yet, in order
    bad, reason = None, None

    def walk(upto, lim):
        # check the pending seals i with i + _WINDOW <= upto (all records
        # before upto are known to pass the chain checks)
        n = 0
        r = None
        for i in pending:
            if upto is not None and i + _WINDOW > upto:
                break
            n += 1
            if i < st.skip:
                st.pre.pop(i, None)
                continue
            r = st.check(_Window(src, i, nrec), i, lim, anchor)
            if r is not None:
                break
        del pending[:n]
        return r

    gen = _results(src, ctx, nrec, max(1, jobs), max(1, chunk))
    try:
        for lo, hi, cbad, creason, found in gen:
            for i, kind, pre in found:
                if kind == _SEAL and pre is not None and not pending and i >= st.skip:
                    # checked whole by the worker: nothing left to read
                    if pre:
                        bad, reason = i, pre
                        break
                    st.seals.append(i)
                    continue
                pending.append(i)
                if pre is not None:
                    st.pre[i] = pre
            if bad is not None:
                break
            if cbad is not None:
                bad, reason = cbad, creason
                r = walk(None, bad)
                if r is not None and r is not _STOP:
                    bad, reason = r
                break
            r = walk(hi, nrec)
            if r is not None:  # _STOP needs lim < i + _WINDOW: not here
                bad, reason = r
                break
        else:
            r = walk(None, nrec)
            if r is not None and r is not _STOP:
                bad, reason = r
    finally:
        gen.close()
    return _report(rep, first, nrec, extra, bad, reason, st.seals, info, pubkey)


def _report(rep, first, nrec, extra, bad_i, reason, seals, info, pubkey):
    rep["seals"] = len(seals)
    info["seal_idx"] = seals
    rep["unchecked_seals"] = info["unchecked"]
    rep["key_rotations"] = info["rotations"]
    if info["rotations"]:
        rep["pubkey_end"] = info["rotations"][-1]["new_pubkey"]
    last_seal = (first + seals[-1]) & _M32 if len(seals) else None
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


class FileImage:
    """A .rvmw file read on demand (pread), in place of its bytes: len(),
    indexing and slicing read the file; verify_bytes() streams it."""

    def __init__(self, path):
        self.src = _File(path)

    def __len__(self):
        return self.src.size

    def __getitem__(self, k):
        n = self.src.size
        if isinstance(k, slice):
            a, b, step = k.indices(n)
            if step != 1:
                raise ValueError("FileImage slices have no step")
            return self.src.read(a, max(0, b - a))
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        return self.src.read(k, 1)[0]

    def close(self):
        self.src.close()


def verify_bytes(data, key=None, pubkey=None, info=None, chunk=None, jobs=None):
    """Verify a whole .rvmw image (bytes, or a FileImage: streamed by `jobs`
    processes, default one per core): HMAC seals with `key`, Ed25519 seals
    with `pubkey` (either may be None). Returns a report dict (never raises
    for bad logs; the verdict says what is wrong). info["seal_idx"] lists
    the index of the last record each valid seal authenticates (kept only
    when `info` is given, for a FileImage)."""
    chunk = chunk or CHUNK
    if isinstance(data, FileImage):
        return _verify(data.src, key, pubkey, info, cpu_count() if jobs is None else jobs,
                       chunk, _Tally() if info is None else None)
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    return _verify(_Bytes(data), key, pubkey, info, 1, chunk)


def read_log(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE)


def open_log(path):
    """A FileImage of a regular file, else (a pipe, a device) its bytes.
    RvmToolError (exit 2) when it cannot be read."""
    import os
    import stat
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE)
    return FileImage(path) if regular else read_log(path)


def close_log(img):
    if isinstance(img, FileImage):
        img.close()


def verify_file(path, key=None, pubkey=None, jobs=None, chunk=None):
    """Verify the .rvmw file at `path` without loading it: chunks of `chunk`
    records are checked by `jobs` worker processes (default: one per core;
    1 checks in this process). Same report as verify_bytes() on the file's
    bytes; memory stays bounded whatever the file's size."""
    img = open_log(path)
    try:
        return verify_bytes(img, key, pubkey, chunk=chunk, jobs=jobs)
    finally:
        close_log(img)


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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        Ed25519PublicKey.from_public_bytes(pub)
    except ValueError:
        raise RvmToolError("bad public key: not a point of Ed25519", EXIT_USAGE)
    return pub
