# Communication graph: partitions are nodes, IPC traffic feeds edge weights.
#
#   on_message(src, dst, nbytes)   acc[i][j] += cost     (O(1), no float)
#   epoch()                        w += (acc<<FRAC - w) >> K ; acc = 0
#
# Weights are integer EMAs of per-epoch traffic in "message units" scaled by
# 2**FRAC (FRAC=4); with no traffic an edge decays by a quarter each epoch
# (K=2) and reaches exactly 0 (a right shift of a negative number floors, so
# the decrement is never 0 while w > 0). One message costs 1 unit plus one per
# 32 payload bytes. Every value is clamped to W_MAX so that a row sum of 32
# nodes stays below 2**30 (a MicroPython small int, a viper int on 32-bit
# boards). The graph is undirected: both directions feed the same edge.
#
# Storage is two n*n int32 arrays (n = profile limits.graph_nodes, 8 on
# seed-64k: 512 bytes) indexed by slot; `ids[slot]` is the partition id in it
# (0 = free). A full graph refuses new nodes (the traffic is counted in
# `dropped`), it never grows. `live` holds the keys (i*n + j, i < j) of the
# edges with a weight or pending traffic, so the epoch fold costs O(edges),
# not O(n^2): communication graphs of agents are sparse.
import array

from ..compat import const

FRAC = const(4)
_K = const(2)
W_MAX = const(1 << 24)
_ACC_MAX = const(1 << 19)  # (acc << FRAC) stays <= W_MAX / 2


def _zeros(n):
    return array.array('i', bytes(4 * n))


class CommGraph:
    """Bounded undirected communication graph with integer EMA weights."""

    def __init__(self, max_nodes=8):
        if max_nodes < 2 or max_nodes > 1024:
            raise ValueError("graph_nodes must be 2..1024")
        n = max_nodes
        self.n = n
        self.w = _zeros(n * n)     # EMA weight, slot x slot, symmetric
        self.acc = _zeros(n * n)   # this epoch's traffic, symmetric
        self.tot = _zeros(n)       # row sums of w (kept by epoch())
        self.ids = [0] * n         # slot -> partition id (0 = free)
        self.live = {}             # i*n+j (i < j) -> 1 for edges in use
        self._slot = {}            # partition id -> slot
        self.count = 0
        self.version = 0           # bumped when weights or nodes change
        self.dropped = 0           # messages not recorded (graph full)
        self.epochs = 0

    # ---- nodes ------------------------------------------------------------
    def slot(self, pid):
        """Slot of partition `pid`, or -1."""
        return self._slot.get(pid, -1)

    def add(self, pid):
        """Add a node; returns its slot, or -1 when the graph is full or the
        id is out of range (1..4095)."""
        s = self._slot.get(pid, -1)
        if s >= 0:
            return s
        if pid < 1 or pid > 4095 or self.count >= self.n:
            return -1
        ids = self.ids
        s = 0
        while ids[s]:
            s += 1
        ids[s] = pid
        self._slot[pid] = s
        self.count += 1
        self.version += 1
        return s

    def remove(self, pid):
        """Drop a node and every edge it had. Returns True if it was there."""
        s = self._slot.pop(pid, -1)
        if s < 0:
            return False
        n = self.n
        w = self.w
        acc = self.acc
        tot = self.tot
        for j in range(n):
            tot[j] -= w[j * n + s]
            w[s * n + j] = 0
            w[j * n + s] = 0
            acc[s * n + j] = 0
            acc[j * n + s] = 0
        tot[s] = 0
        live = self.live
        for k in [k for k in live if k // n == s or k % n == s]:
            del live[k]
        self.ids[s] = 0
        self.count -= 1
        self.version += 1
        return True

    def nodes(self):
        """Partition ids in slot order."""
        return [p for p in self.ids if p]

    # ---- traffic ----------------------------------------------------------
    def on_message(self, src, dst, nbytes=0):
        """IPC observer hook: one message src -> dst of `nbytes` payload.
        Unknown partitions are added while there is room."""
        if src == dst:
            return
        i = self._slot.get(src, -1)
        if i < 0:
            i = self.add(src)
        j = self._slot.get(dst, -1)
        if j < 0:
            j = self.add(dst)
        if i < 0 or j < 0:
            self.dropped += 1
            return
        n = self.n
        v = self.acc[i * n + j] + 1 + (nbytes >> 5)
        if v > _ACC_MAX:
            v = _ACC_MAX
        self.acc[i * n + j] = v
        self.acc[j * n + i] = v
        self.live[i * n + j if i < j else j * n + i] = 1

    def add_weight(self, a, b, units):
        """Add `units` message units to this epoch's a<->b traffic (used by
        workload generators that feed aggregated counts)."""
        if a == b or units <= 0:
            return
        i = self._slot.get(a, -1)
        if i < 0:
            i = self.add(a)
        j = self._slot.get(b, -1)
        if j < 0:
            j = self.add(b)
        if i < 0 or j < 0:
            self.dropped += units
            return
        n = self.n
        v = self.acc[i * n + j] + units
        if v > _ACC_MAX:
            v = _ACC_MAX
        self.acc[i * n + j] = v
        self.acc[j * n + i] = v
        self.live[i * n + j if i < j else j * n + i] = 1

    def epoch(self):
        """Fold this epoch's traffic into the EMA weights (and decay edges
        that saw none). O(live edges). Returns True if any weight changed."""
        n = self.n
        w = self.w
        acc = self.acc
        tot = self.tot
        live = self.live
        changed = False
        dead = None
        for k in live:
            i = k // n
            j = k - i * n
            old = w[k]
            a = acc[k]
            new = old + (((a << FRAC) - old) >> _K)
            if new > W_MAX:
                new = W_MAX
            if new != old:
                w[k] = new
                w[j * n + i] = new
                d = new - old
                tot[i] += d
                tot[j] += d
                changed = True
            acc[k] = 0
            acc[j * n + i] = 0
            if new == 0:
                if dead is None:
                    dead = []
                dead.append(k)
        if dead:
            for k in dead:
                del live[k]
        self.epochs += 1
        if changed:
            self.version += 1
        return changed

    def set_weight(self, a, b, value):
        """Set the EMA weight of edge a<->b directly (tests, restores)."""
        i = self.add(a)
        j = self.add(b)
        if i < 0 or j < 0 or i == j:
            return False
        n = self.n
        if value > W_MAX:
            value = W_MAX
        if value < 0:
            value = 0
        old = self.w[i * n + j]
        self.w[i * n + j] = value
        self.w[j * n + i] = value
        key = i * n + j if i < j else j * n + i
        if value:
            self.live[key] = 1
        elif key in self.live and not self.acc[key]:
            del self.live[key]
        self.tot[i] += value - old
        self.tot[j] += value - old
        self.version += 1
        return True

    # ---- reading ----------------------------------------------------------
    def weight(self, a, b):
        i = self._slot.get(a, -1)
        j = self._slot.get(b, -1)
        if i < 0 or j < 0:
            return 0
        return self.w[i * self.n + j]

    def total(self, a):
        """Sum of the EMA weights of a's edges."""
        i = self._slot.get(a, -1)
        return self.tot[i] if i >= 0 else 0

    def edges(self):
        """[(a, b, w)] for every edge with w > 0, in slot order (a's slot <
        b's slot)."""
        out = []
        n = self.n
        ids = self.ids
        for k in sorted(self.live):
            v = self.w[k]
            if v:
                i = k // n
                out.append((ids[i], ids[k - i * n], v))
        return out

    def edge_count(self):
        c = 0
        w = self.w
        for k in self.live:
            if w[k]:
                c += 1
        return c

    def total_weight(self):
        """Sum of all edge weights (each edge once)."""
        return sum(self.tot) >> 1
