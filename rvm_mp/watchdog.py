# Watchdog: the kernel's last word on time where a port cannot preempt.
#
# A board has no in-language preemption (docs/agents.md, Preemption): an
# agent that loops without awaiting holds the CPU. The hardware watchdog
# resets the board instead, and the next boot says who did it:
#
#   running boot                              next boot (after the reset)
#   ------------                              ---------------------------
#   Guard.arm(t)   hw.mark(word of t)         phase 5, before any agent
#     coro.send()  (spins: no feed ...)       code runs: attach()
#   Guard.disarm   hw.mark(0)                   hw.cause() == watchdog?
#   run() loop     feed() after every step,     word -> pid, name hash
#                  at most every timeout/4 ms   FAULT_F4_RESET a=88
#                                                 b=ETIMEOUT c=pid d=strikes
#   ... the timer runs out: reset               AGENT_FAULT of that pid
#                                                 b=ETIMEOUT c=88 d=strikes
#                                               strikes += 1 (wdt.json, by
#                                                 agent name + bundle hash)
#                                               hw.start(timeout_ms)
#                                             phase 6, per agent: feed();
#                                               >= N strikes: held, its code
#                                               not run: FAULT_ESCALATE
#                                               4->6 + BUNDLE_REJECT ETIMEOUT
#
# The word (below 2**30: a small int on every port, so marking allocates
# nothing): bits 28-29 = 2 (set), 12-27 the low 16 bits of h32(agent name),
# 0-11 the partition id. 0 (cleared after every resume) means kernel code
# was running: the reset is witnessed with pid 0 and no agent is blamed.
#
# Only the kernel feeds and marks: the hardware object lives in this kernel
# object, which the runtime holds; agents reach neither (DESIGN §11), and
# the import gate and the verifier keep `machine` away from them.
from .compat import const, ticks_diff
from . import errors
from . import kinds
from . import faults as F

_SET = const(0x20000000)
HELD = const(6)           # FAULT_ESCALATE "to" class: held, not started
STRIKES_FILE = "wdt.json"


def word(pid, name):
    """The scratch word naming partition pid running agent `name`."""
    return _SET | ((F.h32(name) & 0xFFFF) << 12) | (pid & 0xFFF)


class Watchdog:
    """The kernel side of the board's watchdog: `hw` is the platform's
    (hal_wdt.py, or a test's fake); `spec` the profile's "watchdog" dict:
    timeout_ms (default 5000), strikes (default 2: watchdog resets an agent
    may cause before it starts held)."""

    def __init__(self, hw, spec, pf, log):
        self.hw = hw
        self.pf = pf
        self.log = log
        t = spec.get("timeout_ms", 5000)
        self.timeout_ms = t if type(t) is int and 100 <= t <= 0x7FFFFF else 5000
        n = spec.get("strikes", 2)
        self.strikes = n if type(n) is int and n >= 1 else 2
        self.period = self.timeout_ms >> 2   # feed at most this often
        self.clock = pf.ticks_ms
        self.last = self.clock()
        self.feeds = 0
        self.culprit = None   # (pid, name or None, strikes) after a reset
        self.held = []        # agent names held (not started) at this boot
        self.st = {}          # strikes: {name: [count, h32(bundle)]}
        self.bundles = None   # boot's {name: bytes} (tests), else the fs

    # ---- the switch path (Guard.arm / disarm call hw.mark directly) -------
    def word_of(self, t):
        """t's word, kept on the task (computed at its first resume)."""
        v = word(t.pid, t.name)
        t.wdw = v
        return v

    # ---- the kernel loop ----------------------------------------------------
    def feed(self):
        now = self.clock()
        if ticks_diff(now, self.last) >= self.period:
            self.last = now
            self.feeds += 1
            self.hw.feed()

    def start(self):
        self.hw.start(self.timeout_ms)
        self.last = self.clock()
        self.hw.feed()

    def stop(self):
        """Stop the timer when the kernel stops (True), if the hardware can
        (a real machine.WDT cannot: the board then resets within the
        timeout, back into main.py)."""
        try:
            return self.hw.stop()
        except Exception:
            return False

    # ---- boot -----------------------------------------------------------------
    def _load(self):
        try:
            raw = self.pf.read_file(STRIKES_FILE)
            if raw:
                import json
                d = json.loads(raw)
                if type(d) is dict:
                    return d
        except (OSError, ValueError):
            pass
        return {}

    def _save(self, st):
        import json
        try:
            self.pf.write_file(STRIKES_FILE, json.dumps(st).encode())
        except OSError:
            pass   # a full flash: the strike is witnessed all the same

    def _bundle_h(self, rt, name):
        data = None
        b = self.bundles
        if b is not None and name in b:
            data = b[name]
        else:
            try:
                data = rt.bundle_data(name)
            except Exception:
                data = None
        return F.h32(data) if data else 0

    def _name(self, rt, pid, h16):
        """The agent name the word's hash names: the task with that pid
        first, then every name this board knows (profile, bundles on fs)."""
        cands = []
        for t in rt.sched.tasks:
            if t.pid == pid:
                cands.insert(0, t.name)
            else:
                cands.append(t.name)
        for a in rt.profile.get("agents", ()):
            cands.append(a.get("name") or "")
        if rt.fs is not None:
            import os
            try:
                for n in os.listdir(rt.fs + "/agents"):
                    if n.endswith(".rvmb"):
                        cands.append(n[:-5])
            except OSError:
                pass
        for n in cands:
            if n and (F.h32(n) & 0xFFFF) == h16:
                return n
        return None

    def boot(self, rt):
        """Witness a watchdog reset of the last boot and count the
        culprit's strike. Runs once, before any agent code runs."""
        hw = self.hw
        log = self.log
        try:
            was = hw.cause()
            w = hw.scratch() if was else 0
            hw.clear_boot()
        except Exception:
            was = False
            w = 0
        st = self._load()
        dirty = False
        if was:
            pid = 0
            name = None
            n = 0
            if w >> 28 == 2:
                pid = w & 0xFFF
                name = self._name(rt, pid, (w >> 12) & 0xFFFF)
            if name is not None:
                h = self._bundle_h(rt, name)
                e = st.get(name)
                prev = e[0] if type(e) is list and len(e) == 2 and \
                    type(e[0]) is int and e[1] == h else 0
                n = prev + 1
                st[name] = [n, h]
                dirty = True
            self.culprit = (pid, name, n)
            code = errors.ETIMEOUT.code
            from .hal import EXIT_WDT
            log.emit(kinds.FAULT_F4_RESET, 0, 0, EXIT_WDT, code, pid, n)
            if pid:
                log.emit(kinds.AGENT_FAULT, 0, pid, 0, code, EXIT_WDT, n)
        self.st = st
        if dirty:
            self._save(st)

    def holds(self, name, data):
        """Boot asks before it loads agent `name` from bundle `data`: True
        when its watchdog strikes reached the limit (its code must not run
        at all: a module top level that spins would reset the board at
        every boot). Witnessed; a changed bundle clears the strikes."""
        st = self.st
        e = st.get(name)
        if type(e) is not list or len(e) != 2 or type(e[0]) is not int:
            return False
        h = F.h32(data)
        if e[1] != h:
            del st[name]   # a new bundle: it starts with no strikes
            self._save(st)
            return False
        if e[0] < self.strikes:
            return False
        log = self.log
        code = errors.ETIMEOUT.code
        log.emit(kinds.FAULT_ESCALATE, 0, 0, F.F4, HELD, code, e[0])
        from .bundle import key_id
        log.deny(kinds.BUNDLE_REJECT, 0, 0, code, 0, h, len(data),
                 key_id(self.pf.device_key()))
        self.held.append(name)
        return True


def attach(rt, hw, spec, bundles=None):
    """Boot's hook (phase 5, before any agent code runs): witness the last
    reset, count the strike, give the guard its marker and the loop its
    feeder, start the timer. `bundles`: boot's {name: bytes}, if any."""
    wd = Watchdog(hw, spec, rt.pf, rt.log)
    wd.bundles = bundles
    wd.boot(rt)
    rt.wdog = wd
    g = rt.guard
    if g is not None:
        g.wd = wd
        g.wmark = hw.mark
    wd.start()
    return wd
