# IPC: bounded queues, kernel-stamped sender, rights on the channel,
# back-pressure, payload limit, comm-edge weights and the observer slot,
# recv_into, channel close. Both runtimes.
import kt
from rvm_mp import board, errors, kinds
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.proofgate import h32
from rvm_mp.witness import unpack
from rvm_mp.captable import R_READ, R_WRITE, R_GRANT, R_REVOKE

HEAP = "256K"  # the whole kernel compiled from source lives in the heap


def _k():
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = Platform(kt.tmpdir("ipc"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof)
    for _ in range(3):
        k.part_start(0, k.part_create(0))
    return k


def _last(k):
    return unpack(k.log.record(k.log.next_seq - 1))


def _pair(k):
    """Channel owned by 1 (receiver); 2 may send."""
    rx = k.chan_create(1)
    tx = k.cap_grant(1, rx, 2, R_WRITE)
    return rx, tx


def test_send_recv_stamps_sender_and_witnesses():
    k = _k()
    rx, tx = _pair(k)
    f = unpack(k.log.record(k.log.next_seq - 3))
    assert f[3] == kinds.CHAN_CREATE and f[7:10] == (1, 8, 64)
    assert k.send(2, tx, b"hello") == 0
    f = _last(k)
    assert f[3] == kinds.IPC_SEND and f[5] == 2 and f[6] == 1
    assert f[7:11] == (1, 5, 1, h32(b"hello"))
    assert k.pending(1, rx) == 1
    assert k.recv(1, rx) == (2, b"hello")
    f = _last(k)
    assert f[3] == kinds.IPC_RECV and f[5] == 1 and f[6] == 2
    assert f[7:11] == (1, 5, 1, h32(b"hello"))
    assert k.recv(1, rx) is errors.EEMPTY
    # bytearray and memoryview payloads; empty payload
    assert k.send(2, tx, bytearray(b"ab")) == 0
    assert k.send(2, tx, memoryview(b"xyz")[1:]) == 0
    assert k.send(2, tx, b"") == 0
    assert k.recv(1, rx) == (2, b"ab")
    assert k.recv(1, rx) == (2, b"yz")
    assert k.recv(1, rx) == (2, b"")


def test_rights_on_the_channel():
    k = _k()
    rx, tx = _pair(k)
    # the sender cannot receive, a stranger can do neither
    assert k.recv(2, tx) is errors.ERIGHTS
    f = _last(k)
    assert f[3] == kinds.CAP_DENIED and f[8] == errors.ERIGHTS.code
    assert f[10] == 11  # OP_RECV
    assert k.send(3, tx, b"x") is errors.EBADHANDLE
    assert k.recv(3, rx) is errors.EBADHANDLE
    assert k.pending(1, rx) == 0
    # a non-channel capability cannot be used as a channel
    reg = k.cap_mint(2, 4, 1, R_READ | R_WRITE)
    assert k.send(2, reg, b"x") is errors.EWRONGOBJ


def test_full_queue_is_back_pressure():
    k = _k()
    rx, tx = _pair(k)
    depth = k.limits["queue_depth"]
    for i in range(depth):
        assert k.send(2, tx, bytes([i])) == 0
    n = k.log.next_seq
    assert k.send(2, tx, b"over") is errors.EFULL
    assert k.log.next_seq == n + 1
    f = _last(k)
    assert f[3] == kinds.IPC_FULL and f[4] == 1 | (2 << 2)
    assert f[8] == errors.EFULL.code and f[9] == depth and f[10] == depth
    # nothing was dropped or overwritten: every message comes out in order
    for i in range(depth):
        assert k.recv(1, rx) == (2, bytes([i]))
    assert k.send(2, tx, b"again") == 0


def test_payload_limit():
    k = _k()
    rx, tx = _pair(k)
    pmax = k.limits["payload_max"]
    assert k.send(2, tx, b"m" * pmax) == 0
    assert k.send(2, tx, b"m" * (pmax + 1)) is errors.ETOOBIG
    f = _last(k)
    assert f[3] == kinds.IPC_DENIED and f[8] == errors.ETOOBIG.code
    assert f[9] == pmax + 1
    assert k.send(2, tx, "text") is errors.EINVAL
    assert k.send(2, tx, None) is errors.EINVAL
    assert k.pending(1, rx) == 1


def test_channel_depth_argument():
    k = _k()
    h = k.chan_create(1, 2)
    assert k.send(1, h, b"a") == 0 and k.send(1, h, b"b") == 0
    assert k.send(1, h, b"c") is errors.EFULL
    assert k.chan_create(1, 999) is errors.EINVAL
    assert k.chan_create(1, -1) is errors.EINVAL
    assert k.chan_create(0) is errors.ESTATE
    assert k.chan_create(77) is errors.ESTATE


class Obs:
    def __init__(self):
        self.calls = []

    def on_message(self, src, dst, n):
        self.calls.append((src, dst, n))


def test_comm_edges_and_observer():
    k = _k()
    obs = Obs()
    k.ipc_observer = obs
    rx, tx = _pair(k)
    rx3 = k.chan_create(3)
    tx3 = k.cap_grant(3, rx3, 1, R_WRITE)
    for i in range(5):
        k.send(2, tx, b"12345")
        k.recv(1, rx)
    k.send(1, tx3, b"ab")
    assert k.edge(1, 2) == (0 + 5, 25)
    assert k.edge(2, 1) == (5, 25)
    assert k.edge(1, 3) == (0, 0)      # counted on delivery
    k.recv(3, rx3)
    assert k.edge(3, 1) == (1, 2)
    assert k.edges() == [(1, 2, 5, 25), (1, 3, 1, 2)]
    assert obs.calls == [(2, 1, 5)] * 5 + [(1, 3, 2)]


def test_observer_failure_is_contained():
    k = _k()

    class Bad:
        def on_message(self, s, d, n):
            raise RuntimeError("engine crashed")

    k.ipc_observer = Bad()
    rx, tx = _pair(k)
    assert k.send(2, tx, b"x") == 0
    assert k.recv(1, rx) == (2, b"x")
    assert k.observer_errors == 1
    assert k.edge(1, 2) == (1, 1)


def test_recv_into_no_loss():
    k = _k()
    rx, tx = _pair(k)
    k.send(2, tx, b"abcdef")
    small = bytearray(4)
    assert k.recv_into(1, rx, small) is errors.ETOOBIG
    assert k.pending(1, rx) == 1
    buf = bytearray(64)
    assert k.recv_into(1, rx, buf) == 6
    assert bytes(buf[:6]) == b"abcdef" and k.last_src == 2


def test_close_channel_revokes_every_cap():
    k = _k()
    rx, tx = _pair(k)
    k.send(2, tx, b"a")
    k.send(2, tx, b"b")
    assert k.chan_close(2, tx) is errors.ERIGHTS
    assert k.chan_close(1, rx) == 2
    f = _last(k)
    assert f[3] == kinds.CHAN_CLOSE and f[7] == 1 and f[8] == 2
    assert k.send(2, tx, b"c") is errors.ESTALE
    assert k.recv(1, rx) is errors.ESTALE
    assert k.ipc.chans == {}
