# Plugs the coherence engine into L1 through the policy slots L1 defines:
#   scheduler priority signal   available / refresh(now) / boost(pid)
#   kernel.ipc_observer         on_message(src, dst, nbytes)
#   kernel.mem.policy           tier policy: scored while the engine is
#                               healthy, the static thresholds while degraded
#   kernel.mem.access_observer  per-region access counts for DC-9 (split)
# runtime.make_signal() imports this module lazily ("scheduler": {"signal":
# "coherence"} or "coherence": true in the board profile); if the import or
# make() fails, the kernel runs with the NullSignal (DC-1).
from .engine import CoherenceEngine


class CoherenceSignal:
    available = True

    def __init__(self, engine):
        self.engine = engine

    def refresh(self, now):
        """Once per scheduler epoch: one budgeted engine epoch. False while
        the engine is degraded (the scheduler then uses boost 0 and witnesses
        DEGRADED_ENTER/EXIT)."""
        e = self.engine
        e.epoch()
        pl = e.placer
        if pl is not None:   # planning work, outside the switch path
            try:
                pl.epoch(not e.degraded)   # plans its own cuts
            except Exception as x:
                e.fail(x)
        return not e.degraded

    def boost(self, pid):
        return self.engine.sched_bp(pid)

    def wake(self, src, dst):
        return self.engine.wake_bp(src, dst)


class CoherenceTierPolicy:
    """Static thresholds while the engine is degraded (DC-6), the scored
    policy (recency + cut value) otherwise."""

    def __init__(self, engine, static, scored):
        self.engine = engine
        self.static = static
        self.scored = scored

    def _p(self):
        return self.static if self.engine.degraded else self.scored

    def score(self, region, now):
        return self._p().score(region, now)

    def decide(self, region, now):
        return self._p().decide(region, now)


def make(kernel, profile):
    e = CoherenceEngine.from_profile(kernel.log, profile,
                                     witness_degraded=False)
    kernel.ipc_observer = e
    kernel.coherence = e
    from .engine import opts_of
    o = opts_of(profile)
    k = o.get("slots", 0)
    if k >= 2:   # the runtime places partitions on k slots (placement.py)
        from .placement import Placer
        e.placer = Placer(e.graph, k, every=o.get("place_every", 4),
                          gain_pct=o.get("gain_pct", 10), log=kernel.log,
                          max_nodes=o.get("place_max", 32))
    mem = kernel.mem
    if mem is not None and hasattr(mem, "access_observer"):
        from .splitmerge import RegionTraffic
        e.region_traffic = RegionTraffic()
        mem.access_observer = e.region_traffic   # DC-9 access statistics
    if mem is not None and hasattr(mem, "policy"):
        from .. import tiers

        def cut_value(pid):
            v = e.cut_value_of(pid)
            return None if v < 0 else v // 100

        static = mem.policy if isinstance(mem.policy, tiers.StaticTierPolicy) \
            else tiers.StaticTierPolicy()
        mem.policy = CoherenceTierPolicy(e, static,
                                         tiers.ScoredTierPolicy(cut_value))
    return CoherenceSignal(e)
