# Budgeted, resumable Stoer-Wagner global minimum cut (ADR-132 DC-2).
#
# Stoer-Wagner on m nodes is m-1 phases; phase k is a "maximum adjacency"
# ordering of the m-k+1 remaining super-vertices, and each addition to the
# ordering is one *step* of O(m) work:
#
#   start(graph)  pick the live nodes (compact 0..m-1); O(m)
#   run(budget)   copy the EMA weights one row per step, then do the
#                 maximum-adjacency steps, until the run is done or `budget_us`
#                 has passed
#                 (checked with ticks_us after every step, so a slice ends at
#                 most one O(m) step past its budget; with the C natmod after
#                 every `chunk` steps, by default the rest of a phase: O(m^2)
#                 of C, ~1k multiply-free adds for 32 nodes); returns True
#                 when done
#
#   phase:  A = {first}; key[v] = w(A, v)
#           repeat: v = argmax key over V \ A; A += v; key += w[v]    <- step
#           cut-of-the-phase = key[last] ; merge last into the one before it
#
# The run keeps its state between slices, so the engine spreads one cut over
# as many scheduler epochs as it needs and the scheduler never waits for it:
# it keeps using the last finished cut. The step's inner loop has a viper
# version (mincut_viper.py) with this file's portable loop as the fallback;
# both are tested on the same vectors.
#
# Super-vertex membership is a linked list over original nodes (head/nxt/
# tail), so no big-int bitmasks appear on 32-bit boards.
import array

from ..compat import const, ticks_us, ticks_diff

from .. import impls

# natmod rvmn_cut (a whole phase and the merge in C) -> viper step -> the
# portable step below; chosen once here (impls.py).
_NC = impls.natmod("rvmn_cut")
_ma_step_viper = None
if _NC is None:
    try:
        from .mincut_viper import ma_step as _ma_step_viper
    except (ImportError, SyntaxError):  # port without the native emitter
        pass
impls.chose("mincut", "natmod" if _NC else "viper" if _ma_step_viper else "portable")

_S_IDLE = const(0)
_S_PHASE = const(1)   # in a maximum-adjacency phase
_S_DONE = const(2)
_S_COPY = const(3)    # copying the graph's weights, one row per step
_NONE = const(-1)
_END = const(0xFFFF)


def ma_step_py(w, n, act, m, added, key):
    """One maximum-adjacency step: pick the not-yet-added active vertex with
    the largest key, mark it added, add its row to the keys. Returns the
    vertex (or -1 when all are added). Portable reference of the viper one."""
    best = -1
    bk = -1
    for i in range(m):
        v = act[i]
        if not added[v] and key[v] > bk:
            bk = key[v]
            best = v
    if best < 0:
        return -1
    added[best] = 1
    row = best * n
    for i in range(m):
        v = act[i]
        if not added[v]:
            key[v] += w[row + v]
    return best


def _zeros(n):
    return array.array('i', bytes(4 * n))


def _u16(n):
    return array.array('H', bytes(2 * n))


class MinCut:
    """Resumable Stoer-Wagner over a CommGraph (weights copied by the run).

    After a finished run: `value` is the minimum cut weight, `side[slot]` is
    0/1 for each graph slot (1 = the side that contains `last`), and
    `nodes` the number of nodes it covered. `value` is -1 before any run."""

    def __init__(self, max_nodes, clock=ticks_us, use_viper=True,
                 use_natmod=True):
        n = max_nodes
        self.n = n
        self._clock = clock
        self._w = _zeros(n * n)
        self._key = _zeros(n)
        self._added = bytearray(n)
        self._act = _u16(n)           # active super-vertices (compact ids)
        self._slot_of = _u16(n)       # compact id -> graph slot
        self._head = _u16(n)
        self._nxt = _u16(n)           # _END = end of list
        self._tail = _u16(n)
        self._best = bytearray(n)     # best side so far, by compact id
        self.side = bytearray(n)      # result: by graph slot
        self.step = _ma_step_viper if (use_viper and _ma_step_viper) else ma_step_py
        self.viper = self.step is not ma_step_py
        # natmod: up to `chunk` steps per C call (0: the rest of the phase)
        # and the merge in C; the budget is checked after each call
        self._nc = _NC if use_natmod else None
        self.chunk = 0
        self._state = _S_IDLE
        self.value = -1               # last finished cut (kept when a run fails)
        self.nodes = 0
        self.version = -1             # graph version the last cut was taken of
        self.steps = 0                # steps in the current / last run
        self.slices = 0               # run() calls in the current / last run
        self.busy_us = 0              # measured time in the current / last run
        self._m = 0
        self._mm = 0
        self._left = 0
        self._prev = _NONE
        self._last = _NONE
        self._best_val = -1
        self._snap_version = -1
        self._g = None
        self._row = 0
        self.copied = 0               # rows copied in the current / last run

    # ---- control ----------------------------------------------------------
    def running(self):
        return self._state == _S_PHASE or self._state == _S_COPY

    def abandon(self):
        """Drop the run in progress (the last finished cut stays)."""
        self._state = _S_IDLE
        self._g = None

    def start(self, graph):
        """Begin a run on `graph`. O(m): the weights are copied into the
        run's matrix by run(), one row per step, inside the budget (upper
        triangle mirrored, so the copy stays symmetric even when the graph
        folds an epoch between two slices)."""
        n = self.n
        gn = graph.n
        if gn > n:
            raise ValueError("graph larger than this MinCut")
        m = 0
        ids = graph.ids
        for s in range(gn):
            if ids[s]:
                self._slot_of[m] = s
                m += 1
        for a in range(m):
            self._act[a] = a
            self._head[a] = a
            self._tail[a] = a
            self._nxt[a] = _END
            self._best[a] = 0
        self._m = m
        self._mm = m
        self._best_val = -1
        self._snap_version = graph.version
        self._g = graph
        self._row = 0
        self.steps = 0
        self.copied = 0
        self.slices = 0
        self.busy_us = 0
        if m < 2:
            self._best_val = 0
            self._finish()
            return
        self._state = _S_COPY

    def _copy_row(self):
        """Copy row `_row` of the graph (upper triangle, mirrored). True
        when the copy is complete and the first phase has begun."""
        a = self._row
        n = self.n
        g = self._g
        gn = g.n
        gw = g.w
        w = self._w
        so = self._slot_of
        m = self._m
        if self._nc is not None:
            self._nc.copy_row(w, n, gw, gn, so, m, a)
        else:
            ra = so[a] * gn
            w[a * n + a] = 0
            for b in range(a + 1, m):
                v = gw[ra + so[b]]
                w[a * n + b] = v
                w[b * n + a] = v
        self.copied += 1
        self._row = a + 1
        if self._row < m:
            return False
        self._g = None
        self._begin_phase()
        self._state = _S_PHASE
        return True

    def _begin_phase(self):
        mm = self._mm
        if self._nc is None:   # the natmod clears them in its first call
            act = self._act
            added = self._added
            key = self._key
            for i in range(mm):
                v = act[i]
                added[v] = 0
                key[v] = 0
        self._prev = _NONE
        self._last = _NONE
        self._left = mm

    def run(self, budget_us):
        """Work on the current run for about `budget_us` (at least one step).
        Returns True when the run finished (results updated)."""
        st = self._state
        if st != _S_PHASE and st != _S_COPY:
            return st == _S_DONE
        clock = self._clock
        t0 = clock()
        self.slices += 1
        if st == _S_COPY:
            while True:
                fin = self._copy_row()
                el = ticks_diff(clock(), t0)
                if el >= budget_us:
                    self.busy_us += el
                    return False
                if fin:
                    break
        step = self.step
        n = self.n
        w = self._w
        key = self._key
        act = self._act
        added = self._added
        done = False
        nc = self._nc
        while nc is not None:
            k = self._left
            if self.chunk and k > self.chunk:
                k = self.chunk
            r = nc.ma_phase(w, n, act, self._mm, added, key, k,
                            self._left == self._mm)
            self.steps += k
            self._left -= k
            self._prev = r >> 16 if k > 1 else self._last
            self._last = r & 0xFFFF
            if self._left == 0:
                done = self._end_phase()
            el = ticks_diff(clock(), t0)
            if done or el >= budget_us:
                self.busy_us += el
                return done
        while True:
            v = step(w, n, act, self._mm, added, key)
            self.steps += 1
            self._prev = self._last
            self._last = v
            self._left -= 1
            if self._left == 0:
                done = self._end_phase()
            el = ticks_diff(clock(), t0)
            if done or el >= budget_us:
                break
        self.busy_us += el
        return done

    def _end_phase(self):
        """Cut of the phase, merge last into prev. True when the run is done."""
        last = self._last
        prev = self._prev
        cut = self._key[last]
        if self._best_val < 0 or cut < self._best_val:
            self._best_val = cut
            best = self._best
            for i in range(self._m):
                best[i] = 0
            u = self._head[last]
            while u != _END:
                best[u] = 1
                u = self._nxt[u]
        # merge last into prev
        n = self.n
        w = self._w
        act = self._act
        mm = self._mm
        self._nxt[self._tail[prev]] = self._head[last]
        self._tail[prev] = self._tail[last]
        if self._nc is not None:
            self._nc.merge(w, n, act, mm, prev, last)
        else:
            rp = prev * n
            rl = last * n
            for i in range(mm):
                x = act[i]
                if x != prev and x != last:
                    v = w[rp + x] + w[rl + x]
                    w[rp + x] = v
                    w[x * n + prev] = v
            i = 0
            while act[i] != last:
                i += 1
            act[i] = act[mm - 1]
        self._mm = mm - 1
        if self._mm <= 1:
            self._finish()
            return True
        self._begin_phase()
        return False

    def _finish(self):
        side = self.side
        for s in range(self.n):
            side[s] = 0
        for a in range(self._m):
            side[self._slot_of[a]] = self._best[a]
        self.value = self._best_val
        self.nodes = self._m
        self.version = self._snap_version
        self._state = _S_DONE

    def compute(self, graph):
        """Whole run without a budget (tests, benches, host-side planning)."""
        self.start(graph)
        while not self.run(1 << 28):
            pass
        return self.value


def cut_weight(graph, side):
    """Weight crossing a 0/1 side assignment by slot (for checking a cut)."""
    n = graph.n
    ids = graph.ids
    t = 0
    for i in range(n):
        if not ids[i]:
            continue
        for j in range(i + 1, n):
            if ids[j] and side[i] != side[j]:
                t += graph.w[i * n + j]
    return t
