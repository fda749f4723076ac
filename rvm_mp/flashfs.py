# Flash filesystem for the persistent kernel state (layer L4).
#
# On MicroPython the witness store, checkpoints and the cold tier live on
# littlefs (vfs.VfsLfs2) mounted over a block device (a board's flash, or
# blockdev.BlockDev on the unix port). On CPython there is no littlefs: the
# same store code runs on an ordinary directory.
#
# Kernel modules do file I/O through a tiny "fs" object (OSFS by default),
# so a test can slide CrashFS underneath and cut power at any file-level
# write on either runtime:
#
#   WitnessStore / checkpoint.py / region.py
#            |  fs.open/.rename/.remove/.mkdir/.fsync
#        OSFS  (or CrashFS(OSFS) in tests)
#            |  builtin open/os
#   littlefs over BlockDev (MicroPython)  |  a directory (CPython)
import os

from .blockdev import PowerCut

try:
    import vfs as _vfs  # MicroPython >= 1.23
except ImportError:
    _vfs = None
if _vfs is None or not hasattr(_vfs, "VfsLfs2"):
    _vfs = os if hasattr(os, "VfsLfs2") else None


def have_littlefs():
    """True when this runtime can mount littlefs (vfs.VfsLfs2)."""
    return _vfs is not None


class OSFS:
    """File operations on whatever is mounted (littlefs or a directory)."""

    def open(self, path, mode="rb"):
        return open(path, mode)

    def fsync(self, f):
        f.flush()  # MicroPython littlefs: flush() is lfs_file_sync
        try:
            os.fsync(f.fileno())  # CPython
        except (AttributeError, OSError):
            pass

    def stat(self, path):
        return os.stat(path)

    def size(self, path):
        try:
            return os.stat(path)[6]
        except OSError:
            return -1

    def exists(self, path):
        try:
            os.stat(path)
            return True
        except OSError:
            return False

    def listdir(self, path):
        return os.listdir(path)

    def remove(self, path):
        os.remove(path)

    def rename(self, a, b):
        os.rename(a, b)  # replaces b: atomic on littlefs and POSIX

    def mkdir(self, path):
        os.mkdir(path)

    def makedirs(self, path):
        cur = "/" if path.startswith("/") else ""
        for part in path.split("/"):
            if not part:
                continue
            cur = cur + part if cur in ("", "/") else cur + "/" + part
            if not self.exists(cur):
                self.mkdir(cur)


OS = OSFS()


def write_atomic(fs, path, chunks):
    """Write `chunks` (bytes-likes) to path so that after a power cut the
    file holds either its old or its new contents: temp file, sync, rename."""
    tmp = path + ".tmp"
    f = fs.open(tmp, "wb")
    try:
        for c in chunks:
            f.write(c)
        fs.fsync(f)
    finally:
        f.close()
    fs.rename(tmp, path)


class _CrashFile:
    """A file whose writes stay pending until flush: a power cut loses them
    (the strict model: nothing unsynced survives), a cut during flush tears
    them (only the first half of the pending bytes reach the file)."""

    def __init__(self, cfs, f):
        self._cfs = cfs
        self._f = f
        self._pending = []

    def write(self, b):
        self._cfs._tick()
        self._pending.append(bytes(b))
        return len(b)

    def flush(self):
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        if self._cfs._tick_cut():
            self._f.write(data[0:len(data) // 2])
            self._f.flush()
            self._cfs._die()
        self._f.write(data)
        self._f.flush()

    def close(self):
        try:
            if not self._cfs.dead:
                self.flush()
        finally:
            self._f.close()

    def read(self, n=-1):
        return self._f.read(n)

    def readinto(self, buf):
        return self._f.readinto(buf)

    def seek(self, off, whence=0):
        return self._f.seek(off, whence)

    def tell(self):
        return self._f.tell()

    def fileno(self):
        return self._f.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class CrashFS(OSFS):
    """OSFS that counts every file-level write operation (write, flush with
    data, rename, remove, mkdir) and cuts power at operation n+1 after
    cut_after(n). Used where littlefs is absent (CPython) and as a second,
    file-level sweep on MicroPython."""

    def __init__(self):
        self.ops = 0
        self._cut_at = -1
        self.dead = False

    def cut_after(self, n):
        self._cut_at = self.ops + n + 1
        self.dead = False

    def power_on(self):
        self._cut_at = -1
        self.dead = False

    def _die(self):
        self.dead = True
        raise PowerCut("power cut at file op %d" % self.ops)

    def _tick_cut(self):
        if self.dead:
            raise PowerCut("power is off")
        self.ops += 1
        return self.ops == self._cut_at

    def _tick(self):
        if self._tick_cut():
            self._die()

    def open(self, path, mode="rb"):
        if self.dead:
            raise PowerCut("power is off")
        f = open(path, mode)
        if "w" in mode or "a" in mode or "+" in mode:
            return _CrashFile(self, f)
        return f

    def fsync(self, f):
        f.flush()

    def remove(self, path):
        self._tick()
        os.remove(path)

    def rename(self, a, b):
        self._tick()
        os.rename(a, b)

    def mkdir(self, path):
        self._tick()
        os.mkdir(path)


class Flash:
    """A mounted flash filesystem. On MicroPython: littlefs over `bd`
    mounted at `mountpoint` (formatted when `fresh` or unmountable). On
    CPython (`bd` None): the directory `mountpoint`. `root` is where the
    kernel keeps its files."""

    def __init__(self, bd=None, mountpoint="/flash", fresh=False):
        self.bd = bd
        self.mountpoint = mountpoint
        self.lfs = None
        if bd is None:
            OS.makedirs(mountpoint)
        else:
            self._mount(fresh)
        self.root = mountpoint

    def _mount(self, fresh):
        if _vfs is None:
            raise OSError(19)  # ENODEV: no littlefs on this runtime
        cls = _vfs.VfsLfs2
        if hasattr(self.bd, "io_errors"):
            self.bd.io_errors = True  # dead device -> LFS_ERR_IO, see blockdev
        if fresh:
            cls.mkfs(self.bd)
        try:
            fs = cls(self.bd, mtime=False)
        except TypeError:  # ports without the mtime option
            fs = cls(self.bd)
        _vfs.mount(fs, self.mountpoint)
        self.lfs = fs

    def umount(self):
        """Unmount (after a power cut too: the fs object is discarded).
        The device is powered off so a file object still bound to it can
        never write again."""
        if self.lfs is not None:
            try:
                _vfs.umount(self.mountpoint)
            except (OSError, PowerCut):
                pass
            self.lfs = None
            if hasattr(self.bd, "power_off"):
                self.bd.power_off()

    def statvfs(self):
        try:
            return os.statvfs(self.mountpoint)
        except (AttributeError, OSError):
            return None
