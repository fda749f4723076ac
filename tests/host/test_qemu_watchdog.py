"""The watchdog as the last resort, end to end on real MicroPython firmware
(the emulated Cortex-M3 board, tests/host/qemuboard.py, which plays the
watchdog peripheral the board lacks). An operator spawns an agent that
spins without awaiting: the board cannot preempt it, the kernel stops
feeding, the watchdog resets the board. After the reboot the kernel names
the culprit from the word that survived the reset; the log pulled with the
host tools verifies and holds the F4 watchdog reset and the culprit's CPU
overrun; the other partitions and the console run.

Skipped only when the firmware (../shared) is absent: a user's checkout."""
import json
import os
import struct
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

SPINNER = """\
async def main(rvm):
    await rvm.sleep_ms(300)
    n = 0
    while True:
        n += 1
"""


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


def test_spinning_agent_is_reset_by_the_watchdog_and_witnessed(tmp_path, capsys):
    key = os.urandom(32)
    (tmp_path / "dev.key").write_bytes(key)
    spin = tmp_path / "spinner.py"
    spin.write_text(SPINNER)
    agents = [os.path.join(D.AGENTS_DIR, n + ".py") for n in DEMO] + [str(spin)]
    dist = str(tmp_path / "dist")
    # the build first: the ROMFS image is mapped when qemu starts
    assert cli.main(["build", "--board", BOARD, "-o", dist]) == 0
    b = Q.QemuBoard(tmp_path / "board", romfs=os.path.join(dist, BOARD, "romfs.img"),
                    watchdog=True)
    port = b.start()
    try:
        args = ["deploy", "--board", BOARD, "--port", port, "--key", str(tmp_path / "dev.key"),
                "-o", dist, "--wait", "90"]
        for a in agents:
            args += ["--agent", a]
        assert cli.main(args) == 0
        hello = _console(b, "hello")
        boot0 = hello["boot"]
        end = time.monotonic() + 30
        while not b.wdt_seen and time.monotonic() < end:
            time.sleep(0.2)
        assert b.wdt_seen, "the kernel did not start the watchdog"
        assert b.bites == []   # a kernel that runs its agents feeds it
        r = _console(b, "spawn spinner")
        pid = r["pid"]
        end = time.monotonic() + 40
        while not b.bites and time.monotonic() < end:
            time.sleep(0.2)
        assert b.bites == [watchdog.word(pid, "spinner")], b.bites
        hello = _console(b, "hello", timeout=90)
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
        out = str(tmp_path / "log.rvmw")
        assert cli.main(["pull", "--port", b.port, "-o", out, "--quiet"]) == 0
        assert cli.main(["verify", out, "--key-hex", key.hex(), "--json"]) == 0
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
        # witnessed after the agents were created, before they ran
        i_f4 = new.index(f4[0])
        assert max(i for i, x in enumerate(new) if x[3] == kinds.PART_CREATE) < i_f4
        assert i_f4 < min(i for i, x in enumerate(new) if x[3] == kinds.IPC_SEND)
        assert any(x[2] == boot0 + 1 and x[3] == kinds.BOOT_ATTEST for x in recs)
    finally:
        b.stop()
