"""WAT -> .wasm for agents written in WebAssembly text (Debian wabt's
`wat2wasm`). A source with a line `;; @page-size 1` gets its memory
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
    if check_agent:
        _m, why = validate(data)
        if why:
            raise WasmBuildError("%s: %s" % (os.path.basename(path), why))
    return data
