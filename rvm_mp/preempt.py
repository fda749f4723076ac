# Preemption and per-agent heap quota: the kernel keeps the last word on time.
#
# Agents are coroutines; the scheduler only gets the CPU back when one
# awaits. An agent that loops without awaiting would hold the board. The
# runtime therefore arms a Guard around every resume of an untrusted agent
# (and around running its module code at load and its entry function):
#
#   runtime                      watcher thread (one per process)
#   -------                      --------------------------------
#   g.arm(t)   gen += 1          every period: the same gen armed on two
#   coro.send(...)     <------   looks more than `slice_ms` apart?
#     | (spins)                     -> kick(): raise into the main thread
#   except BaseException: g.exc(e) -> ETIMEOUT for Overrun or a claimed
#                                    KeyboardInterrupt
#     -> AGENT_FAULT code ETIMEOUT, then F1/F2 per the fault policy
#   g.disarm(t)  armed = 0   a kick that lands after this is ignored
#
# How the main thread is interrupted, per port (docs/agents.md, Preemption):
#   CPython        the watcher measures the main thread's CPU time
#                  (time.pthread_getcpuclockid) and calls
#                  _thread.interrupt_main(SIGUSR1); the Python-level handler
#                  raises Overrun only while the same generation is armed.
#   unix port      no signal module, no ffi, and an exception raised by a
#                  micropython.schedule() callback is caught and printed by
#                  the scheduler (it never reaches the running code). The
#                  watcher writes to a FIFO read by a helper shell that sends
#                  SIGINT to this process; the port turns it into
#                  KeyboardInterrupt in the main thread, which the guard
#                  claims as an overrun. Time is the process's CPU time from
#                  /proc (10 ms resolution; wall time without /proc). A kick
#                  that lands after the agent yielded is dropped by
#                  Runtime.run().
#   boards         not available (same scheduler behaviour; machine.Timer
#                  callbacks cannot raise into the running code). The
#                  hardware watchdog is the last resort there (watchdog.py:
#                  arm/disarm mark the running partition in the word that
#                  survives the reset). See docs.
#
# Overrun and KeyboardInterrupt derive from BaseException: verified agent
# code may not catch BaseException, KeyboardInterrupt or use a bare except
# (rule A7), so a spinning agent cannot swallow the preemption; a `finally`
# that spins again is kicked again (the watcher keeps kicking while the same
# generation stays armed).
#
# Heap quota (MicroPython; CPython has no per-heap figures): an agent whose
# profile quota has "heap": N bytes is measured exactly around each resume
# (gc.collect(), gc.mem_alloc() before and after: what the resume left
# reachable); its running total past N faults it with ENOMEM. That costs two
# collections per resume of such an agent, so only agents given a heap quota
# pay it.
from .compat import IS_MICROPYTHON, ticks_diff, mem_alloc, collect
from . import errors

_MASK = 0x3FFFFFFF


class Overrun(BaseException):
    """Raised into an agent that ran past its CPU slice (CPython)."""


OVER_CPU = errors.ETIMEOUT   # AGENT_FAULT code of a CPU overrun
OVER_HEAP = errors.ENOMEM    # ... of a heap quota overrun


class Guard:
    """Per runtime. arm(t) before resuming t, disarm(t) after (every path);
    in the agent-fault branch, exc(e) before disarm maps this guard's
    Overrun / claimed KeyboardInterrupt to ETIMEOUT."""

    def __init__(self, slice_ms=200):
        self.slice_ms = slice_ms
        self.gen = 0        # generation of the last arm (30 bits)
        self.armed = 0      # generation being run, 0 = none
        self.fired = 0      # generation the watcher kicked last
        self.kicks = 0      # kicks sent (watcher thread)
        self.claimed = 0    # kicks that arrived (main thread)
        self.overruns = 0   # agents stopped for overrunning
        self.longest = 0    # longest overrun seen: ms (CPython: CPU ms of
        #                     the main thread) from the watcher first seeing
        #                     the generation armed to the agent stopping
        self.seen_at = 0    # watcher clock when it first saw `armed`
        self.m0 = 0         # mem_alloc() at arm (heap-quota agents)
        self.q = 0          # the armed agent has a heap quota: the watcher
        #                     then uses the allocation-free wall clock, so
        #                     it adds nothing to what the guard measures
        self.wd = None      # the board's Watchdog (watchdog.py), its
        self.wmark = None   # hardware's mark(word) and its {agent name:
        self.wnames = None  # word without the pid}: the resumed partition
        #                     is named in the word that survives a reset
        self.ok = _start(self)

    def arm(self, t):
        q = t.heap_q
        if q:
            collect()
            self.m0 = mem_alloc()
        self.q = q
        g = (self.gen + 1) & _MASK
        self.gen = g
        self.armed = g
        _W[0] = self
        m = self.wmark
        if m is not None:   # name bits computed once per agent name
            v = self.wnames.get(t.name)
            m((v if v is not None else self.wd.name_bits(t.name)) | t.pid)

    def disarm(self, t):
        """Stop guarding; returns the heap-quota error if t's resume took it
        past its quota, else None."""
        self.armed = 0
        m = self.wmark
        if m is not None:
            m(0)
        if t.heap_q:
            collect()
            used = t.heap_used + mem_alloc() - self.m0
            t.heap_used = used if used > 0 else 0
            if used > t.heap_q:
                t.heap_used = 0
                return OVER_HEAP
        return None

    def claim(self):
        """In `except KeyboardInterrupt` around a resume (before disarm):
        True when the interrupt is this guard's kick (an overrun), False for
        a real Ctrl-C."""
        if self.fired and self.fired == self.armed:
            self.claimed += 1
            self._stopped()
            return True
        return False

    def stray(self):
        """In the kernel loop's `except KeyboardInterrupt`: True when the
        interrupt is a late kick (the agent yielded before it landed)."""
        if self.claimed < self.kicks:
            self.claimed += 1
            return True
        return False

    def exc(self, e):
        """What the runtime faults the agent with for exception e (call it
        before disarm): ETIMEOUT for this guard's Overrun (CPython) or its
        kick (KeyboardInterrupt on the unix port), e itself otherwise."""
        t = type(e)
        if t is Overrun or (t is KeyboardInterrupt and self.claim()):
            if t is Overrun:
                self._stopped()
            return OVER_CPU
        return e

    def _stopped(self):
        self.overruns += 1
        now = _NOW[0]
        try:
            d = ticks_diff(now(), self.seen_at) if now is not None else 0
        except MemoryError:
            d = 0
        if d > self.longest:
            self.longest = d


_W = [None]        # the guard armed last (what the watcher watches)
try:
    from time import ticks_ms as _wall
except ImportError:   # CPython: heap quotas are MicroPython only
    from .compat import ticks_ms as _wall
_NOW = [None]      # the watcher's clock
_STATE = [None]    # None untried, True running, False unavailable


def _start(g):
    if _STATE[0] is None:
        try:
            _STATE[0] = _start_mp() if IS_MICROPYTHON else _start_cpython()
        except Exception:
            _STATE[0] = False
    return _STATE[0]


def _period(g):
    p = g.slice_ms // 4
    return 5 if p < 5 else p


def _start_cpython():
    import _thread
    import signal
    import time
    main = _thread.get_ident()
    try:
        clk = time.pthread_getcpuclockid(main)
        time.clock_gettime(clk)

        def now():  # the main thread's CPU time: a loaded host is not a spin
            return int(time.clock_gettime(clk) * 1000) & _MASK
    except (AttributeError, OSError):
        def now():
            return int(time.monotonic() * 1000) & _MASK

    def handler(signum, frame):
        g = _W[0]
        if g is not None and g.armed and g.armed == g.fired:
            g.claimed += 1
            raise Overrun("ECPU")

    signal.signal(signal.SIGUSR1, handler)   # ValueError off the main thread

    def kick(g):
        _thread.interrupt_main(signal.SIGUSR1)

    def sleep(ms):
        time.sleep(ms / 1000)

    _thread.start_new_thread(_watch, (now, kick, sleep))
    return True


def _start_mp():
    import _thread
    import os
    import time
    path = "/tmp/rvm-kick-%d-%d" % (time.ticks_us(), mem_alloc())
    # the helper: reads one line per kick, sends SIGINT to this process
    # ($PPID of the shell os.system starts); ends when the FIFO closes
    if os.system("mkfifo %s && { (while read l; do kill -INT $PPID; done "
                 "< %s; rm -f %s) & }" % (path, path, path)) != 0:
        return False
    # the real builtin: while agents run, the import gate's guarded `open`
    # refuses every caller, the watcher thread included
    from . import importgate
    gate = importgate._GATES[0]
    _OPEN[0] = gate.real("open", open) if gate is not None else open
    f = _OPEN[0](path, "wb")
    _KICK[0] = f

    def kick(g):
        f.write(b"k\n")

    now = _proc_cpu_ms if _proc_cpu_ms() >= 0 else time.ticks_ms
    _thread.start_new_thread(_watch, (now, kick, time.sleep_ms))
    return True


def _proc_cpu_ms():
    """CPU time of this process in ms (utime + stime from /proc, 100 Hz
    ticks), -1 without /proc. Read by the watcher thread only (it may
    allocate: the heap lock is per thread)."""
    try:
        with _OPEN[0]("/proc/self/stat") as f:
            s = f.read()
        p = s[s.rfind(")") + 2:].split()
        return ((int(p[11]) + int(p[12])) * 10) & _MASK
    except (OSError, ValueError, IndexError, MemoryError):
        return -1


_KICK = [None]
_OPEN = [open]


def _watch(now, kick, sleep):
    """The watcher thread. It must never die: on the unix port the clock
    reads /proc (allocates), and an allocation fails while the main thread
    collects or holds the heap lock; such a tick is skipped."""
    _NOW[0] = now
    st = [0, 0]   # generation seen, clock when first seen
    while True:
        try:
            _tick(now, kick, sleep, st)
        except BaseException:
            pass


def _tick(now, kick, sleep, st):
    g = _W[0]
    sleep(_period(g) if g is not None else 20)
    if g is None:
        return
    a = g.armed
    if not a:
        st[0] = 0
        return
    c = _wall() if g.q else now()
    if c < 0:
        return
    if a != st[0]:
        st[0] = a
        st[1] = c
        g.seen_at = c
        return
    if ticks_diff(c, st[1]) > g.slice_ms:
        g.fired = a
        g.kicks += 1
        # kick again half a slice from now if it still runs (a finally
        # block that spins; a kick lost on the way)
        st[1] = ticks_diff(c, g.slice_ms >> 1)
        kick(g)


def available():
    """True when this port can preempt a spinning agent."""
    return bool(_STATE[0])
