# Coherence-aware placement: partitions onto k slots (cores / tiles / run
# queues) of at most `cap` partitions each, minimising the traffic that
# crosses slots. Used by the engine's placement decisions and the bench.
#
#   1. bisect: while a group is larger than cap, split it at its Stoer-Wagner
#      minimum cut (the cheapest boundary in the group's own traffic);
#   2. pack: groups largest first, each into the slot with room that it
#      talks to most (ties: emptiest slot);
#   3. refine: greedy single moves and pair swaps that lower the crossing
#      weight, respecting cap, until none helps (bounded passes).
#
# All integer maths; the result is a bytearray by graph slot (255 = not a
# node). This is planning work (O(m^3) for the cuts): the engine runs it
# outside the switch path, on a graph snapshot.
from .graph import CommGraph
from .mincut import MinCut

NONE = 255


def _sub(g, members):
    sg = CommGraph(max(2, len(members)))
    for p in members:
        sg.add(p)
    for x in range(len(members)):
        a = members[x]
        for y in range(x + 1, len(members)):
            v = g.weight(a, members[y])
            if v:
                sg.set_weight(a, members[y], v)
    return sg


def crossing(g, where):
    """Weight crossing slots under `where` (bytearray by graph slot)."""
    n = g.n
    t = 0
    for i in range(n):
        if where[i] == NONE:
            continue
        for j in range(i + 1, n):
            if where[j] != NONE and where[i] != where[j]:
                t += g.w[i * n + j]
    return t


def place(g, k, cap=0, passes=4):
    """Placement of g's nodes on k slots. Returns bytearray by graph slot."""
    nodes = g.nodes()
    m = len(nodes)
    if cap <= 0:
        cap = (m + k - 1) // k if m else 1
    if cap * k < m:
        cap = (m + k - 1) // k
    groups = [nodes]
    while True:
        big = -1
        for i in range(len(groups)):
            if len(groups[i]) > cap and (big < 0 or len(groups[i]) > len(groups[big])):
                big = i
        if big < 0:
            break
        grp = groups.pop(big)
        sg = _sub(g, grp)
        mc = MinCut(sg.n)
        mc.compute(sg)
        a = [p for p in grp if not mc.side[sg.slot(p)]]
        b = [p for p in grp if mc.side[sg.slot(p)]]
        if not a or not b:  # defensive: halve
            a, b = grp[:len(grp) // 2], grp[len(grp) // 2:]
        groups.append(a)
        groups.append(b)
    where = bytearray(b"\xff" * g.n)
    size = [0] * k
    # deterministic on both runtimes (MicroPython's sort is not stable)
    groups.sort(key=lambda x: (-len(x), min(x)))
    for grp in groups:
        best = -1
        bw = -1
        for s in range(k):
            if size[s] + len(grp) > cap:
                continue
            t = 0
            for p in grp:
                i = g.slot(p)
                for j in range(g.n):
                    if where[j] == s:
                        t += g.w[i * g.n + j]
            if best < 0 or t > bw or (t == bw and size[s] < size[best]):
                bw = t
                best = s
        if best < 0:  # does not fit whole: spread over the emptiest slots
            for p in grp:
                s = size.index(min(size))
                where[g.slot(p)] = s
                size[s] += 1
            continue
        for p in grp:
            where[g.slot(p)] = best
        size[best] += len(grp)
    refine(g, where, k, cap, passes)
    return where


def refine(g, where, k, cap, passes=4):
    """Greedy moves and swaps that lower the crossing weight (in place).
    conn[i][s] = weight from node i to the nodes in slot s."""
    n = g.n
    w = g.w
    occ = [i for i in range(n) if where[i] != NONE]
    size = [0] * k
    conn = {}
    for i in occ:
        size[where[i]] += 1
        c = [0] * k
        row = i * n
        for j in occ:
            if j != i:
                c[where[j]] += w[row + j]
        conn[i] = c

    def move(i, a, b):
        where[i] = b
        row = i * n
        for j in occ:
            if j != i:
                v = w[row + j]
                if v:
                    cj = conn[j]
                    cj[a] -= v
                    cj[b] += v

    for _ in range(passes):
        improved = False
        for i in occ:
            si = where[i]
            ci = conn[i]
            for s in range(k):
                if s == si:
                    continue
                if size[s] < cap and ci[s] > ci[si]:
                    move(i, si, s)
                    size[si] -= 1
                    size[s] += 1
                    improved = True
                    break
                done = False
                for j in occ:
                    if where[j] != s:
                        continue
                    wij = w[i * n + j]
                    cj = conn[j]
                    if (ci[s] - wij - ci[si]) + (cj[si] - wij - cj[s]) > 0:
                        move(i, si, s)
                        move(j, s, si)
                        improved = done = True
                        break
                if done:
                    break
        if not improved:
            break
    return where


class Placer:
    """Online placement policy: which slot each partition runs on.

    Every `every` epochs (while the engine allows it) a plan is computed
    from the EMA graph and adopted only if it cuts the crossing weight by at
    least `gain_pct` percent (hysteresis: no churn for small gains). When
    the previous plan did not hold (the traffic it was planned for moved on:
    the crossing weight under it came back above half of what it removed)
    the interval doubles, up to 8x, so an adversarial, fast-shifting
    workload does not make partitions migrate every few epochs. Each
    adopted plan is witnessed (PLACEMENT). New partitions get the static
    affinity `initial(pid)` (the slot the kernel gives them without the
    engine; default round robin by arrival) until a plan moves them; a
    change in the number of live nodes brings the next plan forward to the
    next epoch. A plan is the best of the mincut bisection (place()) and
    the contiguous-block and current placements, each refined."""

    def __init__(self, graph, k, cap=0, every=4, gain_pct=10, log=None,
                 initial=None, max_nodes=32):
        self.g = graph
        # planning is O(m^3): above max_nodes live nodes it is not tried
        # (counted in `skipped`), so a large graph never stalls the epoch
        self.max_nodes = max_nodes
        self.skipped = 0
        self._seen = graph.count   # graph nodes at the last epoch
        self.initial = initial
        self.k = k
        self.cap = cap
        self.every = every
        self.gain_pct = gain_pct
        self.log = log
        self.where = {}
        self._n = 0
        self._left = every
        self._scale = 1
        self._before = 0      # crossing under the old placement at adoption
        self._after = 0       # crossing the adopted plan promised
        self.replans = 0
        self.moves = 0
        self.epochs = 0

    def slot_of(self, pid):
        s = self.where.get(pid)
        if s is None:
            if self.initial is not None:
                s = self.initial(pid) % self.k
            else:
                s = self._n % self.k
            self._n += 1
            self.where[pid] = s
        return s

    def _current(self):
        g = self.g
        cur = bytearray(b"\xff" * g.n)
        for p in g.nodes():
            cur[g.slot(p)] = self.slot_of(p)
        return cur

    def _blocks(self, cap):
        """Contiguous blocks of the live ids (in id order), cap per slot."""
        g = self.g
        out = bytearray(b"\xff" * g.n)
        ids = g.nodes()
        ids.sort()
        for i in range(len(ids)):
            out[g.slot(ids[i])] = i // cap
        return out

    def epoch(self, allowed=True):
        """Call once per engine epoch. Returns the partitions moved."""
        self.epochs += 1
        self._left -= 1
        g = self.g
        fresh = g.count != self._seen
        if fresh:   # partitions came or went: plan now
            self._seen = g.count
            self._left = 0
        if self._left > 0 or not allowed:
            return 0
        if self.max_nodes and g.count > self.max_nodes:
            self.skipped += 1
            self._left = self.every
            return 0
        cur = self._current()
        now = crossing(g, cur)
        if self._before and now * 2 > self._before + self._after:
            self._scale = min(8, self._scale * 2)   # last plan did not hold
        elif self._before:
            self._scale = 1
        self._before = 0
        self._left = self.every * self._scale
        cap = self.cap
        if cap <= 0:
            cap = (g.count + self.k - 1) // self.k
        plan = place(g, self.k, cap)
        new = crossing(g, plan)
        # the static placements (contiguous id blocks, and the current one)
        # refined are candidates too: where the bisection misses what
        # contiguous blocks already get right, the plan is never worse
        for c in (self._blocks(cap), cur):
            c = bytearray(c)
            refine(g, c, self.k, cap)
            x = crossing(g, c)
            if x < new:
                plan = c
                new = x
        if new * 100 >= now * (100 - self.gain_pct):
            return 0
        moved = 0
        for p in g.nodes():
            s = plan[g.slot(p)]
            if self.where.get(p) != s:
                self.where[p] = s
                moved += 1
        self.replans += 1
        self.moves += moved
        # a plan made because partitions came or went saw little of their
        # traffic: it is not judged (no back-off if it does not hold)
        self._before = 0 if fresh else now
        self._after = new
        if self.log is not None:
            from .. import kinds
            self.log.emit(kinds.PLACEMENT, 0, 0, moved, now, new, self.epochs)
        return moved
