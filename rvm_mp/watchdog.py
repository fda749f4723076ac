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
#                                             (the boot half lives in
#                                             watchdog_boot.py, dropped
#                                             after phase 6: RAM)
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
from . import faults as F

_SET = const(0x20000000)
HELD = const(6)           # FAULT_ESCALATE "to" class: held, not started
STRIKES_FILE = "wdt.json"


def word(pid, name):
    """The scratch word naming partition pid (1..4095) running `name`."""
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
        self.names = {}       # agent name -> word(0, name) (Guard.arm)

    # ---- the switch path (Guard.arm / disarm call hw.mark directly) -------
    def name_bits(self, name):
        """The word of agent `name` without its pid, kept in `names` (one
        small dict: a field on every Task would grow each task's dict)."""
        v = word(0, name)
        self.names[name] = v
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

    # ---- boot (rvm_mp/watchdog_boot.py, unloaded after phase 6) -----------
    def holds(self, name, data):
        """Boot asks before it loads agent `name` from bundle `data`: True
        when its watchdog strikes reached the limit (then witnessed)."""
        from .watchdog_boot import holds
        return holds(self, name, data)

    def booted(self):
        """Boot is over: drop the boot-time code and state (RAM)."""
        import sys
        sys.modules.pop("rvm_mp.watchdog_boot", None)
        self.st = None
        self.bundles = None
