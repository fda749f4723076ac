# WitnessLog: 64-byte hash-chained witness records (DESIGN.md section 6).
#
# Every privileged action calls emit(). The record format:
#
#   0 u32 seq | 4 u32 t_ms | 8 u16 boot | 10 u8 kind | 11 u8 flags
#  12 u16 actor | 14 u16 target | 16 u32 a,b,c,d | 32 link[32]
#
#   link[i]  = SHA-256(b"RVMW" + link[i-1] + rec[i][0:32])
#   link[-1] = SHA-256(b"RVMW-genesis" + device_id)
#
# How the work is split so that emit never allocates:
#
#   emit()      packs the 32-byte header into the next slot of a RAM ring
#               (struct.pack_into on a preallocated buffer).  O(1), no heap.
#   service()   the kernel's flush point (after each scheduler step, at
#               shutdown, before a pull): computes the links of pending
#               records, emits a due SEAL, and appends linked records to the
#               persistent store (segment files on the board's filesystem).
#
#        persisted       linked          emitted
#   ... --+---------------+---------------+------> seq
#         ^ _stored       ^ _linked       ^ next_seq
#
# Invariant: _stored <= _linked <= next_seq and next_seq - _stored <= ring
# size. emit() checks one precomputed bound, _room (the first seq that would
# overwrite a slot still needed: _linked + ring without a store, _stored +
# ring with one), so the common case costs a single comparison.
# When the ring is about to overwrite a record that is not linked yet, emit
# links it inline with the C natmod or viper SHA-256 (no heap); when it would overwrite a
# record that is not yet persisted, emit spills to the store first (this path
# may allocate; a serviced kernel never takes it, stats count it).
#
# Speed notes (MicroPython, measured by tools/bench/kb_witness.py): the class
# has no @property -- on MicroPython a single property on a class makes every
# instance attribute load slower (~25% on emit) -- so next_seq is a plain
# attribute (read-only for callers). Seal cadence is derived from seqs
# (_seal_base) instead of a counter emit would have to bump.
import hashlib
import struct

from .compat import const, ticks_ms
from . import kinds

from .impls import link_impl

# The link path: natmod rvmn_link (C SHA-256, no heap) -> viper SHA-256 (no
# heap) -> hashlib, chosen once (impls.link_impl).
_NL, Sha256Into, copy_into = link_impl()

REC_SIZE = const(64)
HDR_SIZE = const(64)
_HDR_FMT = "<IIHBBHHIIII"  # 32 bytes: the part of a record the link binds
FILE_MAGIC = b"RVMW"
FILE_VERSION = 1
_M32 = const(0xFFFFFFFF)

DOMAIN_LINK = b"RVMW"
DOMAIN_GENESIS = b"RVMW-genesis"
DOMAIN_SEAL = b"RVMS"


def genesis_link(device_id):
    if len(device_id) != 16:
        raise ValueError("device_id must be 16 bytes")
    return hashlib.sha256(DOMAIN_GENESIS + bytes(device_id)).digest()


def chain_link(prev_link, rec):
    """link = SHA-256(b"RVMW" + prev_link + rec[0:32])."""
    h = hashlib.sha256(DOMAIN_LINK)
    h.update(prev_link)
    h.update(bytes(rec[0:32]))
    return h.digest()


def seal_mac(hm, prev_link, rec):
    """The 16-byte seal MAC over link[i-1] and the seal record's first 16 bytes.
    `hm` is an hmac256.Hmac256 keyed with the device key."""
    return hm.mac(DOMAIN_SEAL + bytes(prev_link) + bytes(rec[0:16]))[0:16]


def unpack(rec):
    """Record bytes -> (seq, t_ms, boot, kind, flags, actor, target, a, b, c, d)."""
    return struct.unpack_from(_HDR_FMT, rec, 0)


def file_header(device_id, anchor, first_seq):
    h = bytearray(HDR_SIZE)
    h[0:4] = FILE_MAGIC
    struct.pack_into("<HH", h, 4, FILE_VERSION, REC_SIZE)
    h[8:24] = device_id
    h[24:56] = anchor
    struct.pack_into("<II", h, 56, first_seq & _M32, 0)
    return h


class WitnessLog:
    """The kernel's witness log: RAM ring of the newest records plus an
    optional persistent store (witness_store.WitnessStore)."""

    def __init__(self, device_id, boot=0, key=None, ring=64, seal_every=0,
                 store=None, clock=ticks_ms):
        from .hmac256 import Hmac256, key_id
        self.device_id = bytes(device_id)
        if len(self.device_id) != 16:
            raise ValueError("device_id must be 16 bytes")
        self.boot = boot & 0xFFFF
        self._hm = Hmac256(key) if key else None
        self.key_id = key_id(key) if key else 0
        self.ring_n = ring
        self._ring = bytearray(ring * REC_SIZE)
        self._rmv = memoryview(self._ring)
        self.seal_every = seal_every
        self.store = store
        self.muted = None   # {actor: refusals coalesced} during a flood
        self._clock = clock
        self._head = bytearray(32)  # link of record _linked-1
        self._tmp = bytearray(32)
        self._nl = _NL  # natmod link path (None: viper or hashlib)
        self._rl = _NL.rec_link if _NL is not None and hasattr(
            _NL, "rec_link") else None   # pack + link in emit
        self._vsha = Sha256Into() if Sha256Into else None
        self.degraded = False  # kernel sets it; stamped into every record
        self.store_err = 0     # errno that made the log drop its store
        self._store_lost = False  # ... not yet witnessed
        self.stats_spills = 0
        self.last_seal_seq = -1
        if store is not None:
            nxt, link = store.head()
        else:
            nxt, link = 0, None
        if link is None:
            link = genesis_link(self.device_id)
        self._head[:] = link
        self.next_seq = nxt  # seq of the next record (read-only for callers)
        self._linked = nxt
        self._stored = nxt
        self._seal_base = nxt  # records since the last seal: next_seq - this
        self._room = 0
        self._set_room()
        self.first_seq = nxt  # first seq held by this log instance's ring

    # ---- hot path -------------------------------------------------------
    def emit(self, kind, actor=0, target=0, a=0, b=0, c=0, d=0, flags=0):
        """Append a record; returns its seq. Does not allocate. With the
        natmod the record is packed and linked in one C call (the record at
        the cost of its hash); else it is packed and linked later."""
        seq = self.next_seq
        if seq >= self._room:
            self._make_room(seq)
        if self.degraded:
            flags |= 2
        rl = self._rl
        if rl is not None and self._linked == seq:
            rl(self._head, self._ring, (seq % self.ring_n) * 64, seq,
               self._clock(), self.boot, kind, flags, actor, target, a, b, c,
               d)
            seq += 1
            self._linked = seq
            self.next_seq = seq
            if self.store is None:
                self._room = seq + self.ring_n
            return seq - 1
        struct.pack_into(_HDR_FMT, self._ring, (seq % self.ring_n) * 64, seq & _M32,
                         self._clock() & _M32, self.boot, kind & 0xFF,
                         flags & 0xFF, actor & 0xFFFF, target & 0xFFFF,
                         a & _M32, b & _M32, c & _M32, d & _M32)
        self.next_seq = seq + 1
        return seq

    def emit_open(self, kind, actor=0, target=0, a=0, b=0, c=0, d=0, flags=0):
        """Append a record the caller completes before it is linked (a
        seal writes its MAC into it): packed now, linked at the next
        link_pending (or by the next emit). Returns its seq."""
        rl = self._rl
        self._rl = None
        try:
            return self.emit(kind, actor, target, a, b, c, d, flags)
        finally:
            self._rl = rl

    def deny(self, kind, actor, target, code, tier=0, a=0, c=0, d=0):
        """Emit a refusal: denied flag, proof tier reached, error code in b.
        While `actor` is muted (a refusal flood, runtime.py) it is counted
        instead, and the count goes into one REFUSAL_FLOOD record."""
        m = self.muted
        if m and actor in m:
            m[actor] += 1
            return -1
        return self.emit(kind, actor, target, a, code, c, d,
                         1 | ((tier & 3) << 2))

    def mute(self, actor):
        if self.muted is None:
            self.muted = {}
        self.muted[actor] = 0

    def unmute(self, actor):
        """Stop coalescing actor's refusals; how many were coalesced."""
        m = self.muted
        if not m or actor not in m:
            return 0
        return m.pop(actor)

    def _set_room(self):
        if self.store is None:
            self._room = self._linked + self.ring_n
        else:
            self._room = self._stored + self.ring_n

    def _make_room(self, seq):
        """The ring is full: persist (store present; may allocate) or link
        the oldest record inline (no heap)."""
        if self.store is not None and seq - self._stored >= self.ring_n:
            self._spill()
        if seq - self._linked >= self.ring_n:
            self._link_one()
        self._set_room()

    # ---- linking ----------------------------------------------------------
    def _link_one(self):
        """Link record _linked in place. Uses the viper SHA-256 (no heap)
        when present, else hashlib."""
        seq = self._linked
        slot = (seq % self.ring_n) * 64
        if self._nl is not None:
            self._nl.link_range(self._head, self._ring, seq % self.ring_n, 1,
                                self.ring_n)
        elif self._vsha is not None:
            ring = self._ring
            self._vsha.digest3_into(DOMAIN_LINK, self._head, ring, slot, 32,
                                    self._tmp)
            copy_into(self._head, 0, self._tmp, 0, 32)
            copy_into(ring, slot + 32, self._tmp, 0, 32)
        else:
            rmv = self._rmv
            self._head[:] = chain_link(self._head, rmv[slot:slot + 32])
            rmv[slot + 32:slot + 64] = self._head
        self._linked = seq + 1
        if self.store is None:
            self._room = seq + 1 + self.ring_n

    def link_pending(self):
        """Compute links of all emitted records (natmod: no heap; else
        hashlib: fast, allocates)."""
        ring_n = self.ring_n
        if self._nl is not None:
            seq = self._linked
            if self.next_seq > seq:
                self._nl.link_range(self._head, self._ring, seq % ring_n,
                                    self.next_seq - seq, ring_n)
            self._linked = self.next_seq
            if self.store is None:
                self._room = self._linked + ring_n
            return
        rmv = self._rmv
        head = bytes(self._head)
        sha = hashlib.sha256
        seq = self._linked
        end = self.next_seq
        first = seq
        while seq < end:
            slot = (seq % ring_n) * 64
            h = sha(DOMAIN_LINK)
            if slot and seq != first:
                # previous link and this header are adjacent in the ring
                h.update(rmv[slot - 32:slot + 32])
            else:
                h.update(head)
                h.update(rmv[slot:slot + 32])
            head = h.digest()
            rmv[slot + 32:slot + 64] = head
            seq += 1
        self._head[:] = head
        self._linked = end
        if self.store is None:
            self._room = end + ring_n

    # ---- flush point ------------------------------------------------------
    def service(self):
        """The kernel's flush point: link, seal if due, persist.
        Returns the seq through which records are durable (-1 for none)."""
        if self.seal_every and self._hm and \
                self.next_seq - self._seal_base >= self.seal_every:
            self.seal()
        self.link_pending()
        r = self.flush()
        st = self.store
        if self._store_lost or (st is not None and
                                getattr(st, "pruned", None) is not None):
            from .retention import witness_events
            witness_events(self)  # PRUNE / DEGRADED_ENTER, outside emit
        return r

    def flush(self):
        """Link and persist every emitted record; returns last durable seq.
        A store on a full filesystem (OSError ENOSPC) is dropped and the
        log goes on in RAM only; service() witnesses it."""
        self.link_pending()
        if self.store is not None and self._stored < self.next_seq:
            durable = self._stored
            try:
                self._store_range(self._stored, self.next_seq)
                self.store.sync()
            except OSError as e:
                if not e.args or e.args[0] != 28:
                    raise  # a dead device (EIO: power is going) is not ours
                from .retention import lose_store
                lose_store(self, e, durable)  # ENOSPC: go on in RAM
        if self.store is None:
            self._stored = self.next_seq
            if self._lost_at >= 0:
                return self._lost_at - 1  # nothing after the loss is durable
        return self._stored - 1

    _lost_at = -1  # records below this were durable when the store was lost

    def _store_range(self, lo, hi):
        ring_n = self.ring_n
        while lo < hi:
            slot = lo % ring_n
            n = min(hi - lo, ring_n - slot)
            self.store.append(self._rmv[slot * 64:(slot + n) * 64], lo, n)
            lo += n
        self._stored = hi
        self._room = hi + ring_n

    def _spill(self):
        self.stats_spills += 1
        self.flush()

    # ---- seals ------------------------------------------------------------
    def seal(self):
        """Emit a SEAL record authenticating every record before it.
        Returns its seq, or -1 when the log has no key."""
        if self._hm is None:
            return -1
        self.link_pending()
        seq = self.emit_open(kinds.SEAL, 0, self.key_id)
        slot = (seq % self.ring_n) * 64
        mac = seal_mac(self._hm, self._head, self._rmv[slot:slot + 16])
        self._rmv[slot + 16:slot + 32] = mac
        self.link_pending()
        self._seal_base = seq + 1
        self.last_seal_seq = seq
        return seq

    # ---- reading ----------------------------------------------------------
    def head_link(self):
        """(last seq, its link) after linking everything pending."""
        self.link_pending()
        return self.next_seq - 1, bytes(self._head)

    def ring_low(self):
        """Oldest seq still in the RAM ring."""
        return max(self.first_seq, self.next_seq - self.ring_n)

    def record(self, seq):
        """The 64 bytes of record `seq` (ring or store), or None."""
        if seq < 0 or seq >= self.next_seq:
            return None
        if seq >= self.ring_low():
            self.link_pending()
            slot = (seq % self.ring_n) * 64
            return bytes(self._rmv[slot:slot + 64])
        if self.store is not None:
            return self.store.read(seq)
        return None

    def iter_range(self, lo=0, hi=None):
        """Yield records lo..hi-1 (store for old ones, ring for new ones)."""
        self.flush() if self.store is not None else self.link_pending()
        if hi is None or hi > self.next_seq:
            hi = self.next_seq
        seq = max(lo, 0)
        low = self.ring_low()
        if seq < low and self.store is not None:
            for rec in self.store.iter_range(seq, min(hi, low)):
                yield rec
            seq = low
        seq = max(seq, low)
        while seq < hi:
            slot = (seq % self.ring_n) * 64
            yield bytes(self._rmv[slot:slot + 64])
            seq += 1

    def query(self, kind=None, actor=None, target=None, lo=0, hi=None,
              limit=None):
        """Records matching every given field, oldest first."""
        out = []
        for rec in self.iter_range(lo, hi):
            if kind is not None and rec[10] != kind:
                continue
            if actor is not None and (rec[12] | (rec[13] << 8)) != actor:
                continue
            if target is not None and (rec[14] | (rec[15] << 8)) != target:
                continue
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
        return out

    def anchor_for(self, seq):
        """The link before record `seq` (genesis for seq 0)."""
        if seq <= 0:
            return genesis_link(self.device_id)
        prev = self.record(seq - 1)
        if prev is None:
            st = self.store  # older records dropped by retention: its anchor
            if st is None or not hasattr(st, "seg_records"):
                return None
            from .retention import anchor_link
            return anchor_link(st, seq)
        return prev[32:64]

    def export(self, stream, lo=0, hi=None):
        """Write records lo..hi-1 as a .rvmw file to `stream`.
        Returns the number of records written."""
        self.flush() if self.store is not None else self.link_pending()
        if hi is None or hi > self.next_seq:
            hi = self.next_seq
        lo = max(lo, 0)
        if self.store is None:
            # without a store the anchor of the oldest ring record (the link
            # of the record before it) is gone once the ring has wrapped
            low = self.ring_low()
            lo = max(lo, low + 1 if low > self.first_seq else low)
        anchor = self.anchor_for(lo)
        if anchor is None:
            raise ValueError("anchor for seq %d not available" % lo)
        stream.write(file_header(self.device_id, anchor, lo))
        n = 0
        for rec in self.iter_range(lo, hi):
            stream.write(rec)
            n += 1
        return n
