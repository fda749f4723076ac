"""Host tools for WebAssembly agents: `rvm bundle agent.wasm` validates the
module with the kernel's decoder before signing (one line, exit 1, no
traceback on a bad one); the WAT build applies `;; @page-size 1`; the
bundle loads in a kernel and runs."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from rvm_mp import bundle  # noqa: E402
from rvm_mp.wasm import module  # noqa: E402

KEY_HEX = bytes(range(32, 64)).hex()


def _rvm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "host_tools.rvm.cli"] + list(args),
                          cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def test_wat_build_page_size_and_validation(tmp_path):
    from host_tools.rvm.wasmbuild import wat_to_wasm, WasmBuildError
    data = wat_to_wasm(os.path.join(ROOT, "agents", "filter.wat"))
    m = module.load(data)
    assert m.mem == (128, 128, 0)
    bad = tmp_path / "bad.wat"
    bad.write_text('(module (import "rvm" "open" (func)) (func (export "main")))')
    try:
        wat_to_wasm(str(bad))
        raise AssertionError("not refused")
    except WasmBuildError as e:
        assert str(e) == "bad.wat: unknown import rvm.open"


def test_rvm_bundle_wasm(tmp_path):
    from host_tools.rvm.wasmbuild import wat_to_wasm
    good = tmp_path / "filter.wasm"
    good.write_bytes(wat_to_wasm(os.path.join(ROOT, "agents", "filter.wat")))
    p = _rvm("bundle", str(good), "--key-hex", KEY_HEX, "-o", str(tmp_path / "f.rvmb"),
             cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    data = (tmp_path / "f.rvmb").read_bytes()
    parsed = bundle.parse(data)
    assert parsed.ctype == bundle.CODE_WASM and parsed.manifest["type"] == "wasm"
    assert not bundle.errors.is_err(bundle.check(data, bytes(range(32, 64))))
    for content, why in ((good.read_bytes()[:-2], "invalid module"),
                         (b"\x00asm\x01\x00\x00\x00", "no export main")):
        bad = tmp_path / "bad.wasm"
        bad.write_bytes(content)
        p = _rvm("bundle", str(bad), "--key-hex", KEY_HEX, "-o", str(tmp_path / "b.rvmb"),
                 cwd=str(tmp_path))
        assert p.returncode != 0
        err = p.stderr.strip().splitlines()
        assert len(err) == 1 and why in err[0] and "Traceback" not in p.stderr, p.stderr
        assert not (tmp_path / "b.rvmb").exists()


def test_c_agent_build_and_bundle(tmp_path):
    # an agent written in C against native/wasm/rvm_agent.h (clang + lld)
    from host_tools.rvm.wasmbuild import c_to_wasm, WasmBuildError
    data = c_to_wasm(os.path.join(ROOT, "agents", "filter_c.c"))
    m = module.load(data)
    mn, mx, log2 = m.mem
    assert log2 == 0 and mn == mx and 512 < mn <= 1024 and mn % 16 == 0
    assert [n for _mod, n in m.imports] == ["handle", "restored", "recv", "send",
                                            "checkpoint"]
    good = tmp_path / "filter_c.wasm"
    good.write_bytes(data)
    p = _rvm("bundle", str(good), "--key-hex", KEY_HEX, "-o", str(tmp_path / "c.rvmb"),
             cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    parsed = bundle.parse((tmp_path / "c.rvmb").read_bytes())
    assert parsed.ctype == bundle.CODE_WASM and bytes(parsed.code()) == data
    # an import outside the ABI and a compile error: one line each
    for src, why in (('#include "rvm_agent.h"\n'
                      'RVM_IMPORT("open") int32_t rvm_open(void);\n'
                      'void main(void) { rvm_open(); }\n',
                      "bad.c: unknown import rvm.open"),
                     ("void main(void) { undeclared(); }\n", "clang bad.c: ")):
        bad = tmp_path / "bad.c"
        bad.write_text(src)
        try:
            c_to_wasm(str(bad))
            raise AssertionError("not refused")
        except WasmBuildError as e:
            assert str(e).startswith(why) and "\n" not in str(e), str(e)


def test_ps_table_shows_the_wasm_column_of_any_row():
    from rvm_mp.control_text import format_text
    txt = format_text({"partitions": [{"pid": 1, "name": "control"},
                                      {"pid": 4, "name": "filter",
                                       "wasm": "fuel=624 mem=128/128 natmod"}]})
    lines = txt.split("\r\n")
    assert lines[0].split() == ["PID", "NAME", "WASM"]
    assert lines[1].split() == ["1", "control", "-"]
    assert lines[2].split()[2:] == ["fuel=624", "mem=128/128", "natmod"]
