# The WebAssembly interpreter (rvm_mp/wasm): the same module (recursive fib,
# CRC-32 over 1 KiB) on every executor of this runtime, interleaved repeats,
# min and median. MicroPython: the rvmn_wasm natmod and the portable
# executor. CPython: the portable executor and wasm3 (PyPI pywasm3, when
# installed: `make bench` installs it), and the natmod measured in a
# MicroPython subprocess of this same run for the natmod / wasm3 ratio
# (target: within 3x of wasm3). Also: fuel-slice overhead (the same call
# resumed every 1000 ops vs one run), rvmn_wasm code size per arch, heap per
# WASM agent.
import sys
import json

sys.path.append(__file__.rsplit("/", 3)[0] + "/build/natmods/x64")

from benchutil import ticks_us, ticks_diff  # noqa: E402
from rvm_mp.wasm import interp, module  # noqa: E402

ROOT = __file__.rsplit("/", 3)[0]
REPEATS = 5
FIB = 18
CRC_N = 1024


def _wasm(name):
    idx = json.load(open(ROOT + "/build/wasm/INDEX.json"))
    with open(ROOT + "/build/wasm/" + idx[name[0]][name[1]], "rb") as f:
        return f.read()


def _inst(m, impl):
    i = interp.Instance(m, mem_cap=65536, impl=impl)
    i.call(m.export_func("fill"), [CRC_N])
    assert i.run(10 ** 8) == interp.DONE
    return i


def _call(i, name, args, fuel=10 ** 9):
    i.call(i.m.export_func(name), args)
    while True:
        st = i.run(fuel)
        if st != interp.FUEL:
            break
    assert st == interp.DONE
    return i.results()[0]


def _time(fn):
    t = ticks_us()
    fn()
    return ticks_diff(ticks_us(), t)


def race(cands):
    runs = {}
    for name, fn in cands:
        fn()
        runs[name] = []
    for _ in range(REPEATS):
        for name, fn in cands:
            runs[name].append(_time(fn))
    out = {}
    for name in runs:
        v = sorted(runs[name])
        out[name] = (v[0], v[len(v) // 2])
    return out


def local_cands(m):
    impls = ["portable"]
    if interp.native() is not None:
        impls.insert(0, "natmod")
    fib = []
    crc = []
    for impl in impls:
        i = _inst(m, impl)
        assert _call(i, "fib", [FIB]) == 2584
        fib.append((impl, lambda i=i: _call(i, "fib", [FIB])))
        crc.append((impl, lambda i=i: _call(i, "crc32", [CRC_N])))
    return fib, crc


def wasm3_cands(data):
    try:
        import wasm3
    except ImportError:
        return None
    env = wasm3.Environment()
    rt = env.new_runtime(64 * 1024)
    mod = env.parse_module(data)
    rt.load(mod)
    rt.find_function("fill")(CRC_N)
    fib = rt.find_function("fib")
    crc = rt.find_function("crc32")
    assert fib(FIB) == 2584
    return ("wasm3", lambda: fib(FIB)), ("wasm3", lambda: crc(CRC_N)), crc(CRC_N)


NATMOD_SCRIPT = """
import sys
sys.path.insert(0, %r); sys.path.insert(0, %r)
import kb_wasm as K
from rvm_mp.wasm import module
m = module.load(K._wasm(("bench", "cpu")))
fib, crc = K.local_cands(m)
r = K.race([fib[0], crc[0]][:1]) ; r2 = K.race([crc[0]])
print("@@NAT", fib[0][0], r[fib[0][0]][0], r2[crc[0][0]][0])
"""


def _natmod_in_micropython():
    import os
    import subprocess
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    p = subprocess.run([exe, "-c", NATMOD_SCRIPT % (ROOT, ROOT + "/tools/bench")],
                       capture_output=True, text=True, timeout=600)
    for ln in p.stdout.splitlines():
        if ln.startswith("@@NAT"):
            _, impl, f, c = ln.split()
            return impl, float(f), float(c)
    return None


def bench(emit):
    data = _wasm(("bench", "cpu"))
    m = module.load(data)
    fib, crc = local_cands(m)
    is_mp = sys.implementation.name == "micropython"
    w3 = None if is_mp else wasm3_cands(data)
    if w3 is not None:
        fib.append(w3[0])
        crc.append(w3[1])
        assert w3[2] & 0xFFFFFFFF == _call(_inst(m, "portable"), "crc32", [CRC_N])
    for title, cands in (("fib(%d)" % FIB, fib), ("crc32 %d B" % CRC_N, crc)):
        res = race(cands)
        for name in res:
            emit("wasm %s: %s (min)" % (title, name), res[name][0], "us")
            emit("wasm %s: %s (median)" % (title, name), res[name][1], "us")
        if "natmod" in res:
            emit("wasm %s: natmod / portable speed" % title,
                 res["portable"][0] / res["natmod"][0], "x")
    # fuel slices: the same fib resumed every 1000 ops vs one run call
    impl = fib[0][0]
    i = _inst(m, impl)
    r = race([("one run", lambda: _call(i, "fib", [FIB])),
              ("slices of 1000", lambda: _call(i, "fib", [FIB], 1000))])
    emit("wasm fuel: fib(%d) in slices of 1000 / one run (%s)" % (FIB, impl),
         r["slices of 1000"][0] / r["one run"][0], "x")
    _call(i, "fib", [FIB])
    emit("wasm fuel: ops for fib(%d)" % FIB, i.fuel_used // (REPEATS * 2 + 3), "ops")
    if is_mp:
        import gc
        from rvm_mp.wasm import agent
        filt = module.load(_wasm(("agents", "filter")))
        gc.collect()
        a0 = gc.mem_alloc()
        w = agent.WasmAgent(filt, filt.export_func("main"), [0] * 6, bytearray(),
                            None, 2000, 4096)
        gc.collect()
        emit("wasm RAM per agent (filter, 128 B memory, %s)" % w.inst.impl,
             gc.mem_alloc() - a0, "B", "instance: stacks, frames, memory, state")
        gc.collect()
        a0 = gc.mem_alloc()
        filt2 = module.load(_wasm(("agents", "filter")))
        gc.collect()
        emit("wasm RAM per loaded module (filter, translated)", gc.mem_alloc() - a0, "B")
        del filt2
    else:
        for arch in ("x64", "armv6m", "armv7m", "armv7emsp", "armv7emdp"):
            try:
                nm = json.load(open(ROOT + "/build/natmods/%s/NATMODS.json" % arch))
                emit("rvmn_wasm code size %s" % arch, nm["modules"]["rvmn_wasm"]["text"],
                     "B")
            except (OSError, KeyError, ValueError):
                pass
        nat = _natmod_in_micropython()
        if nat is not None and w3 is not None:
            res = race([w3[0]])
            res2 = race([w3[1]])
            emit("wasm fib(%d): natmod (MicroPython) / wasm3 (CPython) time" % FIB,
                 nat[1] / res["wasm3"][0], "x", "target <= 3")
            emit("wasm crc32 %d B: natmod (MicroPython) / wasm3 (CPython) time" % CRC_N,
                 nat[2] / res2["wasm3"][0], "x", "target <= 3")
