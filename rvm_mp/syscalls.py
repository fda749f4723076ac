# The syscall table: one small handler per agent call, and the only place
# where agent-supplied values enter the kernel.
#
#   agent: await rvm.send(h, payload)      -> box = [5, h, payload, None, st]
#   runtime: y is t.req (the box)?         -> dispatch(rt, t, now)
#   dispatch: op = box[0] exact int in 1..LAST -> TABLE[op](rt, t, box, now)
#   handler: every argument checked by EXACT type and range, and copied
#            (bytearray -> bytes) before any kernel call; a bad one is
#            refused (SYSCALL_DENIED, actor = the agent) and thrown back.
#
# Exact types, never isinstance(): an agent's bytes subclass, a str whose
# split() lies, an int subclass with a __hash__ or a list with a lying
# __len__ would otherwise run agent code in the kernel's context. Accepted
# argument types (docs/kernel-api.md): handles, ids, sizes, offsets and
# times are int; payloads, region data and checkpoint state are bytes or
# bytearray (memoryview, array and str are refused); names are str.
from .compat import ticks_add, const
from . import errors
from . import kinds

# agent op codes (the numbers rvm_mp/api.py writes into box[0])
OP_YIELD = const(1)
OP_SLEEP = const(2)
OP_NOW = const(3)
OP_MY_ID = const(4)
OP_SEND = const(5)
OP_RECV = const(6)
OP_HANDLE = const(7)
OP_LEASE = const(8)
OP_ALLOC = const(9)
OP_READ = const(10)
OP_WRITE = const(11)
OP_FREE = const(12)
OP_CHECKPOINT = const(13)
OP_SPAWN = const(14)
OP_WAIT_INPUT = const(15)
OP_CON_READ = const(16)
OP_CON_WRITE = const(17)
OP_CONTROL = const(18)
OP_EXIT = const(19)
OP_DEV = const(20)
OP_RELEASE = const(21)
OP_LAST = const(21)

_F_TRUSTED = const(4)           # scheduler.F_TRUSTED
_F_PENDING = const(64)          # scheduler.F_PENDING: the call waits
MS_MAX = const(0x1FFFFFFF)      # longest sleep/timeout (ticks_add's range)
_H_MAX = const(0xFFFF)          # handles are gen<<8|slot, 16 bits
_N_MAX = const(0xFFFFFF)        # region sizes and offsets
_NAME_MAX = const(32)
_STATE_MAX = const(2048)        # checkpoint restart bytes


def is_handle(h):
    return type(h) is int and 0 < h <= _H_MAX


def as_bytes(x):
    """bytes for an exact bytes/bytearray argument, else None."""
    tx = type(x)
    if tx is bytes:
        return x
    if tx is bytearray:
        return bytes(x)
    return None


def bundle_name_ok(s):
    """[a-z0-9_-]{1,32}: a bundle name never forms a path."""
    if type(s) is not str or not 0 < len(s) <= _NAME_MAX:
        return False
    for c in s:
        o = ord(c)
        if not (97 <= o <= 122 or 48 <= o <= 57 or o == 95 or o == 45):
            return False
    return True


def _int_in(x, lo, hi):
    return type(x) is int and lo <= x <= hi


def refuse(rt, t, err, op, a=0, now=0):
    """A refusal the syscall layer found: witnessed with the agent as actor
    (coalesced under a flood), then thrown into the agent."""
    rt.log.deny(kinds.SYSCALL_DENIED, t.pid, 0, err.code, 0, op, a, 0)
    rt._fail(t, err, now)


def _ok(rt, t, res, now):
    if errors.is_err(res):
        return rt._fail(t, res, now)
    t.result = res
    rt.sched.make_ready(t, now)


def sc_yield(rt, t, b, now):
    rt.sched.make_ready(t, now)


def sc_sleep(rt, t, b, now):
    ms = b[1]
    if not _int_in(ms, 0, MS_MAX):
        return refuse(rt, t, errors.EINVAL, OP_SLEEP, 0, now)
    rt.sched.sleep(t, ticks_add(now, ms))


def sc_now(rt, t, b, now):
    _ok(rt, t, now, now)


def sc_my_id(rt, t, b, now):
    _ok(rt, t, t.pid, now)


def sc_send(rt, t, b, now):
    h = b[1]
    p = as_bytes(b[2])
    if not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_SEND, 0, now)
    if p is None:
        return refuse(rt, t, errors.EINVAL, OP_SEND, h, now)
    rt.sys_send(t, h, p, now)


def sc_recv(rt, t, b, now):
    h = b[1]
    tmo = b[2]
    if not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_RECV, 0, now)
    if not _int_in(tmo, -1, MS_MAX):
        return refuse(rt, t, errors.EINVAL, OP_RECV, h, now)
    rt._recv(t, h, tmo, now)


def sc_handle(rt, t, b, now):
    name = b[1]
    if type(name) is not str or not 0 < len(name) <= _NAME_MAX:
        return refuse(rt, t, errors.EINVAL, OP_HANDLE, 0, now)
    h = rt.handle(t.pid, name)
    if not h:
        return refuse(rt, t, errors.EBADHANDLE, OP_HANDLE, 0, now)
    _ok(rt, t, h, now)


def sc_lease(rt, t, b, now):
    name = b[1]
    ms = b[2]
    h = b[3]
    if type(name) is not str or not 0 < len(name) <= _NAME_MAX:
        return refuse(rt, t, errors.EINVAL, OP_LEASE, 0, now)
    if not _int_in(ms, 1, MS_MAX):
        return refuse(rt, t, errors.EINVAL, OP_LEASE, 0, now)
    if h is None:
        h = rt.handle(t.pid, name)
    elif not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_LEASE, 0, now)
    _ok(rt, t, rt.k.lease_id(t.pid, h, name, ms), now)


def sc_dev(rt, t, b, now):
    lid = b[1]
    op = b[2]
    args = b[3]
    if not _int_in(lid, 1, 0x3FFFFFFF):
        return refuse(rt, t, errors.EBADHANDLE, OP_DEV, 0, now)
    if type(op) is not str or not 0 < len(op) <= 16 or type(args) is not tuple \
            or len(args) > 4:
        return refuse(rt, t, errors.EINVAL, OP_DEV, lid, now)
    clean = []
    for x in args:
        tx = type(x)
        if tx is int or tx is bool or tx is bytes or tx is str:
            clean.append(x)
        elif tx is bytearray:
            clean.append(bytes(x))
        else:
            return refuse(rt, t, errors.EINVAL, OP_DEV, lid, now)
    _ok(rt, t, rt.k.dev_call(t.pid, lid, op, tuple(clean)), now)


def sc_release(rt, t, b, now):
    lid = b[1]
    if not _int_in(lid, 1, 0x3FFFFFFF):
        return refuse(rt, t, errors.EBADHANDLE, OP_RELEASE, 0, now)
    _ok(rt, t, rt.k.lease_release(t.pid, lid), now)


def sc_alloc(rt, t, b, now):
    n = b[1]
    if not _int_in(n, 1, _N_MAX):
        return refuse(rt, t, errors.EINVAL, OP_ALLOC, 0, now)
    rt.sys_alloc(t, n, now)


def sc_read(rt, t, b, now):
    h = b[1]
    if not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_READ, 0, now)
    if not _int_in(b[2], 0, _N_MAX) or not _int_in(b[3], 0, _N_MAX):
        return refuse(rt, t, errors.EINVAL, OP_READ, h, now)
    _ok(rt, t, rt.k.region_read(t.pid, h, b[2], b[3]), now)


def sc_write(rt, t, b, now):
    h = b[1]
    data = as_bytes(b[3])
    if not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_WRITE, 0, now)
    if not _int_in(b[2], 0, _N_MAX) or data is None:
        return refuse(rt, t, errors.EINVAL, OP_WRITE, h, now)
    _ok(rt, t, rt.k.region_write(t.pid, h, b[2], data), now)


def sc_free(rt, t, b, now):
    h = b[1]
    if not is_handle(h):
        return refuse(rt, t, errors.EBADHANDLE, OP_FREE, 0, now)
    _ok(rt, t, rt.k.region_free(t.pid, h), now)


def sc_checkpoint(rt, t, b, now):
    st = b""
    if b[1] is not None:
        st = as_bytes(b[1])
        if st is None or len(st) > _STATE_MAX:
            return refuse(rt, t, errors.EINVAL, OP_CHECKPOINT, 0, now)
    _ok(rt, t, rt.checkpoint(t.pid, st, t.pid), now)


def sc_spawn(rt, t, b, now):
    name = b[1]
    h = rt.handle(t.pid, "spawn")
    if not h:   # the capability first: no proof work without the right
        return refuse(rt, t, errors.ERIGHTS, OP_SPAWN, 0, now)
    if not bundle_name_ok(name):
        return refuse(rt, t, errors.EINVAL, OP_SPAWN, 0, now)
    _ok(rt, t, rt.spawn(name, t.pid, h), now)


def sc_wait_input(rt, t, b, now):
    if not t.console:
        return refuse(rt, t, errors.ERIGHTS, OP_WAIT_INPUT, 0, now)
    tmo = b[1]
    if not _int_in(tmo, -1, MS_MAX):
        return refuse(rt, t, errors.EINVAL, OP_WAIT_INPUT, 0, now)
    rt.sys_wait_input(t, tmo, now)


def sc_con_read(rt, t, b, now):
    if not t.console:
        return refuse(rt, t, errors.ERIGHTS, OP_CON_READ, 0, now)
    n = b[1]
    if not _int_in(n, 1, 4096):
        return refuse(rt, t, errors.EINVAL, OP_CON_READ, 0, now)
    _ok(rt, t, rt.pf.console_read(n), now)


def sc_con_write(rt, t, b, now):
    if not t.console:
        return refuse(rt, t, errors.ERIGHTS, OP_CON_WRITE, 0, now)
    d = b[1]
    if type(d) is str:
        d = d.encode()
    else:
        d = as_bytes(d)
    if d is None:
        return refuse(rt, t, errors.EINVAL, OP_CON_WRITE, 0, now)
    rt.pf.console_write(d)
    _ok(rt, t, None, now)


def sc_control(rt, t, b, now):
    # kernel services by name: only for the kernel's own control partition
    if not t.trusted or rt.control is None:
        return refuse(rt, t, errors.ERIGHTS, OP_CONTROL, 0, now)
    _ok(rt, t, rt.control.service(b[1], b[2]), now)


def sc_exit(rt, t, b, now):
    st = b[1]
    rt._exit(t, st if _int_in(st, 0, 255) else 0, 0, now)


TABLE = (None, sc_yield, sc_sleep, sc_now, sc_my_id, sc_send, sc_recv,
         sc_handle, sc_lease, sc_alloc, sc_read, sc_write, sc_free,
         sc_checkpoint, sc_spawn, sc_wait_input, sc_con_read, sc_con_write,
         sc_control, sc_exit, sc_dev, sc_release)


def dispatch(rt, t, now):
    b = t.req
    op = b[0]
    if type(op) is not int or not 0 < op <= OP_LAST:
        refuse(rt, t, errors.EINVAL, 0, 0, now)
    else:
        TABLE[op](rt, t, b, now)
    if not t.fl & _F_PENDING:
        # the call is over: let its arguments go, as the agent (a CPython
        # finalizer of a refused object runs with the import gate up)
        g = rt.gate
        g.active = 0 if t.fl & _F_TRUSTED else t.pid
        b[1] = b[2] = b[3] = None
        g.active = 0
