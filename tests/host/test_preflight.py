"""rvm deploy's checks before it changes a board (host_tools/rvm/preflight.py)
and the error text of a failed tool: the .mpy arch rule, the one-line
advice for each refusal, mpremote's own reason kept."""
import pytest

from host_tools.rvm import preflight as PF
from host_tools.rvm.deploy import tool_error
from host_tools.rvm.errors import RvmToolError

MPY_ARMV7EM = 6 | ((3 | 6 << 2) << 8)   # what the qemu firmware reports (6918)
GOOD = {"rw": 1, "free": 1 << 20, "heap": 137000, "mpy": MPY_ARMV7EM, "frozen": 0}


def test_arch_of_and_loads():
    assert PF.arch_of(MPY_ARMV7EM) == "armv7em"
    assert PF.arch_of(6 | ((3 | 2 << 2) << 8)) == "x64"
    assert PF.arch_loads("armv6m", "armv7em") and PF.arch_loads("armv7m", "armv7em")
    assert not PF.arch_loads("armv7emsp", "armv7em")
    assert not PF.arch_loads("xtensawin", "armv7em")
    assert PF.arch_loads("x64", "x64") and PF.arch_loads(None, "x64")


def _err(probe, mode="romfs", arch="armv7m", kernel=120000, files=20000):
    with pytest.raises(RvmToolError) as e:
        PF.check(dict(GOOD, **probe), mode, arch, kernel, files, "/dev/ttyX")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_each_refusal_says_what_to_do():
    assert "no writable filesystem" in _err({"rw": 0, "fserr": "OSError(19,)"})
    assert "OSError(19,)" in _err({"rw": 0, "fserr": "OSError(19,)"})
    m = _err({}, arch="armv7emsp")
    assert "armv7emsp" in m and "mpy_march" in m and "armv6m" in m
    m = _err({"free": 30000})
    assert "KB free" in m and "--romfs/--frozen" in m
    m = _err({}, mode="fs")
    assert "heap" in m and "--romfs or --frozen" in m
    m = _err({"frozen": 0}, mode="frozen")
    assert "no frozen kernel" in m and "ports/" in m
    PF.check(GOOD, "romfs", "armv7m", 120000, 20000, "/dev/ttyX")  # fits
    PF.check(dict(GOOD, frozen=1), "frozen", "armv7m", 120000, 20000, "/dev/ttyX")


def test_parse_probe():
    assert PF.parse_probe('junk\nRVMPROBE{"rw": 1, "rom": null}\n')["rw"] == 1
    with pytest.raises(RvmToolError):
        PF.parse_probe("Traceback...\nOSError: 5\n")


def test_tool_error_keeps_the_devices_reason():
    out = ("mkdir :rvm_mp\nTraceback (most recent call last):\n"
           '  File "<stdin>", line 2, in <module>\nOSError: [Errno 19] ENODEV\n')
    assert "ENODEV" in tool_error(out)
    assert tool_error("") == "no output"
    assert tool_error("just a line") == "just a line"
