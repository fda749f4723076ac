"""rvm flash: MicroPython firmware onto a board.

ESP32/ESP8266 profiles (flash.method "esptool") are written with esptool at
the profile's offset (esp32 0x1000, esp32-s3/-c3 and esp8266 0x0), after an
erase when the profile says so. Other boards are flashed by their own boot
loaders (UF2 drag-and-drop, DFU); for them this says how, and exits non-zero.
"""
import os
import subprocess
import sys

from . import boards
from .errors import RvmToolError


def esptool_cmds(profile, port, firmware, baud=None):
    """The esptool command lines (erase, write) for this profile."""
    fl = profile.get("flash", {})
    chip = fl.get("chip") or "auto"
    offset = str(fl.get("offset", "0x0"))
    int(offset, 0)  # a profile with a bad offset fails here, not on the board
    base = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port,
            "--baud", str(baud or fl.get("baud", 460800))]
    cmds = []
    if fl.get("erase_first"):
        cmds.append(base + ["erase-flash"])
    cmds.append(base + ["write-flash", "-z", offset, firmware])
    return cmds


def how_to_flash(profile):
    fl = profile.get("flash", {})
    return fl.get("note") or "see the board vendor's instructions"


def flash(board, port, firmware, baud=None, dry_run=False, run=subprocess.run,
          out=print):
    prof = boards.load(board)
    fl = prof.get("flash", {})
    method = fl.get("method", "none")
    if method != "esptool":
        if prof.get("simulated") or method == "none":
            raise RvmToolError("%s needs no firmware flashing: %s" % (board, how_to_flash(prof)))
        raise RvmToolError("%s is not flashed with esptool (%s): %s"
                           % (board, method, how_to_flash(prof)))
    if not os.path.isfile(firmware):
        raise RvmToolError("firmware file %s not found" % firmware)
    if not dry_run and not os.path.exists(port):
        raise RvmToolError("port %s does not exist (is the board plugged in?)" % port)
    cmds = esptool_cmds(prof, port, firmware, baud)
    for cmd in cmds:
        out("$ esptool " + " ".join(cmd[3:]))
        if dry_run:
            continue
        p = run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            lines = [l for l in (p.stderr or p.stdout or "").splitlines() if l.strip()]
            raise RvmToolError("esptool failed (exit %d): %s"
                               % (p.returncode, lines[-1] if lines else "no output"))
    return cmds
