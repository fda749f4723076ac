# Measured boot: seven witnessed phases, attestation digest (stable for the
# same inputs, different when a module, the profile or a bundle changes),
# persisted boot counter, chain continuity, console hook, entry point.
import hashlib
import struct

import kt
import agentkit as K
from rvm_mp import kinds, errors, hal
from rvm_mp.boot import Boot, attest, measure_modules, extend
from rvm_mp.witness import unpack, chain_link, genesis_link

HEAP = "512K"

AG = "async def main(rvm):\n    while True:\n        await rvm.sleep_ms(20)\n"


def _mods(files):
    d = kt.tmpdir("mods")
    for name in files:
        with open(d + "/" + name, "wb") as f:
            f.write(files[name])
    return d


FILES = {"kernel.py": b"X = 1\n", "witness.py": b"Y = 2\n",
         "agent.mpy": b"M\x06..."}


def _boot(root=None, prof=None, bundles=None, mods=None, console=None):
    root = root or kt.tmpdir("boot")
    pf = K.FakePlatform(root)
    prof = prof or K.profile(agents=[{"name": "a"}, {"name": "b"}])
    if bundles is None:
        bundles = {"a": K.pack("a", AG), "b": K.pack("b", AG)}
    b = Boot(fs=root, platform=pf, profile=prof, bundles=bundles,
             module_root=mods or _mods(FILES), console=console)
    rt = b.run()
    return b, rt, pf, root


def test_seven_phases_and_attest_record():
    b, rt, pf, root = _boot()
    try:
        log = rt.log
        recs = [unpack(r) for r in log.iter_range(0)]
        assert recs[0][3] == kinds.BOOT_BEGIN and recs[0][0] == 0
        assert recs[0][7] == b.boot_no == 0
        ph = [r for r in recs if r[3] == kinds.BOOT_PHASE]
        assert [r[7] for r in ph] == [1, 2, 3, 4, 5, 6, 7]
        assert all(r[8] == 0 for r in ph)
        at = [r for r in recs if r[3] == kinds.BOOT_ATTEST]
        assert len(at) == 1
        assert struct.pack("<IIII", *at[0][7:11]) == b.digest[0:16]
        # phases in order: agents' records between phase 5 and phase 6
        i5 = recs.index(ph[4])
        i6 = recs.index(ph[5])
        loads = [i for i, r in enumerate(recs) if r[3] == kinds.BUNDLE_LOAD]
        assert len(loads) == 2 and all(i5 < i < i6 for i in loads)
        assert [n for n, r in b.started] == ["a", "b"]
        assert b.t_first_witness_ms >= 0
        # the digest is what attest() computes from the parts
        mods = measure_modules(b.module_root)
        assert len(mods) == 3
        prof_h = b.profile_hash
        bh = [hashlib.sha256(rt.bundle_data(n)).digest() for n in ("a", "b")]
        assert attest(mods, prof_h, bh) == b.digest
        d = hashlib.sha256(b"RVMA-v1").digest()
        for m in mods + [prof_h] + bh:
            d = hashlib.sha256(b"RVMA" + d + m).digest()
        assert d == b.digest
    finally:
        rt.shutdown()


def test_digest_stable_for_same_inputs_and_changes_with_any_input():
    mods = _mods(FILES)
    b1, rt1, _, _ = _boot(mods=mods)
    rt1.shutdown()
    b2, rt2, _, _ = _boot(mods=mods)
    rt2.shutdown()
    assert b1.digest == b2.digest
    # one byte of one kernel module
    f2 = dict(FILES)
    f2["witness.py"] = b"Y = 3\n"
    b3, rt3, _, _ = _boot(mods=_mods(f2))
    rt3.shutdown()
    assert b3.digest != b1.digest
    # the profile
    b4, rt4, _, _ = _boot(mods=mods, prof=K.profile(
        agents=[{"name": "a"}, {"name": "b"}], ram=131072))
    rt4.shutdown()
    assert b4.digest != b1.digest
    # a bundle
    b5, rt5, _, _ = _boot(mods=mods, bundles={
        "a": K.pack("a", AG + "# v2\n"), "b": K.pack("b", AG)})
    rt5.shutdown()
    assert b5.digest != b1.digest


def test_rejected_bundle_is_not_measured_and_never_runs():
    mods = _mods(FILES)
    prof1 = K.profile(agents=[{"name": "a"}])
    b1, rt1, _, _ = _boot(mods=mods, prof=prof1,
                          bundles={"a": K.pack("a", AG)})
    rt1.shutdown()
    prof2 = K.profile(agents=[{"name": "a"}, {"name": "evil"}])
    evil = K.pack("evil", "raise SystemExit(3)\n" + AG, key=bytes(32))
    b2, rt2, _, _ = _boot(mods=mods, prof=prof2,
                          bundles={"a": K.pack("a", AG), "evil": evil})
    try:
        assert b2.started[1] == ("evil", errors.ESIG)
        ph6 = [unpack(r) for r in rt2.log.query(kind=kinds.BOOT_PHASE)][5]
        assert ph6[8] == errors.ESIG.code   # phase 6 reports the refusal
        assert len(rt2.sched.tasks) == 1
        # measured: the profile differs, the bundle list does not
        pb = b2.profile_hash
        d0 = hashlib.sha256(b"RVMA-v1").digest()
        for m in measure_modules(mods):
            d0 = extend(d0, m)
        assert b2.digest == attest(None, pb, [hashlib.sha256(
            K.pack("a", AG)).digest()], d0)
    finally:
        rt2.shutdown()


def test_boot_counter_persists_and_chain_continues():
    root = kt.tmpdir("boot2")
    b1, rt1, pf, _ = _boot(root=root)
    rt1.run(max_ms=50)
    rt1.shutdown()
    last, link = rt1.log.head_link()
    b2, rt2, pf2, _ = _boot(root=root)
    try:
        assert b2.boot_no == 1 and b1.boot_no == 0
        first = last + 1
        rec = rt2.log.record(first)
        f = unpack(rec)
        assert f[3] == kinds.BOOT_BEGIN and f[2] == 1 and f[7] == 1
        assert rec[32:64] == chain_link(link, rec)
        cr = [unpack(r) for r in rt2.log.query(kind=kinds.CHAIN_RESTORED)]
        assert cr and cr[0][7] == first
        with open(root + "/boot.cnt", "rb") as fh:
            assert fh.read() == b"1"
    finally:
        rt2.shutdown()


def test_console_hook_starts_control_partition_first():
    try:
        from rvm_mp import control  # noqa: F401
    except ImportError:
        kt.skip("no control console module")
    con = hal.MemConsole()
    prof = K.profile(agents=[{"name": "a"}], console=True)
    b, rt, pf, root = _boot(prof=prof, bundles={"a": K.pack("a", AG)},
                            console=con)
    try:
        assert rt.control is not None and rt.control.pid == 1
        assert b.started == [("a", 2)]
        con.feed(b"ps\r")
        pf.input_after = 1
        rt.run(max_ms=300)
        out = con.take()
        assert b"control" in out and b"a" in out
        assert rt.log.query(kind=kinds.OP_COMMAND)
    finally:
        rt.shutdown()


def test_console_partition_waits_without_an_agent_api():
    # the console is kernel code: its one call (wait_input) is a small
    # kernel-private awaitable, reused for every wait, not a per-agent API
    try:
        from rvm_mp import control
    except ImportError:
        kt.skip("no control console module")
    con = hal.MemConsole()
    prof = K.profile(agents=[{"name": "a"}], console=True)
    b, rt, pf, root = _boot(prof=prof, bundles={"a": K.pack("a", AG)},
                            console=con)
    try:
        t = rt.sched.task(1)
        assert type(t.rvm) is control.InputWait
        assert type(rt.sched.task(2).rvm) is not control.InputWait
        for cmd, want in ((b"ps\r", b"control"), (b"help\r", b"ps"),
                          (b"ps\r", b"control")):
            con.feed(cmd)
            pf.input_after = 1
            rt.run(max_ms=250)
            assert want in con.take()
        assert len(rt.log.query(kind=kinds.OP_COMMAND)) >= 3
        assert type(t.rvm) is control.InputWait and t.restarts == 0
    finally:
        rt.shutdown()


def test_main_run_seals_on_shutdown():
    from rvm_mp import main
    from rvm_mp.witness_store import WitnessStore
    root = kt.tmpdir("main")
    pf = K.FakePlatform(root)
    prof = K.profile(agents=[{"name": "a"}])
    b = main.run(fs=root, platform=pf, profile=prof,
                 bundles={"a": K.pack("a", AG)}, max_ms=120)
    rt = b.runtime
    assert rt.stop_reason == 1
    st = WitnessStore(root + "/witness", 64, genesis_link(kt.DEVICE_ID))
    nxt, link = st.head()
    tail = st.read(nxt - 1)
    assert tail[10] == kinds.SEAL
    assert st.read(nxt - 2)[10] == kinds.SHUTDOWN
    prev = genesis_link(kt.DEVICE_ID)
    n = 0
    for rec in st.iter_range(0, nxt):
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
        n += 1
    assert n == nxt and rt.log.query(kind=kinds.EPOCH_SUMMARY)
    st.close()


def test_main_cli_arguments():
    from rvm_mp import main
    assert main.main(["--help"]) == 0
    assert main.main(["--bogus"]) == 2
    assert main.main(["--board", "no-such-board", "--fs",
                      kt.tmpdir("cli")]) == 2
