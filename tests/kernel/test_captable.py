# Capability tables: handles, derive, grant, GRANT_ONCE, revoke subtrees,
# depth, time windows, split helpers. Both runtimes.
import kt
from rvm_mp import board, errors, kinds
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.witness import unpack
from rvm_mp.captable import (R_READ, R_WRITE, R_GRANT, R_REVOKE, R_EXECUTE,
                             R_PROVE, R_GRANT_ONCE, R_ALL, OT_CHANNEL,
                             OT_DEVICE, OT_REGION)

HEAP = "256K"  # the whole kernel compiled from source lives in the heap; boards freeze it


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


def _k(clock=None):
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = Platform(kt.tmpdir("cap"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof, clock=clock)
    for _ in range(3):
        pid = k.part_create(0)
        k.part_start(0, pid)
    return k


def _last(k):
    return unpack(k.log.record(k.log.next_seq - 1))


def test_rights_values():
    assert (R_READ, R_WRITE, R_GRANT, R_REVOKE, R_EXECUTE, R_PROVE,
            R_GRANT_ONCE) == (1, 2, 4, 8, 16, 32, 64)
    assert R_ALL == 127


def test_mint_lookup_list_and_witness():
    k = _k()
    h = k.cap_mint(1, OT_REGION, 7, R_READ | R_WRITE)
    assert h >= 256 and h & 0xFF == 0
    assert k.cap_lookup(1, h) == (OT_REGION, 7, R_READ | R_WRITE, 0)
    assert k.cap_list(1) == [(h, OT_REGION, 7, 3, 0)]
    f = _last(k)
    assert f[3] == kinds.CAP_MINT and f[5] == 0 and f[6] == 1
    assert f[7:11] == (OT_REGION, 7, 3, h)
    # handles are per table: the same number in pid 2 names nothing
    assert k.cap_lookup(2, h) is errors.EBADHANDLE


def test_derive_attenuates_only():
    k = _k()
    h = k.cap_mint(1, OT_REGION, 7, R_READ | R_WRITE | R_GRANT)
    c = k.cap_derive(1, h, R_READ)
    assert not errors.is_err(c)
    assert k.cap_lookup(1, c) == (OT_REGION, 7, R_READ, 1)
    f = _last(k)
    assert f[3] == kinds.CAP_DERIVE and f[7] == h and f[8] == 7
    assert f[9] == R_READ and f[10] == (c | (1 << 16))
    # GRANT holder may hand out GRANT_ONCE; asking for EXECUTE is escalation
    c2 = k.cap_derive(1, h, R_READ | R_GRANT_ONCE)
    assert k.cap_lookup(1, c2)[2] == R_READ | R_GRANT_ONCE
    assert k.cap_derive(1, c, R_READ | R_WRITE) is errors.ERIGHTS
    assert k.cap_derive(1, h, R_EXECUTE) is errors.ERIGHTS
    # a GRANT_ONCE capability never passes GRANT_ONCE on through derive
    assert k.cap_derive(1, c2, R_READ | R_GRANT_ONCE) is errors.ERIGHTS
    assert k.cap_derive(1, h, 0) is errors.EINVAL
    assert k.cap_derive(1, h, 128) is errors.EINVAL


def test_depth_bound_is_8():
    k = _k()
    h = k.cap_mint(1, OT_CHANNEL, 1, R_READ)
    hs = [h]
    for d in range(1, 9):
        h = k.cap_derive(1, h, R_READ)
        assert not errors.is_err(h), d
        assert k.cap_lookup(1, h)[3] == d
        hs.append(h)
    assert k.cap_derive(1, h, R_READ) is errors.EDEPTH
    f = _last(k)
    assert f[3] == kinds.CAP_DENIED and f[8] == errors.EDEPTH.code


def test_grant_and_revoke_subtree_everywhere():
    k = _k()
    root = k.cap_mint(1, OT_CHANNEL, 5, R_ALL & ~R_GRANT_ONCE)
    b = k.cap_grant(1, root, 2, R_READ | R_GRANT)
    assert not errors.is_err(b)
    f = _last(k)
    assert f[3] == kinds.CAP_GRANT and f[5:7] == (1, 2)
    assert f[7:11] == (root, b, R_READ | R_GRANT, 5)
    c = k.cap_grant(2, b, 3, R_READ)
    bd = k.cap_derive(2, b, R_READ)
    other = k.cap_mint(2, OT_CHANNEL, 6, R_READ)
    assert k.cap_lookup(3, c) == (OT_CHANNEL, 5, R_READ, 2)
    n = k.cap_revoke(1, root)
    assert n == 3
    f = _last(k)
    assert f[3] == kinds.CAP_REVOKE and f[9] == 3 and f[10] == 5
    # the root stays, every descendant in tables 2 and 3 is gone (stale)
    assert k.cap_lookup(1, root)[0] == OT_CHANNEL
    for pid, h in ((2, b), (3, c), (2, bd)):
        assert k.cap_lookup(pid, h) is errors.ESTALE
    assert k.cap_lookup(2, other)[1] == 6
    assert k.cap_list(3) == []


def test_revoke_needs_right_and_delete_drops_own():
    k = _k()
    root = k.cap_mint(1, OT_CHANNEL, 5, R_READ | R_GRANT)
    b = k.cap_grant(1, root, 2, R_READ)
    assert k.cap_revoke(1, root) is errors.ERIGHTS
    assert k.cap_lookup(2, b)[0] == OT_CHANNEL
    assert k.cap_delete(2, b) == 1
    assert k.cap_lookup(2, b) is errors.ESTALE
    assert k.cap_delete(1, root) == 1
    assert k.cap_list(1) == []
    # the kernel (operator console) deletes in a named table
    h = k.cap_mint(3, OT_DEVICE, 1, R_READ)
    assert k.cap_delete(0, h, 3) == 1
    assert k.cap_list(3) == []


def test_grant_once_consumed_and_not_regrantable():
    k = _k()
    root = k.cap_mint(1, OT_CHANNEL, 9, R_READ | R_WRITE | R_GRANT | R_REVOKE)
    once = k.cap_derive(1, root, R_READ | R_GRANT_ONCE)
    g = k.cap_grant(1, once, 2, R_READ)
    assert not errors.is_err(g)
    # consumed: the GRANT_ONCE handle is stale now
    assert k.cap_lookup(1, once) is errors.ESTALE
    assert k.cap_grant(1, once, 3, R_READ) is errors.ESTALE
    # the child holds neither GRANT nor GRANT_ONCE and cannot grant again
    assert k.cap_lookup(2, g)[2] == R_READ
    assert k.cap_grant(2, g, 3, R_READ) is errors.ERIGHTS
    # the child cannot be given grant bits by a GRANT_ONCE source
    once2 = k.cap_derive(1, root, R_READ | R_GRANT_ONCE)
    assert k.cap_grant(1, once2, 2, R_READ | R_GRANT_ONCE) is errors.ERIGHTS
    assert k.cap_grant(1, once2, 2, R_READ | R_GRANT) is errors.ERIGHTS
    # the child's chain still reaches the kernel through the consumed husk:
    # it passes P2, and revoking the root kills it
    assert k.gate.check(2, g, OT_CHANNEL, 9, R_READ, 11) >= 0
    assert k.cap_revoke(1, root) >= 2
    assert k.cap_lookup(2, g) is errors.ESTALE


def test_stale_generation_after_slot_reuse():
    k = _k()
    h1 = k.cap_mint(1, OT_REGION, 1, R_READ)
    assert k.cap_delete(1, h1) == 1
    h2 = k.cap_mint(1, OT_REGION, 2, R_READ)
    assert h2 & 0xFF == h1 & 0xFF and h2 != h1
    assert k.cap_lookup(1, h1) is errors.ESTALE
    assert k.cap_lookup(1, h2)[1] == 2


def test_table_full_refused():
    k = _k()
    per = k.caps.per
    hs = [k.cap_mint(1, OT_REGION, i, R_READ) for i in range(per)]
    assert not any(errors.is_err(h) for h in hs)
    assert k.cap_mint(1, OT_REGION, 99, R_READ) is errors.ENOMEM
    assert k.cap_derive(1, hs[0], R_READ) is errors.ENOMEM
    assert len(k.cap_list(1)) == per


def test_time_window_expires():
    clk = Clock()
    k = _k(clk)
    root = k.cap_mint(1, OT_CHANNEL, 3, R_READ | R_GRANT)
    t = k.cap_grant(1, root, 2, R_READ, 500)
    assert k.gate.check(2, t, OT_CHANNEL, 3, R_READ, 11) >= 0
    clk.t += 499
    assert k.gate.check(2, t, OT_CHANNEL, 3, R_READ, 11) >= 0
    clk.t += 1
    assert k.gate.check(2, t, OT_CHANNEL, 3, R_READ, 11) is errors.EEXPIRED
    # a child never outlives its parent's window
    d = k.cap_derive(1, root, R_READ | R_GRANT, 100)
    c = k.cap_grant(1, d, 3, R_READ, 10000)
    clk.t += 100
    assert k.gate.check(3, c, OT_CHANNEL, 3, R_READ, 11) is errors.EEXPIRED


def test_attenuate_and_move_for_split():
    k = _k()
    root = k.cap_mint(1, OT_REGION, 4, R_READ | R_WRITE | R_GRANT)
    c = k.cap_grant(1, root, 2, R_READ | R_WRITE)
    assert k.cap_attenuate(1, root, R_READ) == 2
    assert k.cap_lookup(1, root)[2] == R_READ
    assert k.cap_lookup(2, c)[2] == R_READ
    m = k.cap_move(2, c, 3)
    assert k.cap_lookup(2, c) is errors.ESTALE
    assert k.cap_lookup(3, m) == (OT_REGION, 4, R_READ, 1)
    f = _last(k)
    assert f[3] == kinds.CAP_GRANT and f[5] == 0 and f[6] == 3
    # still in the tree: revoking the root removes the moved capability
    assert k.cap_revoke(0, root, 1) == 1
    assert k.cap_lookup(3, m) is errors.ESTALE


def test_pool_does_not_leak():
    k = _k()
    base = k.caps.live()
    for i in range(20):
        r = k.cap_mint(1, OT_CHANNEL, i, R_ALL & ~R_GRANT_ONCE)
        o = k.cap_derive(1, r, R_READ | R_GRANT_ONCE)
        g = k.cap_grant(1, o, 2, R_READ)
        assert not errors.is_err(g)
        k.cap_delete(1, r)
    assert k.caps.live() == base
    assert k.cap_list(2) == []


def test_grant_once_husks_do_not_leak():
    # the grantee dropping its capability frees the consumed source too
    k = _k()
    root = k.cap_mint(1, OT_CHANNEL, 2, R_ALL & ~R_GRANT_ONCE)
    base = k.caps.live()
    for i in range(3 * k.caps.per):
        once = k.cap_derive(1, root, R_READ | R_GRANT_ONCE)
        g = k.cap_grant(1, once, 2, R_READ)
        assert not errors.is_err(g), i
        assert k.cap_delete(2, g) == 1
        assert k.caps.live() == base
    once = k.cap_derive(1, root, R_READ | R_WRITE | R_GRANT_ONCE)
    g = k.cap_grant(1, once, 2, R_READ | R_WRITE)
    d = k.cap_derive(2, g, R_READ)
    assert k.cap_delete(2, g) == 2      # g and its child d
    assert k.cap_lookup(2, d) is errors.ESTALE
    assert k.caps.live() == base
