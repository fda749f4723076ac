"""A small runner for the emulated Cortex-M3 board (MicroPython 1.29 firmware
for qemu's mps2-an385, ../shared/firmware/qemu-mps2-an385/): start qemu with
the UART on stdio, drive the raw REPL, copy files onto its littlefs, run a
script, read what it printed, stop qemu. Just enough for the natmod tests;
not a deploy harness.

    with QemuBoard() as b:
        b.put("/rvmn_crc.mpy", data)
        out = b.run("import rvmn_crc; print(rvmn_crc.crc32(b'1'))")
"""
import binascii
import os
import select
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "firmware",
                                             "qemu-mps2-an385"))
FIRMWARE = os.path.join(FIRMWARE_DIR, "firmware.elf")


class BoardError(Exception):
    pass


def available():
    """None when the board can run here, else why not."""
    if not shutil.which("qemu-system-arm"):
        return "qemu-system-arm missing (Debian qemu-system-arm; `make natmods` installs it)"
    if not os.path.exists(FIRMWARE):
        return "no firmware at %s" % FIRMWARE
    return None


class QemuBoard:
    def __init__(self, firmware=FIRMWARE, timeout=30):
        self.firmware = firmware
        self.timeout = timeout
        self.p = None
        self.buf = b""

    # ---- process -------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.p = subprocess.Popen(
            ["qemu-system-arm", "-machine", "mps2-an385", "-nographic",
             "-monitor", "none", "-semihosting", "-serial", "stdio",
             "-kernel", self.firmware],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.read_until(b">>> ", 20)
        self.enter_raw()

    def stop(self):
        if self.p is not None:
            if self.p.poll() is None:
                self.p.kill()
            self.p.wait(5)
            self.p = None

    # ---- UART ----------------------------------------------------------------
    def write(self, data):
        # the emulated UART has a small receive buffer: feed it in pieces
        for i in range(0, len(data), 64):
            self.p.stdin.write(data[i:i + 64])
            self.p.stdin.flush()
            time.sleep(0.002)

    def read_until(self, marker, timeout=None):
        end = time.monotonic() + (timeout or self.timeout)
        fd = self.p.stdout.fileno()
        while marker not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise BoardError("board did not answer %r (got %r)" % (marker, self.buf[-200:]))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise BoardError("qemu closed its UART")
                self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got

    # ---- raw REPL --------------------------------------------------------------
    def enter_raw(self):
        self.write(b"\r\x03\x03\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def exec_raw(self, code, timeout=None):
        """Run `code`; (stdout, stderr text) of the board."""
        self.write(code.encode() + b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04", timeout)[:-1]
        self.read_until(b">", timeout)
        return out.decode(errors="replace"), err.decode(errors="replace")

    def run(self, code, timeout=None):
        """Run `code`, raise BoardError with the board's traceback if it failed."""
        out, err = self.exec_raw(code, timeout)
        if err.strip():
            raise BoardError(err.strip().splitlines()[-1] + "\n" + err)
        return out

    def put(self, path, data):
        """Write `data` to `path` on the board's littlefs."""
        self.run("f = open(%r, 'wb')" % path)
        for i in range(0, len(data), 384):
            hx = binascii.hexlify(data[i:i + 384]).decode()
            self.run("import binascii; f.write(binascii.unhexlify(%r))" % hx)
        self.run("f.close(); del f; import os; print(os.stat(%r)[6])" % path)
