# Checkpoints (F2 rebuild) and region verification / rollback (F3).
import kt
from rvm_mp import errors, kinds, tiers, checkpoint
from rvm_mp.witness import WitnessLog, genesis_link, unpack
from rvm_mp.witness_store import WitnessStore
from rvm_mp.region import RegionManager
from rvm_mp.reconstruct import hash32

HEAP = "256K"  # modules compiled from source live in the heap too; boards load .mpy


def _setup(d, boot=1):
    st = WitnessStore(d + "/wit", seg_records=64, genesis=genesis_link(kt.DEVICE_ID))
    log = WitnessLog(kt.DEVICE_ID, boot=boot, key=kt.KEY, ring=256, store=st)
    m = RegionManager(log, 4096, root=d + "/mem")
    return st, log, m


def test_checkpoint_file_format_and_witness():
    d = kt.tmpdir("ck")
    st, log, m = _setup(d)
    a = m.alloc(7, 100)
    b = m.alloc(7, 40)
    m.alloc(8, 10)
    m.write(7, a, 0, b"alpha")
    m.write(7, b, 5, b"beta")
    m.move(b, tiers.DORMANT)
    seq = m.checkpoint(7, b"caps+queues+restart")
    assert seq == log.next_seq - 1
    f = unpack(log.record(seq))
    assert f[3] == kinds.CHECKPOINT and f[6] == 7 and f[8] == 2 and f[10] == 0
    assert st.head()[0] == log.next_seq   # durable on return
    lst = m.ckpts.list(7)
    assert len(lst) == 1 and lst[0][0] == seq
    ck = checkpoint.read(m.fs, lst[0][2])
    assert ck["pid"] == 7 and ck["seq"] == seq and ck["extra"] == b"caps+queues+restart"
    regs = ck["regions"]
    assert [r[0] for r in regs] == [a, b]
    assert regs[0][5][0:5] == b"alpha" and regs[1][5][5:9] == b"beta"
    assert regs[1][2] == tiers.DORMANT
    # the file's SHA-256 head is the witness digest
    import hashlib
    with open(lst[0][2], "rb") as fh:
        raw = fh.read()
    dig = hashlib.sha256(raw[:-32]).digest()
    assert f[9] == dig[0] | dig[1] << 8 | dig[2] << 16 | dig[3] << 24
    assert f[7] == len(raw)
    m.close()
    st.close()
    kt.rmtree(d)


def test_f2_restore_partition_from_checkpoint():
    d = kt.tmpdir("f2")
    st, log, m = _setup(d)
    a = m.alloc(3, 64)
    m.write(3, a, 0, b"state-1")
    s1 = m.checkpoint(3, b"extra-1")
    m.write(3, a, 0, b"STATE-2")
    c = m.alloc(3, 32)               # allocated after the checkpoint
    extra = m.restore_partition(3)
    assert extra == b"extra-1"
    assert m.regions_of(3) == [a]
    assert m.read(3, a, 0, 7) == b"state-1"
    assert m.tier_of(c) is errors.ENOENT
    f = unpack(log.query(kind=kinds.RECONSTRUCT)[-1])
    assert f[6] == 3 and f[7] == a and f[8] == s1
    assert m.verify_region(a) is True
    # a second checkpoint is preferred; a corrupt newest falls back
    m.write(3, a, 0, b"state-3")
    m.checkpoint(3, b"extra-3")
    newest = m.ckpts.list(3)[-1][2]
    with open(newest, "r+b") as fh:
        fh.seek(40)
        fh.write(b"\x5a\x5a")
    assert m.restore_partition(3) == b"extra-1"
    assert m.read(3, a, 0, 7) == b"state-1"
    # no checkpoint at all: refused and witnessed
    assert m.restore_partition(9) is errors.ENOENT
    f = unpack(log.query(kind=kinds.REGION_DENIED)[-1])
    assert f[6] == 9 and f[8] == errors.ENOENT.code
    m.close()
    st.close()
    kt.rmtree(d)


def test_checkpoint_survives_reboot_and_old_ones_pruned():
    d = kt.tmpdir("ckr")
    st, log, m = _setup(d)
    a = m.alloc(2, 48)
    for i in range(4):
        m.write(2, a, 0, b"gen%d" % i)
        m.checkpoint(2, b"x%d" % i)
    assert len(m.ckpts.list(2)) == 2    # keep=2
    m.close()
    st.close()
    st, log, m = _setup(d, boot=2)      # reboot: RAM regions are gone
    assert m.regions_of(2) == []
    assert m.restore_partition(2) == b"x3"
    assert m.read(2, a, 0, 4) == b"gen3"
    b = m.alloc(2, 16)
    assert b != a                        # ids do not collide after reboot
    m.close()
    st.close()
    kt.rmtree(d)


def test_f3_corrupt_region_is_detected_and_rolled_back():
    d = kt.tmpdir("f3")
    st, log, m = _setup(d)
    a = m.alloc(4, 256)
    for i in range(20):
        m.write(4, a, i * 8, b"rec%05d" % i)
    m.checkpoint(4)
    for i in range(20, 30):
        m.write(4, a, i * 8, b"rec%05d" % i)
    good = m.read(4, a, 0, 256)
    r = m.regions[a]
    m.arena[r.off + 17] ^= 0x40            # a bit flips behind the kernel
    m.arena[r.off + 250] = 0x99
    assert m.verify_region(a) is False
    assert m.rollback_region(a) == 0
    assert m.verify_region(a) is True and m.read(4, a, 0, 256) == good
    f = unpack(log.query(kind=kinds.REGION_ROLLBACK)[-1])
    assert f[7] == a and f[8] > 0 and f[9] == 10 and f[10] == hash32(good)
    m.close()
    st.close()
    kt.rmtree(d)


def test_f3_rollback_refused_when_history_is_gone():
    d = kt.tmpdir("f3b")
    st, log, m = _setup(d)
    a = m.alloc(4, 64)
    m.write(4, a, 0, b"precious")
    m.flush()
    m.close()
    with open(d + "/mem/deltas.log", "r+b") as fh:  # the flash lost it too
        fh.seek(30)
        fh.write(b"\xff\xff\xff")
    m.arena[m.regions[a].off] ^= 1
    assert m.rollback_region(a) is errors.ECORRUPT
    f = unpack(log.query(kind=kinds.REGION_DENIED)[-1])
    assert f[8] == errors.ECORRUPT.code and f[7] == a
    st.close()
    kt.rmtree(d)


def test_region_ids_stay_reserved_by_checkpoints_after_compaction():
    d = kt.tmpdir("rid")
    st, log, m = _setup(d)
    a = m.alloc(5, 32)
    b = m.alloc(6, 32)
    m.write(6, b, 0, b"six")
    m.checkpoint(6, b"p6")
    m.free(6, b)               # partition 6 lost its region...
    m.compact()                # ...and the delta log forgot it
    m.close()
    st.close()
    st, log, m = _setup(d, boot=2)
    c = m.alloc(7, 32)
    assert c > b               # b is still named by p6's checkpoint
    assert m.restore_partition(6) == b"p6"
    assert m.read(6, b, 0, 3) == b"six"
    m.close()
    st.close()
    kt.rmtree(d)
