# Communication graph: integer EMA, decay, bounds, IPC observer feed.
import kt
from rvm_mp.coherence.graph import CommGraph, FRAC, W_MAX

BOARD = "seed-64k"


def test_ema_rises_and_decays_to_zero_in_integers():
    g = CommGraph(4)
    for _ in range(10):
        g.on_message(1, 2, 0)
    assert g.weight(1, 2) == 0            # nothing folds before the epoch
    g.epoch()
    w1 = g.weight(1, 2)
    assert w1 == (10 << FRAC) >> 2        # quarter of the sample (K=2)
    assert isinstance(w1, int)
    for _ in range(20):
        for _ in range(10):
            g.on_message(2, 1, 0)         # both directions feed one edge
        g.epoch()
    steady = g.weight(1, 2)
    assert steady > w1 and steady <= (10 << FRAC)
    assert g.weight(2, 1) == steady
    prev = steady
    n = 0
    while g.weight(1, 2) and n < 200:
        g.epoch()
        assert g.weight(1, 2) < prev      # strictly decays every epoch
        prev = g.weight(1, 2)
        n += 1
    assert g.weight(1, 2) == 0 and n < 100
    assert g.total(1) == 0
    assert len(g.live) == 0               # dead edges leave the fold set


def test_payload_bytes_weigh_more():
    g = CommGraph(4)
    g.on_message(1, 2, 0)
    g.on_message(3, 4, 256)               # 1 + 256/32 units
    g.epoch()
    assert g.weight(3, 4) == 9 * g.weight(1, 2)


def test_bounded_nodes_and_dropped_traffic():
    g = CommGraph(3)
    g.on_message(1, 2)
    g.on_message(2, 3)
    assert g.count == 3
    g.on_message(3, 4)                    # graph full: refused, counted
    assert g.slot(4) == -1 and g.dropped == 1
    assert g.add(4) == -1
    assert g.add(0) == -1 and g.add(4096) == -1
    g.on_message(5, 5)                    # self traffic is not an edge
    assert g.remove(2)
    assert g.add(4) >= 0                  # slot reused
    assert g.weight(1, 2) == 0


def test_weights_clamped():
    g = CommGraph(2)
    for _ in range(40):
        g.add_weight(1, 2, 1 << 30)
        g.epoch()
    assert g.weight(1, 2) <= W_MAX
    assert g.total_weight() == g.weight(1, 2)


def test_remove_keeps_totals_consistent():
    g = CommGraph(4)
    g.set_weight(1, 2, 100)
    g.set_weight(1, 3, 50)
    g.set_weight(2, 3, 7)
    assert g.total(1) == 150
    g.remove(3)
    assert g.total(1) == 100 and g.total(2) == 100
    assert g.edges() == [(1, 2, 100)]


def test_sparse_fold_matches_dense_definition():
    # the O(edges) fold gives exactly the EMA of every pair
    g = CommGraph(6)
    seed = [11]

    def rnd(k):
        seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (seed[0] >> 8) % k

    ref = {}
    for ep in range(30):
        sample = {}
        for _ in range(rnd(12)):
            a = 1 + rnd(6)
            b = 1 + rnd(6)
            if a == b:
                continue
            g.on_message(a, b, 0)
            key = (min(a, b), max(a, b))
            sample[key] = sample.get(key, 0) + 1
        g.epoch()
        for a in range(1, 7):
            for b in range(a + 1, 7):
                old = ref.get((a, b), 0)
                ref[(a, b)] = old + (((sample.get((a, b), 0) << FRAC) - old) >> 2)
        for a in range(1, 7):
            t = 0
            for b in range(1, 7):
                if a != b:
                    assert g.weight(a, b) == ref[(min(a, b), max(a, b))]
                    t += g.weight(a, b)
            assert g.total(a) == t
    assert len(g.edges()) == g.edge_count()
    s3 = g.slot(3)
    assert any(k // 6 == s3 or k % 6 == s3 for k in g.live)
    g.remove(3)
    for k in g.live:
        assert k // 6 != s3 and k % 6 != s3


def test_ipc_observer_path_does_not_allocate_for_known_edges():
    from rvm_mp.compat import micropython
    g = CommGraph(8)
    for a, b in ((1, 2), (2, 3), (3, 1)):
        g.on_message(a, b, 10)
    micropython.heap_lock()
    try:
        for _ in range(50):
            g.on_message(1, 2, 10)
            g.on_message(3, 2, 100)
            g.on_message(1, 3, 0)
    finally:
        micropython.heap_unlock()
    g.epoch()
    assert g.weight(1, 2) > 0 and g.weight(2, 3) > g.weight(1, 3)
