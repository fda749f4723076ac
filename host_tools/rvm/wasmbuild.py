"""WAT or C -> .wasm for agents: WebAssembly text with Debian wabt's
`wat2wasm`, C with Debian clang + lld (`c_to_wasm`). A source with a line `;; @page-size 1` gets its memory
rewritten to the custom-page-sizes encoding with 1-byte pages (wabt 1.0.32
cannot write it; rvm_mp/wasm/module.py set_page_size). The result is
validated with the kernel's own decoder before it is used."""
import os
import shutil
import subprocess
import tempfile

from rvm_mp.wasm.agent import validate
from rvm_mp.wasm.module import set_page_size


class WasmBuildError(Exception):
    pass


def wat_to_wasm(path, check_agent=True):
    if shutil.which("wat2wasm") is None:
        raise WasmBuildError("wat2wasm not found (Debian package wabt)")
    fd, out = tempfile.mkstemp(suffix=".wasm")
    os.close(fd)
    try:
        p = subprocess.run(["wat2wasm", path, "-o", out], capture_output=True, text=True)
        if p.returncode != 0:
            lines = (p.stderr or p.stdout).strip().splitlines()
            raise WasmBuildError("wat2wasm %s: %s" % (os.path.basename(path),
                                                      lines[0] if lines else "failed"))
        data = open(out, "rb").read()
    finally:
        os.remove(out)
    with open(path) as f:
        if any(ln.strip().startswith(";; @page-size 1") for ln in f):
            data = set_page_size(data, 0)
    return _checked(path, data, check_agent)


def _checked(path, data, check_agent):
    if check_agent:
        _m, why = validate(data)
        if why:
            raise WasmBuildError("%s: %s" % (os.path.basename(path), why))
    return data


HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_H = os.path.join(os.path.dirname(os.path.dirname(HERE)), "native", "wasm")
# clang for the kernel's interpreter: MVP features only (no bulk memory),
# no libc, no entry point; `main` exported; the stack first (STACK bytes,
# below the data). wasm-ld can only declare whole 64 KiB pages: the build
# rewrites the memory to 1-byte pages (custom-page-sizes), exactly the
# stack + data + bss (__heap_base, rounded up to 16), so a C agent's linear
# memory is as small as a WAT one's
STACK = 512
CLANG = ["clang", "--target=wasm32", "-mcpu=mvp", "-nostdlib", "-ffreestanding",
         "-O2", "-Wall", "-Werror", "-Wl,--no-entry", "-Wl,--export=main",
         "-Wl,--export=__heap_base", "-Wl,--stack-first",
         "-Wl,-z,stack-size=%d" % STACK,
         "-Wl,--initial-memory=65536", "-Wl,--max-memory=65536"]


def c_to_wasm(path, check_agent=True):
    """An agent in C (native/wasm/rvm_agent.h) -> validated .wasm bytes."""
    for tool in ("clang", "wasm-ld"):
        if shutil.which(tool) is None:
            raise WasmBuildError("%s not found (Debian packages clang and lld)" % tool)
    fd, out = tempfile.mkstemp(suffix=".wasm")
    os.close(fd)
    try:
        p = subprocess.run(CLANG + ["-I", AGENT_H, "-o", out, path],
                           capture_output=True, text=True)
        if p.returncode != 0:
            lines = [ln for ln in (p.stderr or p.stdout).strip().splitlines()
                     if "error" in ln] or (p.stderr or p.stdout).strip().splitlines()
            raise WasmBuildError("clang %s: %s" % (os.path.basename(path),
                                                   lines[0] if lines else "failed"))
        data = open(out, "rb").read()
    finally:
        os.remove(out)
    from rvm_mp.wasm.module import WasmError, load
    try:
        m = load(data)
        kind, gi = m.exports["__heap_base"]
        top = m.globs[gi][2]
    except (WasmError, KeyError, IndexError, TypeError) as e:
        raise WasmBuildError("%s: clang made no usable module (%s)"
                             % (os.path.basename(path), e))
    size = (top + 15) & ~15
    data = set_page_size(data, 0, (size, size))
    return _checked(path, data, check_agent)
