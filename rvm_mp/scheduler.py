# Scheduler: which partition's agent runs next (mechanism; policy is the
# priority-signal object the board profile chooses).
#
#   priority = deadline urgency + cut-pressure boost          (DC-4)
#
# both in one fixed-point unit, PRIO_Q per millisecond of urgency:
#
#   urgency = clamp(horizon_ms - slack_ms, 0, 2*horizon_ms) * PRIO_Q
#             slack = ticks_diff(task.deadline, now); a task's deadline is set
#             when it becomes ready (ready time + its relative deadline), so
#             a task that waits ages towards the front: no starvation.
#   boost   = signal.boost(pid) [basis points 0..10000] * boost_weight // 10000
#             refreshed once per epoch (not per switch); with no coherence
#             engine the NullSignal gives 0 and the kernel is degraded.
#   wboost  = signal.wake(src, pid) [bp] * wake_weight // 10000
#             transient: set when a message from src is queued for pid
#             (wake_boost(), called by the runtime's send path), spent when
#             pid receives a message (Runtime._recv; ran() here), at the
#             latest at the epoch's end. A request wakes its server and the
#             reply wakes the client with priority, so the pair runs back to
#             back.
#
# Order of a pick: while a hard-deadline task is ready the scheduler is in
# Reflex and picks among hard tasks only; otherwise the highest priority;
# ties go to the task that ran least recently.
#
#   Flow      normal mode.
#   Reflex    entered while a hard-deadline task is ready: only hard tasks
#             run, IPC is refused (EMODE), and the stay is bounded by
#             reflex_budget_us; past it one Flow task runs (an overrun).
#             Entries/overruns are counted in the epoch summary, not
#             witnessed one by one (they happen every period).
#   Recovery  only recovery work runs: the fault manager's queued jobs and
#             tasks marked `recovery`; entry and exit are witnessed.
#
#   ready tasks:   a binary heap in pick order, kept on wake and block
#                  (rq_push); the pick reads its top: O(1), a switch
#                  re-sorts the task that ran: O(log n). The scan
#                  (pick_scan) is the reference and the fallback where the
#                  heap's order is not the priority order (docs/scheduler.md)
#   sleepers:      a fixed-capacity binary heap keyed by wake time
#                  (ticks_diff order, so the wrap of ticks_ms is harmless)
#   idle:          next_timeout() = ms to the earliest wake; the kernel loop
#                  waits in platform.wait_io(timeout) - no busy loop.
#
# Epochs: every epoch_ms the scheduler emits one EPOCH_SUMMARY (switches,
# switch time, deadline misses, active partitions, degraded bit), lifts
# throttles, and asks the signal for fresh boosts. Individual switches are
# not witnessed (DC-10). Epochs in which nothing ran emit nothing.
#
# The switch path (pick, account, make_ready/sleep) does not allocate: a test
# runs it under micropython.heap_lock().
from .compat import const, ticks_diff, ticks_add
from . import impls
from . import kinds

# task states
T_READY = const(0)      # runnable
T_SLEEP = const(1)      # in the heap until .wake
T_WAIT = const(2)       # blocked (recv / console input); in the heap if timed
T_THROTTLED = const(3)  # over a quota; runnable again at the next epoch
T_SUSPENDED = const(4)  # not scheduled (partition suspended / not started)
T_DONE = const(5)       # coroutine finished or faulted for good

MODE_FLOW = const(0)
MODE_REFLEX = const(1)
MODE_RECOVERY = const(2)
MODE_NAMES = ("flow", "reflex", "recovery")

# quota kinds (QUOTA_THROTTLE a)
Q_CPU = const(1)
Q_MSGS = const(2)
Q_MEM = const(3)

PRIO_Q = const(16)          # priority units per ms of urgency
_BP = const(10000)          # basis points
_M24 = const(0xFFFFFF)

# DEGRADED_ENTER reasons
DEG_NO_ENGINE = const(0)
DEG_ENGINE_FAILED = const(1)


class NullSignal:
    """No coherence engine: boost 0 for everyone; the kernel is degraded."""
    available = False

    def refresh(self, now):
        return False

    def boost(self, pid):
        return 0


class StaticSignal:
    """Fixed cut-pressure per partition (basis points), from the profile
    ("scheduler": {"signal": "static", "pressure": {"3": 5000}}) or a test.
    Also the reference implementation of the signal contract:
      refresh(now) -> bool   once per epoch; False = engine unhealthy
      boost(pid)   -> int    cut pressure of pid, basis points 0..10000
      wake(src, dst) -> int  (optional) pressure of the pair src -> dst when
                             a message wakes dst, bp 0..10000; called on the
                             send path, so it must not allocate"""
    available = True

    def __init__(self, pressure=None):
        self.pressure = {}
        if pressure:
            for k in pressure:
                self.pressure[int(k)] = int(pressure[k])

    def refresh(self, now):
        return True

    def boost(self, pid):
        return self.pressure.get(pid, 0)


# Task.fl bits (one int instead of seven attributes: a MicroPython instance
# dict grows in prime steps, and every partition has a Task)
F_HARD = const(1)       # hard-deadline (Reflex) task: local only
F_RECOVERY = const(2)   # may run in Recovery mode
F_TRUSTED = const(4)    # kernel code (control console): import gate off
F_CONSOLE = const(8)    # may use the console requests
F_TIMED_OUT = const(16)  # a timed wait ended by its timeout
F_MISSED = const(32)    # deadline miss witnessed this epoch
F_PENDING = const(64)   # a blocked request is retried when ready


# Properties for the flags set from outside the scheduler (each costs ~200
# bytes of RAM on MicroPython: F_RECOVERY, F_TIMED_OUT and F_MISSED are
# read and written as bits of .fl instead).
def _flag(bit):
    def get(self):
        return bool(self.fl & bit)

    def put(self, v):
        if v:
            self.fl |= bit
        else:
            self.fl &= ~bit
    return property(get, put)


class Task:
    """Run state of one partition's agent. Dense fields, one comment each."""
    # wake boost (PRIO units), spent at the next run. A class attribute until
    # a task is first boosted: boards without an engine never grow every
    # Task's instance dict by it.
    wboost = 0
    refusals = 0    # refusals this epoch (the refusal budget, runtime.py)
    floods = 0      # consecutive epochs it spent its whole refusal budget
    out = None      # the agent's print buffer (bytearray) once loaded
    aprint = None   # the agent's own print (its log channel)
    heap_q = 0      # heap quota in bytes (preempt.Guard), 0 = none
    heap_used = 0   # bytes its resumes left reachable (heap-quota agents)

    def __init__(self, pid, name=""):
        self.pid = pid
        self.name = name        # agent name = its bundle name
        self.coro = None        # the agent coroutine (None before start)
        self.req = None         # its one Request
        self.rvm = None         # its Rvm API object
        self.state = T_SUSPENDED  # T_*
        self.fl = 0             # F_* bits
        self.deadline_ms = 100  # relative deadline from becoming ready
        self.deadline = 0       # absolute deadline (ticks_ms)
        self.wake = 0           # wake time while T_SLEEP / timed T_WAIT
        self.hidx = -1          # index in the sleeper heap (T_SLEEP, timed
                                # T_WAIT) or the ready heap (T_READY), -1 =
                                # in neither (never in both)
        self.wait_op = 0        # agent.OP_* a T_WAIT task waits for
        self.wait_until = 0     # absolute end of a timed wait
        self.boost = 0          # priority boost (PRIO units), per epoch
        self.last = 0           # switch number of its last run (LRU)
        self.cpu_quota_us = 0   # CPU per epoch, 0 = unlimited
        self.cpu_us = 0         # CPU used this epoch
        self.quota = None       # (messages per epoch, region bytes) or None
        self.thr = 0            # quota kinds throttled this epoch (bitmask)
        self.result = None      # value to send at the next resume
        self.exc = None         # error to throw at the next resume
        self.restarts = 0       # F1 restarts so far
        self.faults = 0         # faults so far
        self.rebuilds = 0       # F2 rebuilds so far
        self.started = 0        # ticks_ms of the last start
        self.spec = None        # the agent's load spec (runtime use)
        self.main = None        # the agent's entry function (F1 restarts it)
        self.globals = None     # the agent module's globals (debug, tests)

    hard = _flag(F_HARD)
    trusted = _flag(F_TRUSTED)
    console = _flag(F_CONSOLE)
    pending = _flag(F_PENDING)


def _rq_before(a, b):
    """a comes before b in the ready heap (see Scheduler.rq_push)."""
    h = a.fl & F_HARD
    if h != b.fl & F_HARD:
        return h != 0
    x = a.boost + a.wboost - b.boost - b.wboost + \
        PRIO_Q * ticks_diff(b.deadline, a.deadline)
    if x:
        return x > 0
    return a.last < b.last


def _rq_sift_py(s, t, i):
    """Place t at slot i of s's ready heap (a hole, or its own slot after
    its fields changed) and sift it up or down (switch_native.sift is the
    same with the order inlined)."""
    rq = s.rq
    up = False
    while i > 0:
        j = (i - 1) >> 1
        p = rq[j]
        if not _rq_before(t, p):
            break
        rq[i] = p
        p.hidx = i
        i = j
        up = True
    n = s.nrq
    while not up:
        c = 2 * i + 1
        if c >= n:
            break
        a = rq[c]
        if c + 1 < n and _rq_before(rq[c + 1], a):
            c += 1
            a = rq[c]
        if not _rq_before(a, t):
            break
        rq[i] = a
        a.hidx = i
        i = c
    rq[i] = t
    t.hidx = i


# The ready heap's sift: this portable body, or (runtime.use_native) the C
# rvmn_pick.sift where the natmod loads, else switch_native.sift.
rq_sift = _rq_sift_py


class Scheduler:
    def __init__(self, log, clock_ms, clock_us, capacity=8, signal=None,
                 epoch_ms=1000, horizon_ms=1000, boost_weight=PRIO_Q,
                 reflex_budget_us=20000, idle_max_ms=1000,
                 wake_weight=10 * PRIO_Q):
        self.log = log
        self.clock_ms = clock_ms
        self.clock_us = clock_us
        self.tasks = []
        self.cap = capacity
        self.heap = [None] * capacity
        self.nheap = 0
        self.rq = [None] * capacity     # the ready heap (see rq_push)
        self.nrq = 0
        self.far_until = None   # a pushed deadline was beyond the horizon
                                # until this tick (pick_py scans till then)
        self._nadd = 0          # tasks added so far (unique initial `last`)
        self.signal = signal if signal is not None else NullSignal()
        self.epoch_ms = epoch_ms
        self.horizon = horizon_ms
        self.boost_weight = boost_weight
        self.wake_weight = wake_weight
        self._wake = None       # signal.wake while the signal is healthy
        self.reflex_budget_us = reflex_budget_us
        self.idle_max_ms = idle_max_ms
        self.mode = MODE_FLOW
        self.degraded = False
        self.degraded_since = 0
        self.epoch = 0
        self.epoch_start = clock_ms()
        self.switch_no = 0
        # per-epoch counters
        self.e_switches = 0
        self.e_switch_us = 0
        self.e_misses = 0
        self.e_active = 0
        self.e_reflex = 0
        self.reflex_start = 0
        self.reflex_overruns = 0
        self.total_switches = 0
        self.summaries = 0

    # ---- registry -----------------------------------------------------------
    def add(self, t):
        if len(self.tasks) >= self.cap:
            self.cap = len(self.tasks) + 1
            self.heap.append(None)
            self.rq.append(None)
        # every `last` is unique: a task that never ran is older than any
        # that did, and among those the one added first (the scan's list
        # order) comes first. The ready heap and the scan then agree on
        # every tie.
        self._nadd += 1
        t.last = self._nadd - 0x20000000
        self.tasks.append(t)
        if t.state == T_READY:   # made ready before it was added
            self.rq_push(t, self.clock_ms())
        return t

    def remove(self, t):
        self.unheap(t)
        self.rq_out(t)
        t.state = T_DONE
        if t in self.tasks:
            self.tasks.remove(t)

    def task(self, pid):
        for t in self.tasks:
            if t.pid == pid:
                return t
        return None

    # ---- state changes (switch path: no allocation) -----------------------
    def make_ready(self, t, now):
        t.deadline = ticks_add(now, t.deadline_ms)
        if t.thr:
            t.state = T_THROTTLED
            if t.hidx >= 0:
                self.unheap(t)
        else:
            t.state = T_READY
            self.rq_push(t, now)

    def sleep(self, t, until):
        t.state = T_SLEEP
        t.wake = until
        self._push(t)

    def wait(self, t, op, timeout_ms, now):
        """Block t on `op`; timeout_ms < 0 waits forever."""
        if t.hidx >= 0:
            self.unheap(t)
        t.state = T_WAIT
        t.wait_op = op
        t.fl &= ~F_TIMED_OUT
        if timeout_ms >= 0:
            t.wake = ticks_add(now, timeout_ms)
            self._push(t)

    def wake_waiters(self, op, now):
        """Make every task blocked on `op` runnable (it retries its call).
        Returns how many woke."""
        n = 0
        for t in self.tasks:
            if t.state == T_WAIT and t.wait_op == op:
                self.make_ready(t, now)
                n += 1
        return n

    def wake_due(self, now):
        """Move sleepers whose time has come to ready. Returns how many."""
        n = 0
        heap = self.heap
        while self.nheap and ticks_diff(heap[0].wake, now) <= 0:
            t = heap[0]
            self._remove_at(0)
            if t.state == T_WAIT:
                t.fl |= F_TIMED_OUT
            self.make_ready(t, now)
            n += 1
        return n

    # ---- the pick -------------------------------------------------------------
    def pick_py(self, now):
        """The next task to run, or None when nothing is runnable (the same
        answer and mode change as pick_scan). Reads the top of the ready
        heap and leaves it there (Runtime.step re-sorts the task after it
        ran, or it leaves the heap when it blocks)."""
        rq = self.rq
        while self.nrq:
            t = rq[0]
            if not t.state:  # T_READY
                break
            self._rq_del(0)  # left the ready state behind the heap's back
        else:
            if self.mode != MODE_RECOVERY:
                self.mode = MODE_FLOW
            return None
        # the heap orders by boost - deadline, which is the priority order
        # while every ready task's slack lies within +-horizon (clamp edges)
        if self.mode == MODE_RECOVERY or \
                ticks_diff(t.deadline, now) < -self.horizon:
            return self.pick_scan(now)
        f = self.far_until
        if f is not None:
            if ticks_diff(f, now) > 0:
                return self.pick_scan(now)
            self.far_until = None
        if not t.fl & F_HARD:   # hard tasks sort first: none is ready
            self.mode = MODE_FLOW
            return t
        us = self.clock_us()
        if self.mode != MODE_REFLEX:
            self.mode = MODE_REFLEX
            self.e_reflex += 1
            self.reflex_start = us
            return t
        if ticks_diff(us, self.reflex_start) > self.reflex_budget_us:
            return self.pick_scan(now)  # an overrun needs the best Flow task
        return t

    def pick_scan(self, now):
        """The reference pick: one pass over every task, the best hard
        (Reflex) task and the best other task; then the mode decides between
        them. pick_py gives the same answer from the ready heap; it falls
        back to this where the heap's order is not the priority order
        (Recovery mode, the clamp edges, a Reflex overrun)."""
        rec = self.mode == MODE_RECOVERY
        horizon = self.horizon
        hmax = horizon + horizon
        bh = None   # best hard-deadline task
        bs = None   # best other task
        ph = 0
        ps = 0
        td = ticks_diff
        for t in self.tasks:
            if t.state:  # != T_READY
                continue
            fl = t.fl
            if rec and not fl & F_RECOVERY:
                continue
            u = horizon - td(t.deadline, now)
            if u < 0:
                u = 0
            elif u > hmax:
                u = hmax
            p = u * PRIO_Q + t.boost + t.wboost
            if fl & F_HARD:
                if bh is None or p > ph or (p == ph and t.last < bh.last):
                    bh = t
                    ph = p
            elif bs is None or p > ps or (p == ps and t.last < bs.last):
                bs = t
                ps = p
        if rec:
            return bh if bh is not None else bs
        if bh is None:
            self.mode = MODE_FLOW
            return bs
        us = self.clock_us()
        if self.mode != MODE_REFLEX:
            self.mode = MODE_REFLEX
            self.e_reflex += 1
            self.reflex_start = us
            return bh
        if ticks_diff(us, self.reflex_start) > self.reflex_budget_us:
            # bounded: one Flow task runs, then Reflex may start again
            if bs is not None:
                self.reflex_overruns += 1
                self.mode = MODE_FLOW
                return bs
            self.reflex_start = us
        return bh

    pick = pick_py

    def ipc_allowed(self, t):
        """Reflex is local-only: hard tasks and anything in Reflex mode get
        EMODE for IPC."""
        return not t.fl & F_HARD and self.mode != MODE_REFLEX

    def ran(self, t, now, switch_us, cpu_us):
        """Account one resume of t: switch time (pick to resume) and CPU.
        (The runtime inlines this on its switch path; deadline misses are
        checked when a task is picked: Scheduler.miss.)"""
        self.switch_no += 1
        t.last = self.switch_no
        if t.wboost:
            t.wboost = 0
        i = t.hidx
        if i >= 0 and i < self.nrq and self.rq[i] is t:
            rq_sift(self, t, i)
        self.e_switches += 1
        self.e_switch_us += switch_us
        if t.pid <= 30:
            self.e_active |= 1 << (t.pid - 1)
        else:
            self.e_active |= 1 << 30
        t.cpu_us += cpu_us
        if t.cpu_quota_us and t.cpu_us > t.cpu_quota_us:
            self.throttle(t, Q_CPU, t.cpu_us, t.cpu_quota_us)

    def wake_boost(self, t, src):
        """A message from partition `src` was queued for t (the runtime's
        send path, after waking the receivers). t gets signal.wake(src,
        t.pid) bp of wake_weight as a transient boost, spent when it
        receives (Runtime._recv; ran() here) or at the epoch's end, so a
        request/reply pair runs back to back instead of waiting out the
        ready queue. 0 while degraded or
        without an engine. Returns the boost. Does not allocate."""
        w = self._wake
        if w is None:
            return 0
        try:
            b = w(src, t.pid) * self.wake_weight // _BP
        except Exception:  # a failing engine is caught at the next epoch
            return 0
        if b > self.wake_weight:
            b = self.wake_weight
        if b > t.wboost:
            t.wboost = b
            i = t.hidx
            if i >= 0 and i < self.nrq and self.rq[i] is t:
                rq_sift(self, t, i)
        return b

    def miss(self, t, now):
        self.e_misses += 1
        if not t.fl & F_MISSED:
            t.fl |= F_MISSED
            self.log.emit(kinds.DEADLINE_MISS, 0, t.pid, t.deadline,
                          ticks_diff(now, t.deadline), self.epoch)

    def throttle(self, t, qkind, used, limit):
        bit = 1 << qkind
        if not t.thr & bit:
            self.log.emit(kinds.QUOTA_THROTTLE, 0, t.pid, qkind, used, limit,
                          self.epoch)
        t.thr |= bit
        if t.state == T_READY:
            t.state = T_THROTTLED
            if t.hidx >= 0:
                self.unheap(t)

    # ---- idle -------------------------------------------------------------------
    def next_timeout(self, now):
        """ms the kernel may wait when nothing is runnable: until the
        earliest sleeper (or the epoch end while there are throttled tasks),
        at most idle_max_ms."""
        tmo = self.idle_max_ms
        if self.nheap:
            d = ticks_diff(self.heap[0].wake, now)
            if d < tmo:
                tmo = d
        for t in self.tasks:
            if t.state == T_THROTTLED:
                d = ticks_diff(ticks_add(self.epoch_start, self.epoch_ms), now)
                if d < tmo:
                    tmo = d
                break
        return tmo if tmo > 0 else 0

    # ---- epochs -------------------------------------------------------------------
    def epoch_due(self, now):
        return ticks_diff(now, self.epoch_start) >= self.epoch_ms

    def end_epoch(self, now):
        """Summarise the epoch (if anything ran), lift throttles, refresh
        boosts and the degraded state. Returns the number of epochs passed."""
        el = ticks_diff(now, self.epoch_start)
        n = el // self.epoch_ms if self.epoch_ms > 0 else 1
        if n < 1:
            n = 1
        if self.e_switches:
            misses = self.e_misses if self.e_misses < 255 else 255
            d = self.e_active
            if self.degraded:
                d |= 1 << 31
            self.log.emit(kinds.EPOCH_SUMMARY, 0, 0, self.epoch,
                          self.e_switches, (self.e_switch_us & _M24) |
                          (misses << 24), d)
            self.summaries += 1
        self.total_switches += self.e_switches
        self.epoch += n
        self.epoch_start = ticks_add(self.epoch_start, n * self.epoch_ms)
        self.e_switches = 0
        self.e_switch_us = 0
        self.e_misses = 0
        self.e_active = 0
        self.e_reflex = 0
        for t in self.tasks:
            t.cpu_us = 0
            t.fl &= ~F_MISSED
            if t.wboost:   # a wake boost lasts at most to the epoch's end
                t.wboost = 0
            if t.thr:
                t.thr = 0
                if t.state == T_THROTTLED:
                    t.state = T_READY
                    t.deadline = ticks_add(now, t.deadline_ms)
        self.refresh_signal(now)   # rebuilds the ready heap
        return n

    def refresh_signal(self, now):
        sig = self.signal
        ok = False
        try:
            ok = sig.available and sig.refresh(now)
        except Exception:  # a failed engine degrades, never stops the kernel
            ok = False
        if ok:
            for t in self.tasks:
                try:
                    bp = sig.boost(t.pid)
                except Exception:
                    bp = 0
                    ok = False
                if bp < 0:
                    bp = 0
                elif bp > _BP:
                    bp = _BP
                t.boost = bp * self.boost_weight // _BP
        self._wake = getattr(sig, "wake", None) if ok else None
        if not ok:
            for t in self.tasks:
                t.boost = 0
        self.rq_rebuild(now)
        self.set_degraded(not ok, now,
                          DEG_NO_ENGINE if not sig.available else DEG_ENGINE_FAILED)

    def set_degraded(self, on, now, reason=DEG_NO_ENGINE):
        if on and not self.degraded:
            self.degraded = True
            self.degraded_since = now
            self._deg_reason = reason
            self.log.emit(kinds.DEGRADED_ENTER, 0, 0, reason, 0, self.epoch)
            self.log.degraded = True
        elif not on and self.degraded:
            self.degraded = False
            self.log.degraded = False
            self.log.emit(kinds.DEGRADED_EXIT, 0, 0, self._deg_reason,
                          ticks_diff(now, self.degraded_since), self.epoch)

    def start(self, now):
        """Scheduler start (boot phase 7): epoch 0 begins, the signal is asked
        for its first boosts (DEGRADED_ENTER here when there is no engine)."""
        self.epoch_start = now
        self.refresh_signal(now)

    # ---- modes -------------------------------------------------------------------
    def set_mode(self, mode, reason=0, actor=0):
        if mode == self.mode:
            return 0
        self.log.emit(kinds.MODE_CHANGE, actor, 0, self.mode, mode, reason)
        self.mode = mode
        return 0

    # ---- ready heap ---------------------------------------------------------------
    # The ready tasks in a binary heap (fixed capacity, grown by add()), in
    # pick order: hard tasks first, then the higher boost + wboost -
    # deadline * PRIO_Q, then the smaller `last`. Within the clamp (every
    # slack within +-horizon) that is the priority order, and it does not
    # depend on `now`, so it is kept on wake and block, not per pick.
    # Everything that changes those fields of a task in the heap fixes its
    # place: make_ready, ran, wake_boost, refresh_signal (rebuild). A task
    # that leaves the ready state is taken out where the scheduler sees it
    # (sleep, wait, throttle, remove, unheap); one that leaves behind its
    # back (a field set directly) is dropped when it reaches the top.
    # pick_py only reads the top; Runtime.step leaves the picked task in its
    # slot while it runs and re-sorts it once after (docs/scheduler.md).
    def rq_push(self, t, now):
        """Put ready t into the ready heap, or fix its place if it is in
        (its deadline, boost, wboost or last changed)."""
        if ticks_diff(t.deadline, now) > self.horizon:
            # beyond the clamp: the heap order is not the priority order
            # until deadline - horizon (pick_py scans until then)
            f = ticks_add(t.deadline, -self.horizon)
            if self.far_until is None or ticks_diff(f, self.far_until) > 0:
                self.far_until = f
        i = t.hidx
        if i < 0 or i >= self.nrq or self.rq[i] is not t:
            if i >= 0:
                self.unheap(t)   # from the sleeper heap
            i = self.nrq
            if i >= len(self.rq):   # a task that was never add()ed
                self.rq.append(None)
            self.nrq = i + 1
        rq_sift(self, t, i)

    def rq_out(self, t):
        """Take t out of the ready heap (nothing if it is not in)."""
        i = t.hidx
        if i >= 0 and i < self.nrq and self.rq[i] is t:
            self._rq_del(i)

    def rq_rebuild(self, now):
        """The ready heap from scratch: every T_READY task (after the
        boosts of every task changed)."""
        rq = self.rq
        for i in range(self.nrq):
            rq[i].hidx = -1
            rq[i] = None
        self.nrq = 0
        for t in self.tasks:
            if t.state == T_READY:
                self.rq_push(t, now)

    def _rq_del(self, i):
        rq = self.rq
        rq[i].hidx = -1
        n = self.nrq - 1
        self.nrq = n
        m = rq[n]
        rq[n] = None
        if i != n:
            rq_sift(self, m, i)

    # ---- sleeper heap (fixed capacity, sift by ticks_diff) -----------------------
    def _less(self, a, b):
        return ticks_diff(a.wake, b.wake) < 0

    def _push(self, t):
        if t.hidx >= 0:
            self.unheap(t)
        i = self.nheap
        if i >= len(self.heap):
            self.heap.append(None)
        self.heap[i] = t
        t.hidx = i
        self.nheap = i + 1
        self._up(i)

    def unheap(self, t):
        """Take t out of the heap it is in (sleeper or ready heap)."""
        i = t.hidx
        if i < 0:
            return
        if i < self.nheap and self.heap[i] is t:
            self._remove_at(i)
        elif i < self.nrq and self.rq[i] is t:
            self._rq_del(i)
        else:   # inconsistent: just detach
            t.hidx = -1

    def _remove_at(self, i):
        heap = self.heap
        heap[i].hidx = -1
        last = self.nheap - 1
        self.nheap = last
        if i != last:
            m = heap[last]
            heap[i] = m
            m.hidx = i
            heap[last] = None
            self._up(i)
            self._down(m.hidx)
        else:
            heap[last] = None

    def _up(self, i):
        heap = self.heap
        while i > 0:
            p = (i - 1) >> 1
            if self._less(heap[i], heap[p]):
                a = heap[i]
                b = heap[p]
                heap[i] = b
                b.hidx = i
                heap[p] = a
                a.hidx = p
                i = p
            else:
                break

    def _down(self, i):
        heap = self.heap
        n = self.nheap
        while True:
            l = 2 * i + 1
            if l >= n:
                break
            c = l
            r = l + 1
            if r < n and self._less(heap[r], heap[l]):
                c = r
            if self._less(heap[c], heap[i]):
                a = heap[i]
                b = heap[c]
                heap[i] = b
                b.hidx = i
                heap[c] = a
                a.hidx = c
                i = c
            else:
                break


# The pick in C (natmod rvmn_pick): runtime.use_native(True) installs it in
# place of switch_native.pick where it loads; use_native(False) installs the
# portable pick_py (impls.py). Loaded on first use, so a profile that keeps
# the portable switch path never loads (or ships) it.
_PICK_C = []


def natmod_pick():
    """The C pick as a method, or None where rvmn_pick does not load."""
    if not _PICK_C:
        nat = impls.natmod("rvmn_pick")
        f = None
        sift = None
        if nat is not None:
            nat.init(ticks_add(0, -1))
            c = nat.pick
            sift = nat.sift

            # MicroPython binds no `self` to a C function stored on a Python
            # class: a thin wrapper makes it a method
            def f(self, now):
                return c(self, now)
        _PICK_C.append(f)
        _PICK_C.append(sift)
    return _PICK_C[0]


def _pick_impl():
    p = Scheduler.pick
    if p is Scheduler.pick_py:
        return "portable"
    return "natmod" if _PICK_C and p is _PICK_C[0] else "native"


impls.chose("pick", _pick_impl)
