# Workload generator for the coherence bench: agent communication graphs
# epoch by epoch, deterministic on MicroPython and CPython (own PRNG).
#
#   clustered-ordered   C clusters of adjacent partition ids talk inside
#                       (what naive contiguous placement already gets right)
#   clustered           the same clusters with shuffled ids
#   shifting            clustered, membership re-drawn every `shift` epochs
#   churn (adversarial) membership re-drawn every 2 epochs: faster than the
#                       EMA settles, so any learned placement is stale
#   uniform (adversarial) every pair equally likely: no structure to find
#
# gen(...) yields, per epoch, a list of (a, b, messages) with partition ids
# 1..n. Each partition also has a fixed load class (heavy or light) used by
# the latency model.


class Rng:
    """xorshift32: identical sequences on both runtimes."""

    def __init__(self, seed):
        self.s = (seed or 1) & 0xFFFFFFFF

    def next(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, k):
        return self.next() % k

    def shuffle(self, lst):
        for i in range(len(lst) - 1, 0, -1):
            j = self.below(i + 1)
            lst[i], lst[j] = lst[j], lst[i]


def membership(rng, n, c, ordered):
    ids = list(range(1, n + 1))
    if not ordered:
        rng.shuffle(ids)
    size = n // c
    clus = {}
    for i in range(n):
        clus[ids[i]] = min(i // size, c - 1)
    return clus


KINDS = ("clustered-ordered", "clustered", "shifting", "churn", "uniform")


def gen(kind, n=16, epochs=60, clusters=4, seed=1, shift=20,
        intra=24, inter=1, p_inter=8):
    """Yield one list of (a, b, msgs) per epoch."""
    rng = Rng(seed * 7919 + n)
    ordered = kind == "clustered-ordered"
    clus = membership(rng, n, clusters, ordered)
    for e in range(epochs):
        if kind == "shifting" and e and e % shift == 0:
            clus = membership(rng, n, clusters, False)
        if kind == "churn" and e and e % 2 == 0:
            clus = membership(rng, n, clusters, False)
        out = []
        for a in range(1, n + 1):
            for b in range(a + 1, n + 1):
                if kind == "uniform":
                    if rng.below(3) == 0:
                        out.append((a, b, 1 + rng.below(8)))
                    continue
                if clus[a] == clus[b]:
                    if rng.below(4):
                        out.append((a, b, intra // 2 + rng.below(intra)))
                elif rng.below(100) < p_inter:
                    out.append((a, b, inter + rng.below(3)))
        yield out


def load_classes(n, seed=1, heavy_pct=25):
    """1 = heavy (long quantum), 0 = light, per partition id (index 0 unused)."""
    rng = Rng(seed * 31 + 17)
    out = bytearray(n + 1)
    for p in range(1, n + 1):
        out[p] = 1 if rng.below(100) < heavy_pct else 0
    return out
