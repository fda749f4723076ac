# The WebAssembly interpreter: the shared corpus (tests/wasm/*.wast, spec-test
# scripts assembled by wabt's wast2json before the session) on every
# executor of this runtime (CPython: portable; MicroPython: the rvmn_wasm
# natmod and portable), resumable fuel, and fuzzed modules that must never
# raise anything but a WasmError / LinkError or crash the interpreter.
import kt
import wasmkit
from rvm_mp.wasm import interp, module

HEAP = "1M"


def _impls():
    out = ["portable"]
    if interp.native() is not None:
        out.insert(0, "natmod")
    return out


def _corpus(impl):
    total = 0
    bad = []
    for rel in wasmkit.index()["corpus"]:
        ok, b = wasmkit.run_script(rel, impl)
        total += ok
        bad += b
    assert not bad, "\n".join(bad[:20])
    assert total > 300, total     # every script ran
    return total


def test_corpus_portable():
    _corpus("portable")


def test_corpus_natmod():
    if interp.native() is None:
        raise kt.SkipTest("no rvmn_wasm natmod on this runtime")
    assert _corpus("natmod") == _corpus("portable")


def _words(m, name):
    md = m.meta()
    fi = m.export_func(name)
    start = md[fi * 6]
    ends = sorted(md[i * 6] for i in range(len(m.funcs)) if md[i * 6] > start)
    return list(m.code[start:ends[0] if ends else len(m.code)])


def test_superinstructions_are_made():
    # tests/wasm/fused.wast runs in the corpus above; here: the translation
    # made the superinstruction each of its functions is about (else that
    # corpus would not test it)
    idx = wasmkit.index()
    js = [r for r in idx["corpus"] if "fused" in r][0]
    import json
    with open(wasmkit.OUT + "/" + js) as f:
        cmds = json.load(f)["commands"]
    wasm = [c["filename"] for c in cmds if c["type"] == "module"][0]
    m = module.load(wasmkit.read(js.rsplit("/", 1)[0] + "/" + wasm))
    want = {"d2": 0xD2, "d3": 0xD3, "d5": 0xD5, "db": 0xDB, "d6": 0xD6,
            "d6_top": 0xD6, "d6_val": 0xD6, "d7": 0xD7, "d8": 0xD8, "d8_val": 0xD8,
            "d9": 0xD9, "d9_mul": 0xD9, "da": 0xDA, "da_cmp": 0xDA, "da_neg": 0xDA}
    for name, op in want.items():
        assert _words(m, name)[0:1] != [] and op in _words(m, name), (name, _words(m, name))
    # the CRC step: seven dispatches per bit
    w = _words(m, "crc8")
    loop = w[w.index(0xD0):]
    assert [loop[0], loop[4], loop[7], loop[12], loop[13], loop[16], loop[21]] == \
        [0xD0, 0xD9, 0xDA, 0x71, 0xD5, 0xD2, 0xD6], loop


def test_natmod_loaded_on_micropython():
    import sys
    if sys.implementation.name == "micropython":
        assert interp.native() is not None, "build/natmods/x64/rvmn_wasm.mpy not loaded"


def _fib_module():
    idx = wasmkit.index()
    for rel in idx["corpus"]:
        if rel.endswith("control.json"):
            return module.load(wasmkit.read(rel.rsplit("/", 1)[0] + "/control.0.wasm"))
    raise AssertionError("control corpus missing")


def test_fuel_resumable_same_result_and_fuel():
    m = _fib_module()
    fi = m.export_func("fib")
    for impl in _impls():
        one = interp.Instance(m, impl=impl)
        one.call(fi, [12])
        assert one.run(10 ** 7) == interp.DONE
        sliced = interp.Instance(m, impl=impl)
        sliced.call(fi, [12])
        n = 0
        while True:
            st = sliced.run(7)
            n += 1
            if st != interp.FUEL:
                break
        assert st == interp.DONE
        assert sliced.results() == one.results() == [144]
        assert sliced.fuel_used == one.fuel_used
        assert n == (one.fuel_used + 6) // 7


def test_spin_is_preempted_by_fuel():
    m = _fib_module()
    for impl in _impls():
        i = interp.Instance(m, impl=impl)
        i.call(m.export_func("spin"))
        for _ in range(5):
            assert i.run(1000) == interp.FUEL
        assert i.fuel_used == 5000


def test_same_fuel_on_every_executor():
    m = _fib_module()
    used = []
    for impl in _impls():
        i = interp.Instance(m, impl=impl)
        i.call(m.export_func("fac"), [15])
        assert i.run(10 ** 6) == interp.DONE
        used.append((i.fuel_used, i.results()))
    assert len(set(repr(u) for u in used)) == 1, used


def _rng(seed):
    s = [seed & 0xFFFFFFFF or 1]

    def nxt(n):
        x = s[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        s[0] = x
        return x % n
    return nxt


def _try(data, impl):
    """Load, instantiate and run every export briefly: an outcome string;
    any exception other than the refusals fails the test."""
    try:
        m = module.load(data)
    except module.WasmError:
        return "invalid"
    try:
        inst = interp.Instance(m, mem_cap=4096, impl=impl)
    except interp.LinkError:
        return "unlinkable"
    out = []
    for name in sorted(m.exports):
        k, fi = m.exports[name]
        if k != 0 or m.funcs[fi].imp:
            continue
        inst.call(fi, [1] * m.funcs[fi].nparams)
        st = inst.run(2000)
        out.append((st, inst.results() if st == interp.DONE else inst.regs[interp.R_ARG]))
    return repr(out)


def _seeds():
    out = []
    for rel in wasmkit.index()["corpus"]:
        d = rel.rsplit("/", 1)[0]
        for n in ("control.0.wasm", "memory.0.wasm", "i64.0.wasm"):
            if d.endswith(n.split(".")[0]):
                out.append(wasmkit.read(d + "/" + n))
    return out


def test_fuzz_mutated_modules():
    rnd = _rng(1234)
    seeds = _seeds()
    assert len(seeds) == 3
    impls = _impls()
    seen = {}
    for k in range(150):
        b = bytearray(seeds[k % 3])
        for _ in range(1 + rnd(4)):
            p = rnd(len(b))
            r = rnd(3)
            if r == 0:
                b[p] = rnd(256)
            elif r == 1:
                b[p] ^= 1 << rnd(8)
            else:
                b = b[:p] + b[p + 1 + rnd(3):]
        outs = [_try(bytes(b), impl) for impl in impls]
        assert len(set(outs)) == 1, (k, outs)
        seen[outs[0][:8]] = 1
    assert "invalid" in seen and len(seen) > 1


def test_fuzz_random_bytes():
    rnd = _rng(99)
    for k in range(300):
        n = rnd(64)
        body = bytes(rnd(256) for _ in range(n))
        data = b"\x00asm\x01\x00\x00\x00" + body if k % 2 else body
        for impl in _impls():
            _try(data, impl)


def test_page_size_rewrite_and_cap():
    # 64 KiB pages under a 1 KiB profile cap: a data segment past the cap
    # does not link; a one-page memory has its first KiB, then traps, and
    # memory.size still says one page
    idx = wasmkit.index()
    rel = [r for r in idx["corpus"] if r.endswith("memory.json")][0]
    d = rel.rsplit("/", 1)[0]
    m = module.load(wasmkit.read(d + "/memory.0.wasm"))
    for impl in _impls():
        kt.raises(interp.LinkError, interp.Instance, m, 1024, 512, 64, impl)
    m.data = m.data[:1]
    for impl in _impls():
        i = interp.Instance(m, mem_cap=1024, impl=impl)
        assert len(i.mem) == 1024 and i.mem_size() == 1024
        i.call(m.export_func("i32.load"), [1020])
        assert i.run(100) == interp.DONE
        i.call(m.export_func("i32.load"), [1021])
        assert i.run(100) == interp.TRAP
        i.call(m.export_func("size"))
        assert i.run(100) == interp.DONE and i.results() == [1]
        i.call(m.export_func("grow"), [1])
        assert i.run(100) == interp.DONE and i.results() == [0xFFFFFFFF]
    src = [r for r in idx["corpus"] if r.endswith("pages_p1.json")][0]
    m = module.load(wasmkit.read(src.rsplit("/", 1)[0] + "/pages_p1.0.wasm"))
    assert m.mem == (100, 300, 0)
    for impl in _impls():
        i = interp.Instance(m, mem_cap=200, impl=impl)
        assert len(i.mem) == 200
        i.call(m.export_func("grow"), [100])
        assert i.run(100) == interp.DONE and i.results() == [100]
        i.call(m.export_func("grow"), [1])
        assert i.run(100) == interp.DONE and i.results() == [0xFFFFFFFF]
        i.call(m.export_func("load"), [200])
        assert i.run(100) == interp.TRAP and i.trap_name() == "out of bounds memory access"
