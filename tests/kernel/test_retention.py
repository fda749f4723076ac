# Witness retention (rvm_mp/retention.py) and a full filesystem: the oldest
# segments are dropped under the profile's max_bytes, acknowledged ones first
# and silently-lost ones never (PRUNE says how many unacknowledged records
# went); the anchor keeps the chain verifiable from the new oldest record;
# retain "acked" never drops unpulled records; a filesystem that fills
# (ENOSPC) never stops the log or the boot (DEGRADED_ENTER reason 5), and
# flush never reports a record durable that is not. Both runtimes.
import kt
import agentkit as K
from rvm_mp import kinds, retention
from rvm_mp.boot import Boot
from rvm_mp.flashfs import OSFS
from rvm_mp.witness import WitnessLog, genesis_link, chain_link, unpack
from rvm_mp.witness_store import WitnessStore

HEAP = "512K"
G = genesis_link(kt.DEVICE_ID)
SEG = 8


def _log(root, max_bytes=0, retain="all", fs=None, ring=16):
    st = WitnessStore(root + "/wit", SEG, G, fs, max_bytes, retain)
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=ring, store=st)
    return st, log


def _emit(log, n, links):
    """n records, a service every 4; links[seq] = the link of each record,
    read right after it was persisted."""
    for i in range(n):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        if i % 4 == 3 or i == n - 1:
            log.service()
            for s in range(len(links), log.next_seq):
                links.append(bytes(log.record(s)[32:64]))


def _kinds(log, lo=0):
    return [unpack(r)[3] for r in log.iter_range(lo)]


def test_max_bytes_drops_oldest_and_witnesses_prune():
    root = kt.tmpdir("ret")
    st, log = _log(root, max_bytes=4 * SEG * 64)
    links = []
    _emit(log, 60, links)
    segs = st.segments()
    assert len(segs) <= 4 and st.low() > 0
    low = st.low()
    # the chain verifies from the new oldest record: the anchor is the link
    # of the record before it, as it was when written
    assert log.anchor_for(low) == links[low - 1]
    recs = list(st.iter_range(low, st.head()[0]))
    prev = log.anchor_for(low)
    for r in recs:
        assert chain_link(prev, r[0:32]) == r[32:64]
        prev = r[32:64]
    prunes = [unpack(r) for r in st.iter_range(low, st.head()[0])
              if unpack(r)[3] == kinds.PRUNE]
    assert prunes
    p = prunes[-1]
    assert p[7] < p[8] <= low and p[9] > 0 and p[10] == 0  # nothing acked: lost
    # a reopened store keeps the anchor and the head
    nxt = log.next_seq
    st.close()
    st2 = WitnessStore(root + "/wit", SEG, G, None, 4 * SEG * 64)
    assert st2.head()[0] == nxt and st2.low() == low
    assert retention.anchor_link(st2, low) == links[low - 1]
    assert retention.anchor_link(st2, low + 1) is None


def test_acknowledged_records_go_first_and_are_not_counted_lost():
    root = kt.tmpdir("reta")
    st, log = _log(root, max_bytes=4 * SEG * 64)
    links = []
    _emit(log, 20, links)
    assert retention.set_ack(st, 10 ** 6) == st.head()[0]  # clamped to the head
    acked = st.acked
    _emit(log, 24, links)
    prunes = [unpack(r) for r in st.iter_range(st.low(), st.head()[0])
              if unpack(r)[3] == kinds.PRUNE]
    assert prunes and all(p[9] == 0 for p in prunes)  # only acked records went
    assert all(p[10] == acked for p in prunes)
    # ack survives a reopen, and never goes backwards
    st.close()
    st2 = WitnessStore(root + "/wit", SEG, G)
    assert retention.set_ack(st2, 3) == acked


def test_retain_acked_never_drops_unpulled_records():
    root = kt.tmpdir("retk")
    st, log = _log(root, max_bytes=2 * SEG * 64, retain="acked")
    links = []
    _emit(log, 50, links)
    assert st.low() == 0 and len(st.segments()) > 2
    assert kinds.PRUNE not in _kinds(log)
    retention.set_ack(st, 4 * SEG)
    _emit(log, 10, links)
    assert st.low() == 4 * SEG  # exactly the acknowledged segments went
    p = [unpack(r) for r in log.iter_range(st.low()) if unpack(r)[3] == kinds.PRUNE]
    assert p and p[0][7] == 0 and p[0][8] == 4 * SEG and p[0][9] == 0


class FullFS(OSFS):
    """A filesystem that fills up: writes past `room` bytes fail ENOSPC."""

    def __init__(self, room):
        self.room = room

    def open(self, path, mode="rb"):
        f = open(path, mode)
        return _FullFile(self, f) if ("w" in mode or "a" in mode) else f

    def fsync(self, f):
        OSFS.fsync(self, f.f if isinstance(f, _FullFile) else f)


class _FullFile:
    def __init__(self, fs, f):
        self.fs = fs
        self.f = f

    def write(self, data):
        if len(data) > self.fs.room:
            raise OSError(28)
        self.fs.room -= len(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()

    def fileno(self):
        return self.f.fileno()

    def close(self):
        self.f.close()


def test_full_filesystem_degrades_and_keeps_logging():
    root = kt.tmpdir("full")
    fs = FullFS(20 * 64)
    st, log = _log(root, fs=fs, ring=16)
    durable = -1
    for i in range(60):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        if i % 4 == 3:
            durable = log.service()
        if log.store is None:
            break
    assert log.store is None and log.store_err == 28
    assert durable <= 19  # never more than what reached the file
    on_disk = WitnessStore(root + "/wit", SEG, G)
    assert on_disk.head()[0] - 1 >= durable
    # the log goes on in RAM, and says so
    ev = [unpack(r) for r in log.iter_range(log.ring_low())]
    deg = [f for f in ev if f[3] == kinds.DEGRADED_ENTER]
    assert deg and deg[0][7] == 5 and deg[0][8] == 28
    s = log.emit(kinds.IPC_SEND, 1, 2, 99)
    assert log.record(s) is not None


class FullPlatform(K.FakePlatform):
    """A board whose flash is full: every file write fails ENOSPC."""

    def write_file(self, name, data):
        raise OSError(28)


def test_boot_on_a_full_filesystem_comes_up_degraded():
    root = kt.tmpdir("bfull")
    pf = FullPlatform(root)
    prof = K.profile(agents=[{"name": "a"}])
    AG = "async def main(rvm):\n    while True:\n        await rvm.sleep_ms(20)\n"
    b = Boot(fs=root, platform=pf, profile=prof, bundles={"a": K.pack("a", AG)},
             module_root=root)
    rt = b.run()
    ks = [unpack(r) for r in rt.k.log.iter_range(0)]
    deg = [f for f in ks if f[3] == kinds.DEGRADED_ENTER and f[7] == 5]
    assert deg and deg[0][8] == 28
    assert any(f[3] == kinds.BOOT_ATTEST for f in ks)
    assert b.started and b.started[0][0] == "a"
