"""An emulated Cortex-M3 board for host tests: real MicroPython firmware
(../shared/firmware/qemu-mps2-an385/firmware.elf) under qemu-system-arm, its
UART on a pty that the host tools (mpremote, rvm console/pull) open like a
USB serial port.

The firmware keeps its littlefs "flash" in emulated RAM at 0x20000000 (1 MiB,
outside the MicroPython heap): it survives soft resets but not the end of the
qemu process. A board's flash survives a power cycle, so `stop()` pauses the
CPU and saves that RAM to `flash.bin` (QMP `pmemsave`) before ending qemu, and
`start()` loads it back at the same address before the CPU runs (qemu's
generic loader). Stopping mid-write is a power cut: littlefs is built for it.

An optional ROMFS image (`mpremote romfs build`) is mapped at 0x21000000; the
firmware mounts a valid one at /rom.

The board has no watchdog timer; `QemuBoard(..., watchdog=True)` plays one
(the peripheral of rvm_mp/hal_wdt.py, four words at WDT_BASE in SSRAM2/3,
which the firmware never uses: littlefs takes its first MiB, the heap and
stack live in SSRAM1). A thread reads the words over QMP every 100 ms; while
CTRL (the timeout in ms) is non-zero and FEED stops changing for longer than
that (in qemu's CPU time, see cpu_s), it resets the board as the timer would: flash saved, qemu restarted,
CAUSE = 1 and SCRATCH (the word the kernel wrote) preset by qemu's generic
loader (`-device loader,addr=..,data=..,data-len=4`). `bites` lists the
SCRATCH word of every such reset.

    b = QemuBoard(workdir)          # workdir keeps flash.bin across restarts
    port = b.start()                # /dev/pts/N (also b.link)
    ...                             # rvm deploy --port port, ...
    b.restart()                     # power cycle: flash kept
    b.stop()
"""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "firmware", "qemu-mps2-an385"))
FIRMWARE = os.path.join(FW_DIR, "firmware.elf")
FIRMWARE_STOCK = os.path.join(FW_DIR, "firmware-stock.elf")
FLASH_ADDR = 0x20000000
FLASH_SIZE = 1 << 20
ROMFS_ADDR = 0x21000000
WDT_BASE = 0x203FFF00          # CTRL, FEED, SCRATCH, CAUSE (rvm_mp/hal_wdt.py)
WDT_POLL_S = 0.1


def qemu_exe():
    return shutil.which("qemu-system-arm")


def skip_reason():
    """Why the emulated board cannot run here, or None."""
    if not os.path.exists(FIRMWARE):
        return "no emulated-board firmware at %s (a checkout without ../shared)" % FW_DIR
    if not qemu_exe():
        return "qemu-system-arm is not installed (make test installs it)"
    return None


class _Qmp:
    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rwb")

    def close(self):
        self.f.close()
        self.sock.close()


class QemuBoard:
    def __init__(self, workdir, firmware=FIRMWARE, romfs=None, watchdog=False):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.firmware = firmware
        self.romfs = romfs          # path of a ROMFS image or None
        self.flash = os.path.join(self.dir, "flash.bin")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.link = os.path.join(self.dir, "port")
        self.proc = None
        self.port = None
        self.starts = 0
        self.stderr_path = os.path.join(self.dir, "qemu.err")
        self.qmp_lock = threading.RLock()   # one QMP client at a time
        self.watchdog = watchdog
        self.bites = []             # SCRATCH word of each watchdog reset
        self.max_gap = 0.0          # longest time between two feeds seen (s)
        self.wdt_seen = False       # the kernel started the watchdog once
        self._preset = {}           # addr -> u32 written at the next power-on
        self._wdt_thread = None
        self._wdt_end = threading.Event()

    # ---- process ------------------------------------------------------------
    def start(self, timeout=20.0):
        """Power on: start qemu (flash.bin loaded when present); returns the
        pty of the UART once the REPL has printed its banner."""
        if self.proc is not None:
            raise RuntimeError("board already running")
        if os.path.exists(self.qmp_path):
            os.remove(self.qmp_path)
        cmd = [qemu_exe(), "-machine", "mps2-an385", "-nographic", "-monitor", "none",
               "-semihosting", "-serial", "pty", "-kernel", self.firmware,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if os.path.exists(self.flash):
            cmd += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (self.flash, FLASH_ADDR)]
        if self.romfs:
            cmd += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (self.romfs, ROMFS_ADDR)]
        for addr, val in sorted(self._preset.items()):
            cmd += ["-device", "loader,addr=0x%x,data=0x%x,data-len=4" % (addr, val)]
        self._preset = {}
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=err)
        err.close()
        self.starts += 1
        line = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(rb"char device redirected to (\S+)", line)
            if m:
                self.port = m.group(1).decode()
                break
        if self.port is None or self._died(0.3):
            self.kill()
            raise RuntimeError("qemu did not start: %s" % self._err_tail())
        # the stdout pipe must keep being drained or qemu may block on it
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        if os.path.lexists(self.link):
            os.remove(self.link)
        os.symlink(self.port, self.link)
        for _ in range(200):
            try:
                self._qmp_connect().close()
                break
            except OSError:
                time.sleep(0.05)
        if self.watchdog and self._wdt_thread is None:
            self._wdt_end.clear()
            self._wdt_thread = threading.Thread(target=self._wdt_loop, daemon=True)
            self._wdt_thread.start()
        return self.port

    def _died(self, wait_s):
        """qemu ended within wait_s (it prints the pty before it loads
        the images, so a bad -device loader shows only here)."""
        try:
            self.proc.wait(wait_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    @staticmethod
    def _drain(proc):
        try:
            while proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def _err_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-300:].decode("utf-8", "replace").strip() or "no output"
        except OSError:
            return "no output"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        self.port = None

    # ---- the watchdog the board lacks ----------------------------------------
    def read_words(self, addr, n):
        """n u32 words of guest memory (QMP `xp`)."""
        with self.qmp_lock:
            s = self._qmp_connect()
            try:
                out = self._qmp_cmd(s, "human-monitor-command",
                                    **{"command-line": "xp /%dwx 0x%x" % (n, addr)})
            finally:
                s.close()
        words = []
        for line in out.splitlines():
            if ":" in line:
                words += [int(w, 16) for w in line.split(":", 1)[1].split()]
        return words[:n]

    def cpu_s(self):
        """CPU time qemu has used, in s: the clock the played watchdog
        counts in. A board's CPU and watchdog share one clock; qemu on a
        loaded host runs the guest slower than the guest's own clock, so a
        wall-clock watchdog would reset a kernel that was only descheduled.
        Wall time where /proc is missing."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                st = f.read()
            p = st[st.rfind(")") + 2:].split()
            return (int(p[11]) + int(p[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return time.monotonic()

    def _wdt_loop(self):
        feed = None
        since = 0.0
        while not self._wdt_end.wait(WDT_POLL_S):
            if not self.alive():
                feed = None
                continue
            try:
                ctrl, fed, scratch, _cause = self.read_words(WDT_BASE, 4)
                now = self.cpu_s()
            except (OSError, ValueError):
                continue
            if not ctrl:
                feed = None
                continue
            self.wdt_seen = True
            if fed != feed:
                if feed is not None:
                    self.max_gap = max(self.max_gap, now - since)
                feed = fed
                since = now
                continue
            if (now - since) * 1000 > ctrl:
                self._bite(scratch)
                feed = None

    def _bite(self, scratch):
        """What the timer does when it runs out: reset the board; the reset
        cause and the scratch word survive it."""
        with self.qmp_lock:
            self._preset = {WDT_BASE + 8: scratch, WDT_BASE + 12: 1}
            try:
                self.save_flash()
            except OSError:
                pass
            self.kill()
            try:
                self.start()
            except RuntimeError:
                pass
            self.bites.append(scratch)   # the board is up again (or dead)

    # ---- QMP ----------------------------------------------------------------
    def _qmp_connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.qmp_path)
        q = _Qmp(s)
        json.loads(q.f.readline())  # greeting
        self._qmp_cmd(q, "qmp_capabilities")
        return q

    @staticmethod
    def _qmp_cmd(s, name, **args):
        f = s.f
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        f.write(json.dumps(msg).encode() + b"\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                raise OSError("qmp closed")
            r = json.loads(line)
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise OSError("qmp %s: %s" % (name, r["error"].get("desc")))
            # an asynchronous event: keep reading

    def save_flash(self):
        """Pause the CPU and copy the flash RAM to flash.bin (the CPU stays
        paused: call only right before ending qemu)."""
        with self.qmp_lock:
            s = self._qmp_connect()
            try:
                self._qmp_cmd(s, "stop")
                tmp = self.flash + ".new"
                self._qmp_cmd(s, "pmemsave", val=FLASH_ADDR, size=FLASH_SIZE, filename=tmp)
                os.replace(tmp, self.flash)
            finally:
                s.close()

    def stop(self, keep_flash=True):
        """Power off. With keep_flash the filesystem is saved first (only
        possible while qemu runs; after machine.reset() ended it, what the
        last save kept is what the board has)."""
        t = self._wdt_thread
        if t is not None and t is not threading.current_thread():
            self._wdt_end.set()
            t.join(30)
            self._wdt_thread = None
        with self.qmp_lock:
            if self.alive() and keep_flash:
                try:
                    self.save_flash()
                except OSError:
                    pass
            self.kill()

    def restart(self, timeout=20.0):
        """Power cycle with the filesystem kept."""
        self.stop(keep_flash=True)
        return self.start(timeout)

    def erase(self):
        """Blank flash for the next start (a new board)."""
        if os.path.exists(self.flash):
            os.remove(self.flash)
