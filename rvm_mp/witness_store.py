# WitnessStore: the persistent half of the witness log (layer L4).
#
# Records are appended to segment files `<root>/<first seq as 8 hex>.seg`,
# `seg_records` records each, through plain file I/O, so the same code runs
# on a board's littlefs/FAT, on the unix port's littlefs mount and on a
# CPython directory. sync() is the durability point: records appended
# before a sync() returns are acknowledged as durable.
#
# At open the store scans the newest segment: a trailing partial record (a
# power cut mid-write) is cut off and counted in `torn`, and the seq and link
# of each trailing record are checked against its predecessor until one
# checks out, so a torn last record is discarded rather than half-read.
#
# Power-cut rules (tested at every write by tests/kernel/test_powercut.py):
# * appends go to one open segment file; sync() (f.flush() = lfs_file_sync
#   on littlefs, flush + fsync on POSIX) is the only acknowledgement;
# * a segment is closed (synced) before the next one is opened, so an
#   acknowledged record never depends on a later file;
# * repairs rewrite a segment through a temp file and an atomic rename that
#   replaces it (never remove-then-rename, which has a window with no file);
#   a leftover .tmp from a cut repair is deleted at the next open.
# All file I/O goes through an fs object (flashfs.OS by default) so tests can
# cut power at any file operation on CPython as well.

from .flashfs import OS, write_atomic
from .witness_verify import verify_window

_SEG_EXT = ".seg"


class WitnessStore:
    def __init__(self, root, seg_records=256, genesis=None, fs=None):
        self.root = root.rstrip("/") or "/"
        self.seg_records = seg_records
        self.genesis = genesis  # genesis link, used to check record 0
        self.torn = 0           # partial/invalid records discarded at open
        self.fs = fs if fs is not None else OS
        # called before records are persisted (the region manager syncs its
        # delta log there, so a durable record always has its delta)
        self.before_append = None
        self.fs.makedirs(self.root)
        self._f = None
        self._fseg = -1
        self._next = 0
        self._last = None
        self._scan()

    # ---- files ------------------------------------------------------------
    def _path(self, seg):
        return "%s/%08x%s" % (self.root, seg * self.seg_records, _SEG_EXT)

    def segments(self):
        """Segment numbers present, ascending."""
        out = []
        for name in self.fs.listdir(self.root):
            if name.endswith(_SEG_EXT) and len(name) == 12:
                try:
                    out.append(int(name[0:8], 16) // self.seg_records)
                except ValueError:
                    pass
        out.sort()
        return out

    def _size(self, seg):
        n = self.fs.size(self._path(seg))
        return n if n > 0 else 0

    def _rewrite(self, seg, nrec):
        """Keep only the first nrec whole records of a segment (atomic)."""
        path = self._path(seg)
        f = self.fs.open(path, "rb")
        try:
            data = f.read(nrec * 64)
        finally:
            f.close()
        write_atomic(self.fs, path, (data,))

    def _scan(self):
        for name in self.fs.listdir(self.root):
            if name.endswith(".tmp"):  # a repair cut short: seg is intact
                self.fs.remove(self.root + "/" + name)
        segs = self.segments()
        while segs:
            seg = segs[-1]
            size = self._size(seg)
            nrec = size // 64
            if size % 64:
                self.torn += 1
            # Drop trailing records whose seq or link does not check out.
            while nrec > 0 and not self._valid_tail(seg, nrec):
                self.torn += 1
                nrec -= 1
            if nrec * 64 != size:
                self._rewrite(seg, nrec)
            if nrec == 0:
                self.fs.remove(self._path(seg))
                segs.pop()
                continue
            self._next = seg * self.seg_records + nrec
            self._last = self.read(self._next - 1)[32:64]
            return
        self._next = 0
        self._last = None

    def _valid_tail(self, seg, nrec):
        base = seg * self.seg_records
        seq = base + nrec - 1
        rec = self._read_raw(seg, nrec - 1)
        if rec is None or len(rec) != 64:
            return False
        if (rec[0] | rec[1] << 8 | rec[2] << 16 | rec[3] << 24) != (seq & 0xFFFFFFFF):
            return False
        if seq == 0:
            prev = self.genesis
        elif nrec >= 2:
            prev = self._read_raw(seg, nrec - 2)[32:64]
        else:
            p = self._read_raw(seg - 1, self.seg_records - 1)
            prev = p[32:64] if p else None
        if prev is None:
            return True  # nothing to check against (first segment pruned)
        return verify_window(prev, rec, 1) == 1

    def _read_raw(self, seg, idx):
        try:
            f = self.fs.open(self._path(seg), "rb")
        except OSError:
            return None
        try:
            f.seek(idx * 64)
            r = f.read(64)
        finally:
            f.close()
        return r if len(r) == 64 else None

    # ---- API used by WitnessLog --------------------------------------------
    def head(self):
        """(next seq, link of the last stored record or None)."""
        return self._next, self._last

    def append(self, mv, first_seq, n):
        """Append n linked records (a buffer of n*64 bytes) starting at seq
        first_seq, splitting across segment boundaries."""
        if first_seq != self._next:
            raise ValueError("witness store: expected seq %d, got %d"
                             % (self._next, first_seq))
        if self.before_append is not None:
            self.before_append()
        off = 0
        seq = first_seq
        while n > 0:
            seg = seq // self.seg_records
            room = self.seg_records - (seq % self.seg_records)
            k = n if n < room else room
            if seg != self._fseg:
                if self._f is not None:
                    self.fs.fsync(self._f)
                    self._f.close()
                    self._f = None
                self._f = self.fs.open(self._path(seg), "ab")
                self._fseg = seg
            self._f.write(mv[off:off + k * 64])
            off += k * 64
            seq += k
            n -= k
        self._next = seq
        self._last = bytes(mv[off - 64:off][32:64])

    def sync(self):
        """The durability point: every appended record is on flash when
        this returns."""
        if self._f is not None:
            self.fs.fsync(self._f)

    def close(self):
        if self._f is not None:
            self.fs.fsync(self._f)
            self._f.close()
            self._f = None
            self._fseg = -1

    def abandon(self):
        """Power is gone: drop the open segment without syncing (what was
        not synced is lost, as on a board). Never raises."""
        f = self._f
        self._f = None
        self._fseg = -1
        if f is not None:
            try:
                f.close()
            except Exception:  # a dead device answers with I/O errors
                pass

    def read(self, seq):
        if seq < 0 or seq >= self._next:
            return None
        self.sync()
        return self._read_raw(seq // self.seg_records, seq % self.seg_records)

    def low(self):
        """Oldest stored seq (segments may have been pruned)."""
        segs = self.segments()
        return segs[0] * self.seg_records if segs else self._next

    def iter_range(self, lo, hi, chunk=8):
        """Yield records lo..hi-1 reading `chunk` records at a time, so a
        pull never holds more than chunk*64 bytes of log in RAM."""
        self.sync()
        if hi > self._next:
            hi = self._next
        seq = max(lo, 0)
        buf = bytearray(chunk * 64)
        mv = memoryview(buf)
        while seq < hi:
            seg = seq // self.seg_records
            idx = seq % self.seg_records
            k = min(chunk, hi - seq, self.seg_records - idx)
            try:
                f = self.fs.open(self._path(seg), "rb")
            except OSError:
                seq = (seg + 1) * self.seg_records  # pruned segment
                continue
            try:
                f.seek(idx * 64)
                got = f.readinto(mv[0:k * 64])
            finally:
                f.close()
            if not got or got < 64:
                return
            for i in range(got // 64):
                yield bytes(mv[i * 64:(i + 1) * 64])
            seq += k

    def prune(self, keep_segments):
        """Delete the oldest segments, keeping the newest `keep_segments`."""
        segs = self.segments()
        n = 0
        for seg in segs[:-keep_segments] if keep_segments else segs:
            if seg == self._fseg:
                continue
            self.fs.remove(self._path(seg))
            n += 1
        return n

    def verify(self, genesis=None, lo=None):
        """Walk the stored chain from `lo` (default: oldest stored record)
        checking seq and links. Returns (ok, records checked, first bad seq
        or -1). From seq 0 the genesis link anchors the walk."""
        g = genesis if genesis is not None else self.genesis
        lo = self.low() if lo is None else lo
        prev = g if lo == 0 else None
        if lo > 0:
            p = self.read(lo - 1)
            prev = p[32:64] if p else None
        n = 0
        seq = lo
        for rec in self.iter_range(lo, self._next):
            if (rec[0] | rec[1] << 8 | rec[2] << 16 | rec[3] << 24) != (seq & 0xFFFFFFFF):
                return False, n, seq
            if prev is not None and verify_window(prev, rec, 1) != 1:
                return False, n, seq
            prev = rec[32:64]
            n += 1
            seq += 1
        if seq != self._next:
            return False, n, seq
        return True, n, -1
