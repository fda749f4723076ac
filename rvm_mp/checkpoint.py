# Checkpoints on flash: a partition's regions plus the kernel's opaque
# `extra` (capability table, queues, agent restart point), and single-region
# files for the cold tier. Written atomically (temp file, sync, rename), so
# after a power cut a checkpoint is either the old one or the new one.
#
#   off size field                       file: ckpt/p<pid:04x>-<seq:08x>.ck
#    0   4   magic b"RVMC"                     cold/r<rid:04x>.ck
#    4   2   version (1)
#    6   2   pid (owner for a cold file)
#    8   4   seq: the state after every witness record < seq
#   12   2   region count
#   14   2   reserved (0)
#   16   4   extra length
#   20       per region: u16 rid, u16 owner, u8 tier, u8 0, u16 0,
#                        u32 size, u32 crc32(bytes), then the bytes
#    .       extra
#    .  32   SHA-256 of everything before it (a torn or bit-flipped file
#            is refused with ECORRUPT, never half-read)
import hashlib
import struct

from .compat import const
from . import errors
from .reconstruct import hash32

MAGIC = b"RVMC"
_VERSION = const(1)
_HDR = "<4sHHIHHI"
_HDR_SIZE = const(20)
_REG = "<HHBBHII"
_REG_SIZE = const(16)


def _chunks(pid, seq, regions, extra, h, out):
    hdr = struct.pack(_HDR, MAGIC, _VERSION, pid & 0xFFFF, seq & 0xFFFFFFFF,
                      len(regions), 0, len(extra))
    h.update(hdr)
    yield hdr
    for rid, owner, tier, data in regions:
        r = struct.pack(_REG, rid & 0xFFFF, owner & 0xFFFF, tier & 0xFF, 0, 0,
                        len(data), hash32(data))
        h.update(r)
        yield r
        h.update(data)
        yield data
    if extra:
        h.update(extra)
        yield extra
    out.append(h.digest())  # MicroPython hashes digest once
    yield out[0]


def write(fs, path, pid, seq, regions, extra=b""):
    """Write a checkpoint atomically. regions: [(rid, owner, tier, bytes)].
    Returns (file bytes, 32-bit digest for the witness record)."""
    from .flashfs import write_atomic
    h = hashlib.sha256()
    out = []
    write_atomic(fs, path, _chunks(pid, seq, regions, extra, h, out))
    d = out[0]
    n = _HDR_SIZE + len(extra) + 32
    for r in regions:
        n += _REG_SIZE + len(r[3])
    return n, d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24


def read(fs, path, want_data=True):
    """Parse and verify a checkpoint. Returns a dict
    {pid, seq, regions: [(rid, owner, tier, size, crc, data|None)], extra}
    or errors.ENOENT (missing) / errors.ECORRUPT (torn, wrong hash, bad
    format)."""
    try:
        f = fs.open(path, "rb")
    except OSError:
        return errors.ENOENT
    try:
        return _read(f, want_data)
    finally:
        f.close()


def _read(f, want_data):
    h = hashlib.sha256()
    hdr = f.read(_HDR_SIZE)
    if len(hdr) != _HDR_SIZE:
        return errors.ECORRUPT
    magic, ver, pid, seq, nreg, _r, nextra = struct.unpack(_HDR, hdr)
    if magic != MAGIC or ver != _VERSION:
        return errors.ECORRUPT
    h.update(hdr)
    regions = []
    for _ in range(nreg):
        r = f.read(_REG_SIZE)
        if len(r) != _REG_SIZE:
            return errors.ECORRUPT
        h.update(r)
        rid, owner, tier, _a, _b, size, crc = struct.unpack(_REG, r)
        data = f.read(size)
        if len(data) != size or hash32(data) != crc:
            return errors.ECORRUPT
        h.update(data)
        regions.append((rid, owner, tier, size, crc, data if want_data else None))
    extra = f.read(nextra) if nextra else b""
    if len(extra) != nextra:
        return errors.ECORRUPT
    h.update(extra)
    tail = f.read(33)
    if len(tail) != 32 or tail != h.digest():
        return errors.ECORRUPT
    return {"pid": pid, "seq": seq, "regions": regions, "extra": extra}


class CheckpointStore:
    """Checkpoint files under <root>/ckpt and cold-tier files under
    <root>/cold. Keeps the newest `keep` checkpoints per partition (older
    ones are the bases time travel can start from)."""

    def __init__(self, fs, root, keep=2):
        self.fs = fs
        self.root = root.rstrip("/")
        self.keep = keep
        fs.makedirs(self.root + "/ckpt")
        fs.makedirs(self.root + "/cold")
        for d in ("/ckpt", "/cold"):  # temp files of writes cut short
            for name in fs.listdir(self.root + d):
                if name.endswith(".tmp"):
                    fs.remove(self.root + d + "/" + name)

    # ---- partition checkpoints --------------------------------------------
    def path(self, pid, seq):
        return "%s/ckpt/p%04x-%08x.ck" % (self.root, pid, seq)

    def list(self, pid=None):
        """[(seq, pid, path)] ascending by seq."""
        out = []
        for name in self.fs.listdir(self.root + "/ckpt"):
            if len(name) == 17 and name[0] == "p" and name.endswith(".ck"):
                try:
                    p = int(name[1:5], 16)
                    s = int(name[6:14], 16)
                except ValueError:
                    continue
                if pid is None or p == pid:
                    out.append((s, p, self.root + "/ckpt/" + name))
        out.sort()
        return out

    def save(self, pid, seq, regions, extra=b""):
        """Write the checkpoint, then prune older ones. (bytes, digest32)."""
        r = write(self.fs, self.path(pid, seq), pid, seq, regions, extra)
        old = self.list(pid)
        for s, p, path in old[:-self.keep] if self.keep else ():
            self.fs.remove(path)
        return r

    def latest(self, pid):
        """The newest checkpoint of pid that verifies (a corrupt newest one
        falls back to the one before), or ENOENT / ECORRUPT."""
        found = errors.ENOENT
        lst = self.list(pid)
        for s, p, path in reversed(lst):
            ck = read(self.fs, path)
            if not errors.is_err(ck):
                return ck
            found = ck
        return found

    def base_for(self, rid, k):
        """(seq, bytes) of the newest checkpoint with seq <= k that holds
        region rid, or None."""
        best = None
        for s, p, path in self.list():
            if s > k or (best is not None and s <= best[0]):
                continue
            ck = read(self.fs, path)
            if errors.is_err(ck):
                continue
            for r in ck["regions"]:
                if r[0] == rid:
                    best = (s, r[5])
                    break
        return best

    # ---- cold tier ---------------------------------------------------------
    def cold_path(self, rid):
        return "%s/cold/r%04x.ck" % (self.root, rid)

    def save_cold(self, rid, owner, seq, data):
        return write(self.fs, self.cold_path(rid), owner, seq,
                     ((rid, owner, 3, data),))

    def load_cold(self, rid):
        ck = read(self.fs, self.cold_path(rid))
        if errors.is_err(ck):
            return ck
        return ck["regions"][0][5]

    def drop_cold(self, rid):
        try:
            self.fs.remove(self.cold_path(rid))
        except OSError:
            pass
