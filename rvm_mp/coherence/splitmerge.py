# Split and merge of partitions under ADR-132's rules.
#
# SPLIT(pid -> pid, new)  objects are given a side by a plan:
#   side 0 stays in pid, side 1 goes to the new partition, SHARED is used by
#   both. DC-8: a capability follows the object it names -- side 0: kept,
#   side 1: moved (kernel cap_move, tree position kept), SHARED: attenuated
#   to READ in pid and a READ-only child moved to the new partition; never a
#   blind copy. DC-9: each region goes to the side with the higher
#
#     score(side) = 0.5 local_access_fraction + 0.3 remote_cost_avoided
#                 + 0.2 size_room                   (all basis points)
#
#   local_access_fraction  accesses from that side / all accesses
#   remote_cost_avoided    bytes that side moves / all bytes moved (what
#                          placing it there saves in remote traffic)
#   size_room              10000 - share of the split's memory the side would
#                          hold with this region (the "size penalty" term:
#                          large regions do not all pile onto one side)
#   ties stay with the source (no oscillation on 50/50 hotspots); a
#   region's capabilities then follow the region.
#
# MERGE(a <- b) only when every DC-11 precondition holds, checked in order;
# the first that fails is witnessed (MERGE_REFUSED, c = its number 1..7):
#   1 a CommEdge exists (graph weight or kernel edge counter > 0)
#   2 pair coherence score > merge threshold (engine.merge_bp)
#   3 no conflicting device leases: not both partitions holding leases (an
#     exclusive lease would silently widen to the other's agents)
#   4 no overlapping mutable memory: no region of one shared into the other
#   5 capability intersection valid: the merged table fits the per-partition
#     size, and neither holds more than READ on the other partition itself
#   6 both partitions Running or Suspended
#   7 proof P2 of merge authority (caller 0 = kernel, else a capability on
#     (OT_GRAPH, a) with WRITE through the proof gate, op OP_MERGE), plus
#     the P3 proofs the kernel requires for OP_MERGE (k.p3_ops)
# Then b's capabilities and regions move to a, and b is terminated.
# Both need the engine healthy (DC-6): refused with EDEGRADED otherwise.
#
# The kernel API used is docs/kernel-api.md's (cap_list, cap_move,
# cap_attenuate, cap_derive, part_*, gate.check, leases_of, edge) and the
# memory manager's regions_of / reassign / regions.
import struct

from ..compat import const
from .. import errors
from .. import kinds

SIDE_A = const(0)
SIDE_B = const(1)
SHARED = const(2)

ALPHA = const(5000)
BETA = const(3000)
GAMMA = const(2000)
_BP = const(10000)

R_READ = const(1)
OT_PARTITION = const(1)
OT_CHANNEL = const(2)
OT_REGION = const(4)
OT_GRAPH = const(6)
OP_MERGE = const(17)
OP_SPLIT = const(18)
ST_RUNNING = const(1)
ST_SUSPENDED = const(2)


def _frac(x, total):
    return (x * _BP) // total if total > 0 else 0


def region_score(acc_side, acc_total, bytes_side, bytes_total,
                 mem_side, mem_total, size):
    """DC-9 score of putting a region of `size` bytes on one side (bp)."""
    local = _frac(acc_side, acc_total)
    avoided = _frac(bytes_side, bytes_total)
    room = _BP - _frac(mem_side + size, mem_total + size)
    return (ALPHA * local + BETA * avoided + GAMMA * room) // _BP


def region_side(stat, size, mem_a, mem_b):
    """Side for one region. stat = (acc_a, bytes_a, acc_b, bytes_b).
    Returns (side, score_a, score_b)."""
    acc_a, by_a, acc_b, by_b = stat
    acc = acc_a + acc_b
    by = by_a + by_b
    mem = mem_a + mem_b
    sa = region_score(acc_a, acc, by_a, by, mem_a, mem, size)
    sb = region_score(acc_b, acc, by_b, by, mem_b, mem, size)
    return (SIDE_B if sb > sa else SIDE_A), sa, sb


class RegionAccess:
    """Per-region access counters by accessing side, fed by whoever sees
    region traffic (the memory manager's access path or the agent runtime):
    on_access(rid, side, nbytes)."""

    def __init__(self):
        self.stats = {}

    def on_access(self, rid, side, nbytes):
        s = self.stats.get(rid)
        if s is None:
            s = [0, 0, 0, 0]
            self.stats[rid] = s
        i = 0 if side == SIDE_A else 2
        s[i] += 1
        s[i + 1] += nbytes

    def get(self, rid):
        s = self.stats.get(rid)
        return tuple(s) if s else (0, 0, 0, 0)


class RegionTraffic:
    """Per-region, per-partition access counters, fed by the memory
    manager's access hook (mem.access_observer.on_region_access). split()
    turns them into side counts: accesses by partitions in `peers_b` count
    for the new side, every other partition's (the source's own included)
    for the side that stays. Bounded: at most `max_regions` regions tracked
    (the least-used one is evicted for a new one)."""

    def __init__(self, max_regions=64):
        self.max_regions = max_regions
        self.stats = {}
        self.dropped = 0

    def on_region_access(self, rid, pid, nbytes, is_write):
        d = self.stats.get(rid)
        if d is None:
            if len(self.stats) >= self.max_regions:
                # full: evict the least-used region (freed regions and
                # regions of terminated partitions age out this way)
                low = -1
                lv = 0
                for r in self.stats:
                    v = 0
                    for c in self.stats[r].values():
                        v += c[0]
                    if low < 0 or v < lv:
                        low = r
                        lv = v
                del self.stats[low]
                self.dropped += 1
            d = {}
            self.stats[rid] = d
        c = d.get(pid)
        if c is None:
            c = [0, 0]
            d[pid] = c
        c[0] += 1
        c[1] += nbytes

    def side_stats(self, rid, peers_b):
        a = [0, 0, 0, 0]
        d = self.stats.get(rid)
        if d:
            for pid in d:
                c = d[pid]
                i = 2 if pid in peers_b else 0
                a[i] += c[0]
                a[i + 1] += c[1]
        return tuple(a)

    def forget(self, rid):
        self.stats.pop(rid, None)


def assign_regions(regions, access):
    """regions: [(rid, size)] in the order to place them (largest first is
    best). Returns [(rid, side, score_of_side)]. Memory already placed on a
    side counts in the next region's size term."""
    mem = [0, 0]
    out = []
    for rid, size in regions:
        side, sa, sb = region_side(access.get(rid), size, mem[0], mem[1])
        mem[side] += size
        out.append((rid, side, sb if side else sa))
    return out


def cap_actions(caps, side_of):
    """DC-8 over cap_list tuples (handle, otype, oid, rights, depth).
    side_of(otype, oid) -> SIDE_A / SIDE_B / SHARED. Returns three lists of
    handles: keep, move, share."""
    keep = []
    move = []
    share = []
    for c in caps:
        s = side_of(c[1], c[2])
        if s == SIDE_B:
            move.append(c[0])
        elif s == SHARED:
            share.append(c[0])
        else:
            keep.append(c[0])
    return keep, move, share


class SplitPlan:
    """Which objects go where. `side_b`/`shared`: sets of (otype, oid);
    anything else stays on side A. Regions are placed by DC-9 from `access`
    (RegionAccess, side counts given by the caller) or, when it is None,
    from the engine's RegionTraffic with `peers_b` as the partitions whose
    accesses count for the new side (default: the partitions on the other
    side of the engine's last cut from the source). Caps follow regions."""

    def __init__(self, side_b=(), shared=(), access=None, peers_b=None):
        self.side_b = set(side_b)
        self.shared = set(shared)
        self.access = access
        self.peers_b = peers_b
        self.region_side = {}

    def side_of(self, otype, oid):
        if otype == OT_REGION and oid in self.region_side:
            return self.region_side[oid]
        key = (otype, oid)
        if key in self.shared:
            return SHARED
        if key in self.side_b:
            return SIDE_B
        return SIDE_A


class _TrafficView:
    def __init__(self, traffic, peers_b):
        self.traffic = traffic
        self.peers_b = peers_b

    def get(self, rid):
        if self.traffic is None:
            return (0, 0, 0, 0)
        return self.traffic.side_stats(rid, self.peers_b)


def _traffic_view(engine, pid, peers_b):
    if peers_b is None:
        peers_b = set()
        me = engine.side_of(pid)
        if me >= 0:
            for q in engine.graph.nodes():
                if q != pid and engine.side_of(q) == 1 - me:
                    peers_b.add(q)
    return _TrafficView(getattr(engine, "region_traffic", None), set(peers_b))


def _refuse(log, kind, caller, target, err, tier, a=0, c=0):
    log.deny(kind, caller, target, err.code, tier, a, c)
    return err


def split(k, engine, pid, plan, caller=0, handle=0, name="", proofs=None):
    """Split `pid`: returns the new partition id or an RvmError."""
    log = k.log
    if engine is None or not engine.allowed():
        return _refuse(log, kinds.SPLIT, caller, pid, errors.EDEGRADED, 0)
    st = k.part_state(pid)
    if errors.is_err(st):
        return _refuse(log, kinds.SPLIT, caller, pid, st, 0)
    if st != ST_RUNNING:  # read-only children are derived in pid's table
        return _refuse(log, kinds.SPLIT, caller, pid, errors.ESTATE, 2, 0, st)
    if caller != 0:
        ok = k.gate.check(caller, handle, OT_GRAPH, pid, 2, OP_SPLIT)
        if errors.is_err(ok):
            return ok  # the gate witnessed the refusal
        ok = k.prove(caller, OP_SPLIT, pid, proofs or (),
                     struct.pack("<H", pid) + name.encode())
        if errors.is_err(ok):
            return ok
    caps = k.cap_list(pid)
    mem = k.mem
    regions = []
    if mem is not None:
        for rid in mem.regions_of(pid):
            regions.append((rid, mem.regions[rid].size))
        regions.sort(key=lambda x: -x[1])
    access = plan.access
    if access is None:
        access = _traffic_view(engine, pid, plan.peers_b)
    placed = assign_regions(regions, access)
    for rid, side, sc in placed:
        plan.region_side[rid] = side
    keep, move, share = cap_actions(caps, plan.side_of)
    per = getattr(k.caps, "per", 0)
    if per and len(move) + len(share) > per:
        return _refuse(log, kinds.SPLIT, caller, pid, errors.EQUOTA, 2,
                       0, len(move) + len(share))
    new = k.part_create(0, name=name or "split")
    if errors.is_err(new):
        return new
    moved = 0
    owned = k.ipc.owned_by(pid)
    for c in caps:
        if c[0] not in move:
            continue
        r = k.cap_move(pid, c[0], new)
        if not errors.is_err(r):
            moved += 1
            # a side-B channel's life follows its new holder
            if c[1] == OT_CHANNEL and c[2] in owned:
                k.chan_set_owner(c[2], new)
    att = 0
    for h in share:
        # a READ child for the new side (derived first: derive only
        # attenuates, so it needs the source's READ), then the source and
        # its whole subtree are cut down to READ; a shared capability
        # without READ ends with no rights on either side
        ch = k.cap_derive(pid, h, R_READ)
        if errors.is_err(k.cap_attenuate(pid, h, R_READ)):
            continue
        att += 1
        if not errors.is_err(ch):
            k.cap_move(pid, ch, new)
    nreg = 0
    for rid, side, sc in placed:
        if side == SIDE_B:
            if not errors.is_err(mem.reassign(rid, new, 0)):
                nreg += 1
                log.emit(kinds.REGION_ASSIGN, 0, new, rid, sc, pid, 0)
    log.emit(kinds.CAP_ATTENUATE_SPLIT, 0, new, moved, att, len(keep), pid)
    if st == ST_RUNNING:
        k.part_start(0, new)
    engine.graph.add(new)
    log.emit(kinds.SPLIT, 0, pid, new, nreg, moved, engine.cut_value)
    return new


def merge_check(k, engine, a, b, caller=0, handle=0, proofs=None):
    """Returns 0 when every DC-11 precondition holds, else (number, error)."""
    g = engine.graph
    w = g.weight(a, b)
    if not w and hasattr(k, "edge"):
        e = k.edge(a, b)
        w = e[0] if not errors.is_err(e) else 0
    if not w:
        return 1, errors.ENOENT
    sc = engine.pair_score(a, b)
    if sc <= engine.merge_bp:
        return 2, errors.EINVAL
    if k.leases_of(a) and k.leases_of(b):
        return 3, errors.EBUSY
    mem = k.mem
    if mem is not None:
        for x, y in ((a, b), (b, a)):
            for rid in mem.regions_of(x):
                if y in mem.regions[rid].readers:
                    return 4, errors.EBUSY
    ca = k.cap_list(a)
    cb = k.cap_list(b)
    per = getattr(k.caps, "per", 0)
    if per and len(ca) + len(cb) > per:
        return 5, errors.EQUOTA
    for caps, other in ((ca, b), (cb, a)):
        for c in caps:
            if c[1] == OT_PARTITION and c[2] == other and (c[3] & ~R_READ):
                return 5, errors.ERIGHTS
    for p in (a, b):
        st = k.part_state(p)
        if errors.is_err(st) or (st != ST_RUNNING and st != ST_SUSPENDED):
            return 6, errors.ESTATE
    if caller != 0:
        ok = k.gate.check(caller, handle, OT_GRAPH, a, 2, OP_MERGE)
        if errors.is_err(ok):
            return 7, ok
        if k.p3_ops & (1 << OP_MERGE):
            ok = k.prove(caller, OP_MERGE, a, proofs or (),
                         struct.pack("<HH", a, b))
            if errors.is_err(ok):
                return 7, ok
    return 0


def merge(k, engine, a, b, caller=0, handle=0, proofs=None):
    """Absorb b into a. Returns a, or an RvmError (witnessed)."""
    log = k.log
    if engine is None or not engine.allowed():
        return _refuse(log, kinds.MERGE_REFUSED, caller, a, errors.EDEGRADED,
                       0, b, 0)
    r = merge_check(k, engine, a, b, caller, handle, proofs)
    if r != 0:
        num, err = r
        tier = 2 if num >= 3 else 0
        return _refuse(log, kinds.MERGE_REFUSED, caller, a, err, tier, b, num)
    score = engine.pair_score(a, b)
    for cid in k.ipc.owned_by(b):   # b's channels survive its termination
        k.chan_set_owner(cid, a)
    moved = 0
    for c in k.cap_list(b):
        if not errors.is_err(k.cap_move(b, c[0], a)):
            moved += 1
    nreg = 0
    mem = k.mem
    if mem is not None:
        for rid in mem.regions_of(b):
            if not errors.is_err(mem.reassign(rid, a, 0)):
                nreg += 1
    k.part_terminate(0, b)
    engine.forget(b)
    log.emit(kinds.MERGE, 0, a, b, nreg, moved, score)
    return a
