# Partitions: ids, the state machine (every pair of states), witnesses,
# capability-gated lifecycle, termination dropping everything in one place,
# tombstones, observers. Both runtimes.
import kt
from rvm_mp import board, errors, kinds
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.witness import unpack
from rvm_mp.captable import (R_READ, R_WRITE, R_GRANT, R_REVOKE, OT_PARTITION,
                             OT_CHANNEL, OT_REGION)
from rvm_mp.partition import (ST_CREATED, ST_RUNNING, ST_SUSPENDED,
                              ST_HIBERNATED, ST_RECOVERING, ST_TERMINATED,
                              legal)

HEAP = "256K"  # the whole kernel compiled from source lives in the heap


def _k():
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = Platform(kt.tmpdir("part"), device_id=kt.DEVICE_ID, key=kt.KEY)
    return Kernel(pl, prof)


def _last(k):
    return unpack(k.log.record(k.log.next_seq - 1))


LEGAL = (
    (ST_CREATED, ST_RUNNING), (ST_CREATED, ST_TERMINATED),
    (ST_RUNNING, ST_SUSPENDED), (ST_RUNNING, ST_RECOVERING),
    (ST_RUNNING, ST_TERMINATED),
    (ST_SUSPENDED, ST_RUNNING), (ST_SUSPENDED, ST_HIBERNATED),
    (ST_SUSPENDED, ST_RECOVERING), (ST_SUSPENDED, ST_TERMINATED),
    (ST_HIBERNATED, ST_RUNNING), (ST_HIBERNATED, ST_RECOVERING),
    (ST_HIBERNATED, ST_TERMINATED),
    (ST_RECOVERING, ST_RUNNING), (ST_RECOVERING, ST_SUSPENDED),
    (ST_RECOVERING, ST_TERMINATED),
)
# a path from Created to each state
PATH = {
    ST_CREATED: (),
    ST_RUNNING: (ST_RUNNING,),
    ST_SUSPENDED: (ST_RUNNING, ST_SUSPENDED),
    ST_HIBERNATED: (ST_RUNNING, ST_SUSPENDED, ST_HIBERNATED),
    ST_RECOVERING: (ST_RUNNING, ST_RECOVERING),
    ST_TERMINATED: (ST_TERMINATED,),
}


def test_ids_and_create_witness():
    k = _k()
    pid = k.part_create(0, mem_quota=1024, cpu_quota=5, msg_quota=9, name="a")
    assert pid == 1 and k.part_state(1) == ST_CREATED
    f = _last(k)
    assert f[3] == kinds.PART_CREATE and f[5] == 0 and f[6] == 1
    assert f[7:11] == (1024, 5, 9, 0)
    assert k.part_create(0, pid=4095) == 4095
    for bad in (0, 4096, -1, 70000, "3"):
        n = k.log.next_seq
        assert k.part_create(0, pid=bad) is errors.EBADID
        assert k.log.next_seq == n + 1
        f = _last(k)
        assert f[3] == kinds.PART_DENIED and f[4] & 1
        assert f[8] == errors.EBADID.code
    assert k.part_create(0, pid=1) is errors.EBUSY
    assert k.part_state(0) is errors.EBADID
    assert k.part_state(4096) is errors.EBADID
    assert k.part_state(77) is errors.ENOENT
    assert k.part_list() == [(1, ST_CREATED, "a"), (4095, ST_CREATED, "")]


def test_live_partition_limit():
    k = _k()
    lim = k.limits["partitions"]
    for i in range(lim):
        assert k.part_create(0) == i + 1
    assert k.part_create(0) is errors.ENOMEM
    assert k.part_terminate(0, 3) == 0
    assert k.part_create(0) == lim + 1   # fresh ids first
    assert k.part_create(0) is errors.ENOMEM
    assert k.part_terminate(0, 5) == 0
    assert k.part_create(0, pid=5) == 5  # an explicit tombstone id is reused


def test_every_transition_pair():
    k = _k()
    for old in range(6):
        for new in range(6):
            pid = k.part_create(0)
            for st in PATH[old]:
                assert k.part_set_state(0, pid, st) == 0
            assert k.part_state(pid) == old
            n = k.log.next_seq
            r = k.part_set_state(0, pid, new, 0, 7)
            if (old, new) in LEGAL:
                assert legal(old, new)
                assert r == 0, (old, new)
                f = _last(k)
                if new == ST_TERMINATED:
                    assert f[3] == kinds.PART_TERMINATE
                else:
                    assert f[3] == kinds.PART_STATE
                    assert f[7:10] == (old, new, 7)
                assert k.part_state(pid) == new
            else:
                assert not legal(old, new)
                assert r is errors.ESTATE, (old, new)
                assert k.log.next_seq == n + 1
                f = _last(k)
                assert f[3] == kinds.PART_DENIED and f[4] & 1
                assert f[8] == errors.ESTATE.code
                assert f[7] == new and f[9] == old
                assert k.part_state(pid) == old
            if k.part_state(pid) != ST_TERMINATED:
                k.part_terminate(0, pid)


def test_lifecycle_needs_capability():
    k = _k()
    ctl = k.part_create(0)
    k.part_start(0, ctl)
    spawn = k.cap_mint(ctl, OT_PARTITION, 0, R_WRITE | R_GRANT)
    child = k.part_create(ctl, spawn)
    assert child == 2
    caps = k.cap_list(ctl)
    hchild = [c[0] for c in caps if c[1] == OT_PARTITION and c[2] == child][0]
    assert k.part_start(ctl, child, hchild) == 0
    # without the capability: refused at P1, witnessed, nothing changes
    other = k.part_create(0)
    k.part_start(0, other)
    assert k.part_suspend(other, child) is errors.EBADHANDLE
    assert k.part_suspend(other, child, hchild) is errors.EBADHANDLE
    f = _last(k)
    assert f[3] == kinds.CAP_DENIED and f[4] == 1 | (1 << 2)
    assert k.part_state(child) == ST_RUNNING
    # the capability names the child, not another partition
    assert k.part_suspend(ctl, other, hchild) is errors.EWRONGOBJ
    # read-only capability cannot change state
    ro = k.cap_derive(ctl, hchild, R_READ)
    assert k.part_suspend(ctl, child, ro) is errors.ERIGHTS
    assert k.part_suspend(ctl, child, hchild) == 0
    assert k.part_resume(ctl, child, hchild) == 0
    # spawn needs the spawn right
    assert k.part_create(other) is errors.EBADHANDLE
    # a partition may always end itself
    assert k.part_terminate(other, other) == 0
    assert k.part_state(other) == ST_TERMINATED


class Mem:
    """Stands in for the kernel's RegionManager slot."""

    def __init__(self):
        self.dropped = []

    def drop_partition(self, pid):
        self.dropped.append(pid)
        return 2


class Obs:
    def __init__(self):
        self.seen = []

    def on_state(self, pid, old, new):
        self.seen.append((pid, old, new))


def test_terminate_drops_everything_in_one_place():
    k = _k()
    k.mem = Mem()
    obs = Obs()
    k.state_observers.append(obs)
    a = k.part_create(0)
    b = k.part_create(0)
    c = k.part_create(0)
    for p in (a, b, c):
        k.part_start(0, p)
    base_caps = k.caps.live()
    # a owns a channel (b may send to it), holds a region cap it granted to c,
    # holds a device lease; b holds a cap naming partition a
    ch = k.chan_create(a)
    hb = k.cap_grant(a, ch, b, R_WRITE)
    assert k.send(b, hb, b"to a") == 0
    reg = k.cap_mint(a, OT_REGION, 5, R_READ | R_WRITE | R_GRANT)
    hc = k.cap_grant(a, reg, c, R_READ)
    dev = k.cap_mint(a, 3, k.device_id("led"), R_READ | R_WRITE)
    px = k.lease(a, dev, "led", 1000)
    assert px.on() == 0
    pa = k.cap_mint(b, OT_PARTITION, a, R_READ)
    # c's own channel with a message from a: the channel survives
    chc = k.chan_create(c)
    ha = k.cap_grant(c, chc, a, R_WRITE)
    assert k.send(a, ha, b"from a") == 0
    assert k.recv(a, ch) == (b, b"to a")
    assert k.edge(a, b) == (1, 4)
    before = k.caps.live()
    assert k.part_terminate(0, a, 0, 3) == 0
    f = _last(k)
    assert f[3] == kinds.PART_TERMINATE and f[6] == a
    assert f[7] == 3 and f[8] == 2            # status, regions released
    assert f[10] == 1                          # leases released
    # every capability a held or derived, and every one naming a, is gone
    assert k.cap_list(a) == []
    assert k.cap_lookup(b, hb) is errors.ESTALE
    assert k.cap_lookup(c, hc) is errors.ESTALE
    assert k.cap_lookup(b, pa) is errors.ESTALE
    assert f[9] == before - k.caps.live()
    assert k.caps.live() == base_caps + 1      # only c's channel root is left
    assert a not in k.caps.tables
    # its channel and queue are gone, its lease is revoked, edges dropped
    assert len(k.ipc.chans) == 1
    assert k.leases_of(a) == []
    assert px.on() is errors.ESTALE
    assert k.edge(a, b) == (0, 0)
    assert k.mem.dropped == [a]
    assert obs.seen[-1] == (a, ST_RUNNING, ST_TERMINATED)
    # the message a queued in c's channel was delivered before: it stays,
    # stamped with a
    hcr = k.cap_list(c)[0][0]
    assert k.recv(c, hcr) == (a, b"from a")
    # operations on the terminated partition are refused
    assert k.part_resume(0, a) is errors.ESTATE
    assert k.part_terminate(0, a) is errors.ESTATE
    assert k.chan_create(a) is errors.ESTATE
    assert k.send(a, ha, b"x") is errors.ESTATE


def test_tombstones_are_bounded():
    k = _k()
    lim = k.limits["partitions"]
    for i in range(3 * lim):
        pid = k.part_create(0, pid=100 + i)
        assert pid == 100 + i
        assert k.part_terminate(0, pid) == 0
    assert len(k.parts.parts) == lim
    assert k.part_state(100) is errors.ENOENT
    assert k.part_state(100 + 3 * lim - 1) == ST_TERMINATED


def test_observer_errors_do_not_break_the_kernel():
    k = _k()

    class Bad:
        def on_state(self, pid, old, new):
            raise ValueError("observer bug")

    k.state_observers.append(Bad())
    pid = k.part_create(0)
    assert k.part_start(0, pid) == 0
    assert k.part_terminate(0, pid) == 0
    assert k.observer_errors == 3
