# The runtime's half of DC-7 migration: move a running agent from partition
# src to partition dst. A separate module, imported only by a caller that
# migrates, so a board that never does keeps this code out of RAM.
#
#   migrate(rt, src, dst)
#     checks: an agent of ours runs in src, none in dst, its bundle is here
#     Migrator.migrate(src, dst, state = last checkpoint(state) bytes,
#                      code_hash = SHA-256 of the bundle)
#       suspend src -> serialize -> transfer -> rebuild, within budget_ms
#       over budget: abort, src resumed (the runtime makes the agent ready
#                    again through its state observer), cooldown
#       commit: caps / channels / regions moved, src terminated (the
#               runtime's observer closes the old coroutine), then
#   _migrated(rt, src, dst, image)      (Migrator.on_commit)
#     a new Task in dst, the bundle executed again, named handles remapped,
#     started with rvm.restored = state, rvm.moved = {old handle: new}
#
# A coroutine cannot be serialized on either runtime: the agent resumes from
# its restart point (what it last checkpointed), with its live region bytes.
import hashlib

from .. import errors
from .. import kinds
from .. import scheduler as S
from .. import bundle as B
from ..faults import h32
from ..errors import is_err
from . import migration

_OT_PARTITION = 1
_R_ALL = 127


def migrator(rt):
    """rt's Migrator, gated by the kernel's coherence engine when there is
    one. Profile: "migration": {"budget_ms": 100, "cooldown_ms": 5000}."""
    m = getattr(rt, "_migrator", None)
    if m is None:
        mc = rt.profile.get("migration") or {}
        m = migration.Migrator(rt.k, getattr(rt.k, "coherence", None),
                               budget_ms=mc.get("budget_ms", 100),
                               cooldown_ms=mc.get("cooldown_ms", 5000),
                               clock=rt.pf.ticks_ms)
        rt._migrator = m
    m.on_commit = lambda s, d, img: _migrated(rt, s, d, img)
    return m


def migrate(rt, src, dst, caller=0, handle=0, proofs=None):
    """Move the agent running in partition src to partition dst (Created,
    Running or Suspended, with no agent of its own). The Migrator moves
    capabilities, channels and regions all-or-nothing within its budget; on
    commit src is terminated and the agent is restarted in dst from its
    bundle with its last checkpoint(state) bytes as rvm.restored and
    {old handle: new handle} as rvm.moved. Over budget: nothing moved, the
    agent keeps running in src, src is ineligible for the cooldown. Returns
    the image size or an RvmError; every outcome is witnessed
    (MIGRATION_START / DONE / TIMEOUT, denied records for refusals)."""
    sched = rt.sched
    t = sched.task(src) if type(src) is int else None
    err = None
    if t is None or t.main is None or t.trusted or t.state == S.T_DONE:
        err = errors.ESTATE        # no agent of ours runs there
    elif type(dst) is not int or sched.task(dst) is not None:
        err = errors.EBUSY         # the destination runs an agent
    data = rt.bundle_data(t.name) if err is None else None
    if err is None and data is None:
        err = errors.ENOENT        # its bundle is gone: cannot restart
    if err is not None:
        m = getattr(rt, "_migrator", None)
        bud = m.budget_ms if m is not None else \
            (rt.profile.get("migration") or {}).get("budget_ms", 100)
        rt.log.deny(kinds.MIGRATION_START, caller,
                    src if type(src) is int else 0, err.code, 0,
                    dst if type(dst) is int else 0, bud)
        return err
    m = migrator(rt)
    state = _restart_state(rt, src, t)
    m.ctx = (t, dict(rt.handles.get(src, {})), data)
    try:
        return m.migrate(src, dst, caller, handle, proofs, state,
                         hashlib.sha256(data).digest(), t.name)
    finally:
        m.ctx = None


def _restart_state(rt, src, t):
    """The `state` of src's newest checkpoint (what an F2 rebuild would give
    the agent), else what it was last started with, else b""."""
    mem = rt.k.mem
    ck = getattr(mem, "ckpts", None) if mem is not None else None
    if ck is not None:
        c = ck.latest(src)
        if not is_err(c) and c.get("extra") is not None:
            return bytes(c["extra"])
    return getattr(t.rvm, "restored", None) or b""


def _migrated(rt, src, dst, img):
    """Migrator.on_commit: src is terminated (its coroutine closed by the
    runtime's state observer); start the same agent in dst."""
    m = rt._migrator
    t, handles, data = m.ctx
    k = rt.k
    hm = m.handle_map
    nt = S.Task(dst, t.name)
    nt.spec = t.spec
    nt.fl = t.fl & (S.F_HARD | S.F_RECOVERY | S.F_CONSOLE)
    nt.deadline_ms = t.deadline_ms
    nt.cpu_quota_us = t.cpu_quota_us
    nt.quota = t.quota
    if t.quota and t.quota[1] and k.mem is not None and \
            hasattr(k.mem, "set_quota"):
        k.mem.set_quota(dst, t.quota[1])
    p = B.parse(data)
    r = p if is_err(p) else rt._exec(nt, p, p.manifest)
    if is_err(r):   # the bundle ran in src a moment ago; witnessed
        rt.log.deny(kinds.BUNDLE_REJECT, 0, dst, r.code, 3,
                    h32(bytes(data)), len(data), 0)
        return
    nh = {}
    for name in handles:
        h = hm.get(handles[name])
        if h is not None and not is_err(h):
            nh[name] = h
    rt.handles[dst] = nh
    ctl = rt.control
    if ctl is not None and ctl.pid != dst:
        have = False
        for c in k.cap_list(ctl.pid):
            if c[1] == _OT_PARTITION and c[2] == dst:
                have = True
        if not have:
            k.cap_mint(ctl.pid, _OT_PARTITION, dst, _R_ALL & ~64)
    if k.mem is not None and getattr(k.mem, "ckpts", None) is not None:
        # dst's own restart point, so an F2 rebuild there restores it
        rt.checkpoint(dst, img["state"], 0)
    rt.sched.add(nt)
    rt._begin(nt, img["state"] or None, hm)
