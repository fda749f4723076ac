# Stoer-Wagner mincut: brute force agreement, viper == portable, budget slices.
import kt
from rvm_mp.coherence.graph import CommGraph
from rvm_mp.coherence import mincut
from rvm_mp.coherence.mincut import MinCut, cut_weight, ma_step_py

BOARD = "seed-64k"


class Rng:
    def __init__(self, seed):
        self.s = seed

    def next(self, k):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % k


def _brute(g):
    ids = g.nodes()
    m = len(ids)
    best = None
    for mask in range(1, (1 << m) - 1):
        if not mask & 1:
            continue
        t = 0
        for i in range(m):
            for j in range(i + 1, m):
                if ((mask >> i) & 1) != ((mask >> j) & 1):
                    t += g.weight(ids[i], ids[j])
        if best is None or t < best:
            best = t
    return best


def _random_graph(r, n, m):
    g = CommGraph(n)
    base = 1 + r.next(100)
    for i in range(m):
        g.add(base + i * 3)
    for i in range(m):
        for j in range(i + 1, m):
            if r.next(3):
                g.set_weight(base + i * 3, base + j * 3, r.next(1000))
    return g


def _impls():
    out = [True]
    if mincut._ma_step_viper is not None:
        out.append(False)
    return out


def test_matches_brute_force_on_random_graphs():
    r = Rng(7)
    for trial in range(120):
        m = 2 + r.next(7)
        g = _random_graph(r, 8, m)
        want = _brute(g)
        for uv in (False, True):
            c = MinCut(8, use_viper=uv)
            got = c.compute(g)
            assert got == want, (trial, got, want)
            assert cut_weight(g, c.side) == got
            sides = [c.side[g.slot(p)] for p in g.nodes()]
            assert 0 in sides and 1 in sides


def test_viper_and_portable_step_agree_on_vectors():
    if mincut._ma_step_viper is None:
        kt.skip("no viper on this runtime (portable step is the only one)")
    import array
    r = Rng(99)
    for trial in range(50):
        n = 8
        m = 2 + r.next(7)
        w = array.array('i', [r.next(5000) for _ in range(n * n)])
        act = array.array('H', bytes(2 * n))
        perm = list(range(n))
        for i in range(n - 1, 0, -1):     # active set in shuffled order
            j = r.next(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        for i in range(m):
            act[i] = perm[i]
        added = [bytearray(n), bytearray(n)]
        keys = [array.array('i', bytes(4 * n)), array.array('i', bytes(4 * n))]
        for k in range(m + 1):
            a = ma_step_py(w, n, act, m, added[0], keys[0])
            b = mincut._ma_step_viper(w, n, act, m, added[1], keys[1])
            assert a == b
            assert list(keys[0]) == list(keys[1])
            assert added[0] == added[1]
        assert a == -1


def test_disconnected_and_tiny_graphs():
    g = CommGraph(8)
    g.set_weight(1, 2, 50)
    g.set_weight(3, 4, 70)
    c = MinCut(8)
    assert c.compute(g) == 0
    assert c.side[g.slot(1)] == c.side[g.slot(2)]
    assert c.side[g.slot(3)] == c.side[g.slot(4)]
    assert c.side[g.slot(1)] != c.side[g.slot(3)]
    g1 = CommGraph(4)
    g1.add(9)
    assert MinCut(4).compute(g1) == 0
    assert MinCut(4).compute(CommGraph(4)) == 0


def test_heavy_pair_is_never_cut():
    # score direction at the cut level: A<->B heavy, light links elsewhere
    g = CommGraph(8)
    g.set_weight(1, 2, 5000)
    g.set_weight(2, 3, 40)
    g.set_weight(1, 4, 30)
    g.set_weight(3, 4, 900)
    g.set_weight(4, 5, 800)
    c = MinCut(8)
    assert c.compute(g) == 70
    assert c.side[g.slot(1)] == c.side[g.slot(2)]
    assert c.side[g.slot(3)] == c.side[g.slot(4)] == c.side[g.slot(5)]


class FakeClock:
    def __init__(self, step):
        self.t = 0
        self.step = step

    def __call__(self):
        self.t = (self.t + self.step) & 0x3FFFFFFF
        return self.t


def test_budgeted_run_resumes_and_matches_unbudgeted():
    r = Rng(3)
    g = _random_graph(r, 8, 8)
    want = MinCut(8).compute(g)
    clk = FakeClock(10)               # each clock read = 10 us
    c = MinCut(8, clock=clk)
    c.chunk = 1                       # the natmod, where loaded: step by step
    c.start(g)
    slices = 0
    while not c.run(25):              # ~2 steps per slice
        slices += 1
        assert c.running()
        assert c.value == -1          # nothing published mid-run
    assert c.value == want
    assert slices >= 10               # 35 steps for 8 nodes
    assert c.steps == 35


def test_slice_stops_within_one_step_of_budget():
    g = CommGraph(16)
    r = Rng(5)
    for i in range(16):
        for j in range(i + 1, 16):
            g.set_weight(i + 1, j + 1, 1 + r.next(100))
    want = MinCut(16).compute(g)
    clk = FakeClock(7)
    c = MinCut(16, clock=clk)
    c.chunk = 1                       # the natmod, where loaded: step by step
    c.start(g)                        # O(m): nothing copied yet
    assert c.copied == 0 and c.running()
    # the clock advances 7 us per read: elapsed 7, 14, 21 after units 1..3,
    # so a slice ends after the unit of work that crossed the 20 us budget;
    # copying the weights is budgeted too, one row per unit
    c.run(20)
    assert c.copied == 3 and c.steps == 0
    while c.copied < 16:
        c.run(20)
    before = c.steps
    c.run(20)
    assert c.steps - before == 3
    c.run(0)                          # a zero budget still makes progress
    assert c.steps - before == 4
    while not c.run(20):
        pass
    assert c.value == want
    c.start(g)
    c.run(20)
    c.abandon()
    assert not c.running() and c.value == want
