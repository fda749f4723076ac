"""Build the WebAssembly test corpus and the WAT agents: `python tools/wasm_corpus.py`.

* tests/wasm/*.wast (spec-test scripts written here from the WebAssembly
  specification) -> build/wasm/corpus/<name>/<name>.json + its .wasm files,
  by Debian wabt's `wast2json`. A script named `*.p1.wast` has its modules'
  memories rewritten to the custom-page-sizes encoding with page size 1
  (wabt 1.0.32 cannot write it yet: rvm_mp/wasm/module.py set_page_size).
* tests/wasm/agents/*.wat and agents/*.wat -> build/wasm/agents/*.wasm
  (host_tools/rvm/wasmbuild.py: wat2wasm, `;; @page-size 1`, validated);
  agents/*.c (agents written in C against native/wasm/rvm_agent.h) the same
  way with clang + lld (wasmbuild.c_to_wasm).
* tools/bench/wasm/*.wat -> build/wasm/bench/*.wasm (`make bench`).
* build/wasm/INDEX.json lists both; the kernel tests read it on both
  runtimes (MicroPython cannot run wabt).

`make test` installs wabt, clang and lld with apt-get when missing
(Makefile natmods-deps).
One line and exit 1 when a tool is missing or a source does not assemble.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SRC = os.path.join(ROOT, "tests", "wasm")
OUT = os.path.join(ROOT, "build", "wasm")


def _fresh(src, dst):
    return os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src)


def build(out=OUT):
    from rvm_mp.wasm.module import set_page_size
    for tool in ("wast2json", "wat2wasm"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s not found (Debian package wabt; `make test` installs it)"
                               % tool)
    index = {"corpus": [], "agents": {}}
    for src in sorted(glob.glob(os.path.join(SRC, "*.wast"))):
        name = os.path.basename(src)[:-5]
        d = os.path.join(out, "corpus", name.replace(".", "_"))
        js = os.path.join(d, name.replace(".", "_") + ".json")
        if not _fresh(src, js):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            p = subprocess.run(["wast2json", src, "-o", js], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("wast2json %s: %s" % (os.path.basename(src),
                                                         (p.stderr or p.stdout).strip().splitlines()[0]))
            if name.endswith(".p1"):
                for w in glob.glob(os.path.join(d, "*.wasm")):
                    data = open(w, "rb").read()
                    try:
                        data = set_page_size(data, 0)
                    except Exception:
                        continue   # a malformed module stays as it is
                    open(w, "wb").write(data)
        index["corpus"].append(os.path.relpath(js, out))
    adir = os.path.join(out, "agents")
    os.makedirs(adir, exist_ok=True)
    from host_tools.rvm.wasmbuild import AGENT_H, WasmBuildError, c_to_wasm, wat_to_wasm
    srcs = sorted(glob.glob(os.path.join(SRC, "agents", "*.wat")) +
                  glob.glob(os.path.join(ROOT, "agents", "*.wat")) +
                  glob.glob(os.path.join(ROOT, "agents", "*.c")))
    hdr = os.path.join(AGENT_H, "rvm_agent.h")
    no_clang = [t for t in ("clang", "wasm-ld") if shutil.which(t) is None]
    index["skipped"] = {}
    for src in srcs:
        name, ext = os.path.splitext(os.path.basename(src))
        dst = os.path.join(adir, name + ".wasm")
        if ext == ".c" and no_clang:
            # the rest of the corpus still builds; the C agents' tests say why
            index["skipped"][name] = "%s not found (Debian packages clang and lld; " \
                "`make natmods` installs them)" % no_clang[0]
            continue
        if not _fresh(src, dst) or (ext == ".c" and not _fresh(hdr, dst)):
            try:
                data = c_to_wasm(src) if ext == ".c" else wat_to_wasm(src)
            except WasmBuildError as e:
                raise RuntimeError(str(e))
            open(dst, "wb").write(data)
        index["agents"][name] = os.path.relpath(dst, out)
    # the bench modules (tools/bench/wasm/*.wat, `make bench`)
    bdir = os.path.join(out, "bench")
    os.makedirs(bdir, exist_ok=True)
    index["bench"] = {}
    for src in sorted(glob.glob(os.path.join(ROOT, "tools", "bench", "wasm", "*.wat"))):
        name = os.path.basename(src)[:-4]
        dst = os.path.join(bdir, name + ".wasm")
        if not _fresh(src, dst):
            try:
                data = wat_to_wasm(src, check_agent=False)
            except WasmBuildError as e:
                raise RuntimeError(str(e))
            open(dst, "wb").write(data)
        index["bench"][name] = os.path.relpath(dst, out)
    with open(os.path.join(out, "INDEX.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def main():
    try:
        idx = build()
    except RuntimeError as e:
        print("wasm corpus: %s" % e, file=sys.stderr)
        return 1
    print("wasm corpus: %d scripts, %d agents" % (len(idx["corpus"]), len(idx["agents"])))
    for name, why in sorted(idx["skipped"].items()):
        print("wasm corpus: agent %s not built: %s" % (name, why), file=sys.stderr)
    return 1 if idx["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
