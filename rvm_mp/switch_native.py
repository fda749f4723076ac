# Native-emitter copies of the hot functions of the partition switch:
# Scheduler.pick, the ready heap's sift and Runtime.step. The portable
# originals are Scheduler.pick_py and _rq_sift_py (scheduler.py) and
# Runtime.step_py (runtime.py); this
# module is the same code under @micropython.native (constants inlined, no
# bare re-raise, which the native emitter lacks). scheduler.py and
# runtime.py install these at import when the port has the native emitter;
# tests run both on the same scenarios (test_scheduler, test_agent).
# Kept in its own module: a port without the emitter refuses the whole file
# at compile time ("invalid micropython decorator").
from .compat import IS_MICROPYTHON, const, ticks_diff, ticks_add

if not IS_MICROPYTHON:
    raise ImportError("native switch path: MicroPython only")

import micropython  # noqa: E402

_T_READY = const(0)
_T_THROTTLED = const(3)
_MODE_FLOW = const(0)
_MODE_REFLEX = const(1)
_MODE_RECOVERY = const(2)
_F_HARD = const(1)
_F_RECOVERY = const(2)
_F_TRUSTED = const(4)
_F_PENDING = const(64)
_PRIO_Q = const(16)
_Q_CPU = const(1)
_OP_YIELD = const(1)
_OP_SLEEP = const(2)

from .errors import EINVAL as _EINVAL  # noqa: E402
from . import syscalls as _SC  # noqa: E402
from . import scheduler as _S  # noqa: E402
_MS_MAX = const(0x1FFFFFFF)


@micropython.native
def pick(self, now):
    """Scheduler.pick_py under the native emitter: the top of the ready
    heap, or the scan (Scheduler.pick_scan) where the heap's order is not
    the priority order."""
    rq = self.rq
    while self.nrq:
        t = rq[0]
        if not t.state:  # T_READY
            break
        self._rq_del(0)  # left the ready state behind the heap's back
    else:
        if self.mode != _MODE_RECOVERY:
            self.mode = _MODE_FLOW
        return None
    if self.mode == _MODE_RECOVERY or \
            ticks_diff(t.deadline, now) < -self.horizon:
        return self.pick_scan(now)
    f = self.far_until
    if f is not None:
        if ticks_diff(f, now) > 0:
            return self.pick_scan(now)
        self.far_until = None
    if not t.fl & _F_HARD:   # hard tasks sort first: none is ready
        self.mode = _MODE_FLOW
        return t
    us = self.clock_us()
    if self.mode != _MODE_REFLEX:
        self.mode = _MODE_REFLEX
        self.e_reflex += 1
        self.reflex_start = us
        return t
    if ticks_diff(us, self.reflex_start) > self.reflex_budget_us:
        return self.pick_scan(now)  # an overrun needs the best Flow task
    return t


@micropython.native
def sift(s, t, i):
    """Place t at slot i (a hole, or its own slot after its fields
    changed) and sift it up or down. The order of _rq_before, inlined
    (this is the switch path)."""
    rq = s.rq
    th = t.fl & _F_HARD
    tk = t.boost + t.wboost
    dl = t.deadline
    tl = t.last
    up = False
    while i > 0:
        j = (i - 1) >> 1
        p = rq[j]
        ph = p.fl & _F_HARD
        if ph != th:
            if ph:
                break
        else:
            x = tk - p.boost - p.wboost + \
                _PRIO_Q * ticks_diff(p.deadline, dl)
            if x < 0 or (x == 0 and tl > p.last):
                break
        rq[i] = p
        p.hidx = i
        i = j
        up = True
    if not up:
        n = s.nrq
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            a = rq[c]
            ah = a.fl & _F_HARD
            if c + 1 < n:   # the child that comes first
                b = rq[c + 1]
                bh = b.fl & _F_HARD
                if bh != ah:
                    if bh:
                        c += 1
                        a = b
                        ah = bh
                else:
                    x = b.boost + b.wboost - a.boost - a.wboost + \
                        _PRIO_Q * ticks_diff(a.deadline, b.deadline)
                    if x > 0 or (x == 0 and b.last < a.last):
                        c += 1
                        a = b
            if ah != th:
                if th:
                    break
            else:
                x = a.boost + a.wboost - tk + \
                    _PRIO_Q * ticks_diff(dl, a.deadline)
                if x < 0 or (x == 0 and a.last > tl):
                    break
            rq[i] = a
            a.hidx = i
            i = c
    rq[i] = t
    t.hidx = i


@micropython.native
def step(self):
    """One scheduling decision. True if an agent ran."""
    s = self.sched
    now = self._ms()
    if ticks_diff(now, s.epoch_start) >= s.epoch_ms:
        self._epoch(now)
        if not self.running:
            return False
    if s.nheap:
        s.wake_due(now)
    if self.jobs:
        self._run_job()
        return False
    if self.control is not None:
        self._poll_console(now)
    t = s.pick(now)
    if t is None:
        self._idle(now)
        return False
    fl = t.fl
    if fl & _F_PENDING:
        t.fl = fl & ~_F_PENDING
        self._dispatch(t, now)
        if t.state != _T_READY:
            return False
    if ticks_diff(now, t.deadline) > 0:
        s.miss(t, now)   # picked after its deadline
    # resume the agent: the partition switch
    gate = self.gate
    us1 = self._us()
    gate.active = 0 if fl & _F_TRUSTED else t.pid
    b = t.req
    pg = None if fl & _F_TRUSTED else self.guard
    if pg is not None:   # preemption + heap quota (preempt.py)
        pg.arm(t)
    try:
        exc = t.exc
        if exc is not None:
            t.exc = None
            # a fresh builtin error: nothing shared, nothing growing
            y = t.coro.throw(OSError(exc.code, exc.name))
        else:
            v = t.result
            t.result = None
            y = t.coro.send(v)
    except StopIteration:
        gate.active = 0
        if pg is not None:
            pg.disarm(t)
        self._exit(t, 0, 0, now)
        return True
    except BaseException as e:  # the agent failed: contain it
        gate.active = 0
        if pg is not None:
            e = pg.exc(e)      # the guard's kick -> ETIMEOUT (before disarm)
            pg.disarm(t)
            now = self._ms()   # it may have run long: restart delay from now
        if type(e) is KeyboardInterrupt and fl & _F_TRUSTED:
            raise e   # the console saw Ctrl-C: stop the kernel
        self._fault(t, e, now)
        return True
    gate.active = 0
    if pg is not None:
        e = pg.disarm(t)
        if e is not None:   # its resume took it past its heap quota
            self._fault(t, e, now)
            return True
    us2 = self._us()
    if y is b:
        op = b[0]
        # `is` with small ints: never compares (runs) an agent's object
        if op is _OP_YIELD:  # OP_YIELD, the hot request, served inline
            t.deadline = ticks_add(now, t.deadline_ms)
            t.state = _T_THROTTLED if t.thr else _T_READY
        elif op is _OP_SLEEP and type(b[1]) is int and 0 <= b[1] <= _MS_MAX:
            s.sleep(t, ticks_add(now, b[1]))
        else:
            _SC.dispatch(self, t, now)
    else:  # awaited something that is not its call box
        _SC.refuse(self, t, _EINVAL, 0, 0, now)
    if t.out:
        self._drain(t)
    if len(self._api_g) > self._api_n:
        self._api_tamper(t, now)
    # accounting: Scheduler.ran() inlined on the hot path. Switch time is
    # from the end of the previous slice to the start of this one.
    n = s.switch_no + 1
    s.switch_no = n
    t.last = n
    s.e_switches += 1
    s.e_switch_us += ticks_diff(us1, self._last_us)
    self._last_us = us2
    pid = t.pid
    s.e_active |= (1 << (pid - 1)) if pid <= 30 else 0x40000000
    cpu = t.cpu_us + ticks_diff(us2, us1)
    t.cpu_us = cpu
    q = t.cpu_quota_us
    if q and cpu > q:
        s.throttle(t, _Q_CPU, cpu, q)
    if not t.state:   # ready: its new place in the ready heap (it stays
        i = t.hidx      # in it while it runs; blocking takes it out)
        if 0 <= i < s.nrq and s.rq[i] is t and t.deadline_ms <= s.horizon:
            _S.rq_sift(s, t, i)   # (rq_push without its far check)
        else:
            s.rq_push(t, now)
    self.steps += 1
    return True
