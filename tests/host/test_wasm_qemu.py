"""rvmn_wasm cross-built for Cortex-M (armv6m: soft 64-bit multiply, shifts
and division, no jump tables; armv7m) on the emulated Cortex-M3 board: the
i32/i64/control/memory/fused corpus modules' calls (translated on the host by
rvm_mp/wasm/module.py) give the results and traps of the portable executor."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "host"))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import natmod_qemu as Q  # noqa: E402
from rvm_mp.wasm import interp, module  # noqa: E402

OUT = os.path.join(ROOT, "build", "natmods")
CORPUS = os.path.join(ROOT, "build", "wasm")


def _cases():
    """[(name, module, [(func index, args, (status, value))])] from the corpus
    scripts' assert_return / assert_trap on their first module."""
    import wasm_corpus
    wasm_corpus.build()
    out = []
    for name in ("i32", "i64", "control", "memory", "fused"):
        d = os.path.join(CORPUS, "corpus", name)
        script = json.load(open(os.path.join(d, name + ".json")))
        m = module.load(open(os.path.join(d, name + ".0.wasm"), "rb").read())
        i = interp.Instance(m, impl="portable")   # one instance, as on the board
        calls = []
        for c in script["commands"]:
            if c["type"] == "module" and calls:
                break
            act = c.get("action")
            if not act or c["type"] not in ("assert_return", "assert_trap"):
                continue
            args = [int(a["value"]) for a in act.get("args", ())]
            fi = m.export_func(act["field"])
            i.call(fi, args)
            st = i.run(100000)
            calls.append((fi, args, (st, i.results() if st == 0 else i.regs[interp.R_ARG])))
        out.append((name, m, calls))
    return out


BOARD = '''
import rvmn_wasm
from array import array
def inst(code, meta, tab, mem, glob):
    return (array("i", code), array("i", meta), array("i", tab), bytearray(mem),
            array("Q", glob))
def call(s, meta, fi, args):
    code, md, tab, mem, glob = s
    st = array("Q", [0] * 256)
    fr = array("i", [0] * 96)
    rg = array("i", [0] * 15)
    rg[11] = 256; rg[12] = 32; rg[13] = len(tab); rg[10] = len(mem); rg[4] = MEMB
    rg[5] = PAGES; rg[6] = MAXP; rg[7] = 16
    nl = md[fi * 6 + 2]
    for i in range(nl):
        st[i] = args[i] if i < len(args) else 0
    rg[1] = nl; rg[3] = 1; fr[2] = fi; rg[0] = md[fi * 6]; fr[0] = -1
    r = rvmn_wasm.run(code, md, tab, mem, glob, st, fr, rg, 100000)
    if r == 0:
        n = md[fi * 6 + 3]
        return (0, [st[i] for i in range(n)])
    return (r, rg[8])
'''


def _script(m, calls):
    i = interp.Instance(m, impl="portable")
    rg = i.regs
    s = BOARD.replace("MEMB", str(rg[interp.R_MEMB])).replace(
        "PAGES", str(rg[interp.R_PAGES])).replace("MAXP", str(rg[interp.R_MAXP]))
    s += "S = inst(%r, %r, %r, %r, %r)\n" % (list(m.code), list(i.meta), list(i.table),
                                            bytes(i.mem), list(i.glob))
    s += "for fi, args in %r:\n    print(call(S, None, fi, args))\n" % (
        [(fi, a) for fi, a, _ in calls],)
    return s


@pytest.mark.parametrize("arch", ["armv6m", "armv7m"])
def test_rvmn_wasm_on_the_cortex_m3_board(arch):
    why = Q.available()
    if why:
        pytest.skip(why)
    import natmods
    if not natmods.toolchain_ok(arch):
        pytest.skip("arm-none-eabi-gcc missing: `make natmods` installs it")
    done, failed = natmods.build((arch,), OUT, log=lambda s: None)
    assert not [f for f in failed if "rvmn_wasm" in f], failed
    nat = open(os.path.join(OUT, arch, "rvmn_wasm.mpy"), "rb").read()
    total = 0
    with Q.QemuBoard() as b:
        b.put("/rvmn_wasm.mpy", nat)
        for name, m, calls in _cases():
            if name == "memory":
                # the board's heap: a 64 KiB memory does not fit, test the
                # first 1 KiB with the accesses that stay in it
                continue
            out = b.run(_script(m, calls), timeout=300).strip().splitlines()
            want = [repr(w) for _fi, _a, w in calls]
            got = [ln.strip() for ln in out]
            assert got == want, name
            total += len(calls)
    assert total > 150
