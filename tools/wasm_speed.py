"""The WebAssembly executor's speed against wasm3, for working on it:
`.venv/bin/python tools/wasm_speed.py [--rounds N]`.

The same module (tools/bench/wasm/cpu.wat: recursive fib(18), CRC-32 over
1 KiB) on the rvmn_wasm natmod under the MicroPython unix port and on wasm3
(PyPI pywasm3) under CPython. Rounds alternate: a MicroPython process
times 5 calls of each, then this process times 5 wasm3 calls of each; a
round's figure is its minimum. Prints the min and median over the rounds
of each time and of the natmod / wasm3 ratio (same round). Needs
`make natmods` (build/wasm, build/natmods/x64) and pywasm3 (`make bench`
installs it). `make bench` has the suite's figures; this is the quick
loop while changing native/rvmn_wasm.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIB = 18
CRC_N = 1024
CALLS = 5

CHILD = """
import sys, time
sys.path.insert(0, %r)
sys.path.append(%r)
from rvm_mp.wasm import interp, module
m = module.load(open(%r, "rb").read())
i = interp.Instance(m, mem_cap=65536, impl="natmod")
def call(name, args):
    i.call(m.export_func(name), args)
    assert i.run(10 ** 9) == interp.DONE
    r = i.results()
    return r[0] if r else None
call("fill", [%d])
assert call("fib", [%d]) == 2584
out = []
for name, args in (("fib", [%d]), ("crc32", [%d])):
    call(name, args)
    best = None
    for _ in range(%d):
        t = time.ticks_us()
        call(name, args)
        d = time.ticks_diff(time.ticks_us(), t)
        best = d if best is None or d < best else best
    out.append(best)
print("@@", call("crc32", [%d]) & 0xFFFFFFFF, out[0], out[1])
"""


def _module():
    idx = json.load(open(os.path.join(ROOT, "build", "wasm", "INDEX.json")))
    return os.path.join(ROOT, "build", "wasm", idx["bench"]["cpu"])


def natmod_round(path):
    exe = os.path.join(ROOT, ".venv", "bin", "micropython")
    src = CHILD % (ROOT, ROOT + "/build/natmods/x64", path, CRC_N, FIB, FIB, CRC_N,
                   CALLS, CRC_N)
    p = subprocess.run([exe, "-X", "heapsize=4M", "-c", src], capture_output=True,
                       text=True, timeout=300)
    for ln in p.stdout.splitlines():
        if ln.startswith("@@"):
            _, crc, f, c = ln.split()
            return int(crc), int(f), int(c)
    raise SystemExit("wasm_speed: the MicroPython run failed: %s"
                     % (p.stderr.strip().splitlines() or ["?"])[-1])


def wasm3_round(fib, crc):
    out = []
    for fn, arg in ((fib, FIB), (crc, CRC_N)):
        fn(arg)
        best = None
        for _ in range(CALLS):
            t = time.perf_counter_ns()
            fn(arg)
            d = (time.perf_counter_ns() - t) // 1000
            best = d if best is None or d < best else best
        out.append(best)
    return out


def _mm(v):
    v = sorted(v)
    return v[0], v[len(v) // 2]


def main(argv):
    rounds = 7
    if len(argv) == 2 and argv[0] == "--rounds":
        rounds = int(argv[1])
    try:
        import wasm3
    except ImportError:
        print("wasm_speed: pywasm3 not installed (make bench installs it)", file=sys.stderr)
        return 2
    path = _module()
    env = wasm3.Environment()
    rt = env.new_runtime(64 * 1024)
    rt.load(env.parse_module(open(path, "rb").read()))
    rt.find_function("fill")(CRC_N)
    fib = rt.find_function("fib")
    crc = rt.find_function("crc32")
    want = crc(CRC_N) & 0xFFFFFFFF
    rows = {"fib": ([], [], []), "crc32": ([], [], [])}
    for _ in range(rounds):
        got, nf, nc = natmod_round(path)
        if got != want:
            print("wasm_speed: natmod CRC %08x != wasm3 %08x" % (got, want), file=sys.stderr)
            return 1
        wf, wc = wasm3_round(fib, crc)
        for name, n, w in (("fib", nf, wf), ("crc32", nc, wc)):
            rows[name][0].append(n)
            rows[name][1].append(w)
            rows[name][2].append(n / w)
    print("%d rounds (min of %d calls each); min / median over rounds; the ratio"
          " of the mins, of the medians, and the median of the rounds' ratios"
          % (rounds, CALLS))
    for name, (n, w, r) in rows.items():
        nm, nd = _mm(n)
        wm, wd = _mm(w)
        print("%-6s natmod %5d / %5d us   wasm3 %5d / %5d us   natmod/wasm3 %.2f / %.2f"
              " / %.2f x" % (name, nm, nd, wm, wd, nm / wm, nd / wd, _mm(r)[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
