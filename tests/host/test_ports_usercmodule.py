"""ports/usercmodule: the user-C-module glue names every natmod source in
native/, and each source's firmware branch (the `#else` of
MICROPY_ENABLE_DYNRUNTIME: MP_REGISTER_MODULE) type-checks with gcc against
the MicroPython py/ headers of the natmod toolchain (mpy-cross's
mpconfigport.h as the port config, a qstr header generated from the names
the file uses). A real firmware link needs a port tree and its toolchain,
which this repository's machines do not have (ports/README.md)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import natmods  # noqa: E402

GLUE = os.path.join(ROOT, "ports", "usercmodule")


def _listed(path):
    return sorted(re.findall(r"/(rvmn_\w+)/(\1)\.c", open(path).read()))


def test_glue_lists_every_natmod_source():
    want = sorted((m, m) for m in natmods.modules())
    assert len(want) == 5
    assert _listed(os.path.join(GLUE, "rvmn", "micropython.mk")) == want
    assert _listed(os.path.join(GLUE, "rvmn", "micropython.cmake")) == want
    assert "rvmn/micropython.cmake" in open(os.path.join(GLUE, "micropython.cmake")).read()
    for m in natmods.modules():
        src = open(os.path.join(ROOT, "native", m, m + ".c")).read()
        assert "MP_REGISTER_MODULE(MP_QSTR_%s," % m in src


@pytest.mark.parametrize("mod", natmods.modules())
def test_firmware_branch_type_checks(mod, tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    mpy_dir = natmods.fetch(os.path.join(ROOT, "build", "natmods", "src"))
    src = os.path.join(ROOT, "native", mod, mod + ".c")
    gen = tmp_path / "genhdr"
    gen.mkdir()
    names = sorted(set(re.findall(r"MP_QSTR_(\w+)", open(src).read())))
    (gen / "qstrdefs.generated.h").write_text(
        "".join('QDEF1(MP_QSTR_%s, 0, 0, "%s")\n' % (n, n) for n in names))
    for h in ("root_pointers.h", "moduledefs.h", "compressed.data.h"):
        (gen / h).write_text("")
    p = subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-fsyntax-only",
                        "-I", str(tmp_path), "-I", mpy_dir,
                        "-I", os.path.join(mpy_dir, "mpy-cross"), src],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
