# Every implementation of each hot path on the same vectors: the C natmods
# (native/, loaded from build/natmods/x64 on MicroPython; `make test` builds
# them first), the viper/native-emitter modules and the portable bodies.
# On CPython only the portable bodies run (an .mpy is MicroPython's format);
# the natmod parts skip there, and on MicroPython when no natmod was built.
import array
import hashlib

import kt
from rvm_mp import errors, impls, kinds
from rvm_mp.witness import WitnessLog, chain_link
from rvm_mp import witness_verify as WV

HEAP = "512K"

NIST = (
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
     b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
)


def _rng(seed):
    s = [seed]

    def nxt(n):
        s[0] = (s[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return s[0] % n
    return nxt


def _nat(name):
    if not kt.IS_MP:
        kt.skip("CPython loads no natmods (the portable body runs)")
    m = impls.natmod(name)
    if m is None:
        kt.skip("natmod %s not built (make natmods)" % name)
    return m


def _viper_sha():
    try:
        from rvm_mp.sha256_viper import Sha256Into
    except (ImportError, SyntaxError):
        return None
    return Sha256Into()


def _pattern(n):
    return bytes([(7 * i + 3) & 255 for i in range(n)])


# ---- witness link: SHA-256 ----------------------------------------------------
def test_link_sha256_every_length_and_nist():
    nl = _nat("rvmn_link")
    vs = _viper_sha()
    out = bytearray(32)
    vectors = [(m, bytes.fromhex(h)) for m, h in NIST]
    vectors += [(_pattern(n), hashlib.sha256(_pattern(n)).digest()) for n in range(120)]
    for msg, want in vectors:
        n = len(msg)
        a, b = n // 3, (2 * n) // 3
        # split over the three parts, the third one from an offset
        pad = b"\xee" * 5 + msg[b:] + b"\xee" * 3
        nl.digest3_into(msg[0:a], msg[a:b], pad, 5, n - b, out)
        assert bytes(out) == want, n
        if vs is not None and n <= 119:
            vs.digest3_into(msg[0:a], msg[a:b], pad, 5, n - b, out)
            assert bytes(out) == want, n
    # longer than the viper's two blocks: the C one streams
    big = _pattern(1000)
    nl.digest3_into(b"", big, b"", 0, 0, out)
    assert bytes(out) == hashlib.sha256(big).digest()


def test_link_bad_arguments_are_refused():
    nl = _nat("rvmn_link")
    out = bytearray(32)
    kt.raises(ValueError, nl.digest3_into, b"", b"", b"abc", 2, 5, out)
    kt.raises(ValueError, nl.digest3_into, b"", b"", b"abc", -1, 1, out)
    kt.raises(ValueError, nl.digest3_into, b"", b"", b"abc", 0, 3, bytearray(31))
    kt.raises(TypeError, nl.digest3_into, b"", b"", b"abc", 0, 3, b"x" * 32)
    ring = bytearray(4 * 64)
    kt.raises(ValueError, nl.link_range, bytearray(32), ring, 4, 1, 4)
    kt.raises(ValueError, nl.link_range, bytearray(32), ring, 0, 1, 5)
    kt.raises(ValueError, nl.link_range, bytearray(31), ring, 0, 1, 4)
    kt.raises(ValueError, nl.verify, bytes(32), bytes(64), 2)


def _ring_records(n, seed):
    rnd = _rng(seed)
    return bytearray(bytes([rnd(256) for _ in range(64 * n)]))


def test_link_range_wraps_and_matches_chain_link():
    nl = _nat("rvmn_link")
    for ring_n, start, count in ((1, 0, 3), (4, 0, 4), (4, 3, 6), (8, 5, 8)):
        ring = _ring_records(ring_n, ring_n * 31 + start)
        head = bytearray(hashlib.sha256(b"anchor").digest())
        want_ring = bytearray(ring)
        prev = bytes(head)
        slot = start
        for _ in range(count):
            link = chain_link(prev, want_ring[slot * 64:slot * 64 + 32])
            want_ring[slot * 64 + 32:slot * 64 + 64] = link
            prev = link
            slot = (slot + 1) % ring_n
        nl.link_range(head, ring, start, count, ring_n)
        assert bytes(head) == prev and ring == want_ring, (ring_n, start, count)


def _chain(n, anchor):
    recs = _ring_records(n, n)
    prev = anchor
    for i in range(n):
        link = chain_link(prev, recs[i * 64:i * 64 + 32])
        recs[i * 64 + 32:i * 64 + 64] = link
        prev = link
    return recs


def test_verify_window_every_impl_finds_the_first_bad_record():
    impls_ = [WV.verify_window_py]
    if kt.IS_MP and impls.natmod("rvmn_link") is not None:
        impls_.append(impls.natmod("rvmn_link").verify)
    anchor = hashlib.sha256(b"a").digest()
    recs = _chain(12, anchor)
    for verify in impls_:
        assert verify(anchor, recs, 12) == 12
        assert verify(anchor, recs, 0) == 0
        assert verify(anchor, memoryview(recs)[0:5 * 64], 5) == 5
        assert verify(bytes(32), recs, 12) == 0            # wrong anchor
        for k, off in ((0, 3), (7, 10), (11, 40), (4, 63)):
            bad = bytearray(recs)
            bad[k * 64 + off] ^= 0x10                     # header or link bit
            assert verify(anchor, bad, 12) == k, (k, off)
        kt.raises(ValueError, verify, anchor, recs, 13)   # window past buffer
        kt.raises(ValueError, verify, anchor[0:16], recs, 1)


def test_witnesslog_links_agree_on_every_path():
    # natmod (where loaded: pack + link in emit, or link_pending), viper
    # (where the emitter is), hashlib: the same records give the same
    # chain, inline (ring wrap) and in link_pending; field values past their
    # width, negative ones, the degraded flag and records completed before
    # they are linked (emit_open) included
    def run(nl, vsha, rl=None):
        t = [0]

        def clock():
            t[0] += 1
            return t[0] * 0x10001 - 7   # past 32 bits, negative at first
        log = WitnessLog(kt.DEVICE_ID, boot=3, key=kt.KEY, ring=8, clock=clock)
        log._nl = nl
        log._rl = rl
        log._vsha = vsha
        for i in range(45):
            log.degraded = i % 7 == 3
            log.emit(kinds.IPC_SEND, i * 4099 - 50, -i, i << 33, 7 * i - 3,
                     0xFFFFFFFF + i, -1, i * 97)
            if i % 13 == 12:
                log.link_pending()
            if i % 11 == 5:
                s = log.emit_open(kinds.SEAL_PART, 0, i)
                o = (s % log.ring_n) * 64
                log._rmv[o + 16:o + 20] = b"open"   # completed, then linked
            if i % 17 == 9:
                log.seal()
        return log.head_link(), [log.record(s) for s in range(log.ring_low(), log.next_seq)]
    want = run(None, None)
    nl = impls.natmod("rvmn_link") if kt.IS_MP else None
    if nl is not None:
        assert run(nl, None) == want
        assert run(nl, None, nl.rec_link) == want
    vs = _viper_sha()
    if vs is not None:
        import rvm_mp.witness as W
        if W.copy_into is not None:   # viper inline path needs its copy_into
            assert run(None, vs) == want


def test_natmod_link_paths_do_not_allocate():
    nl = _nat("rvmn_link")
    from rvm_mp.compat import micropython
    log = WitnessLog(kt.DEVICE_ID, boot=1, ring=8, clock=lambda: 5)
    assert log._nl is nl and log._rl is nl.rec_link   # emit links
    slog = WitnessLog(kt.DEVICE_ID, boot=1, ring=8, clock=lambda: 5)
    slog._rl = None                                    # emit packs only
    head = bytearray(32)
    ring = bytearray(8 * 64)
    out = bytearray(32)
    anchor = hashlib.sha256(b"a").digest()
    recs = _chain(6, anchor)
    for i in range(20):      # warm up: the ring wraps, inline links run
        log.emit(kinds.IPC_SEND, 1, 2, i)
    micropython.heap_lock()
    try:
        for i in range(40):  # pack + link in one C call
            log.emit(kinds.IPC_SEND, 1, 2, i, -i, 0xFFFFFFFF)
        for i in range(40):  # every emit past the ring links one inline
            slog.emit(kinds.IPC_SEND, 1, 2, i)
        slog.link_pending()
        s = log.emit_open(kinds.SEAL_PART, 0, 1)
        log.emit(kinds.IPC_SEND, 1, 2, s)   # packs only: one is open
        log.link_pending()
        nl.link_range(head, ring, 3, 8, 8)
        nl.digest3_into(b"RVMW", head, ring, 64, 32, out)
        r = nl.verify(anchor, recs, 6)
    finally:
        micropython.heap_unlock()
    assert r == 6
    for lg in (log, slog):
        prev = lg.record(lg.ring_low())[32:64]
        for s in range(lg.ring_low() + 1, lg.next_seq):
            rec = lg.record(s)
            assert rec[32:64] == chain_link(prev, rec)
            prev = rec[32:64]


# ---- P1 -----------------------------------------------------------------------
def _gate():
    from rvm_mp.captable import CapTable, R_READ, R_WRITE, OT_CHANNEL
    from rvm_mp.partition import Partition, PartitionTable, ST_RUNNING
    from rvm_mp.proofgate import ProofGate

    class K:
        pass
    k = K()
    k.log = WitnessLog(kt.DEVICE_ID, ring=64)
    k.caps = CapTable(32, 16)
    k.parts = PartitionTable(4)
    k.clock = lambda: 1000
    for pid in (1, 2):
        p = Partition(pid, 0, "", 0, 0, 0)
        p.state = ST_RUNNING
        k.parts.add(p)
        k.caps.open(pid)
    hs = []
    for oid in range(6):
        h, ci = k.caps.mint(1 + oid % 2, OT_CHANNEL + oid % 2, oid,
                            R_READ | (R_WRITE if oid % 3 else 0))
        hs.append(h)
    return ProofGate(k), hs


def test_p1_every_impl_same_answers():
    from rvm_mp import proofgate as PG
    g, hs = _gate()
    impls_ = [PG.p1_portable]
    if PG._p1_native is not None:
        impls_.append(PG._p1_native)
    try:
        from rvm_mp.gate_native import p1 as nat_emitter
        impls_.append(nat_emitter)
    except (ImportError, SyntaxError):
        pass
    if kt.IS_MP and impls.natmod("rvmn_p1") is not None:
        impls_.append(impls.natmod("rvmn_p1").p1)
        assert PG._P1 is impls_[-1] and impls.which()["p1"] == "natmod"
    rnd = _rng(11)
    handles = hs + [0, 255, 256, 0x10000, -300, 1 << 70, "256", True, None,
                    (5 << 8) | 1, (1 << 8) | 15, (1 << 8) | 16]
    n = 0
    from rvm_mp.captable import OT_CHANNEL
    for i in range(600):
        pid = (0, 1, 2, 3, "1", None, True)[rnd(7)] if rnd(4) == 0 else 1 + rnd(2)
        h = handles[rnd(len(handles))]
        otype = rnd(4)
        oid = rnd(8) - 1
        rights = rnd(8)
        if rnd(8) == 0:   # out of any key's range, big ints included
            big = (1 << 70, -(1 << 70), 1 << 40, -(1 << 40), 0x10000, -1, 1 << 20)
            otype, oid, rights = big[rnd(7)], big[rnd(7)], big[rnd(7)]
            if rnd(2):
                otype = OT_CHANNEL
            if rnd(2):
                rights = 1
        if rnd(2):   # mostly right: the holder, its object, a subset of rights
            j = rnd(len(hs))
            pid, h = 1 + j % 2, hs[j]
            otype = (OT_CHANNEL + j % 2, 0)[rnd(2)] if rnd(4) else rnd(4)
            oid = (j, -1)[rnd(2)] if rnd(4) else rnd(8) - 1
            if otype == 0 and oid >= 0:
                otype = OT_CHANNEL + j % 2
            rights = rnd(2) | (rnd(2) << 1) if rnd(4) else rnd(128)
        got = [f(g, pid, h, otype, oid, rights) for f in impls_]
        for x in got[1:]:
            assert x is got[0] if not isinstance(x, int) else x == got[0], \
                (pid, h, otype, oid, rights, got)
        n += isinstance(got[0], int)
    assert 20 < n < 600   # both grants and refusals were exercised
    # the method still binds (other modules call gate.p1(...))
    assert g.p1(1, hs[0], 0, -1, 0) == PG.p1_portable(g, 1, hs[0], 0, -1, 0)


def test_p1_natmod_does_not_allocate():
    _nat("rvmn_p1")
    from rvm_mp import proofgate as PG
    from rvm_mp.compat import micropython
    g, hs = _gate()
    p1 = PG._P1
    micropython.heap_lock()
    try:
        a = p1(g, 1, hs[0], 2, 0, 1)
        b = p1(g, 1, hs[0], 2, 0, 64)
        c = p1(g, 9, hs[0], 2, 0, 1)
    finally:
        micropython.heap_unlock()
    assert isinstance(a, int) and b is errors.ERIGHTS and c is errors.ESTATE


# ---- scheduler pick -------------------------------------------------------------
def test_pick_every_impl_same_choice_and_mode():
    # the C pick, the native-emitter pick and the portable heap pick against
    # the reference scan on the same API-driven scenarios, near the tick
    # wrap too (deadlines on both sides of it)
    import test_scheduler as TS
    from rvm_mp import scheduler as S
    from rvm_mp.compat import ticks_add
    picks = TS._picks()
    assert S.natmod_pick() is None or picks[-1][0] == "natmod"
    sifts = TS._sifts()
    assert (S.natmod_pick() and S._PICK_C[1]) is None or sifts[-1][0] == "natmod"
    for name, sift in sifts:
        for seed, t0 in ((11, 1000), (12, ticks_add(0, -1500))):
            TS.pick_scenario(picks, seed, t0=t0, steps=250, sift=sift)


def test_pick_natmod_does_not_allocate():
    from rvm_mp import scheduler as S
    if S.natmod_pick() is None:
        kt.skip("natmod rvmn_pick not loaded")
    import test_scheduler as TS
    from rvm_mp.compat import micropython
    s, ts, c, log = TS._mk(n=6, reflex_budget_us=3000)
    ts[2].fl = S.F_HARD
    s.make_ready(ts[2], c.ms())
    ts[4].state = S.T_SLEEP   # dropped from the heap top by the pick
    s.make_ready(ts[4], c.ms() - 100)
    ts[4].state = S.T_SUSPENDED
    pick = S.natmod_pick()
    micropython.heap_lock()
    try:
        a = pick(s, c.ms())
        b = pick(s, c.ms())
        ts[2].state = S.T_SUSPENDED
        d = pick(s, c.ms())
    finally:
        micropython.heap_unlock()
    assert a is ts[2] and b is ts[2] and d is ts[0]


# ---- mincut ---------------------------------------------------------------------
def _graph(rnd, n, m):
    from rvm_mp.coherence.graph import CommGraph
    g = CommGraph(n)
    for i in range(m):
        g.add(1 + i)
    for i in range(m):
        for j in range(i + 1, m):
            if rnd(3):
                g.set_weight(1 + i, 1 + j, rnd(1000))
    return g


def test_mincut_every_impl_same_cut():
    from rvm_mp.coherence import mincut as MC
    nc = impls.natmod("rvmn_cut") if kt.IS_MP else None
    try:
        from rvm_mp.coherence.mincut_viper import ma_step as vstep
    except (ImportError, SyntaxError):
        vstep = None
    rnd = _rng(5)
    for trial in range(40):
        n = (4, 8, 16, 32)[trial % 4]
        g = _graph(rnd, n, 2 + rnd(n - 1))
        c = MC.MinCut(n, use_viper=False, use_natmod=False)
        want = c.compute(g)
        want_side = bytes(c.side)
        runs = []
        if vstep is not None:
            c = MC.MinCut(n, use_natmod=False)
            c.step = vstep
            runs.append(c)
        if nc is not None:
            c = MC.MinCut(n)
            c._nc = nc
            runs.append(c)
            c = MC.MinCut(n)
            c._nc = nc
            c.chunk = 3
            runs.append(c)
        for c in runs:
            assert c.compute(g) == want, trial
            assert bytes(c.side) == want_side, trial


def test_mincut_natmod_step_phase_merge_match_portable():
    nc = _nat("rvmn_cut")
    from rvm_mp.coherence.mincut import ma_step_py
    rnd = _rng(17)
    for trial in range(30):
        n = 8 + rnd(25)
        m = 2 + rnd(n - 1)
        w = array.array('i', [0] * (n * n))
        for i in range(n):
            for j in range(i + 1, n):
                w[i * n + j] = w[j * n + i] = rnd(5000)
        perm = list(range(n))
        for i in range(n - 1, 0, -1):
            j = rnd(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        act = array.array('H', perm)
        a1, a2 = bytearray(n), bytearray(n)
        k1, k2 = array.array('i', [0] * n), array.array('i', [0] * n)
        order = []
        while True:
            v1 = ma_step_py(w, n, act, m, a1, k1)
            v2 = nc.ma_step(w, n, act, m, a2, k2)
            assert v1 == v2 and list(k1) == list(k2)
            if v1 < 0:
                break
            order.append(v1)
        a3, k3 = bytearray(b"\x01" * n), array.array('i', [7] * n)
        r = nc.ma_phase(w, n, act, m, a3, k3, m, True)   # reset: a new phase
        assert r == (order[-2] << 16) | order[-1]
        assert [k3[v] for v in act[0:m]] == [k1[v] for v in act[0:m]]
        # merge: portable loop (MinCut._end_phase) against the C one
        prev, last = order[-2], order[-1]
        w1 = array.array('i', w)
        act1 = array.array('H', act)
        for i in range(m):
            x = act1[i]
            if x != prev and x != last:
                v = w1[prev * n + x] + w1[last * n + x]
                w1[prev * n + x] = v
                w1[x * n + prev] = v
        i = 0
        while act1[i] != last:
            i += 1
        act1[i] = act1[m - 1]
        assert nc.merge(w, n, act, m, prev, last) == m - 1
        assert list(w) == list(w1) and list(act)[0:m - 1] == list(act1)[0:m - 1]
    w = array.array('i', [0] * 16)
    kt.raises(ValueError, nc.ma_step, w, 5, array.array('H', [0] * 4), 4,
              bytearray(4), array.array('i', [0] * 4))
    kt.raises(ValueError, nc.merge, w, 4, array.array('H', [0, 1]), 2, 0, 3)


# ---- frame CRC ------------------------------------------------------------------
def test_crc_every_impl_same_value():
    from rvm_mp import frame as F
    fs = [F.crc32_py, F.crc32]
    if kt.IS_MP and impls.natmod("rvmn_crc") is not None:
        fs.append(impls.natmod("rvmn_crc").crc32)
    rnd = _rng(3)
    for f in fs:
        assert f(b"123456789") == 0xCBF43926 and f(b"") == 0
    for n in list(range(0, 70)) + [255, 1000]:
        data = bytes([rnd(256) for _ in range(n)])
        want = F.crc32_py(data)
        for f in fs:
            assert f(data) == want
            assert f(data[n // 2:], f(data[0:n // 2])) == want   # chained


def test_which_names_one_impl_per_loaded_hot_path():
    from rvm_mp import frame, proofgate, scheduler  # noqa: F401
    from rvm_mp.coherence import mincut  # noqa: F401
    w = impls.which()
    for k in ("link", "verify", "p1", "pick", "mincut", "crc"):
        assert w[k] in ("natmod", "viper", "native", "binascii", "portable"), (k, w)
    if not kt.IS_MP:
        assert w["link"] == "portable" and w["mincut"] == "portable"
    elif impls.natmod("rvmn_link") is not None:
        assert w["link"] == "natmod" and w["verify"] == "natmod"
