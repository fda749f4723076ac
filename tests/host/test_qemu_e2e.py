"""End to end on real MicroPython firmware: an emulated Cortex-M3 board
(qemu-system-arm -machine mps2-an385, tests/host/qemuboard.py) with a 137 KB
32-bit heap and littlefs. The documented commands do everything: `rvm build`
makes the ROMFS image the board maps as flash, `rvm deploy` probes the board
and copies the profile, key, agents and main.py, the console drives the
kernel (ps, lease, kill, checkpoint), `rvm pull` + `rvm verify` check the
witness log, `rvm attest` matches the boot's attestation with the build, a power cycle (qemu restart, filesystem kept) resumes the chain,
an agent that spins is reset by the watchdog (the harness plays the
peripheral the board lacks) and witnessed on the next boot, and mpremote
regains the REPL from the running kernel (Ctrl-C on the UART).

Skipped only when the firmware (../shared) is absent: a user's checkout."""
import json
import os
import struct
import subprocess
import sys
import time

import pytest

from host_tools.rvm import cli, console
from host_tools.rvm import deploy as D
from host_tools.rvm import verify as V
from host_tools.rvm.transport import SerialTransport
from rvm_mp import errors, hal, kinds, watchdog

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemuboard as Q  # noqa: E402

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(Q.skip_reason() is not None, reason=Q.skip_reason() or "")]
BOARD = "qemu-an385"
DEMO = ("supervisor", "sensor", "filter", "actuator", "crasher", "flooder")

# deployed next to the demo agents, started only by `spawn spinner`
SPINNER = """\
async def main(rvm):
    await rvm.sleep_ms(300)
    n = 0
    while True:
        n += 1
"""


def _wait_console(port, timeout=60):
    """The kernel's console answers `hello` (after a power-on runs main.py)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            t = SerialTransport(port)
            try:
                return console.run_command(t, "hello", timeout=3.0)
            finally:
                t.close()
        except Exception as e:  # not up yet
            last = e
            time.sleep(1.0)
    raise AssertionError("console did not answer: %s" % last)


def _console(b, line, timeout=60):
    """One console command on board b (its pty changes when it resets)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            t = SerialTransport(b.port)
            try:
                return console.run_command(t, line, timeout=3.0)
            finally:
                t.close()
        except Exception as e:  # not up yet
            last = e
            time.sleep(1.0)
    raise AssertionError("console did not answer %r: %s" % (line, last))


@pytest.fixture(scope="module")
def qb(tmp_path_factory):
    d = tmp_path_factory.mktemp("qemu")
    key = os.urandom(32)
    (d / "dev.key").write_bytes(key)
    dist = str(d / "dist")
    assert cli.main(["build", "--board", BOARD, "-o", dist]) == 0
    img = os.path.join(dist, BOARD, "romfs.img")
    assert os.path.getsize(img) > 50000
    b = Q.QemuBoard(d / "board", romfs=img, watchdog=True)
    port = b.start()
    (d / "spinner.py").write_text(SPINNER)
    args = ["deploy", "--board", BOARD, "--port", port, "--key", str(d / "dev.key"),
            "-o", dist, "--wait", "90"]
    for a in [os.path.join(D.AGENTS_DIR, n + ".py") for n in DEMO] + [str(d / "spinner.py")]:
        args += ["--agent", a]
    try:
        rc = cli.main(args)
        assert rc == 0
        yield {"dir": d, "board": b, "key": key, "dist": dist}
    finally:
        b.stop()


def test_deployed_in_romfs_and_running(qb, capsys):
    port = qb["board"].port
    hello = _wait_console(port)
    assert hello["board"] == BOARD
    assert cli.main(["ps", "--port", port, "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in parts]
    assert names == ["control", "supervisor", "sensor", "filter", "actuator", "crasher",
                     "flooder"]
    t = SerialTransport(port)
    try:
        st = console.run_command(t, "stat")
    finally:
        t.close()
    assert st["board"] == BOARD and st["partitions"] == 7
    assert st["mem_free"] > 0


def test_console_session(qb, capsys):
    port = qb["board"].port
    t = SerialTransport(port)
    try:
        parts = console.ps(t)
    finally:
        t.close()
    pid = {p["name"]: p["pid"] for p in parts}
    rc = cli.main(["console", "--port", port, "-c", "lease led 800", "-c", "lease led 800",
                   "-c", "lease i2c0 500", "-c", "checkpoint %d" % pid["supervisor"],
                   "-c", "kill %d" % pid["flooder"], "-c", "ps", "-c", "stat"])
    out = capsys.readouterr().out
    assert rc == 1  # the second lease of led is refused (EBUSY)
    assert "EBUSY" in out and "checkpoint_seq" in out
    assert "terminated" in out
    assert "device: led" in out and "device: i2c0" in out  # the I2C bus is simulated


def test_pull_and_verify(qb, capsys):
    out = str(qb["dir"] / "log.rvmw")
    assert cli.main(["pull", "--port", qb["board"].port, "-o", out, "--quiet"]) == 0
    assert cli.main(["verify", out, "--key-hex", qb["key"].hex(), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rep["verdict"] == "verified" and rep["records"] > 50


def test_attest_matches_the_build(qb, capsys):
    """The kernel runs from ROMFS: boot hashed the mapped image's modules,
    checked them against kernel.dig, and the attestation equals what the
    host computes from the build."""
    port = qb["board"].port
    build = os.path.join(qb["dist"], BOARD)
    assert cli.main(["attest", "--port", port, "--build", build, "--key-hex",
                     qb["key"].hex(), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["match"] and rep["kernel_check"] == "ok"
    assert rep["bundles"] == ["supervisor", "sensor", "filter", "actuator", "crasher",
                              "flooder"]
    # a build that differs (another profile byte) does not match
    other = qb["dir"] / "other"
    import shutil
    shutil.copytree(build, other)
    pj = json.loads((other / "board.json").read_text())
    pj["description"] = "changed"
    (other / "board.json").write_text(json.dumps(pj))
    assert cli.main(["attest", "--port", port, "--build", str(other), "--key-hex",
                     qb["key"].hex()]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_power_cycle_resumes_the_chain(qb, capsys):
    b = qb["board"]
    t = SerialTransport(b.port)
    try:
        before = console.run_command(t, "stat")
    finally:
        t.close()
    b.restart()  # power off (flash kept), power on: main.py boots the kernel
    hello = _wait_console(b.port)
    assert hello["boot"] == before["boot"] + 1
    out = str(qb["dir"] / "log.rvmw")
    assert cli.main(["pull", "--port", b.port, "-o", out, "--quiet"]) == 0
    v = V.verify_file(out, qb["key"])
    assert v["verdict"] == "verified" and v["unsealed_tail"] == 0
    from rvm_mp import kinds
    import struct
    data = open(out, "rb").read()[V.HDR:]
    kinds_seen = [struct.unpack_from("<IIHBB", data, i)[3] for i in range(0, len(data), 64)]
    assert kinds.CHAIN_RESTORED in kinds_seen
    assert kinds_seen.count(kinds.BOOT_BEGIN) >= 2


def test_spinning_agent_is_reset_by_the_watchdog_and_witnessed(qb, capsys):
    """The board cannot preempt: a spinning agent stops the kernel's feeds,
    the watchdog resets the board; the next boot names the culprit from the
    word that survived the reset, the log verifies and holds the F4
    watchdog reset and the culprit's CPU overrun, the others run."""
    b = qb["board"]
    hello = _console(b, "hello")
    boot0 = hello["boot"]
    end = time.monotonic() + 30
    while not b.wdt_seen and time.monotonic() < end:
        time.sleep(0.2)
    assert b.wdt_seen, "the kernel did not start the watchdog"
    assert b.bites == []   # a kernel that runs its agents feeds it
    gap = b.max_gap   # the kernel's own work between feeds, so far
    r = _console(b, "spawn spinner")
    t_spawn = time.monotonic()
    pid = r["pid"]
    end = time.monotonic() + 40
    while not b.bites and time.monotonic() < end:
        time.sleep(0.2)
    t_bite = time.monotonic()
    assert b.bites == [watchdog.word(pid, "spinner")], b.bites
    hello = _console(b, "hello", timeout=90)
    # figures for docs/agents.md (not asserted: the host is shared)
    with capsys.disabled():
        print("watchdog: spawn -> reset %.1f s, reset -> console %.1f s, "
              "longest gap between feeds before %.2f s of qemu CPU" % (
                  t_bite - t_spawn, time.monotonic() - t_bite, gap))
    assert hello["boot"] == boot0 + 1
    # the others run after the reset; the console answers
    time.sleep(2.0)
    t = SerialTransport(b.port)
    try:
        plist = console.ps(t)
    finally:
        t.close()
    byname = {p["name"]: p for p in plist}
    assert "spinner" not in byname   # spawned by hand: not restarted
    for n in ("supervisor", "sensor", "filter", "actuator"):
        assert byname[n]["state"] == "running", byname[n]
    out = str(qb["dir"] / "wdt.rvmw")
    assert cli.main(["pull", "--port", b.port, "-o", out, "--quiet"]) == 0
    assert cli.main(["verify", out, "--key-hex", qb["key"].hex(), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert rep["verdict"] == "verified"
    data = open(out, "rb").read()[V.HDR:]
    recs = [struct.unpack_from("<IIHBBHHIIII", data, i) for i in range(0, len(data), 64)]
    f4 = [x for x in recs if x[3] == kinds.FAULT_F4_RESET]
    assert len(f4) == 1
    seq, _, boot, _, _, actor, target, a, bb, c, d = f4[0]
    assert boot == boot0 + 1 and actor == 0
    assert a == hal.EXIT_WDT and bb == errors.ETIMEOUT.code and c == pid and d == 1
    af = [x for x in recs if x[3] == kinds.AGENT_FAULT and x[2] == boot0 + 1
          and x[6] == pid]
    assert len(af) == 1 and af[0][8] == errors.ETIMEOUT.code and af[0][9] == hal.EXIT_WDT
    # the spinner was created and started in the boot that reset
    assert any(x[3] == kinds.PART_CREATE and x[6] == pid and x[2] == boot0 for x in recs)
    # after the reset the others ran on (their records in the new boot)
    new = [x for x in recs if x[2] == boot0 + 1]
    sensor = byname["sensor"]["pid"]
    filt = byname["filter"]["pid"]
    assert any(x[3] == kinds.IPC_SEND and x[5] == sensor for x in new)
    assert any(x[3] == kinds.IPC_RECV and x[5] == filt for x in new)
    # witnessed before any partition of the new boot was created
    i_f4 = new.index(f4[0])
    assert i_f4 < min(i for i, x in enumerate(new) if x[3] == kinds.PART_CREATE)
    assert any(x[2] == boot0 + 1 and x[3] == kinds.BOOT_ATTEST for x in recs)


def test_mpremote_regains_the_repl(qb):
    """Ctrl-C on this UART reaches the kernel's console, which stops the
    kernel (sealed); mpremote then works as on any board."""
    b = qb["board"]
    _wait_console(b.port)
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", b.port, "exec",
                        "import os; print(sorted(os.listdir()))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = r.stdout.strip()
    assert "witness" in names and "board.json" in names and "rvm_mp" not in names


def _deploy_err(tmp_path, capsys, firmware, args):
    b = Q.QemuBoard(tmp_path / "b", firmware=firmware)
    port = b.start()
    try:
        key = tmp_path / "k"
        key.write_bytes(os.urandom(32))
        rc = cli.main(["deploy", "--port", port, "--key", str(key), "-o",
                       str(tmp_path / "dist"), "--no-start"] + args)
    finally:
        b.stop(keep_flash=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    return err[-1]


def test_deploy_to_firmware_without_a_filesystem_says_so(tmp_path, capsys):
    line = _deploy_err(tmp_path, capsys, Q.FIRMWARE_STOCK, ["--board", BOARD])
    assert "no writable filesystem" in line and "flash a MicroPython firmware" in line
    assert "Errno" in line or "OSError" in line  # the board's own reason


def test_deploy_refuses_a_build_the_firmware_cannot_load(tmp_path, capsys):
    line = _deploy_err(tmp_path, capsys, Q.FIRMWARE, ["--board", "pyboard-v11"])
    assert "armv7emsp" in line and "mpy_march" in line


def test_deploy_refuses_mpy_on_the_filesystem_for_this_heap(tmp_path, capsys):
    line = _deploy_err(tmp_path, capsys, Q.FIRMWARE, ["--board", BOARD, "--mode", "fs"])
    assert "heap" in line and "--romfs or --frozen" in line
