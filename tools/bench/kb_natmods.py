# Hot paths, every implementation in one run (kernel bench: MicroPython and
# CPython): the C natmod (build/natmods/x64, `make natmods`), the viper /
# native-emitter module, and the portable body. Timings are interleaved
# (each repeat runs every implementation once) and each row gives the min
# and the median of the repeats; ratio rows compare against the viper/native
# path measured in the same run. On CPython only the portable rows exist.
#
# Targets (native/README.md): chain link >= 4x the viper path and no heap;
# P1 <= 0.3 us; mincut on 32 nodes >= 3x viper.
import sys
import array
import hashlib

# the x64 natmods, on the path before any rvm_mp module is imported
sys.path.append(__file__.rsplit("/", 3)[0] + "/build/natmods/x64")

from benchutil import ticks_us, ticks_diff  # noqa: E402
from rvm_mp import impls  # noqa: E402
from rvm_mp.compat import IS_MICROPYTHON  # noqa: E402

REPEATS = 7


def _time(fn, n):
    t = ticks_us()
    fn(n)
    return ticks_diff(ticks_us(), t) / n


def _race(cands, n):
    """cands: [(name, fn(n))]; interleaved repeats -> {name: (min, median)}."""
    runs = {}
    for name, fn in cands:
        fn(max(1, n // 10))   # warm up
        runs[name] = []
    for _ in range(REPEATS):
        for name, fn in cands:
            runs[name].append(_time(fn, n))
    out = {}
    for name in runs:
        v = sorted(runs[name])
        out[name] = (v[0], v[len(v) // 2])
    return out


def _emit_all(emit, path, res, unit_note, peer):
    for name in res:
        mn, med = res[name]
        emit("%s: %s (min)" % (path, name), mn, "us", unit_note)
        emit("%s: %s (median)" % (path, name), med, "us")
    if peer in res:
        for name in res:
            if name != peer:
                emit("%s: %s / %s speed" % (path, name, peer),
                     res[peer][0] / res[name][0], "x", "same repeat")


# ---- chain link ------------------------------------------------------------
def _link(emit):
    from rvm_mp.witness import chain_link
    ring = bytearray(bytes(range(256)) * 2)   # 8 records
    head = bytearray(32)
    tmp = bytearray(32)
    cands = []
    nl = impls.natmod("rvmn_link")
    if nl is not None:
        def f_nat(n):
            lr = nl.link_range
            for i in range(n):
                lr(head, ring, 3, 1, 8)
        cands.append(("natmod", f_nat))
    try:
        from rvm_mp.sha256_viper import Sha256Into, copy_into
        vs = Sha256Into()

        def f_vip(n):     # witness._link_one's viper body
            for i in range(n):
                vs.digest3_into(b"RVMW", head, ring, 192, 32, tmp)
                copy_into(head, 0, tmp, 0, 32)
                copy_into(ring, 224, tmp, 0, 32)
        cands.append(("viper", f_vip))
    except (ImportError, SyntaxError):
        pass
    mv = memoryview(ring)

    def f_py(n):          # hashlib: allocates
        for i in range(n):
            h = chain_link(head, mv[192:224])
            mv[224:256] = h
            head[:] = h
    cands.append(("portable", f_py))
    _emit_all(emit, "chain link", _race(cands, 2000), "one record", "viper")
    if nl is not None and IS_MICROPYTHON:
        import micropython
        micropython.heap_lock()
        try:
            f_nat(100)
            ok = 1
        except MemoryError:
            ok = 0
        finally:
            micropython.heap_unlock()
        emit("chain link: natmod runs with the heap locked", ok, "bool")


def _verify(emit):
    from rvm_mp.witness import chain_link
    from rvm_mp.witness_verify import verify_window_py
    anchor = hashlib.sha256(b"a").digest()
    recs = bytearray(64 * 64)
    prev = anchor
    for i in range(64):
        recs[i * 64:i * 64 + 32] = bytes([(i * 7 + j) & 255 for j in range(32)])
        prev = chain_link(prev, recs[i * 64:i * 64 + 32])
        recs[i * 64 + 32:i * 64 + 64] = prev
    cands = []
    nl = impls.natmod("rvmn_link")
    if nl is not None:
        def f_nat(n):
            for i in range(n):
                assert nl.verify(anchor, recs, 64) == 64
        cands.append(("natmod", f_nat))

    def f_py(n):
        for i in range(n):
            assert verify_window_py(anchor, recs, 64) == 64
    cands.append(("portable", f_py))
    _emit_all(emit, "verify 64-record window", _race(cands, 30), "per window",
              "portable")


# ---- P1 ---------------------------------------------------------------------
def _p1(emit):
    from rvm_mp import proofgate as PG
    from rvm_mp.captable import CapTable, R_READ, R_WRITE, OT_CHANNEL
    from rvm_mp.partition import Partition, PartitionTable, ST_RUNNING
    from rvm_mp.witness import WitnessLog

    class K:
        pass
    k = K()
    k.log = WitnessLog(bytes(16), ring=32)
    k.caps = CapTable(144, 16)
    k.parts = PartitionTable(8)
    k.clock = lambda: 1000
    p = Partition(1, 0, "", 0, 0, 0)
    p.state = ST_RUNNING
    k.parts.add(p)
    k.caps.open(1)
    h, ci = k.caps.mint(1, OT_CHANNEL, 4, R_READ | R_WRITE)
    g = PG.ProofGate(k)
    cands = []
    nat = impls.natmod("rvmn_p1")
    if nat is not None:
        c1 = nat.p1

        def f_nat(n):
            for i in range(n):
                c1(g, 1, h, OT_CHANNEL, 4, R_READ)
        cands.append(("natmod", f_nat))
    try:
        from rvm_mp.gate_native import p1 as nf
        if IS_MICROPYTHON:
            def f_nf(n):
                for i in range(n):
                    nf(g, 1, h, OT_CHANNEL, 4, R_READ)
            cands.append(("native", f_nf))
    except (ImportError, SyntaxError):
        pass
    pp = PG.p1_portable

    def f_py(n):
        for i in range(n):
            pp(g, 1, h, OT_CHANNEL, 4, R_READ)
    cands.append(("portable", f_py))

    def floor(a, b, c, d, e, f):
        return b

    def f_floor(n):   # the loop and a 6-argument Python call: the floor
        for i in range(n):
            floor(g, 1, h, OT_CHANNEL, 4, R_READ)
    cands.append(("floor (empty 6-arg call)", f_floor))
    _emit_all(emit, "P1", _race(cands, 20000), "per check, loop included", "native")


# ---- pick -------------------------------------------------------------------
def _pick(emit):
    from rvm_mp import scheduler as S
    from rvm_mp.witness import WitnessLog
    from rvm_mp.compat import ticks_ms, ticks_us as tus
    log = WitnessLog(bytes(16), ring=32)
    s = S.Scheduler(log, ticks_ms, tus, capacity=8)
    now = ticks_ms()
    for i in range(8):
        t = S.Task(i + 1, "t%d" % i)
        s.add(t)
        s.make_ready(t, now)
        t.deadline = now + 5 * i
    s.start(now)
    cands = []
    if S.natmod_pick() is not None:
        pk = S.natmod_pick()

        def f_nat(n):
            for i in range(n):
                pk(s, now)
        cands.append(("natmod", f_nat))
    try:
        from rvm_mp.switch_native import pick as npk

        def f_n(n):
            for i in range(n):
                npk(s, now)
        cands.append(("native", f_n))
    except (ImportError, SyntaxError):
        pass
    ppk = S.Scheduler.pick_py

    def f_py(n):
        for i in range(n):
            ppk(s, now)
    cands.append(("portable", f_py))
    _emit_all(emit, "pick over 8 tasks", _race(cands, 5000), "per pick", "native")


# ---- mincut -------------------------------------------------------------------
def _mincut(emit):
    from rvm_mp.coherence import mincut as MC
    from rvm_mp.coherence.graph import CommGraph
    n = 32
    g = CommGraph(n)
    for i in range(n):
        g.add(i + 1)
    s = 7
    for i in range(n):
        for j in range(i + 1, n):
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            if s % 3:
                g.set_weight(i + 1, j + 1, s % 1000)
    cands = []
    want = MC.MinCut(n, use_viper=False, use_natmod=False).compute(g)
    nc = impls.natmod("rvmn_cut")
    if nc is not None:
        cn = MC.MinCut(n)
        cn._nc = nc

        def f_nat(k):
            for i in range(k):
                assert cn.compute(g) == want
        cands.append(("natmod", f_nat))
    try:
        from rvm_mp.coherence.mincut_viper import ma_step
        cv = MC.MinCut(n, use_natmod=False)
        cv.step = ma_step

        def f_v(k):
            for i in range(k):
                assert cv.compute(g) == want
        cands.append(("viper", f_v))
    except (ImportError, SyntaxError):
        pass
    cp = MC.MinCut(n, use_viper=False, use_natmod=False)

    def f_py(k):
        for i in range(k):
            assert cp.compute(g) == want
    cands.append(("portable", f_py))
    _emit_all(emit, "mincut 32 nodes", _race(cands, 3), "per whole cut", "viper")


# ---- frame CRC -------------------------------------------------------------------
def _crc(emit):
    from rvm_mp import frame as F
    data = bytes(range(256))
    cands = []
    nat = impls.natmod("rvmn_crc")
    if nat is not None:
        cc = nat.crc32

        def f_nat(n):
            for i in range(n):
                cc(data)
        cands.append(("natmod", f_nat))
    try:
        from binascii import crc32 as bc

        def f_b(n):
            for i in range(n):
                bc(data)
        cands.append(("binascii", f_b))
    except ImportError:
        pass
    cp = F.crc32_py

    def f_py(n):
        for i in range(n):
            cp(data)
    cands.append(("portable", f_py))
    _emit_all(emit, "crc32 256 bytes", _race(cands, 300), "per frame", "portable")


def bench(emit):
    _link(emit)
    _verify(emit)
    _p1(emit)
    _pick(emit)
    _mincut(emit)
    _crc(emit)
    w = impls.which()
    emit("hot paths on the natmod", sum(1 for v in w.values() if v == "natmod"),
         "count", " ".join("%s=%s" % kv for kv in sorted(w.items())))
