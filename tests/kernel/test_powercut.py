# Power cut at every write of a scenario (littlefs-style): boot, 500 records
# with seals and region writes, a checkpoint, a reboot. For each cut point
# the scenario runs until the power dies, then the board "boots" on what
# survived and the invariant is checked:
#   * every record acknowledged durable (WitnessLog.flush/service return,
#     WitnessStore.sync) is present, and every surviving record is exactly
#     the record the uncut run wrote (nothing torn is ever half-read);
#   * the chain verifies from genesis; the next boot continues seq and link;
#   * every durable REGION_WRITE after its region's history horizon has its
#     delta (crc = the record's d; the scenario compacts the delta log after
#     the checkpoint), no delta outlives its record;
#   * an acknowledged checkpoint restores (F2) to exactly its bytes.
# MicroPython: littlefs (vfs.VfsLfs2) over blockdev.BlockDev cut at every
# block program/erase (torn: half the write lands). CPython has no littlefs:
# the same scenario on a directory through flashfs.CrashFS, cut at every
# file operation (write, sync, rename, remove, mkdir; unsynced data lost,
# a cut sync tears). Counts are printed and recorded in docs/persistence.md.
import kt
from rvm_mp import kinds, flashfs
from rvm_mp.blockdev import BlockDev, PowerCut
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore
from rvm_mp.region import RegionManager
from rvm_mp.reconstruct import hash32, D_WRITE

HEAP = "1M"  # two 64 KB RAM block devices, the reference records, modules from source

G = genesis_link(kt.DEVICE_ID)
NREC = 500
_MNT = "/kt_pcut"


def _clock():
    return 1234


class Ack:
    def __init__(self):
        self.seq = -1         # last seq acknowledged durable
        self.ckpt = -1        # seq of an acknowledged checkpoint
        self.ckpt_bytes = None
        self.live = []        # stores/managers with files open (abandoned
                              # after a cut: the board's RAM is gone)


def _open(root, fs, boot):
    st = WitnessStore(root + "/wit", seg_records=64, genesis=G, fs=fs)
    log = WitnessLog(kt.DEVICE_ID, boot=boot, key=kt.KEY, ring=32,
                     seal_every=50, store=st, clock=_clock)
    m = RegionManager(log, 1024, root=root + "/mem", fs=fs)
    return st, log, m


def scenario(root, fs, ack, nrec=NREC):
    st, log, m = _open(root, fs, 1)
    ack.live = [st, m]
    log.emit(kinds.BOOT_BEGIN, 0, 0, 1)
    ack.seq = log.flush()
    rid = m.alloc(1, 128)
    for i in range(nrec):
        if i % 4 == 0:
            m.write(1, rid, (i * 8) % 120, b"%08d" % i)
        else:
            log.emit(kinds.IPC_SEND, 1, 2, i)
        if i % 10 == 9:
            ack.seq = log.service()
        if i == nrec // 2:
            s = m.checkpoint(1, b"restart-point")
            ack.ckpt_bytes = m.read(1, rid, 0, 128)
            ack.ckpt = s
            ack.seq = s
            m.compact()          # the delta log rewrite is cut too
    log.seal()
    ack.seq = log.flush()
    m.close()
    st.close()
    # reboot: boot 2 restores the partition from its checkpoint (F2)
    st, log, m = _open(root, fs, 2)
    ack.live = [st, m]
    log.emit(kinds.BOOT_BEGIN, 0, 0, 2)
    m.restore_partition(1)
    m.write(1, rid, 0, b"boot-two")
    ack.seq = log.service()
    m.close()
    st.close()


def _reference(root, fs):
    """The uncut run: every record it wrote, in order."""
    ack = Ack()
    scenario(root, fs, ack)
    st = WitnessStore(root + "/wit", seg_records=64, genesis=G, fs=fs)
    recs = list(st.iter_range(0, st.head()[0]))
    st.close()
    return recs, ack


def check_after_cut(root, fs, ack, ref):
    """The next boot on what survived. Returns torn records discarded."""
    st, log, m = _open(root, fs, 3)
    nxt, link = st.head()
    assert nxt - 1 >= ack.seq, (nxt, ack.seq)          # nothing acked lost
    assert nxt <= len(ref)
    seq = 0
    for rec in st.iter_range(0, nxt):                   # exact prefix
        assert rec == ref[seq], seq
        seq += 1
    assert seq == nxt
    ok, n, bad = st.verify(G, 0)
    assert ok and n == nxt, (ok, n, bad)
    # deltas: one per durable write after its region's history horizon
    # (compaction drops older ones), none beyond the durable log
    writes = {}
    for e in m.deltas.entries():
        assert e[2] < nxt
        if e[1] == D_WRITE:
            writes[e[2]] = hash32(e[5])
    for rec in st.iter_range(0, nxt):
        s = rec[0] | rec[1] << 8 | rec[2] << 16 | rec[3] << 24
        if rec[10] == kinds.REGION_WRITE and s >= m.horizon(rec[16] | rec[17] << 8):
            assert writes.get(s) == (rec[28] | rec[29] << 8 | rec[30] << 16
                                     | rec[31] << 24), s
    if ack.ckpt >= 0:
        assert m.restore_partition(1) == b"restart-point"
        assert m.read(1, m.regions_of(1)[0], 0, 128) == ack.ckpt_bytes
    # the next boot continues seq and link
    s = log.emit(kinds.BOOT_BEGIN, 0, 0, 3)
    assert s == log.next_seq - 1 and log.flush() == s
    ok, n, bad = st.verify(G, 0)
    assert ok and n == s + 1
    torn = st.torn
    m.close()
    st.close()
    return torn


def _mount(bd, fresh):
    return flashfs.Flash(bd, _MNT, fresh=fresh)


def test_powercut_sweep_littlefs_every_block_write():
    if not flashfs.have_littlefs():
        kt.skip("CPython has no vfs.VfsLfs2; the littlefs sweep runs on "
                "MicroPython and the file-level sweep covers CPython")
    size = 512 * 128
    media = bytearray(size)      # the medium a scenario writes, reused
    after = bytearray(size)      # what survived the cut, reused
    bd = BlockDev(512, 128, media)
    fl = _mount(bd, True)
    base = bd.ops                # formatting is not part of the scenario
    ref, ack = _reference(_MNT, flashfs.OS)
    fl.umount()
    total = bd.ops - base
    cuts = 0
    torn = 0
    for n in range(total):
        bd = BlockDev(512, 128, media)   # a new device object each time
        bd.reset()
        fl = _mount(bd, True)
        bd.cut_after(n)
        ack = Ack()
        try:
            scenario(_MNT, flashfs.OS, ack)
        except OSError:
            pass  # littlefs reports the dead device as an I/O error
        assert bd.dead, n
        for x in ack.live:
            x.abandon()
        fl.umount()
        fl = _mount(bd.survivor(after), False)
        torn += check_after_cut(_MNT, flashfs.OS, ack, ref)
        fl.umount()
        cuts += 1
    assert cuts == total and cuts > 500
    print("powercut littlefs: %d cut points (every block write of %d), "
          "%d records, 0 acknowledged records lost, %d torn discarded"
          % (cuts, total, len(ref), torn))


def test_powercut_sweep_file_ops():
    if kt.IS_MP:
        kt.skip("MicroPython runs the block-level littlefs sweep above")
    d = kt.tmpdir("pcut")
    fs = flashfs.CrashFS()
    ref, ack = _reference(d + "/ref", fs)
    total = fs.ops
    torn = 0
    for n in range(total):
        root = d + "/c%d" % n
        fs = flashfs.CrashFS()
        fs.cut_after(n)
        ack = Ack()
        try:
            scenario(root, fs, ack)
        except PowerCut:
            pass
        assert fs.dead, n
        for x in ack.live:
            x.abandon()
        torn += check_after_cut(root, flashfs.OS, ack, ref)
        kt.rmtree(root)
    assert total > 300 and torn > 0
    print("powercut file ops: %d cut points, %d records, 0 acknowledged "
          "records lost, %d torn discarded" % (total, len(ref), torn))
    kt.rmtree(d)
