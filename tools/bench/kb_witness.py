# Witness log bench (kernel: runs on MicroPython and CPython).
#
# Rows (best of 9 runs, us per record; best-of because the host is shared):
#   emit             the hot path only: WitnessLog.emit into a ring large
#                    enough that nothing is linked inline (what a partition
#                    switch or syscall pays)
#   emit+link        emit N records, then link_pending() (hashlib), / N: the
#                    whole cost of a record, with the link amortised at the
#                    kernel's flush point
#   emit (ring full) emit when every emit must first link the oldest record
#                    inline (viper SHA-256 where present): the no-heap
#                    overflow path
#   floor            struct.pack_into of the same 32 header bytes (same format,
#                    same arguments) into a preallocated buffer plus
#                    hashlib.sha256 over the same 68 bytes the link hashes
#                    (b"RVMW" + previous link + header, prebuilt in one buffer)
#   floor pack only  struct.pack_into alone (what emit's hot path has to do)
#   ratios           emit / floor, emit+link / floor, emit / pack-only floor
#   seal             WitnessLog.seal(): HMAC-SHA256 + SEAL record + links
#   viper sha256     one chain link with sha256_viper.Sha256Into (MicroPython)
import hashlib
import struct

from benchutil import ticks_us, ticks_diff
from rvm_mp import kinds
from rvm_mp.compat import collect
from rvm_mp.witness import WitnessLog

_DEV = bytes(range(16))
_KEY = bytes(range(32, 64))
_FMT = "<IIHBBHHIIII"
N = 1000
REPEAT = 9


def _clock():
    return 12345


def _best(run):
    best = None
    for _ in range(REPEAT):
        collect()
        dt = run()
        if best is None or dt < best:
            best = dt
    return best / N


def _emit_run():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=N + 8, clock=_clock)
    emit = log.emit
    k = kinds.IPC_SEND
    t = ticks_us()
    for i in range(N):
        emit(k, 1, 2, i, 7, 8, 9)
    return ticks_diff(ticks_us(), t)


def _emit_link_run():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=N + 8, clock=_clock)
    emit = log.emit
    k = kinds.IPC_SEND
    t = ticks_us()
    for i in range(N):
        emit(k, 1, 2, i, 7, 8, 9)
    log.link_pending()
    return ticks_diff(ticks_us(), t)


def _emit_full_run():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=16, clock=_clock)
    emit = log.emit
    k = kinds.IPC_SEND
    for i in range(16):  # fill the ring: from here every emit links one
        emit(k, 1, 2, i, 7, 8, 9)
    t = ticks_us()
    for i in range(N):
        emit(k, 1, 2, i, 7, 8, 9)
    return ticks_diff(ticks_us(), t)


def _floor_run():
    buf = bytearray(68)  # b"RVMW" + previous link + 32-byte header
    buf[0:4] = b"RVMW"
    pack_into = struct.pack_into
    sha = hashlib.sha256
    k = kinds.IPC_SEND
    t = ticks_us()
    for i in range(N):
        pack_into(_FMT, buf, 36, i, _clock(), 1, k, 0, 1, 2, i, 7, 8, 9)
        sha(buf).digest()
    return ticks_diff(ticks_us(), t)


def _floor_pack_run():
    ring = bytearray((N + 8) * 64)
    pack_into = struct.pack_into
    k = kinds.IPC_SEND
    t = ticks_us()
    for i in range(N):
        pack_into(_FMT, ring, i * 64, i, _clock(), 1, k, 0, 1, 2, i, 7, 8, 9)
    return ticks_diff(ticks_us(), t)


def _seal_us():
    log = WitnessLog(_DEV, boot=1, key=_KEY, ring=2 * N + 8, clock=_clock)
    n = 200
    best = None
    for _ in range(3):
        log = WitnessLog(_DEV, boot=1, key=_KEY, ring=2 * n + 8, clock=_clock)
        collect()
        t = ticks_us()
        for i in range(n):
            log.seal()
        dt = ticks_diff(ticks_us(), t)
        best = dt if best is None or dt < best else best
    return best / n


def _viper_link_us():
    try:
        from rvm_mp.sha256_viper import Sha256Into
    except (ImportError, SyntaxError):
        return None
    sha = Sha256Into()
    prev = bytes(32)
    ring = bytearray(64 * 16)
    out = bytearray(32)
    best = None
    for _ in range(REPEAT):
        t = ticks_us()
        for i in range(N):
            sha.digest3_into(b"RVMW", prev, ring, (i & 15) * 64, 32, out)
        dt = ticks_diff(ticks_us(), t)
        best = dt if best is None or dt < best else best
    return best / N


def bench(emit):
    e = _best(_emit_run)
    el = _best(_emit_link_run)
    ef = _best(_emit_full_run)
    fl = _best(_floor_run)
    fp = _best(_floor_pack_run)
    emit("witness emit (hot path)", e, "us/op")
    emit("witness emit + amortized link", el, "us/op", "emit N, link_pending, / N")
    emit("witness emit, ring full (inline link)", ef, "us/op",
         "viper SHA-256 where present, no heap")
    emit("floor: pack_into + sha256(68 B)", fl, "us/op", "same bytes, same run")
    emit("floor: pack_into only", fp, "us/op")
    emit("emit / floor", e / fl, "x", "goal <= 1.5 on MicroPython")
    emit("emit+link / floor", el / fl, "x")
    emit("emit / pack-only floor", e / fp, "x", "wrapper overhead of emit")
    emit("witness seal", _seal_us(), "us/op", "HMAC-SHA256 + SEAL record + links")
    v = _viper_link_us()
    if v is not None:
        emit("viper sha256, one chain link", v, "us/op", "68-byte message")
