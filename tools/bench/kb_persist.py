# Persistence benches, on MicroPython and CPython:
#   * witness append to flash, records/s, vs a plain 64-byte file append
#     with the same sync points, measured in the same run (littlefs over the
#     RAM block device on MicroPython; a directory on both runtimes)
#   * dormant tier: compression ratio and us per KB, deflate vs RLE
#   * reconstruction of a 4 KB region across 1,000 deltas
import os
import sys

from benchutil import ticks_us, ticks_diff

from rvm_mp import kinds, tiers, flashfs
from rvm_mp.blockdev import BlockDev
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore
from rvm_mp.region import RegionManager

DEV = bytes(range(16))
KEY = bytes(range(32, 64))
N_REC = 1000
SYNC_EVERY = 8


def _tmp():
    base = "/tmp/rvm-bench-%s" % "".join("%02x" % b for b in os.urandom(4))
    os.mkdir(base)
    return base


def _rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def _witness_rate(root):
    st = WitnessStore(root + "/wit", seg_records=128, genesis=genesis_link(DEV))
    log = WitnessLog(DEV, boot=1, key=KEY, ring=32, seal_every=64, store=st)
    t = ticks_us()
    for i in range(N_REC):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        if i % SYNC_EVERY == SYNC_EVERY - 1:
            log.service()
    log.service()
    dt = ticks_diff(ticks_us(), t)
    st.close()
    return N_REC * 1000000 / dt


def _plain_rate(root):
    rec = bytes(64)
    f = open(root + "/plain.bin", "ab")
    t = ticks_us()
    for i in range(N_REC):
        f.write(rec)
        if i % SYNC_EVERY == SYNC_EVERY - 1:
            flashfs.OS.fsync(f)
    flashfs.OS.fsync(f)
    dt = ticks_diff(ticks_us(), t)
    f.close()
    return N_REC * 1000000 / dt


def _appends(emit, where, root):
    w = _witness_rate(root)
    p = _plain_rate(root)
    emit("witness append (%s, sync every %d) " % (where, SYNC_EVERY), w,
         "rec/s", "hash-chained, sealed every 64, segment files")
    emit("plain 64-byte file append (%s, same syncs)" % where, p, "rec/s",
         "peer in the same run")
    emit("witness / plain append (%s)" % where, w / p, "x", "")


def _region_data():
    # a typical dormant region: a text log, then a zeroed tail
    out = bytearray(4096)
    line = b"t=%05d temp=21.%d hum=40%%\n"
    o = 0
    i = 0
    while o < 2600:
        s = line % (i, i % 10)
        out[o:o + len(s)] = s
        o += len(s)
        i += 1
    return bytes(out)


def _codec(emit, codec, name, data):
    reps = 5
    t = ticks_us()
    for _ in range(reps):
        blob = tiers.encode(codec, data)
    enc = ticks_diff(ticks_us(), t) / reps
    out = bytearray(len(data))
    t = ticks_us()
    for _ in range(reps):
        tiers.decode_into(codec, blob, out)
    dec = ticks_diff(ticks_us(), t) / reps
    assert bytes(out) == data
    kb = len(data) / 1024
    emit("dormant %s ratio (4 KB text+zeros)" % name, len(data) / len(blob),
         "x", "raw / compressed, %d -> %d bytes" % (len(data), len(blob)))
    emit("dormant %s compress" % name, enc / kb, "us/KB", "")
    emit("dormant %s decompress" % name, dec / kb, "us/KB", "")


def _reconstruct(emit, where, root):
    log = WitnessLog(DEV, boot=1, key=KEY, ring=64)
    m = RegionManager(log, 8192, root=root + "/mem")
    rid = m.alloc(1, 4096)
    x = 7
    for i in range(1000):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        m.write(1, rid, x % 4080, b"%016d" % i)
    m.flush()
    k = log.next_seq - 1
    t = ticks_us()
    got = m.region_at(rid, k)
    dt = ticks_diff(ticks_us(), t)
    assert got == m.read(1, rid, 0, 4096)
    emit("reconstruct 4 KB region across 1000 deltas (%s)" % where, dt / 1000,
         "ms", "delta log %d bytes" % m.deltas.size())
    m.close()


def bench(emit):
    rt = sys.implementation.name
    d = _tmp()
    try:
        _appends(emit, "directory", d)
        if flashfs.have_littlefs():
            bd = BlockDev(512, 512)
            fl = flashfs.Flash(bd, "/bench_lfs", fresh=True)
            _appends(emit, "littlefs on RAM blockdev", "/bench_lfs")
            emit("littlefs block writes for %d records" % N_REC, bd.ops,
                 "ops", "program+erase, 512-byte blocks")
            fl.umount()
        data = _region_data()
        emit("deflate available on %s" % rt, 1 if tiers.can_deflate() else 0,
             "bool", "RLE is used where this is 0")
        if tiers.can_deflate():
            _codec(emit, tiers.CODEC_DEFLATE, "deflate", data)
        _codec(emit, tiers.CODEC_RLE, "RLE", data)
        _reconstruct(emit, "directory", d)
        if flashfs.have_littlefs():
            bd = BlockDev(512, 512)
            fl = flashfs.Flash(bd, "/bench_lfs2", fresh=True)
            _reconstruct(emit, "littlefs", "/bench_lfs2")
            fl.umount()
    finally:
        _rmtree(d)
