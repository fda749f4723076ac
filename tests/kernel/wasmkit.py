# Runs the WebAssembly corpus (spec-test scripts, tests/wasm/*.wast, made into
# JSON + .wasm by tools/wasm_corpus.py) on one executor, on either runtime.
import json

import kt
from rvm_mp.wasm import interp, module

OUT = kt.repo_root() + "/build/wasm"
FUEL = 2000000


def index():
    try:
        with open(OUT + "/INDEX.json") as f:
            return json.load(f)
    except OSError:
        raise AssertionError("build/wasm/INDEX.json missing: run tools/wasm_corpus.py "
                             "(the test session runs it first)")


def read(rel):
    with open(OUT + "/" + rel, "rb") as f:
        return f.read()


def _val(v):
    return int(v["value"])


def invoke(inst, field, args, fuel=FUEL):
    """("ok", [values]) or ("trap", name) or ("fuel", None)."""
    fi = inst.m.export_func(field)
    if fi is None:
        raise AssertionError("no export %s" % field)
    inst.call(fi, args)
    st = inst.run(fuel)
    if st == interp.DONE:
        return "ok", inst.results()
    if st == interp.TRAP:
        return "trap", inst.trap_name()
    if st == interp.HOST:
        return "host", inst.regs[interp.R_ARG]
    return "fuel", None


def run_script(rel, impl, mem_cap=65536):
    """Run one corpus script; returns (commands passed, [failure lines])."""
    d = rel.rsplit("/", 1)[0]
    with open(OUT + "/" + rel) as f:
        script = json.load(f)
    inst = None
    named = {}
    ok = 0
    bad = []
    for c in script["commands"]:
        ty = c["type"]
        line = c.get("line")
        try:
            if ty == "module":
                m = module.load(read(d + "/" + c["filename"]))
                inst = interp.Instance(m, mem_cap=mem_cap, impl=impl)
                if c.get("name"):
                    named[c["name"]] = inst
                ok += 1
                continue
            if ty in ("assert_invalid", "assert_malformed"):
                if c.get("module_type") != "binary":
                    continue
                try:
                    module.load(read(d + "/" + c["filename"]))
                except module.WasmError:
                    ok += 1
                    continue
                bad.append("%s:%s: %s module loaded (%s)" % (rel, line, ty, c.get("text")))
                continue
            if ty in ("assert_unlinkable", "assert_uninstantiable"):
                try:
                    m = module.load(read(d + "/" + c["filename"]))
                    interp.Instance(m, mem_cap=mem_cap, impl=impl)
                except (module.WasmError, interp.LinkError):
                    ok += 1
                    continue
                bad.append("%s:%s: %s module instantiated" % (rel, line, ty))
                continue
            act = c.get("action")
            if act is None:
                continue
            target = named.get(act.get("module"), inst) if act.get("module") else inst
            args = [_val(a) for a in act.get("args", ())]
            kind, res = invoke(target, act["field"], args)
            if ty == "action":
                ok += 1
            elif ty == "assert_return":
                want = [_val(v) for v in c["expected"]]
                if kind == "ok" and res == want:
                    ok += 1
                else:
                    bad.append("%s:%s: %s(%s) -> %s %s, want %s" % (
                        rel, line, act["field"], args, kind, res, want))
            elif ty in ("assert_trap", "assert_exhaustion"):
                text = c["text"]
                if kind == "trap" and (res.startswith(text) or text.startswith(res)
                                       or (ty == "assert_exhaustion" and "exhausted" in res)):
                    ok += 1
                else:
                    bad.append("%s:%s: %s(%s) -> %s %s, want trap %s" % (
                        rel, line, act["field"], args, kind, res, text))
        except Exception as e:
            bad.append("%s:%s: %s raised %s: %s" % (rel, line, ty, type(e).__name__, e))
    return ok, bad
