"""The C natmods as built by `make natmods` (tools/natmods.py): arch and
size of every cross-built .mpy, version safety (built from the 1.23 headers,
loads on the 1.29 unix port; refused cleanly, with a fallback, when the mpy
sub-version or the arch does not match), and `rvm build` shipping them.

`make test` builds them first; run alone, the module builds the x64 ones
(and the Cortex-M ones when arm-none-eabi-gcc is there) itself.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import natmods  # noqa: E402

from host_tools.rvm import build as rbuild, cli  # noqa: E402

OUT = os.path.join(ROOT, "build", "natmods")
MODS = ("rvmn_crc", "rvmn_cut", "rvmn_link", "rvmn_p1", "rvmn_pick", "rvmn_wasm")
# mpy_ld arch numbers (py/persistentcode.h MP_NATIVE_ARCH_*)
ARCH_NO = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "armv7emdp": 8}
# code budget per natmod (text bytes): they stay small
TEXT_MAX = {"rvmn_link": 3000, "rvmn_pick": 2300, "rvmn_cut": 1900,
            "rvmn_p1": 1100, "rvmn_crc": 400, "rvmn_wasm": 5000}
# x64 (the unix port, no board): the WebAssembly executor is built for
# speed there (threaded dispatch, -O2, its i32 op inlined per
# superinstruction; native/rvmn_wasm/Makefile)
TEXT_MAX_X64 = {"rvmn_wasm": 16384}


def _built(arch):
    d = os.path.join(OUT, arch)
    if not all(os.path.exists(os.path.join(d, m + ".mpy")) for m in MODS):
        if arch != "x64" and not shutil.which("arm-none-eabi-gcc"):
            pytest.skip("arm-none-eabi-gcc missing: `make natmods` installs it")
        done, failed = natmods.build((arch,), OUT, log=lambda s: None)
        assert not failed, failed
    return d


def _mp():
    return os.path.join(os.path.dirname(sys.executable), "micropython")


def _run_mp(code, path_dirs, cwd):
    pre = "import sys\n" + "".join("sys.path.insert(0, %r)\n" % d for d in path_dirs)
    p = subprocess.run([_mp(), "-c", pre + code], capture_output=True, text=True,
                       cwd=cwd, timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("arch", sorted(ARCH_NO))
def test_every_natmod_built_for_its_arch_and_small(arch):
    d = _built(arch)
    rep = json.load(open(os.path.join(d, "NATMODS.json")))
    assert rep["arch"] == arch and rep["source"] == "mpy-cross-v6-3"
    for m in MODS:
        data = open(os.path.join(d, m + ".mpy"), "rb").read()
        # 'M', mpy version 6, arch << 2 | sub-version 3
        assert data[0:2] == b"M\x06", m
        assert data[2] == (ARCH_NO[arch] << 2) | 3, (m, arch, data[2])
        text = rep["modules"][m]["text"]
        top = TEXT_MAX_X64.get(m, TEXT_MAX[m]) if arch == "x64" else TEXT_MAX[m]
        assert 0 < text <= top, (m, arch, text)
        assert rep["modules"][m]["mpy"] == len(data)


def test_sources_are_the_123_headers_and_load_on_129(tmp_path):
    d = _built("x64")
    mpy_dir = natmods.fetch(os.path.join(OUT, "src"))
    cfg = open(os.path.join(mpy_dir, "py", "mpconfig.h")).read()
    assert "#define MICROPY_VERSION_MINOR 23" in cfg
    code = ("import rvmn_link, rvmn_crc\n"
            "o = bytearray(32)\n"
            "rvmn_link.digest3_into(b'a', b'b', b'xcx', 1, 1, o)\n"
            "print(sys.implementation.version[:2], o.hex(), rvmn_crc.crc32(b'123456789'))\n")
    rc, out = _run_mp(code, [d], str(tmp_path))
    assert rc == 0, out
    assert out.split("\n")[0] == "(1, 29) %s %d" % (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 0xCBF43926)


def _kernel_with(tmp_path, name, data):
    nd = tmp_path / "nat"
    nd.mkdir()
    (nd / (name + ".mpy")).write_bytes(data)
    code = ("from rvm_mp import impls, witness\n"
            "print('which', impls.which()['link'])\n"
            "log = witness.WitnessLog(bytes(16), ring=4)\n"
            "[log.emit(1) for i in range(9)]\n"
            "print('head', log.head_link()[0])\n")
    return _run_mp(code, [str(nd), ROOT], str(tmp_path))


def test_wrong_mpy_sub_version_is_refused_and_the_kernel_falls_back(tmp_path):
    data = bytearray(open(os.path.join(_built("x64"), "rvmn_link.mpy"), "rb").read())
    data[2] = (data[2] & ~3) | 2          # sub-version 2: an older ABI
    rc, out = _kernel_with(tmp_path, "rvmn_link", bytes(data))
    assert rc == 0, out
    lines = out.strip().split("\n")
    assert lines[0].startswith("rvm-mp: natmod rvmn_link not loaded (") and \
        "incompatible .mpy" in lines[0], out
    assert sum("natmod rvmn_link" in ln for ln in lines) == 1   # one log line
    assert "which viper" in lines and "head 8" in lines


def test_wrong_arch_is_refused_and_the_kernel_falls_back(tmp_path):
    data = open(os.path.join(_built("armv7m"), "rvmn_link.mpy"), "rb").read()
    rc, out = _kernel_with(tmp_path, "rvmn_link", data)
    assert rc == 0, out
    assert "rvm-mp: natmod rvmn_link not loaded (incompatible .mpy arch)" in out
    assert "which viper" in out and "head 8" in out


def test_matching_natmod_is_chosen(tmp_path):
    data = open(os.path.join(_built("x64"), "rvmn_link.mpy"), "rb").read()
    rc, out = _kernel_with(tmp_path, "rvmn_link", data)
    assert rc == 0 and "natmod rvmn_link not loaded" not in out, out
    assert "which natmod" in out and "head 8" in out


def test_rvm_build_ships_the_boards_natmods(tmp_path, capsys):
    _built("x64")
    _built("armv6m")
    # seed-256k runs everything but WebAssembly; seed-64k keeps the
    # portable switch path, has no coherence engine and runs its filter as
    # WebAssembly; rp2-pico has no coherence engine
    for board, arch, mods in (
            ("seed-256k", "x64", MODS[:-1]),
            ("seed-64k", "x64", ("rvmn_crc", "rvmn_link", "rvmn_p1", "rvmn_wasm")),
            ("rp2-pico", "armv6m", ("rvmn_crc", "rvmn_link", "rvmn_p1", "rvmn_pick"))):
        assert cli.main(["build", "--board", board, "-o", str(tmp_path)]) == 0
        rep = json.load(open(tmp_path / board / "BUILD.json"))
        assert sorted(rep["natmods"]) == [m + ".mpy" for m in mods], board
        for m in mods:
            got = (tmp_path / board / (m + ".mpy")).read_bytes()
            assert got[2] >> 2 == ARCH_NO[arch]
    # no natmod build for the arch: none shipped, the reason recorded
    shipped, why = rbuild.ship_natmods("xtensawin", str(tmp_path), OUT)
    assert shipped == {} and "no natmods built for xtensawin" in why


def test_natmods_tool_reports_arches_it_cannot_build(tmp_path, capsys):
    rc = natmods.main(["--arch", "rv32imc", "--out", OUT])
    assert rc == 1
    err = capsys.readouterr().err
    assert "rv32imc: not built here" in err and "RISC-V" in err
