# Witness retention: what the store drops when flash fills (layer L4).
# Loaded only by a store with a policy (the profile's witness "max_bytes" or
# "min_free") and by the console's `ack`, so boards without one never hold it.
#
#   ack      the host stored records below SEQ (`rvm pull` sends `ack SEQ`
#            once its file is on disk): <root>/ack, u32 LE
#   policy   before a new segment is opened, drop the oldest segments while
#            the store would exceed max_bytes or leave less than min_free
#            bytes on the filesystem; the newest segment is never dropped.
#            Acknowledged records are the oldest, so they go first; retain
#            "all" (default) then drops unacknowledged ones too, retain
#            "acked" never does (the store fills, the log drops it and goes
#            on in RAM: DEGRADED_ENTER reason 5)
#   anchor   every drop writes <root>/anchor (first kept seq u32 LE + the
#            link of the record before it) before deleting the segment, so
#            `rvm pull` anchors its file at the new oldest record and the
#            chain verifies from there (a .rvmw file may start mid-chain)
#   PRUNE    the store notes (first dropped seq, first kept seq, records
#            dropped that the host had not acknowledged) in store.pruned;
#            the log witnesses it at its next service() (PRUNE a..c, d = ack)
import struct

from .flashfs import write_atomic


def _small(st, name):
    try:
        f = st.fs.open(st.root + "/" + name, "rb")
    except OSError:
        return None
    try:
        return f.read(64)
    finally:
        f.close()


def load(st):
    """Read the store's ack and anchor once."""
    if st._ret:
        return
    raw = _small(st, "ack")
    st.acked = struct.unpack("<I", raw)[0] if raw and len(raw) == 4 else 0
    raw = _small(st, "anchor")
    st.anchor = (struct.unpack("<I", raw[0:4])[0], bytes(raw[4:36])) \
        if raw and len(raw) == 36 else None
    st._ret = True


def set_ack(st, seq):
    """The host has stored records below `seq`: they may be dropped first
    when flash fills. Returns the acknowledged seq."""
    load(st)
    seq = min(max(seq, 0), st._next)
    if seq > st.acked:
        write_atomic(st.fs, st.root + "/ack", (struct.pack("<I", seq),))
        st.acked = seq
    return st.acked


def anchor_link(st, seq):
    """The link before record `seq` when older records were dropped."""
    load(st)
    a = st.anchor
    return a[1] if a is not None and a[0] == seq else None


def free_bytes(path):
    """Free bytes on the filesystem holding `path`, -1 when unknown."""
    try:
        import os
        s = os.statvfs(path)
        return s[0] * s[4]
    except (AttributeError, OSError):
        return -1


def make_room(st):
    """Drop the oldest segments while a new one would not fit the policy.
    Returns the number of segments dropped."""
    load(st)
    seg_bytes = st.seg_records * 64
    n = 0
    while True:
        segs = st.segments()
        over = st.max_bytes and (len(segs) + 1) * seg_bytes > st.max_bytes
        if not over and st.min_free:
            free = free_bytes(st.root)
            over = 0 <= free < st.min_free + seg_bytes
        if not over or not _drop_oldest(st, segs):
            return n
        n += 1


def _drop_oldest(st, segs):
    if len(segs) < 2 or segs[0] == st._fseg:
        return False  # never the newest (or open) segment
    seg = segs[0]
    lo = seg * st.seg_records
    hi = lo + st.seg_records
    if segs[1] * st.seg_records < hi:
        return False
    lost = max(0, hi - max(lo, st.acked))
    if lost and st.keep_unacked:
        return False
    last = st._read_raw(seg, st.seg_records - 1)
    if last is None:
        return False
    write_atomic(st.fs, st.root + "/anchor", (struct.pack("<I", hi), last[32:64]))
    st.anchor = (hi, bytes(last[32:64]))
    st.fs.remove(st._path(seg))
    p = st.pruned
    st.pruned = (p[0] if p else lo, hi, (p[2] if p else 0) + lost)
    return True


# ---- the log's side (witness.py calls these; kept here so the always-loaded
# witness module does not carry them) -----------------------------------------
def lose_store(log, e, durable):
    """The store failed with ENOSPC: the log drops it and goes on in RAM.
    Records below `durable` were on flash; flush() reports no more."""
    st = log.store
    log.store = None
    log.store_err = e.args[0] if e.args and type(e.args[0]) is int else 5
    log._store_lost = True
    log._lost_at = durable
    log.first_seq = durable  # the ring holds the rest from here
    log._room = log._linked + log.ring_n
    st.abandon()


def witness_events(log):
    """Witness what the store did outside emit (never inside it): a
    retention drop (PRUNE) or the loss of the store (DEGRADED_ENTER reason
    5). Called from WitnessLog.service(), the kernel's flush point."""
    from . import kinds
    st = log.store
    if st is not None and st.pruned is not None:
        lo, hi, lost = st.pruned
        st.pruned = None
        log.emit(kinds.PRUNE, 0, 0, lo, hi, lost, st.acked)
    if log._store_lost:
        log._store_lost = False
        log.emit(kinds.DEGRADED_ENTER, 0, 0, 5, log.store_err, 0, log._stored)
