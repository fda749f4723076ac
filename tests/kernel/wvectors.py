# Golden witness vectors: how each file in tests/vectors/witness/ is built.
# Portable (MicroPython and CPython). tools/make_vectors.py runs build_all()
# on MicroPython to write the committed files; tests/kernel/test_vectors.py
# rebuilds every vector on both runtimes and compares the bytes.
#
# Everything is deterministic: a fixed device id and keys, a fixed clock
# (FixedClock) passed to WitnessLog, a fixed pseudo-random workload (LCG).
import hashlib
import struct

from rvm_mp import kinds
from rvm_mp.witness import (WitnessLog, genesis_link, chain_link,
                            HDR_SIZE, REC_SIZE)

DEVICE_ID = bytes.fromhex("52564d2d4d502d7665637430310a0b0c")  # "RVM-MP-vect01"..
DEVICE_ID2 = bytes.fromhex("52564d2d4d502d766563743032a1b2c3")
KEY = hashlib.sha256(b"rvm-mp golden vector device key").digest()
OTHER_KEY = hashlib.sha256(b"rvm-mp golden vector OTHER key").digest()

TAMPER_SEQ = 123      # tampered.rvmw: byte 16 (field a, low byte) of this seq ^= 0x01
RELINK_SEQ = 120      # relinked.rvmw: field a of this seq changed, chain recomputed
RANGE_LO, RANGE_HI = 100, 250  # range.rvmw: records 100..249 of sealed.rvmw


class FixedClock:
    """ticks_ms stand-in: starts at `t0`, advances `step` ms per call,
    wraps at 2**30 like MicroPython's ticks."""

    def __init__(self, t0=1000, step=3):
        self.t = t0
        self.step = step

    def __call__(self):
        t = self.t
        self.t = (self.t + self.step) & 0x3FFFFFFF
        return t


# a mix of kinds the workload draws from (kind, denied?)
_MIX = (
    (kinds.IPC_SEND, 0), (kinds.IPC_RECV, 0), (kinds.REGION_WRITE, 0),
    (kinds.CAP_DERIVE, 0), (kinds.CAP_DENIED, 1), (kinds.PART_STATE, 0),
    (kinds.EPOCH_SUMMARY, 0), (kinds.LEASE_GRANT, 0), (kinds.REGION_DENIED, 1),
    (kinds.IPC_SEND, 0), (kinds.IPC_RECV, 0), (kinds.REGION_ALLOC, 0),
)


def workload(log, n, seed=1, service_every=16):
    """Emit n records of a deterministic mixed workload (LCG-driven), calling
    service() every `service_every` records (which emits due seals)."""
    x = seed & 0x7FFFFFFF
    for i in range(n):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        kind, denied = _MIX[x % len(_MIX)]
        actor = 1 + (x >> 8) % 6
        target = 1 + (x >> 12) % 9
        if denied:
            log.deny(kind, actor, target, 1 + (x >> 4) % 27, (x >> 16) & 3,
                     x & 0xFFFF, i, x >> 3)
        else:
            log.emit(kind, actor, target, x, i, (x * 7) & 0xFFFFFFFF, x >> 5)
        if i % 97 == 50:
            log.degraded = not log.degraded
        if service_every and i % service_every == service_every - 1:
            log.service()
    log.degraded = False


class _Buf:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)


def _export(log, lo=0, hi=None):
    out = _Buf()
    log.export(out, lo, hi)
    return bytes(out.data)


def _sealed_log(key=KEY, device_id=DEVICE_ID, n=295, seed=1):
    log = WitnessLog(device_id, boot=1, key=key, ring=512, seal_every=50,
                     clock=FixedClock())
    log.emit(kinds.BOOT_BEGIN, 0, 0, 1, 0, 65536, 0x000100)
    workload(log, n, seed)
    log.seal()
    return log


def _mutate_a(data, seq):
    """Flip the low bit of field `a` (byte 16) of record `seq` (file starts at 0)."""
    d = bytearray(data)
    d[HDR_SIZE + seq * REC_SIZE + 16] ^= 0x01
    return bytes(d)


def _relink_from(data, seq, device_id):
    """Change field a of record `seq`, then recompute every later link, as an
    attacker without the key would: the chain is consistent again, only a
    later seal can tell."""
    d = bytearray(_mutate_a(data, seq))
    prev = genesis_link(device_id) if seq == 0 else \
        bytes(d[HDR_SIZE + (seq - 1) * REC_SIZE + 32:HDR_SIZE + seq * REC_SIZE])
    n = (len(d) - HDR_SIZE) // REC_SIZE
    for s in range(seq, n):
        o = HDR_SIZE + s * REC_SIZE
        link = chain_link(prev, d[o:o + 32])
        d[o + 32:o + 64] = link
        prev = link
    return bytes(d)


def _seals(data):
    out = []
    n = (len(data) - HDR_SIZE) // REC_SIZE
    for i in range(n):
        if data[HDR_SIZE + i * REC_SIZE + 10] == kinds.SEAL:
            out.append(struct.unpack_from("<I", data, HDR_SIZE + i * REC_SIZE)[0])
    return out


def _reboot_log(tmpdir):
    """Two boots on one WitnessStore: the chain head is restored from the
    segment files and seq and link continue across the reboot."""
    from rvm_mp.witness_store import WitnessStore
    g = genesis_link(DEVICE_ID)
    st = WitnessStore(tmpdir, seg_records=32, genesis=g)
    log = WitnessLog(DEVICE_ID, boot=1, key=KEY, ring=16, seal_every=40,
                     store=st, clock=FixedClock(500, 5))
    log.emit(kinds.BOOT_BEGIN, 0, 0, 1, 0, 65536, 0x000100)
    workload(log, 70, seed=7, service_every=4)
    log.emit(kinds.SHUTDOWN, 0, 0, 0, 1234, 72, 0)
    log.seal()
    log.flush()
    st.close()
    st2 = WitnessStore(tmpdir, seg_records=32, genesis=g)
    nxt = st2.head()[0]
    log2 = WitnessLog(DEVICE_ID, boot=2, key=KEY, ring=16, seal_every=40,
                      store=st2, clock=FixedClock(20, 5))
    log2.emit(kinds.BOOT_BEGIN, 0, 0, 2, 0, 65536, 0x000100)
    log2.emit(kinds.CHAIN_RESTORED, 0, 0, nxt, 2, len(st2.segments()), st2.torn)
    workload(log2, 50, seed=8, service_every=4)
    log2.seal()
    log2.flush()
    data = _export(log2, 0)
    st2.close()
    return data


def _expect(data, verdict, bad_seq=None, first=0, note=""):
    n = (len(data) - HDR_SIZE) // REC_SIZE
    seals = [s for s in _seals(data) if bad_seq is None or s < bad_seq]
    st = seals[-1] if seals else None
    e = {"verdict": verdict, "records": n, "first_seq": first,
         "last_seq": first + n - 1 if n else None,
         "sealed_through": st if verdict != "unsealed" else None,
         "unsealed_tail": 0, "bad_seq": bad_seq, "note": note}
    if verdict == "verified":
        e["unsealed_tail"] = first + n - 1 - st
    elif verdict == "unsealed":
        e["unsealed_tail"] = n
    return e


def build(name, tmpdir=None):
    """(bytes, expectation dict) of vector `name` (see NAMES)."""
    if name == "sealed":
        d = _export(_sealed_log())
        return d, _expect(d, "verified", note="boot, 295 mixed records (denials, "
                          "degraded spans), a seal every 50, sealed at the end")
    if name == "unsealed":
        log = WitnessLog(DEVICE_ID, boot=1, key=None, ring=64, clock=FixedClock())
        workload(log, 40, seed=3)
        d = _export(log)
        return d, _expect(d, "unsealed", note="log without a key: chain intact, "
                          "no seal")
    if name == "unsealed_tail":
        log = _sealed_log(n=120, seed=4)
        workload(log, 7, seed=5, service_every=0)
        d = _export(log)
        return d, _expect(d, "verified", note="sealed, then 7 records after the "
                          "last seal (reported as the unsealed tail)")
    if name == "reboot":
        d = _reboot_log(tmpdir)
        return d, _expect(d, "verified", note="two boots on one WitnessStore: "
                          "boot 2 continues seq and link from the stored head")
    if name == "tampered":
        d = _mutate_a(_export(_sealed_log()), TAMPER_SEQ)
        return d, _expect(d, "tampered", TAMPER_SEQ, note="sealed.rvmw with byte "
                          "16 (a, low byte) of seq %d XOR 0x01" % TAMPER_SEQ)
    if name == "relinked":
        d = _relink_from(_export(_sealed_log()), RELINK_SEQ, DEVICE_ID)
        first_seal = [s for s in _seals(d) if s > RELINK_SEQ][0]
        return d, _expect(d, "tampered", first_seal, note="sealed.rvmw with a of "
                          "seq %d XOR 1 and every later link recomputed: the next "
                          "seal (seq %d) fails" % (RELINK_SEQ, first_seal))
    if name == "other_key":
        d = _export(_sealed_log(key=OTHER_KEY))
        first_seal = _seals(d)[0]
        return d, _expect(d, "tampered", first_seal, note="sealed with OTHER_KEY, "
                          "verified with KEY: the first seal is refused")
    if name == "range":
        log = _sealed_log()
        d = _export(log, RANGE_LO, RANGE_HI)
        return d, _expect(d, "verified", first=RANGE_LO, note="records %d..%d of "
                          "sealed.rvmw; anchor is the link of seq %d"
                          % (RANGE_LO, RANGE_HI - 1, RANGE_LO - 1))
    if name == "empty":
        log = WitnessLog(DEVICE_ID, boot=1, key=KEY, ring=8, clock=FixedClock())
        d = _export(log)
        return d, _expect(d, "unsealed", note="header only, no records")
    raise ValueError("no vector " + name)


NAMES = ("sealed", "unsealed", "unsealed_tail", "reboot", "tampered",
         "relinked", "other_key", "range", "empty")


def index_entry(name, data, exp):
    e = {"file": name + ".rvmw",
         "device_id_hex": bytes(data[8:24]).hex(),
         "key_hex": KEY.hex(),
         "seal_key_hex": (OTHER_KEY if name == "other_key" else KEY).hex(),
         "sha256": hashlib.sha256(data).digest().hex()}
    for k in exp:
        e[k] = exp[k]
    return e
