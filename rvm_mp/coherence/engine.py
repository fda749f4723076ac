# CoherenceEngine: the L2 engine the kernel may plug in (ADR-132 DC-1/2/6).
#
#   kernel IPC ---on_message(src,dst,n)---> CommGraph.acc        (O(1))
#   kernel loop ---epoch()---> fold EMA, one budgeted MinCut slice, and when
#                              a run finishes: side[], pressure[], witnesses
#   scheduler  ---boost(pid, last)--->  reads the last finished cut (O(1))
#   tiers      ---cut_value(pid)--->    -1 while degraded (use static thresholds)
#   split/merge/migration ask `allowed()` first: refused while degraded
#
# Budget (DC-2): every epoch gets at most one slice of `budget_us` of mincut
# work (checked after each O(m) step). A run that has not finished after
# `max_slices` epochs is over budget: it is dropped, the last finished cut
# stays in use, MINCUT_BUDGET_EXCEEDED is witnessed and the engine enters
# degraded mode. The next run that finishes within budget leaves it.
#
# Degraded mode (DC-6), entered on budget overrun (reason 2) or on any
# exception inside the engine (reason 1): boost() returns 0, cut_value()
# returns -1 (static tier thresholds), allowed() is False (no split/merge/
# migration). Entry and exit are witnessed (DEGRADED_ENTER/EXIT) and the
# log's degraded flag is raised while the engine holds it. epoch() never
# raises into the kernel loop. An engine that is absent is the kernel's own
# degraded case (the scheduler runs with boost 0).
from ..compat import const, ticks_us, ticks_ms, ticks_diff, IS_MICROPYTHON
from .. import kinds
from .graph import CommGraph
from .mincut import MinCut
from . import score

REASON_FAILED = const(1)
REASON_BUDGET = const(2)

# Default per-epoch mincut budget: 50 us of work on the Appliance (CPython).
# MicroPython executes the same step about 20x slower on the unix port and
# slower still on boards, so Seed boards scale it (profile may override).
BUDGET_US_APPLIANCE = const(50)
BUDGET_US_SEED = const(1000)


# options of the runtime's placement, not of the engine (signal.make)
_PLACE_KEYS = ("slots", "place_every", "gain_pct", "place_max")


def opts_of(profile):
    """Coherence options of a profile: `"coherence": {...}` (a dict) and/or
    `"scheduler": {"coherence": {...}}` (where a profile keeps `"coherence":
    true`), the latter winning."""
    opts = {}
    c = profile.get("coherence")
    if isinstance(c, dict):
        opts.update(c)
    c = profile.get("scheduler", {}).get("coherence")
    if isinstance(c, dict):
        opts.update(c)
    opts.pop("enabled", None)
    return opts


class CoherenceEngine:
    def __init__(self, log, max_nodes=8, budget_us=None, max_slices=128,
                 boost_max=1000, merge_bp=6000, pressure_bp=5000,
                 clock_us=ticks_us, use_viper=True, witness_degraded=True,
                 wake_floor_bp=7000):
        self.log = log
        self.graph = CommGraph(max_nodes)
        self.cut = MinCut(max_nodes, clock=clock_us, use_viper=use_viper)
        if budget_us is None:
            budget_us = BUDGET_US_SEED if IS_MICROPYTHON else BUDGET_US_APPLIANCE
        self.budget_us = budget_us
        self.max_slices = max_slices
        self.boost_max = boost_max        # boost at 10000 bp of coupling
        self.merge_bp = merge_bp          # DC-11 precondition 2 threshold
        self.pressure_hi = pressure_bp    # PRESSURE witness threshold
        self.wake_floor = wake_floor_bp   # wake_bp of a pair never seen
        self.side = bytearray(max_nodes)  # last finished cut, by slot
        self.press = [0] * max_nodes      # pressure bp by slot
        self._hot = bytearray(max_nodes)  # above pressure_hi (hysteresis)
        self.cut_value = -1
        self.degraded = False
        self.reason = 0
        self._deg_since = 0
        self._set_log_flag = False
        self.epochs = 0
        self.runs = 0
        self.overruns = 0
        self.failures = 0
        self.last_error = None
        self.region_traffic = None  # splitmerge.RegionTraffic when installed
        self.placer = None    # placement.Placer when the runtime places
        self.msgs = 0         # messages seen while placing
        self.cross = 0        # of them between partitions on different slots
        # False when the scheduler owns DEGRADED_ENTER/EXIT (signal.py):
        # it witnesses the transitions it sees through refresh()
        self.witness_degraded = witness_degraded
        self._wait = 0
        self._backoff = 0

    @classmethod
    def from_profile(cls, log, profile, **kw):
        """Engine sized and budgeted by a board profile: limits.graph_nodes;
        `coherence` may be a dict with budget_us / max_slices / merge_bp."""
        opts = opts_of(profile)
        for key in _PLACE_KEYS:       # the runtime's placement (signal.py)
            opts.pop(key, None)
        opts.update(kw)
        return cls(log, max_nodes=profile["limits"].get("graph_nodes", 8),
                   **opts)

    # ---- inputs -----------------------------------------------------------
    def on_message(self, src, dst, nbytes=0):
        """IPC observer slot (kernel.ipc_observer). O(1); never raises."""
        try:
            self.graph.on_message(src, dst, nbytes)
            pl = self.placer
            if pl is not None:   # cross-slot traffic under the placement
                self.msgs += 1
                if pl.slot_of(src) != pl.slot_of(dst):
                    self.cross += 1
        except Exception as e:  # engine fault must not reach the IPC path
            self._fail(e)

    def forget(self, pid):
        """A partition was terminated: drop its node."""
        s = self.graph.slot(pid)
        if s >= 0:
            self.press[s] = 0
            self._hot[s] = 0
            self.side[s] = 0
        self.graph.remove(pid)
        pl = self.placer
        if pl is not None:
            pl.where.pop(pid, None)

    # ---- the epoch hook -----------------------------------------------------
    def epoch(self):
        """Once per scheduler epoch, outside the switch path. Bounded work;
        never raises. Returns True when a new cut was published."""
        try:
            return self._epoch()
        except Exception as e:
            self._fail(e)
            return False

    def _epoch(self):
        self.epochs += 1
        g = self.graph
        g.epoch()
        mc = self.cut
        if not mc.running():
            if self._wait > 0:       # back-off after an overrun
                self._wait -= 1
                return False
            if mc.version == g.version and not self.degraded:
                return False
            mc.start(g)
        if mc.run(self.budget_us):
            self.runs += 1
            self._backoff = 0
            self._publish()
            if self.degraded:
                self._exit_degraded()
            return True
        if mc.slices >= self.max_slices:
            self.overruns += 1
            self.log.emit(kinds.MINCUT_BUDGET_EXCEEDED, 0, 0, self.budget_us,
                          mc.busy_us, mc._m, mc.slices)
            mc.abandon()
            # retry after a growing pause (1, 2, 4 .. 64 epochs) so a graph
            # that never fits the budget does not flood the log
            self._backoff = min(64, self._backoff * 2) if self._backoff else 1
            self._wait = self._backoff
            self._enter_degraded(REASON_BUDGET, 20)
        return False

    def _publish(self):
        g = self.graph
        mc = self.cut
        changed = mc.value != self.cut_value
        side = self.side
        for s in range(g.n):
            if side[s] != mc.side[s]:
                changed = True
                side[s] = mc.side[s]
        self.cut_value = mc.value
        press = self.press
        score.pressure_into(g, side, press)
        if changed:
            self.log.emit(kinds.MINCUT_RUN, 0, 0, mc.nodes, g.edge_count(),
                          mc.value, mc.busy_us)
        hot = self._hot
        hi = self.pressure_hi
        for s in range(g.n):
            pid = g.ids[s]
            if not pid:
                continue
            p = press[s]
            if not hot[s] and p >= hi:
                hot[s] = 1
                self.log.emit(kinds.PRESSURE, 0, pid, p, self.boost(pid),
                              self.epochs, 1)
            elif hot[s] and p < (hi >> 1):
                hot[s] = 0
                self.log.emit(kinds.PRESSURE, 0, pid, p, self.boost(pid),
                              self.epochs, 0)

    # ---- degraded mode ------------------------------------------------------
    def _fail(self, e):
        self.failures += 1
        self.last_error = e
        try:
            self.cut.abandon()
        except Exception:
            pass
        self._enter_degraded(REASON_FAILED, 18)

    def fail(self, why=None):
        """Mark the engine failed (e.g. the kernel caught it misbehaving)."""
        self._fail(why)

    def _enter_degraded(self, reason, code):
        if self.degraded:
            return
        self.degraded = True
        self.reason = reason
        self._deg_since = ticks_ms()
        if not self.witness_degraded:
            return
        if not self.log.degraded:
            self.log.degraded = True
            self._set_log_flag = True
        self.log.emit(kinds.DEGRADED_ENTER, 0, 0, reason, code, self.epochs, 0)

    def _exit_degraded(self):
        if not self.degraded:
            return
        if not self.witness_degraded:
            self.degraded = False
            self.reason = 0
            return
        if self._set_log_flag:
            self.log.degraded = False
            self._set_log_flag = False
        self.degraded = False
        self.log.emit(kinds.DEGRADED_EXIT, 0, 0, self.reason,
                      ticks_diff(ticks_ms(), self._deg_since), self.epochs, 0)
        self.reason = 0

    def allowed(self):
        """Split, merge and migration may run (DC-6: not while degraded)."""
        return not self.degraded and self.cut_value >= 0

    # ---- outputs ------------------------------------------------------------
    def boost(self, pid, last=0):
        """Cut-pressure boost for the scheduler, 0..boost_max (0 while
        degraded). With `last` (the partition that just ran or sent to pid):
        the coupling of the pair, so partitions that talk run back to back.
        Without: pid's own cut pressure, so cross-boundary traffic waiting
        on it drains quickly."""
        if self.degraded:
            return 0
        if last:
            bp = score.pair_bp(self.graph, pid, last)
        else:
            s = self.graph.slot(pid)
            bp = self.press[s] if s >= 0 else 0
        return (bp * self.boost_max) // 10000

    def wake_bp(self, src, dst):
        """Wake-time signal (the scheduler's signal.wake): a message from
        src was queued for dst. From the pair's edge weight and its cut
        membership:

            pair  = 2 w(src,dst) / (tot src + tot dst)       (pair_bp)
            pair /= 2 when src and dst are in different groups (different
                    slots of the runtime's placement when there is one, else
                    different sides of the last finished mincut)
            wake  = floor + (10000 - floor) * pair / 10000

        so pairs that talk more get more, and a pair the placement keeps
        together more than one it had to separate. A pair never seen gets
        the floor (every wake-up is still worth running soon: the tail of
        round-trip latency is made of rare pairs). 0 while degraded.
        Called on the send path: no allocation (dict.get with an int
        default, small-int maths only)."""
        if self.degraded:
            return 0
        g = self.graph
        f = self.wake_floor
        if f >= 10000:
            return 10000
        i = g._slot.get(src, -1)
        j = g._slot.get(dst, -1)
        if i < 0 or j < 0 or i == j:
            return f
        w = g.w[i * g.n + j]
        t = g.tot[i] + g.tot[j]
        while t > 50000:      # keep 2 * w * 10000 a small int on 32-bit ports
            t >>= 1
            w >>= 1
        if t <= 0:
            return f
        pair = (2 * w * 10000) // t
        if pair > 10000:
            pair = 10000
        pl = self.placer
        if pl is not None:
            wh = pl.where
            if wh.get(src, -1) != wh.get(dst, -2):
                pair >>= 1
        elif self.cut_value >= 0 and self.side[i] != self.side[j]:
            pair >>= 1
        return f + ((10000 - f) * pair) // 10000

    def sched_bp(self, pid):
        """Per-epoch boost for the scheduler's signal contract (bp, 0 while
        degraded): pid's share of the traffic, raised by its cut pressure,
        (coupling * (1 + pressure)) / 2. Partitions that talk a lot rank
        together right after a new epoch, and the more of their traffic
        crosses the cut the sooner they drain it."""
        if self.degraded:
            return 0
        s = self.graph.slot(pid)
        if s < 0:
            return 0
        c = score.coupling_bp(self.graph, pid)
        return (c * (10000 + self.press[s])) // 20000

    def pressure(self, pid):
        s = self.graph.slot(pid)
        return self.press[s] if s >= 0 else 0

    def cut_value_of(self, pid):
        """Residency signal for the tier policy: pid's share of traffic in
        bp, or -1 when degraded (use static tier thresholds)."""
        if self.degraded:
            return -1
        return score.coupling_bp(self.graph, pid)

    def pair_score(self, a, b):
        return score.pair_bp(self.graph, a, b)

    def side_of(self, pid):
        """0/1 side of pid in the last finished cut, -1 if unknown."""
        s = self.graph.slot(pid)
        if s < 0 or self.cut_value < 0:
            return -1
        return self.side[s]
