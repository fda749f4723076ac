# A WebAssembly partition's linear memory as a kernel region: allocated
# from the partition's memory quota in the RegionManager's arena and marked
# *live* (the executor writes it in place, region.py _sync takes the bytes
# as written), so checkpoints capture it, tier moves and F2 rebuilds bring
# it back, region_at() reconstructs it at checkpoint/sync granularity.
#
#   start      attach(): a new live region (zeroed; data segments next)
#   F1 restart attach(): the same region, zeroed again (a fresh instance)
#   F2 rebuild attach(): the region restore_partition brought back from the
#              checkpoint, adopted as it is (no data segments)
#   each run   view(): the bytes where they are now (a tier move in between
#              may have relocated them; DORMANT/COLD ones are faulted in)
#
# Only here, not in region.py: boards without WebAssembly agents do not
# load it.
from .. import errors

_Z = bytes(64)


def attach(rm, pid, rid, size):
    """(rid, fresh) of pid's linear memory of `size` bytes: rid (the one
    its previous instance had, or None) when it can serve, else a new one.
    fresh: the bytes are zero (apply the data segments). An error as rid
    when the arena or the quota has no room."""
    r = rm.regions.get(rid) if rid is not None else None
    if r is not None and r.owner == pid:
        if r.size == size and not r.readers:
            if rid in rm.live:     # the previous instance's: start fresh
                v = view(rm, rid)
                if errors.is_err(v):
                    return v, True
                _zero(v)
                return rid, True
            rm.live.add(rid)       # restored from a checkpoint (F2)
            return rid, False
        rm.live.discard(rid)
        rm.free(0, rid)
    rid = rm.alloc(pid, size)      # zero-filled, counted against the quota
    if not errors.is_err(rid):
        rm.live.add(rid)
    return rid, True


def view(rm, rid):
    """A memoryview of live region rid's bytes in the arena (faulted in to
    HOT first), or an error. Valid until kernel code runs again."""
    r = rm.regions.get(rid)
    if r is None or rid not in rm.live:
        return errors.ENOENT
    e = rm._resident(r)
    if errors.is_err(e):
        return e
    r.last_use = rm.clock()
    return rm.mv[r.off:r.off + r.size]


def _zero(v):
    n = len(v)
    off = 0
    while off < n:
        k = n - off if n - off < 64 else 64
        v[off:off + k] = _Z[0:k]
        off += k
