# Delta log and reconstruction ("time travel"): any region's bytes at any
# witness seq, from the nearest checkpoint plus the deltas after it.
#
# Every change to a region's bytes is appended to `deltas.log` beside the
# witness segments, stamped with the seq of the witness record that
# announced it:
#
#   off size field
#    0   1   magic 0xD7
#    1   1   op: 1 ALLOC (zero-filled, `off` = size) | 2 WRITE (patch at off)
#                3 FULL (whole content) | 4 FREE
#                5 HORIZON (compaction: history of `rid` before seq `off`
#                  is gone; rid 0 = every region without its own marker)
#    2   2   n: payload length
#    4   4   seq of the witness record (REGION_ALLOC/WRITE/ROLLBACK/FREE...)
#    8   2   rid
#   10   2   reserved (0)
#   12   4   off (ALLOC: region size)
#   16   4   crc32 of the payload (= the REGION_WRITE record's `c`)
#   20   n   payload
#
# Rebuilding region r at seq k: start from a base (a checkpoint taken at
# seq s <= k, holding the state after every record < s, or nothing), then
# apply r's deltas with s <= seq <= k in order. ALLOC resets to zeros,
# FREE makes the region absent (None).
#
# Compaction (RegionManager.compact) rewrites the log keeping, per live
# region, the entries from its horizon on (its newest checkpoint, or its
# last ALLOC/FULL), drops freed regions, and appends HORIZON markers. A
# rebuild below a region's horizon is refused (EEXPIRED); above it, it
# starts from a checkpoint at or after the horizon, or from the reset entry
# (ALLOC/FULL) at the horizon.
#
# Ordering with the witness log (power cuts): the store calls the delta
# log's sync before it persists witness records, so a durable witness record
# always has its delta; deltas with a seq the durable log never reached are
# cut off when the region manager opens the log at the next boot.
# The host uses the same reader on a pulled log + delta file
# (host_tools/rvm/reconstruct.py).
import struct

from .compat import const

try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    from zlib import crc32

_MAGIC = const(0xD7)
D_ALLOC = const(1)
D_WRITE = const(2)
D_FULL = const(3)
D_FREE = const(4)
D_HORIZON = const(5)
_HDR = "<BBHIHHII"
HDR_SIZE = const(20)


def hash32(data):
    """The 32-bit hash of region bytes used in witness records (CRC-32)."""
    return crc32(data) & 0xFFFFFFFF


def pack_delta(op, seq, rid, off, payload):
    h = bytearray(HDR_SIZE)
    struct.pack_into(_HDR, h, 0, _MAGIC, op, len(payload), seq & 0xFFFFFFFF,
                     rid & 0xFFFF, 0, off & 0xFFFFFFFF, hash32(payload))
    return h


def read_deltas(f, stop_at=None):
    """Yield (pos, op, seq, rid, off, payload) from a delta file object,
    stopping at the first torn or corrupt entry. `stop_at` (a one-item
    list) receives the byte offset where the valid prefix ends."""
    hdr = bytearray(HDR_SIZE)
    pos = 0
    while True:
        n = f.readinto(hdr)
        if not n or n < HDR_SIZE:
            break
        magic, op, ln, seq, rid, _r, off, crc = struct.unpack_from(_HDR, hdr, 0)
        if magic != _MAGIC or op < D_ALLOC or op > D_HORIZON:
            break
        payload = f.read(ln) if ln else b""
        if len(payload) != ln or hash32(payload) != crc:
            break
        yield pos, op, seq, rid, off, payload
        pos += HDR_SIZE + ln
    if stop_at is not None:
        stop_at[0] = pos


def apply(state, op, off, payload):
    """Apply one delta to `state` (bytearray or None); returns the new state."""
    if op == D_ALLOC:
        return bytearray(off)
    if op == D_FREE:
        return None
    if op == D_FULL:
        return bytearray(payload)
    if state is None:
        return None
    end = off + len(payload)
    if end > len(state):
        return None
    state[off:end] = payload
    return state


def rebuild(deltas, rid, k, base=None, base_seq=0):
    """Region `rid` as it was when seq k was emitted.
    deltas: iterable of (pos, op, seq, rid, off, payload) in seq order.
    base: bytes of a checkpoint taken at base_seq (state after every
    record < base_seq), or None to start from nothing.
    Returns (bytearray or None, number of deltas applied)."""
    state = bytearray(base) if base is not None else None
    n = 0
    for _pos, op, seq, r, off, payload in deltas:
        # no early break: a file-backed generator must run to its end so
        # it closes its file (MicroPython never finalizes an abandoned one)
        if r != rid or seq < base_seq or seq > k or op == D_HORIZON:
            continue
        state = apply(state, op, off, payload)
        n += 1
    return state, n


def horizons(deltas):
    """({rid: horizon}, global horizon) from the HORIZON markers."""
    per = {}
    glob = 0
    for _pos, op, seq, r, off, payload in deltas:
        if op == D_HORIZON:
            if r == 0:
                glob = off
            else:
                per[r] = off
    return per, glob


def rebuild_at(deltas, rid, k, base, base_seq, h, marked=True):
    """rebuild() that respects the region's history horizon h (0: complete
    history). `marked`: h comes from the region's own HORIZON marker (it was
    live then: its state at h is a checkpoint or a reset entry at h);
    otherwise from the global marker (it did not exist just before h: its
    history after h must start with ALLOC or FULL). `deltas` is iterated
    once. Returns (state, n, ok); ok False when the history seq k needs is
    gone."""
    if k < h:
        return None, 0, False
    if h == 0 or (base is not None and base_seq >= h):
        state, n = rebuild(deltas, rid, k, base, base_seq)
        return state, n, True
    state = None
    n = 0
    ok = not marked  # no entry at all: absent since h
    for _pos, op, seq, r, off, payload in deltas:
        if r != rid or seq < h or seq > k or op == D_HORIZON:
            continue
        if n == 0:
            ok = (op == D_ALLOC or op == D_FULL) and (seq == h or not marked)
        state = apply(state, op, off, payload)
        n += 1
    return (state, n, ok) if ok else (None, 0, False)


class MemDeltaLog:
    """Delta log kept in RAM (a kernel without a flash root)."""

    def __init__(self):
        self._buf = bytearray()

    def append(self, op, seq, rid, off, payload):
        self._buf.extend(pack_delta(op, seq, rid, off, payload))
        self._buf.extend(payload)

    def sync(self):
        pass

    def abandon(self):
        pass

    def truncate_from(self, seq):
        """Drop entries with seq >= `seq`."""
        cut = self._cut_pos(seq)
        if cut >= 0:
            self._buf = self._buf[0:cut]

    def _cut_pos(self, seq):
        for pos, op, s, rid, off, payload in self.entries():
            if s >= seq:
                return pos
        return -1

    def entries(self):
        import io
        return read_deltas(io.BytesIO(bytes(self._buf)))

    def size(self):
        return len(self._buf)

    def close(self):
        pass


class DeltaLog:
    """Delta log in a file on flash. Appends are buffered by the file and
    made durable by sync(). At open a torn tail (power cut mid-append) is
    cut off by an atomic rewrite of the valid prefix."""

    def __init__(self, path, fs):
        self.path = path
        self.fs = fs
        self._f = None
        self.torn = 0
        self._repair()

    def _repair(self):
        size = self.fs.size(self.path)
        if size <= 0:
            return
        end = [0]
        f = self.fs.open(self.path, "rb")
        try:
            for _ in read_deltas(f, end):
                pass
        finally:
            f.close()
        if end[0] != size:
            self.torn += 1
            self._keep_prefix(end[0])

    def _keep_prefix(self, nbytes):
        from .flashfs import write_atomic
        self.close()
        f = self.fs.open(self.path, "rb")
        try:
            data = f.read(nbytes) if nbytes else b""
        finally:
            f.close()
        write_atomic(self.fs, self.path, (data,))

    def truncate_from(self, seq):
        """Drop entries with seq >= `seq` (deltas of witness records that
        never became durable)."""
        cut = -1
        for pos, op, s, rid, off, payload in self.entries():
            if s >= seq and cut < 0:
                cut = pos  # keep iterating: the generator closes its file
        if cut >= 0:
            self._keep_prefix(cut)

    def append(self, op, seq, rid, off, payload):
        if self._f is None:
            self._f = self.fs.open(self.path, "ab")
        self._f.write(pack_delta(op, seq, rid, off, payload))
        if payload:
            self._f.write(payload)

    def sync(self):
        if self._f is not None:
            self.fs.fsync(self._f)

    def close(self):
        if self._f is not None:
            self.fs.fsync(self._f)
            self._f.close()
            self._f = None

    def abandon(self):
        """Power is gone: drop the open file without syncing. Never raises."""
        f = self._f
        self._f = None
        if f is not None:
            try:
                f.close()
            except Exception:  # a dead device answers with I/O errors
                pass

    def entries(self):
        """Yield every valid entry (syncs pending appends first). Consumers
        exhaust it: it holds the file open until the end."""
        self.sync()
        try:
            f = self.fs.open(self.path, "rb")
        except OSError:
            return
        try:
            for e in read_deltas(f):
                yield e
        finally:
            f.close()

    def size(self):
        self.sync()
        n = self.fs.size(self.path)
        return n if n > 0 else 0
