# Witness log bench (kernel: runs on MicroPython and CPython). Every figure
# goes through WitnessLog's public entry points (emit, link_pending, seal),
# so a faster emit or link shows up here as soon as it is merged.
#
# Groups and rows (each repeat measures both sides once, back to back, the
# first side alternating; ratios are per repeat):
#   record  the goal row: a record WITH its chain link. The board's ring
#           (32 records, seed-64k), no store, emit 16 records then
#           link_pending() -- what the runtime does at its flush point every
#           half ring -- so the figure is emit + link per record.
#           Floor: the same work written plainly in Python: struct.pack_into
#           of the 32-byte header into a 68-byte message (b"RVMW" + previous
#           link + header), hashlib.sha256 of it, header and link stored in
#           a 32 x 64-byte ring (memoryview slices). Ratio record / floor.
#           Also: emit alone (the switch path's share, linking deferred)
#           against struct.pack_into alone into the ring; and the ring-full
#           path (every emit links the oldest record inline, no heap).
#   seal    WitnessLog.seal(): HMAC-SHA256 + SEAL record + links
#   viper   one chain link with sha256_viper.Sha256Into (MicroPython)
# MicroPython runs the natmods of build/natmods/x64 when built (`make
# natmods`): rvm build ships them to the board, so the board links in C.
import sys
import hashlib
import struct

sys.path.append(__file__.rsplit("/", 3)[0] + "/build/natmods/x64")

from benchutil import ticks_us, ticks_diff, pair, size  # noqa: E402
from rvm_mp import kinds  # noqa: E402
from rvm_mp.compat import collect  # noqa: E402
from rvm_mp.witness import WitnessLog  # noqa: E402

GROUPS = ("record", "seal", "viper")

_DEV = bytes(range(16))
_KEY = bytes(range(32, 64))
_FMT = "<IIHBBHHIIII"
_RING = 32          # seed-64k's ring
_BATCH = 16         # the runtime links every half ring


def _clock():
    return 12345


def _record_fn():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=_RING, clock=_clock)
    emit = log.emit
    # the flush point's link step (service() where a log has no separate
    # link_pending: same work here, no store and no seal due)
    link = getattr(log, "link_pending", None) or log.service
    k = kinds.IPC_SEND

    def run(n):
        for j in range(n // _BATCH):
            for i in range(_BATCH):
                emit(k, 1, 2, i, 7, 8, 9)
            link()
    return run


def _floor_fn():
    msg = bytearray(68)      # b"RVMW" + previous link + 32-byte header
    msg[0:4] = b"RVMW"
    mm = memoryview(msg)
    ring = bytearray(_RING * 64)
    rm = memoryview(ring)
    pack_into = struct.pack_into
    sha = hashlib.sha256
    k = kinds.IPC_SEND
    clock = _clock

    def run(n):
        s = 0
        for j in range(n // _BATCH):
            for i in range(_BATCH):
                pack_into(_FMT, msg, 36, s, clock(), 1, k, 0, 1, 2, i, 7, 8, 9)
                d = sha(msg).digest()
                o = (s % _RING) * 64
                rm[o:o + 32] = mm[36:68]
                rm[o + 32:o + 64] = d
                mm[4:36] = d
                s += 1
    return run


def _emit_only_fn(n):
    # a ring that holds every record of the warm-up and the timed run, so
    # nothing is linked inline: emit's own cost (the runtime links later)
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=n + 72, clock=_clock)
    emit = log.emit
    k = kinds.IPC_SEND

    def run(m):
        for i in range(m):
            emit(k, 1, 2, i, 7, 8, 9)
    return run


def _pack_only_fn():
    ring = bytearray(_RING * 64)
    pack_into = struct.pack_into
    k = kinds.IPC_SEND
    clock = _clock

    def run(n):
        for i in range(n):
            pack_into(_FMT, ring, (i % _RING) * 64, i, clock(), 1, k, 0, 1, 2,
                      i, 7, 8, 9)
    return run


def _ring_full_fn():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=16, clock=_clock)
    k = kinds.IPC_SEND
    for i in range(16):   # fill the ring: from here every emit links one
        log.emit(k, 1, 2, i, 7, 8, 9)

    def run(n):
        emit = log.emit
        for i in range(n):
            emit(k, 1, 2, i, 7, 8, 9)
    return run


def bench_record(emit):
    n = size(4000, 800)
    rec, fl = _record_fn(), _floor_fn()
    rec(64)
    fl(64)
    collect()
    r, f = pair(rec, fl, n)
    emit("record with its chain link (emit + link_pending)", r, "us/rec",
         "ring 32, linked every 16 records")
    emit("floor: pack_into + sha256(68 B) + ring store", f, "us/rec",
         "same repeat")
    emit("record with link / floor", r / f, "x", "goal <= 1.2")
    eo, po = _emit_only_fn(n), _pack_only_fn()
    eo(64)
    po(64)
    collect()
    e, p = pair(eo, po, n)
    emit("emit alone (link deferred)", e, "us/rec", "what the switch path pays")
    emit("floor: pack_into alone", p, "us/rec", "same repeat")
    emit("emit alone / pack-only floor", e / p, "x", "")
    full = _ring_full_fn()
    full(64)
    collect()
    t = ticks_us()
    full(n)
    emit("emit, ring full (links the oldest inline)",
         ticks_diff(ticks_us(), t) / n, "us/rec", "no heap on MicroPython")


def bench_seal(emit):
    n = size(200, 50)
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=2 * n + 8, clock=_clock)
    collect()
    t = ticks_us()
    for i in range(n):
        log.seal()
    emit("witness seal", ticks_diff(ticks_us(), t) / n, "us/op",
         "HMAC-SHA256 + SEAL record + links")


def bench_viper(emit):
    try:
        from rvm_mp.sha256_viper import Sha256Into
    except (ImportError, SyntaxError):
        emit("viper sha256, one chain link", None, "us/op", "no viper here")
        return
    n = size(1000, 200)
    sha = Sha256Into()
    prev = bytes(32)
    ring = bytearray(64 * 16)
    out = bytearray(32)
    t = ticks_us()
    for i in range(n):
        sha.digest3_into(b"RVMW", prev, ring, (i & 15) * 64, 32, out)
    emit("viper sha256, one chain link", ticks_diff(ticks_us(), t) / n,
         "us/op", "68-byte message")


def bench(emit):
    for g in GROUPS:
        globals()["bench_" + g](emit)
