# Coherence scores and cut pressure, in basis points (0..10000), integers.
#
# Direction (the Rust RVM had it inverted: its score told heavy A<->B traffic
# to split). Here strong coupling scores HIGH:
#
#   pair_bp(a, b)   = 2 w(a,b) * 10000 / (tot(a) + tot(b))
#                     the share of a's and b's traffic that is between them;
#                     10000 when they talk only to each other -> merge/co-place
#   group_bp(S)     = internal(S) * 10000 / (internal(S) + crossing(S))
#                     coherence of a domain S (e.g. one side of a cut)
#   pressure_bp(p)  = crossing(p) * 10000 / tot(p), crossing = weight of p's
#                     edges to nodes on the other side of the current cut
#                     (or in another placement group): rises when heavy
#                     traffic crosses a boundary
#
# tot() is a node's weighted degree. All maths is integer; weights are the
# graph's EMA units (graph.py).
from ..compat import const

BP = const(10000)


def pair_bp(g, a, b):
    i = g.slot(a)
    j = g.slot(b)
    if i < 0 or j < 0 or i == j:
        return 0
    w = g.w[i * g.n + j]
    t = g.tot[i] + g.tot[j]
    if t <= 0:
        return 0
    return (2 * w * BP) // t


def group_bp(g, members):
    """Coherence of the set of partition ids `members` (internal share)."""
    n = g.n
    inside = bytearray(n)
    for p in members:
        s = g.slot(p)
        if s >= 0:
            inside[s] = 1
    internal = 0
    crossing = 0
    w = g.w
    for i in range(n):
        if not inside[i]:
            continue
        row = i * n
        for j in range(n):
            v = w[row + j]
            if not v:
                continue
            if inside[j]:
                internal += v
            else:
                crossing += v
    internal >>= 1  # each internal edge was seen from both ends
    t = internal + crossing
    return (internal * BP) // t if t else 0


def pressure_into(g, group, out):
    """out[slot] = pressure_bp of each node given `group[slot]` (the cut side
    or placement group of each slot). O(live edges). Returns the total
    crossing weight."""
    n = g.n
    w = g.w
    tot = g.tot
    for i in range(n):
        out[i] = 0
    cross_all = 0
    for k in g.live:
        v = w[k]
        if not v:
            continue
        i = k // n
        j = k - i * n
        if group[i] != group[j]:
            out[i] += v
            out[j] += v
            cross_all += v
    ids = g.ids
    for i in range(n):
        t = tot[i]
        out[i] = (out[i] * BP) // t if (t > 0 and ids[i]) else 0
    return cross_all


def coupling_bp(g, a):
    """How much of the graph's traffic partition `a` carries, relative to the
    busiest node (0..10000): the cut value the tier policy reads."""
    i = g.slot(a)
    if i < 0:
        return 0
    top = max(g.tot) if g.count else 0
    if top <= 0:
        return 0
    return (g.tot[i] * BP) // top
