# Device leases: grant through a device capability, exclusive, time-bounded
# (fake clock, also across the ticks wrap), revocable by holder, kernel or a
# REVOKE capability, dead when the capability is revoked, the proxy's every
# call checked, P3 lease policy with an HMAC proof. Both runtimes.
import kt
from rvm_mp import board, errors, kinds
from rvm_mp.hal import Platform
from rvm_mp.compat import ticks_add
from rvm_mp.kernel import Kernel, lease_message
from rvm_mp.hmac256 import hmac_sha256
from rvm_mp.proofgate import P3_HMAC
from rvm_mp.witness import unpack
from rvm_mp.captable import R_READ, R_WRITE, R_GRANT, R_REVOKE, OT_DEVICE

HEAP = "256K"  # the whole kernel compiled from source lives in the heap


class Clock:
    def __init__(self, t=5000):
        self.t = t

    def __call__(self):
        return self.t


def _k(clock, p3=False):
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    if p3:
        prof["proof"] = {"lease_p3": True}
    pl = Platform(kt.tmpdir("lease"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof, clock=clock)
    for _ in range(3):
        k.part_start(0, k.part_create(0))
    return k, pl


def _last(k):
    return unpack(k.log.record(k.log.next_seq - 1))


def _dev(k, pid, name, rights=R_READ | R_WRITE):
    return k.cap_mint(pid, OT_DEVICE, k.device_id(name), rights)


def test_devices_come_from_the_profile():
    k, pl = _k(Clock())
    names = sorted(k.profile["devices"])
    assert [k.device_id(n) for n in names] == list(range(1, len(names) + 1))
    assert k.device_id("nope") is errors.ENOENT
    h = _dev(k, 1, "led")
    assert k.lease(1, h, "nope", 10) is errors.ENOENT
    f = _last(k)
    assert f[3] == kinds.LEASE_DENIED and f[8] == errors.ENOENT.code


def test_grant_use_and_record():
    clk = Clock()
    k, pl = _k(clk)
    h = _dev(k, 1, "led")
    px = k.lease(1, h, "led", 100)
    assert not errors.is_err(px)
    f = _last(k)
    assert f[3] == kinds.LEASE_GRANT and f[5] == 1 and f[6] == 1
    assert f[7] == k.device_id("led") and f[8] == px.lease_id
    assert f[9] == 100 and f[10] == R_READ | R_WRITE
    assert px.on() == 0 and px.toggle() == 0 and px.set(1) == 0
    assert pl.devices["led"].ops == [("on", None), ("toggle", None), ("set", 1)]
    assert k.leases_of(1) == [("led", px.lease_id, 100)]
    t = _dev(k, 2, "temp", R_READ)
    pt = k.lease(2, t, "temp", 50)
    v = pt.read()
    assert type(v) is int and pl.devices["temp"].ops[-1] == ("read", v)
    # a read-only lease cannot drive the device
    assert pt.on() is errors.ERIGHTS
    assert pl.devices["temp"].ops[-1] == ("read", v)
    u = _dev(k, 3, "uart1")
    pu = k.lease(3, u, "uart1", 50)
    assert pu.write(b"abc") == 3


def test_exclusive():
    clk = Clock()
    k, pl = _k(clk)
    h1 = _dev(k, 1, "relay")
    h2 = _dev(k, 2, "relay")
    p1 = k.lease(1, h1, "relay", 100)
    assert not errors.is_err(p1)
    assert k.lease(2, h2, "relay", 100) is errors.EBUSY
    f = _last(k)
    assert f[3] == kinds.LEASE_DENIED and f[6] == 1 and f[8] == errors.EBUSY.code
    assert k.lease(1, h1, "relay", 100) is errors.EBUSY
    assert p1.on() == 0


def test_expiry_refuses_and_is_witnessed_once():
    clk = Clock()
    k, pl = _k(clk)
    h = _dev(k, 1, "led")
    px = k.lease(1, h, "led", 100)
    clk.t += 99
    assert px.on() == 0 and px.alive()
    clk.t += 1
    assert not px.alive()
    n = len(pl.devices["led"].ops)
    assert px.on() is errors.EEXPIRED
    assert len(pl.devices["led"].ops) == n    # the device was not touched
    recs = k.log.query(kind=kinds.LEASE_EXPIRE)
    assert len(recs) == 1
    f = unpack(recs[0])
    assert f[6] == 1 and f[7] == k.device_id("led") and f[8] == px.lease_id
    f = _last(k)
    assert f[3] == kinds.LEASE_DENIED and f[8] == errors.EEXPIRED.code
    assert f[4] == 1 | (2 << 2)
    assert px.off() is errors.EEXPIRED
    assert len(k.log.query(kind=kinds.LEASE_EXPIRE)) == 1
    # the device is free again
    h2 = _dev(k, 2, "led")
    p2 = k.lease(2, h2, "led", 10)
    assert p2.on() == 0
    assert px.on() is errors.EEXPIRED


def test_expire_sweep_and_ticks_wrap():
    period = ticks_add(0, -1) + 1   # 2**30 on boards, wider on the unix port
    clk = Clock(period - 30)        # 30 ms before the tick counter wraps
    k, pl = _k(clk)
    h = _dev(k, 1, "led")
    px = k.lease(1, h, "led", 50)
    clk.t = 10                    # wrapped: 40 ms later
    assert px.on() == 0
    assert k.expire_leases() == 0
    clk.t = 20
    assert k.expire_leases() == 1
    assert len(k.log.query(kind=kinds.LEASE_EXPIRE)) == 1
    assert px.on() is errors.EEXPIRED


def test_revoke_by_holder_kernel_and_capability():
    clk = Clock()
    k, pl = _k(clk)
    h = _dev(k, 1, "led", R_READ | R_WRITE | R_GRANT | R_REVOKE)
    px = k.lease(1, h, "led", 1000)
    assert k.lease_revoke(1, "led") == 0
    f = _last(k)
    assert f[3] == kinds.LEASE_REVOKE and f[6] == 1 and f[9] == 0
    assert px.on() is errors.ESTALE
    px = k.lease(1, h, "led", 1000)
    assert k.lease_revoke(0, "led") == 0
    assert _last(k)[9] == 1
    assert px.on() is errors.ESTALE
    # partition 2 with a REVOKE capability on the device ends 1's lease;
    # partition 3 without one cannot
    g = k.cap_grant(1, h, 2, R_READ | R_REVOKE)
    px = k.lease(1, h, "led", 1000)
    assert k.lease_revoke(3, "led") is errors.EBADHANDLE
    assert px.on() == 0
    assert k.lease_revoke(2, "led", g) == 0
    assert px.on() is errors.ESTALE
    assert k.lease_revoke(0, "led") is errors.ENOENT


def test_revoking_the_capability_kills_the_lease():
    clk = Clock()
    k, pl = _k(clk)
    root = _dev(k, 1, "relay", R_READ | R_WRITE | R_GRANT | R_REVOKE)
    g = k.cap_grant(1, root, 2, R_READ | R_WRITE)
    px = k.lease(2, g, "relay", 1000)
    assert px.on() == 0
    assert k.cap_revoke(1, root) == 1
    assert px.on() is errors.ESTALE
    recs = k.log.query(kind=kinds.LEASE_REVOKE)
    assert unpack(recs[-1])[9] == 3    # reason: capability revoked
    assert k.leases_of(2) == []


def test_lease_needs_device_capability():
    clk = Clock()
    k, pl = _k(clk)
    h = _dev(k, 1, "led")
    assert k.lease(2, h, "led", 10) is errors.EBADHANDLE
    assert k.lease(1, h, "relay", 10) is errors.EWRONGOBJ
    assert k.lease(1, h, "led", 0) is errors.EINVAL
    assert k.lease(1, h, "led", -5) is errors.EINVAL
    assert k.lease(1, h, "led", 1 << 29) is errors.EINVAL
    assert k.leases_of(1) == []


def test_p3_lease_policy_with_hmac():
    clk = Clock()
    k, pl = _k(clk, p3=True)
    h = _dev(k, 1, "led")
    assert k.lease(1, h, "led", 100) is errors.ENONCE
    assert k.lease(1, h, "led", 100, 7) is errors.EPROOF
    bad = hmac_sha256(kt.KEY, lease_message(1, "led", 200, 7))
    assert k.lease(1, h, "led", 100, 7, [(P3_HMAC, bad)]) is errors.ESIG
    f = _last(k)
    assert f[3] == kinds.PROOF_P3 and f[4] == 1 | (3 << 2)
    assert f[8] == errors.ESIG.code
    mac = hmac_sha256(kt.KEY, lease_message(1, "led", 100, 7))
    px = k.lease(1, h, "led", 100, 7, [(P3_HMAC, mac)])
    assert px.on() == 0
    ok = k.log.query(kind=kinds.PROOF_P3)
    f = unpack(ok[-1])
    assert f[4] == 3 << 2 and f[8] == 0 and f[7] == P3_HMAC
    # the same signed request cannot be replayed (nonce consumed)
    k.lease_revoke(1, "led")
    assert k.lease(1, h, "led", 100, 7, [(P3_HMAC, mac)]) is errors.ENONCE
