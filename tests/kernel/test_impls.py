# Alternate implementations and lazily loaded kernel modules, named and
# checked directly (the suites of their owners exercise them through the
# public entry points): viper/native code against its portable reference on
# the same vectors, and the modules the kernel loads on first use.
import array
import hashlib

import kt
from rvm_mp import errors, kinds
from rvm_mp.coherence import mincut
from rvm_mp.proofgate import P3_PREIMAGE

HEAP = "512K"


def _rng(seed):
    s = [seed]

    def nxt(n):
        s[0] = (s[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return s[0] % n
    return nxt


def test_mincut_viper_step_matches_portable():
    try:
        from rvm_mp.coherence import mincut_viper
    except (ImportError, SyntaxError):
        kt.skip("no viper emitter here: mincut runs the portable step")
    rnd = _rng(7)
    for n in (2, 3, 5, 8, 13):
        w = array.array("i", [0] * (n * n))
        for i in range(n):
            for j in range(i + 1, n):
                x = rnd(50)
                w[i * n + j] = x
                w[j * n + i] = x
        act = array.array("H", range(n))
        a1, a2 = bytearray(n), bytearray(n)
        k1 = array.array("i", [0] * n)
        k2 = array.array("i", [0] * n)
        order1, order2 = [], []
        while True:
            v1 = mincut.ma_step_py(w, n, act, n, a1, k1)
            v2 = mincut_viper.ma_step(w, n, act, n, a2, k2)
            assert v1 == v2, (n, v1, v2)
            if v1 < 0:
                break
            order1.append(v1)
            order2.append(v2)
        assert order1 == order2 and sorted(order1) == list(range(n))
        assert list(k1) == list(k2)


def test_switch_native_pick_is_installed_where_the_emitter_exists():
    from rvm_mp import runtime, scheduler
    try:
        from rvm_mp import switch_native
    except (ImportError, SyntaxError):
        kt.skip("no native emitter: the portable pick/step run")
    on = runtime.use_native(True)
    try:
        assert on
        # the C pick when its natmod loaded, else the native-emitter one
        assert scheduler.Scheduler.pick is (scheduler.natmod_pick() or switch_native.pick)
        assert runtime.Runtime.step is switch_native.step
    finally:
        runtime.use_native(False)
    assert scheduler.Scheduler.pick is scheduler.Scheduler.pick_py
    assert runtime.Runtime.step is runtime.Runtime.step_py


def test_control_text_formats_tables_and_pairs():
    from rvm_mp import control_text as CT
    t = CT.format_text([{"pid": 1, "name": "control", "state": "running"},
                        {"pid": 12, "name": "sensor", "state": "sleep"}])
    lines = t.strip().split("\n")
    assert lines[0].split()[0] == "PID" and "NAME" in lines[0]
    assert lines[2].split()[0:2] == ["12", "sensor"]
    # every row's columns line up under the header
    col = lines[0].index("NAME")
    assert lines[1][col:col + 7] == "control"
    t = CT.format_text({"boot": 3, "board": "seed-64k"})
    assert "boot: 3" in t and "board: seed-64k" in t
    assert "reboot" in "".join(CT.HELP)


def test_proof3_preimage_checked_and_witnessed():
    from rvm_mp import proof3
    import test_proofgate as TP
    h, g, root, ci = TP._setup()
    data = b"agent bundle bytes"
    good = (P3_PREIMAGE, hashlib.sha256(data).digest(), data)
    assert proof3.p3(g, 1, 4, 7, [good]) == 0
    f = TP._last(h)
    assert f[3] == kinds.PROOF_P3 and not f[4] & kinds.F_DENIED
    bad = (P3_PREIMAGE, hashlib.sha256(b"other").digest(), data)
    assert proof3.p3(g, 1, 4, 7, [good, bad]) is errors.EPROOF
    f = TP._last(h)
    assert f[4] & kinds.F_DENIED and (f[4] >> kinds.TIER_SHIFT) & 3 == 3
    assert f[8] == errors.EPROOF.code
    # the gate's own entry point delegates to the same code
    assert g.p3(1, 7, 4, [bad]) is errors.EPROOF
    assert proof3.p3(g, 1, 4, 7, []) is errors.EPROOF
    assert proof3.p3(g, 1, 4, 7, "junk") is errors.EINVAL
