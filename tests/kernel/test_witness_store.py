# WitnessStore hardening: segments, torn tails, interrupted repairs, chain
# verification, pruning, delta-before-record ordering, littlefs backing.
import kt
from rvm_mp import kinds, flashfs
from rvm_mp.blockdev import BlockDev
from rvm_mp.witness import WitnessLog, genesis_link
from rvm_mp.witness_store import WitnessStore

HEAP = "256K"  # modules compiled from source live in the heap too; boards load .mpy

G = genesis_link(kt.DEVICE_ID)


def _fill(root, n, seg=16, fs=None):
    st = WitnessStore(root, seg_records=seg, genesis=G, fs=fs)
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=8, seal_every=10,
                     store=st)
    for i in range(n):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        log.service()
    log.flush()
    return st, log


def test_segments_split_and_verify():
    d = kt.tmpdir("ws")
    st, log = _fill(d, 40)
    n = log.next_seq
    assert st.head()[0] == n and len(st.segments()) == (n + 15) // 16
    ok, cnt, bad = st.verify()
    assert ok and cnt == n and bad == -1
    assert st.read(n) is None and st.read(-1) is None
    assert [r[0] for r in st.iter_range(14, 18, chunk=3)] == [14, 15, 16, 17]
    st.close()
    kt.rmtree(d)


def test_verify_finds_a_flipped_bit_in_the_middle():
    d = kt.tmpdir("wsb")
    st, log = _fill(d, 30)
    st.close()
    path = d + "/00000010.seg"
    with open(path, "r+b") as f:
        f.seek(64 * 3 + 20)
        b = f.read(1)
        f.seek(64 * 3 + 20)
        f.write(bytes([b[0] ^ 1]))
    st = WitnessStore(d, seg_records=16, genesis=G)
    ok, cnt, bad = st.verify()
    assert not ok and bad == 19 and cnt == 19
    st.close()
    kt.rmtree(d)


def test_interrupted_repair_leaves_segment_intact():
    d = kt.tmpdir("wsr")
    st, log = _fill(d, 20)
    head = st.head()
    st.close()
    # a repair was cut after writing its temp file, before the rename
    with open(d + "/00000010.seg.tmp", "wb") as f:
        f.write(b"partial")
    st = WitnessStore(d, seg_records=16, genesis=G)
    assert st.head() == head and st.torn == 0
    assert "00000010.seg.tmp" not in __import__("os").listdir(d)
    st.close()
    kt.rmtree(d)


def test_torn_tail_spanning_whole_bad_records_and_empty_segment():
    d = kt.tmpdir("wst")
    st, log = _fill(d, 16)     # exactly one... plus seals
    nxt, link = st.head()
    st.close()
    seg_first = (nxt // 16) * 16
    with open(d + "/%08x.seg" % seg_first, "ab") as f:
        f.write(bytes(64) + b"\x01" * 30)     # a zero record + a torn half
    with open(d + "/%08x.seg" % (seg_first + 16), "wb") as f:
        pass                                   # an empty newer segment
    st = WitnessStore(d, seg_records=16, genesis=G)
    assert st.head() == (nxt, link) and st.torn == 2
    log = WitnessLog(kt.DEVICE_ID, boot=2, key=kt.KEY, ring=8, store=st)
    s = log.emit(kinds.BOOT_BEGIN, 0, 0, 2)
    assert s == nxt and log.flush() == s
    assert st.verify()[0]
    st.close()
    kt.rmtree(d)


def test_prune_keeps_newest_and_verify_from_low():
    d = kt.tmpdir("wsp")
    st, log = _fill(d, 70)
    assert st.prune(2) >= 2
    low = st.low()
    assert low > 0 and len(st.segments()) == 2
    ok, cnt, bad = st.verify()
    assert ok and cnt == st.head()[0] - low
    assert st.read(low - 1) is None
    st.close()
    kt.rmtree(d)


def test_before_append_runs_before_records_persist():
    d = kt.tmpdir("wsh")
    st = WitnessStore(d, seg_records=16, genesis=G)
    seen = []
    st.before_append = lambda: seen.append(st.head()[0])
    log = WitnessLog(kt.DEVICE_ID, boot=1, ring=8, store=st)
    log.emit(kinds.BOOT_BEGIN)
    log.emit(kinds.BOOT_PHASE)
    log.flush()
    assert seen == [0]            # called once, before records 0..1 landed
    st.close()
    kt.rmtree(d)


def test_store_on_littlefs_and_crashfs():
    if flashfs.have_littlefs():
        bd = BlockDev(512, 64)
        fl = flashfs.Flash(bd, "/kt_ws0", fresh=True)
        st, log = _fill("/kt_ws0/wit", 50)
        head = st.head()
        st.close()
        fl.umount()
        fl = flashfs.Flash(bd.survivor(), "/kt_ws0")
        st = WitnessStore("/kt_ws0/wit", seg_records=16, genesis=G)
        assert st.head() == head and st.verify()[0]
        st.close()
        fl.umount()
    d = kt.tmpdir("wsc")
    fs = flashfs.CrashFS()
    st, log = _fill(d, 20, fs=fs)
    assert fs.ops > 20 and st.verify()[0]
    st.close()
    kt.rmtree(d)
