# WebAssembly partitions in the runtime (both runtimes): the demo filter in
# WAT gives the same relay commands as agents/filter.py, a spinning module
# is preempted by fuel while other partitions run, wild pointers get errors
# (refused and witnessed as the partition), a trap faults the partition,
# a bad module is refused at load.
import struct

import agentkit as K
import kt
import wasmkit
from rvm_mp import bundle, errors, kinds

HEAP = "1M"

SENSOR = """
import struct
async def main(rvm):
    h = await rvm.handle("raw")
    for i, v in enumerate([700] * 5 + [100] * 5 + [900] * 3):
        await rvm.send(h, struct.pack("<HH", i, v))
        await rvm.sleep_ms(10)
"""
ACTUATOR = """
OUT = []
async def main(rvm):
    h = await rvm.handle("cmd")
    while True:
        src, msg = await rvm.recv(h)
        OUT.append(msg)
"""


def _wasm(name):
    idx = wasmkit.index()
    if name not in idx["agents"]:
        raise AssertionError("agent %s not built: %s" % (name, idx.get("skipped", {}).get(
            name, "see tools/wasm_corpus.py")))
    return wasmkit.read(idx["agents"][name])


def _load_wasm(rt, name, code, spec=None, man=None):
    m = {"name": name}
    if man:
        m.update(man)
    return rt.load(bundle.pack(code, m, kt.KEY,
                                 verdict=bundle.unverified(code)), spec or {}, 0, 0, name)


def _filter_run(code):
    """sensor -> filter -> actuator with the given filter code; the
    actuator's messages."""
    pf, k, rt = K.make()
    try:
        if type(code) is str:
            f = K.load(rt, "filter", code)
        else:
            f = _load_wasm(rt, "filter", code)
        assert type(f) is int, f
        s = K.load(rt, "sensor", SENSOR)
        a = K.load(rt, "act", ACTUATOR)
        sup = K.load(rt, "sup", "async def main(rvm):\n    await rvm.sleep_ms(100000)\n")
        assert rt.connect("raw", s, f, 4) == 0
        assert rt.connect("cmd", f, a, 4) == 0
        assert rt.connect("report", f, sup, 4) == 0
        rt.run(max_steps=400)
        c = rt.sched.task(f).coro
        return rt.sched.task(a).globals["OUT"], c.stat() if type(code) is not str else None
    finally:
        K.done(rt)


def test_wasm_filter_matches_python_filter():
    with open(kt.repo_root() + "/agents/filter.py") as fh:
        py = fh.read()
    want, _ = _filter_run(py)
    got, stat = _filter_run(_wasm("filter"))
    assert want[:2] == [struct.pack("<BH", 1, 700), struct.pack("<BH", 0, 250)]
    assert len(want) == 3
    assert got == want, (got, want)
    assert stat["mem"] == 128 and stat["cap"] == 128 and stat["calls"] > 20


def test_c_filter_matches_python_filter():
    # agents/filter_c.c, built by clang + lld against native/wasm/rvm_agent.h
    with open(kt.repo_root() + "/agents/filter.py") as fh:
        py = fh.read()
    want, _ = _filter_run(py)
    got, stat = _filter_run(_wasm("filter_c"))
    assert len(want) == 3
    assert got == want, (got, want)
    # 1-byte pages: 512 bytes of C stack + the data and bss, nothing more
    assert 512 < stat["mem"] == stat["cap"] <= 1024 and stat["calls"] > 20


def test_spinning_module_is_preempted():
    pf, k, rt = K.make()
    try:
        w = _load_wasm(rt, "spin", _wasm("spin"), man={"wasm": {"fuel": 500}})
        p = K.load(rt, "py", """
OUT = []
async def main(rvm):
    for i in range(20):
        OUT.append(i)
        await rvm.yield_()
""")
        assert type(w) is int and type(p) is int
        rt.run(max_steps=80)
        assert rt.sched.task(p).globals["OUT"] == list(range(20))
        c = rt.sched.task(w).coro
        s = c.stat()
        # preempted at every slice: fuel used is whole slices
        assert s["fuel"] >= 500 * 20 and s["fuel"] % 500 == 0
        assert s["calls"] == 0
        # `rvm ps` (the console's ps rows come from task_info)
        assert rt.task_info(w)["wasm"] == "fuel=%d mem=0/0 %s" % (s["fuel"], s["impl"])
        assert "wasm" not in rt.task_info(p)
        assert [e[6] for e in K.recs(rt.log, kinds.AGENT_EXIT)] == [p]
    finally:
        K.done(rt)


def test_wild_pointers_get_errors_not_memory():
    pf, k, rt = K.make()
    try:
        w = _load_wasm(rt, "wild", _wasm("wild"))
        other = K.load(rt, "o", "async def main(rvm):\n    await rvm.sleep_ms(100000)\n")
        assert rt.connect("out", w, other, 2) == 0
        rt.run(max_steps=60)
        ex = K.recs(rt.log, kinds.AGENT_EXIT)
        assert [(e[6], e[7]) for e in ex] == [(w, 40)], ex
        recs = K.recs(rt.log, kinds.SYSCALL_DENIED)
        mine = [r for r in recs if r[4] & 1 and r[5] == w]
        assert len(mine) >= 5, recs     # refused by the syscall table, as w
        assert not rt.outlog.get(w)     # the wild log range wrote nothing
        # nothing reached the other partition
        assert k.recv(other, rt.handle(other, "out")) is errors.EEMPTY
    finally:
        K.done(rt)


def test_trap_faults_the_partition():
    pf, k, rt = K.make()
    try:
        w = _load_wasm(rt, "trap", _wasm("trap"))
        rt.run(max_steps=20)
        assert K.recs(rt.log, kinds.AGENT_FAULT)
        assert K.recs(rt.log, kinds.FAULT_F1_RESTART)
    finally:
        K.done(rt)


def test_bad_modules_are_refused_at_load():
    pf, k, rt = K.make()
    try:
        good = _wasm("spin")
        for bad, man in ((good[:-3], None), (b"\x00asm\x01\x00\x00\x00\x01", None),
                         (good, {"entry": "nope"}),
                         (good, {"wasm": {"fuel": "lots"}})):
            r = _load_wasm(rt, "bad", bad, man=man)
            assert r is errors.EINVAL, r
        # an import outside the ABI
        imp = (b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00"
               b"\x02\x0c\x01\x03rvm\x04open\x00\x00"
               b"\x03\x02\x01\x00\x07\x08\x01\x04main\x00\x01\x0a\x04\x01\x02\x00\x0b")
        from rvm_mp.wasm import agent
        assert agent.validate(imp)[1] == "unknown import rvm.open"
        assert _load_wasm(rt, "imp", imp) is errors.EINVAL
        assert len(K.recs(rt.log, kinds.BUNDLE_REJECT)) == 5
    finally:
        K.done(rt)
