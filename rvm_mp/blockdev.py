# Block devices for the flash filesystem (layer L0/L4 boundary), written in
# Python so tests and the unix port can run littlefs over them.
#
# BlockDev speaks MicroPython's extended block protocol (readblocks,
# writeblocks with an offset, ioctl 1..6), which is what vfs.VfsLfs2 calls.
# Storage is a bytearray (RAM) or a file (FileBlockDev).
#
# Power cuts, littlefs-style: `cut_after(n)` lets n more program/erase
# operations complete; operation n+1 is torn (only its first half reaches
# the medium when `torn` is set, nothing otherwise) and raises PowerCut, and
# every later operation raises PowerCut too, until power_on().  What the
# medium holds afterwards is what a board would find at the next boot.
#
#    ops:   1   2   3  ...  n  | n+1 (torn)  | n+2 ...
#           ok  ok  ok      ok | half + cut  | refused
#
# Under littlefs (`io_errors` set, flashfs.Flash sets it) a dead device does
# not raise: every call answers LFS_ERR_IO (-5) without allocating, so
# littlefs unwinds cleanly through its own error paths and a file finalizer
# that runs inside the garbage collector (heap locked) cannot fault. The
# scenario then sees OSError(EIO) and `dead` tells that power was cut.
from .compat import const

_EIO = const(-5)  # LFS_ERR_IO

_IOCTL_INIT = const(1)
_IOCTL_DEINIT = const(2)
_IOCTL_SYNC = const(3)
_IOCTL_COUNT = const(4)
_IOCTL_SIZE = const(5)
_IOCTL_ERASE = const(6)


class PowerCut(Exception):
    """Raised by a block device (or CrashFS) when simulated power is lost."""
    pass


class BlockDev:
    """RAM-backed block device. `block_size` bytes x `count` blocks."""

    def __init__(self, block_size=512, count=128, data=None):
        self.block_size = block_size
        self.count = count
        fresh = data is None
        if fresh:
            data = bytearray(block_size * count)
        elif len(data) != block_size * count:
            raise ValueError("block device image has the wrong size")
        self.data = data
        self._counters()
        if fresh:
            self.reset()

    def _counters(self):
        self.reads = 0      # readblocks calls
        self.progs = 0      # writeblocks calls
        self.erases = 0     # ioctl(6) calls
        self.ops = 0        # progs + erases: the power-cut clock
        self.torn = True
        self._cut_at = -1   # op number that is cut (-1: never)
        self.dead = False
        self.io_errors = False  # True: answer -5 instead of raising

    # ---- power -------------------------------------------------------------
    def cut_after(self, n, torn=True):
        """Let n more write operations complete, cut power on the next."""
        self._cut_at = self.ops + n + 1
        self.torn = torn
        self.dead = False

    def power_on(self):
        """Power comes back: the medium keeps what survived."""
        self._cut_at = -1
        self.dead = False

    def _tick(self):
        """Count one write operation; True when this one is the cut."""
        if self.dead:
            raise PowerCut("power is off")
        self.ops += 1
        return self.ops == self._cut_at

    # ---- medium access (overridden by FileBlockDev) ---------------------
    def _get(self, addr, buf):
        n = len(buf)
        buf[0:n] = self.data[addr:addr + n]

    def _put(self, addr, buf):
        self.data[addr:addr + len(buf)] = buf

    # ---- MicroPython block protocol ------------------------------------
    def readblocks(self, block, buf, off=0):
        if self.dead and self.io_errors:
            return _EIO
        self.reads += 1
        self._get(block * self.block_size + off, buf)

    def writeblocks(self, block, buf, off=None):
        if self.dead and self.io_errors:
            return _EIO
        if off is None:  # simple protocol: whole blocks, erase implied
            off = 0
        self.progs += 1
        addr = block * self.block_size + off
        if self._tick():
            self.dead = True
            if self.torn:
                half = len(buf) // 2
                self._put(addr, memoryview(buf)[0:half])
            if self.io_errors:
                return _EIO
            raise PowerCut("power cut at write %d" % self.ops)
        self._put(addr, buf)

    def erase(self, block):
        if self.dead and self.io_errors:
            return _EIO
        self.erases += 1
        addr = block * self.block_size
        if self._tick():
            self.dead = True
            if self.torn:
                self._put(addr, b"\xff" * (self.block_size // 2))
            if self.io_errors:
                return _EIO
            raise PowerCut("power cut at erase %d" % self.ops)
        self._put(addr, b"\xff" * self.block_size)
        return 0

    def ioctl(self, op, arg):
        if op == _IOCTL_COUNT:
            return self.count
        if op == _IOCTL_SIZE:
            return self.block_size
        if op == _IOCTL_ERASE:
            return self.erase(arg)
        if op in (_IOCTL_INIT, _IOCTL_DEINIT, _IOCTL_SYNC):
            return 0
        return None

    # ---- images ------------------------------------------------------------
    def image(self):
        """A copy of the whole medium (bytes)."""
        return bytes(self.data)

    def survivor(self, into=None):
        """A new device holding what this one's medium holds now: the board
        after power comes back. `into`: a bytearray of the same size to copy
        the medium into (no new 64 KB buffer per cut point). Always a new
        device object, so a stale littlefs object still bound to this one
        (a file finalized later) can never write into the survivor."""
        if into is None:
            into = bytearray(len(self.data))
        into[:] = self.data
        return BlockDev(self.block_size, self.count, into)

    def power_off(self):
        """Power goes away for good (a retired device object)."""
        self.dead = True

    def reset(self):
        """Factory state: every byte 0xFF, counters zero, power on."""
        blk = b"\xff" * self.block_size
        for b in range(self.count):
            a = b * self.block_size
            self.data[a:a + self.block_size] = blk
        self._counters()


class FileBlockDev(BlockDev):
    """Block device backed by an image file (created 0xFF-filled)."""

    def __init__(self, path, block_size=512, count=128):
        self.path = path
        size = block_size * count
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
            chunk = b"\xff" * block_size
            for _ in range(count):
                f.write(chunk)
            f.flush()
        f.seek(0, 2)
        if f.tell() != size:
            f.close()
            raise ValueError("image %s is not %d bytes" % (path, size))
        self._f = f
        self.block_size = block_size
        self.count = count
        self.data = None  # the file is the medium
        self._counters()

    def _get(self, addr, buf):
        self._f.seek(addr)
        n = self._f.readinto(buf)
        if n != len(buf):
            raise OSError(5)

    def _put(self, addr, buf):
        self._f.seek(addr)
        self._f.write(buf)
        self._f.flush()

    def image(self):
        self._f.seek(0)
        return self._f.read(self.block_size * self.count)

    def close(self):
        self._f.close()
