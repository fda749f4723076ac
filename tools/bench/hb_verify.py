# Host verify bench (CPython): `rvm verify` throughput on a 200,000-record
# sealed log (a seal every 1,000 records), against raw hashlib over the same
# records measured in the same run.
#
# Rows:
#   verify_bytes           records/s of host_tools/rvm/verify.verify_bytes
#   raw hashlib            records/s of one sha256(64 bytes).digest() per
#                          record in a tight loop (no compare, no seq check):
#                          the floor any verifier of this chain pays
#   sequential reference   records/s of the straightforward left-to-right loop
#                          (the first version of verify.py: per-record
#                          memoryview slices, struct unpack of the seq, three
#                          hash updates) -- the "before" figure
#   ratios                 verify / raw, verify / reference
import hashlib
import io
import struct
import time

from rvm_mp import kinds
from rvm_mp.witness import WitnessLog
from host_tools.rvm import verify as V

N = 200000
KEY = bytes(range(32, 64))


def _log():
    log = WitnessLog(bytes(range(16)), boot=1, key=KEY, ring=N + 8,
                     seal_every=1000, clock=lambda: 777)
    k = kinds.IPC_SEND
    i = 0
    while log.next_seq < N - 1:
        log.emit(k, 1 + i % 7, 2, i, i >> 3, 5, 9)
        i += 1
        if i % 500 == 0 and log.next_seq < N - 1:
            log.service()
    log.seal()
    b = io.BytesIO()
    log.export(b)
    return b.getvalue()


def _reference(data, key):
    """The sequential loop of the first verify.py (kept for the comparison)."""
    body = memoryview(data)[64:]
    n = len(body) // 64
    prev = bytes(data[24:56])
    seq_expect = struct.unpack_from("<I", data, 56)[0]
    kid = V._key_id(key)
    sha = hashlib.sha256
    unpack_seq = struct.Struct("<I").unpack_from
    for i in range(n):
        rec = body[i * 64:i * 64 + 64]
        h = sha(b"RVMW")
        h.update(prev)
        h.update(rec[0:32])
        link = h.digest()
        if unpack_seq(rec, 0)[0] != seq_expect or link != rec[32:64]:
            return i
        if rec[10] == kinds.SEAL:
            if (rec[14] | (rec[15] << 8)) != kid or \
                    V.seal_mac(key, prev, bytes(rec[0:16])) != bytes(rec[16:32]):
                return i
        prev = link
        seq_expect += 1
    return None


def _raw(data):
    sha = hashlib.sha256
    for o in range(64, len(data), 64):
        sha(data[o:o + 64]).digest()


def _best(fn, repeat=5):
    best = None
    for _ in range(repeat):
        t = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t
        best = dt if best is None or dt < best else best
    return best, r


def bench(emit):
    data = _log()
    tv, rep = _best(lambda: V.verify_bytes(data, KEY))
    assert rep["verdict"] == "verified" and rep["records"] == N, rep
    tr, _ = _best(lambda: _raw(data))
    tref, bad = _best(lambda: _reference(data, KEY))
    assert bad is None
    v, r, ref = N / tv, N / tr, N / tref
    emit("verify_bytes, 200k records (200 seals)", v, "rec/s", "goal >= 1e6")
    emit("raw hashlib, one sha256 per record", r, "rec/s", "same records, same run")
    emit("sequential reference verifier (before)", ref, "rec/s")
    emit("verify / raw hashlib", v / r, "x")
    emit("verify / sequential reference", v / ref, "x", "speed-up of the column/window verifier")
