"""Host-side time travel: a region's bytes at any witness seq, from a pulled
witness log (.rvmw), the board's delta log (mem/deltas.log) and, optionally,
its checkpoint directory (mem/ckpt).

The log is verified first (chain and seals, host_tools.rvm.verify); a
tampered log is refused. Every delta whose seq the log covers is checked
against its witness record (kind, region id, offset, length, CRC-32 of the
bytes), so the rebuilt bytes are exactly what the witnessed writes made.
The rebuild itself is rvm_mp.reconstruct.rebuild, the code the board runs.

    from host_tools.rvm.reconstruct import reconstruct
    rep = reconstruct("dev.rvmw", "deltas.log", rid=3, seq=120, key=KEY)
    rep["bytes"]       # bytes, or None when the region did not exist at seq
"""
import io
import os
import struct

from rvm_mp import kinds
from rvm_mp import checkpoint as ckpt
from rvm_mp import errors as kerr
from rvm_mp.flashfs import OS
from rvm_mp.reconstruct import (read_deltas, rebuild_at, horizons, D_ALLOC,
                                D_WRITE, D_FULL, D_FREE, D_HORIZON)

from . import verify as V
from .errors import RvmToolError

# which witness kinds may announce each delta op
_KINDS = {
    D_ALLOC: (kinds.REGION_ALLOC,),
    D_WRITE: (kinds.REGION_WRITE,),
    D_FULL: (kinds.RECONSTRUCT,),
    D_FREE: (kinds.REGION_FREE,),
}


def _u32(rec, off):
    return struct.unpack_from("<I", rec, off)[0]


def load_log(path, key):
    """(first_seq, records bytes) of a verified .rvmw file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e))
    rep = V.verify_bytes(data, key)
    if rep["verdict"] not in ("verified", "unsealed"):
        raise RvmToolError("witness log %s does not verify (%s at seq %s): "
                           "refusing to reconstruct from it"
                           % (path, rep["reason"], rep["bad_seq"]), 1)
    return rep["first_seq"], data[V.HDR:]


def load_deltas(path):
    """Every valid delta entry of a delta log file (a torn tail is cut off,
    as the board does at boot)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror or e))
    return list(read_deltas(io.BytesIO(data)))


def check_deltas(deltas, first, recs):
    """Check each delta the log covers against its witness record.
    Returns the number checked; raises RvmToolError on a mismatch."""
    n = len(recs) // 64
    checked = 0
    for pos, op, seq, rid, off, payload in deltas:
        if op == D_HORIZON:
            continue  # a compaction marker, not a change of bytes
        i = seq - first
        if i < 0 or i >= n:
            continue  # outside the pulled range: cannot be checked
        rec = recs[i * 64:(i + 1) * 64]
        kind = rec[10]
        a = _u32(rec, 16)
        bad = None
        if kind not in _KINDS[op]:
            bad = "record is %s" % kinds.name(kind)
        elif a != rid:
            bad = "record names region %d" % a
        elif op == D_WRITE and (_u32(rec, 20) != off or _u32(rec, 24) != len(payload)
                                or _u32(rec, 28) != _crc(payload)):
            bad = "offset, length or CRC-32 differ from the record"
        elif op == D_ALLOC and _u32(rec, 20) != off:
            bad = "size differs from the record"
        elif op == D_FULL and _u32(rec, 28) != _crc(payload):
            bad = "CRC-32 differs from the record"
        if bad:
            raise RvmToolError("delta for region %d at seq %d does not match "
                               "its witness record: %s" % (rid, seq, bad), 1)
        checked += 1
    return checked


def _crc(b):
    from rvm_mp.reconstruct import hash32
    return hash32(b)


def nearest_checkpoint(ckpt_dir, rid, seq):
    """(checkpoint seq, bytes) of the newest valid checkpoint in ckpt_dir
    taken at or before seq that holds region rid, or None."""
    if not ckpt_dir or not os.path.isdir(ckpt_dir):
        return None
    best = None
    for name in sorted(os.listdir(ckpt_dir)):
        if not name.endswith(".ck"):
            continue
        ck = ckpt.read(OS, os.path.join(ckpt_dir, name))
        if kerr.is_err(ck) or ck["seq"] > seq:
            continue
        if best is not None and ck["seq"] <= best[0]:
            continue
        for r in ck["regions"]:
            if r[0] == rid:
                best = (ck["seq"], r[5])
    return best


def reconstruct(log_path, delta_path, rid, seq, key, ckpt_dir=None):
    """Region `rid` as it was when witness record `seq` was emitted.
    Raises RvmToolError (exit 4) when the board compacted that part of the
    region's history away.
    Returns {"rid", "seq", "bytes" (None: no such region then), "size",
    "base_seq" (checkpoint used, 0 = from the start of the delta log),
    "deltas_applied", "deltas_checked"}."""
    first, recs = load_log(log_path, key)
    last = first + len(recs) // 64 - 1
    if seq < first or seq > last:
        raise RvmToolError("seq %d is outside the pulled log (%d..%d)"
                           % (seq, first, last))
    deltas = load_deltas(delta_path)
    checked = check_deltas(deltas, first, recs)
    base = nearest_checkpoint(ckpt_dir, rid, seq)
    base_seq, base_bytes = (base if base is not None else (0, None))
    per, glob = horizons(deltas)
    h = per.get(rid, glob)
    state, n, ok = rebuild_at(deltas, rid, seq, base_bytes, base_seq, h,
                              rid in per)
    if not ok:
        raise RvmToolError("the history of region %d before seq %d was "
                           "compacted away on the board (asked for seq %d%s)"
                           % (rid, h, seq, "" if ckpt_dir else
                              "; a checkpoint directory may help"), 4)
    return {"rid": rid, "seq": seq,
            "bytes": bytes(state) if state is not None else None,
            "size": len(state) if state is not None else 0,
            "base_seq": base_seq, "deltas_applied": n,
            "deltas_checked": checked}
