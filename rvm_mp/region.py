# RegionManager: partitions' memory regions, the four tiers, checkpoints and
# reconstruction, over one preallocated arena (limits.arena bytes).
#
#      agent ---handle/rid---> kernel ---> RegionManager
#                                            |  buddy.py    blocks of the arena
#                                            |  tiers.py    codecs + policy
#                                            |  deltas.log  every byte change
#                                            |  ckpt/, cold/ on flash
#
#   tier      where the bytes are          who may read    who may write
#   HOT       arena block                  owner            owner
#   WARM      arena block                  owner + sharers  nobody (read-only)
#   DORMANT   compressed blob in RAM       (faulted in to HOT on access)
#   COLD      cold/r<rid>.ck on flash      (faulted in to HOT on access)
#
# Every mutation is witnessed (family 0x4_, docs/witness-kinds.md) and every
# byte change is also a delta (reconstruct.py) stamped with the seq of its
# witness record, so region_at(rid, k) rebuilds the bytes at any seq.
# Each region keeps the CRC-32 of the bytes the kernel last wrote:
# verify_region() compares, rollback_region() rebuilds (F3).
# Calls return values or preallocated RvmErrors; refusals are witnessed
# with REGION_DENIED (b = error code, c = offset/size asked, d = op code).
# A *live* region (wasm/memory.py: a WebAssembly partition's linear memory) is
# written in place by its owner's executor; the kernel takes its bytes as
# written (crc, a FULL delta, REGION_WRITE as the owner) before every
# checkpoint, tier move out of the arena, kernel write, verify and rollback.
from .compat import const, ticks_ms
from . import errors
from . import kinds
from . import tiers
from .buddy import Buddy
from .reconstruct import (hash32, DeltaLog, MemDeltaLog, rebuild_at,
                          D_ALLOC, D_WRITE, D_FULL, D_FREE, D_HORIZON)

# operation codes in REGION_DENIED's d
OP_ALLOC = const(1)
OP_READ = const(2)
OP_WRITE = const(3)
OP_FREE = const(4)
OP_SHARE = const(5)
OP_CHECKPOINT = const(6)
OP_RESTORE = const(7)
OP_ROLLBACK = const(8)
OP_REASSIGN = const(9)
OP_TIER = const(10)
OP_HISTORY = const(11)

_RID_MAX = const(0xFFFF)
_PID_MAX = const(4095)


class Region:
    """One region. tier: tiers.HOT/WARM/DORMANT/COLD. off: arena offset
    while resident (HOT, WARM), -1 otherwise. blob: compressed bytes while
    DORMANT. crc: CRC-32 of the contents as the kernel last wrote them."""

    def __init__(self, rid, owner, size, off, now):
        self.rid = rid
        self.owner = owner
        self.size = size
        self.off = off
        self.tier = tiers.HOT
        self.blob = None
        self.codec = tiers.CODEC_RAW
        self.crc = 0
        self.last_use = now
        self.readers = []   # partitions the region is shared with (WARM)
        self.writes = 0


class RegionView:
    """What an agent holds: a bounds-checked, read-only window on a region
    that asks the kernel on every access (so revocation and tier moves
    apply). Writes go through the kernel (mem.write)."""

    def __init__(self, mgr, pid, rid):
        self._m = mgr
        self._pid = pid
        self.rid = rid

    def __len__(self):
        r = self._m.regions.get(self.rid)
        return r.size if r is not None else 0

    def read(self, off=0, n=-1):
        """bytes, or an RvmError (EBOUNDS, ERIGHTS, ENOENT)."""
        if n < 0:
            n = len(self) - off
        return self._m.read(self._pid, self.rid, off, n)

    def __getitem__(self, i):
        size = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(size) if hasattr(i, "indices") else \
                _slice_indices(i, size)
            if step != 1:
                raise IndexError("region views take contiguous slices")
            r = self.read(start, max(0, stop - start))
        else:
            if i < 0:
                i += size
            if i < 0 or i >= size:
                raise IndexError("region index out of range")
            r = self.read(i, 1)
            if not errors.is_err(r):
                r = r[0]
        if errors.is_err(r):
            raise r
        return r


def _slice_indices(s, size):
    # MicroPython slices have no .indices(): clamp like CPython does
    start = 0 if s.start is None else s.start
    stop = size if s.stop is None else s.stop
    step = 1 if s.step is None else s.step
    if start < 0:
        start = max(0, start + size)
    if stop < 0:
        stop = max(0, stop + size)
    return min(start, size), min(stop, size), step


class RegionManager:
    """Regions of every partition. `log`: the WitnessLog. `root`: directory
    on flash for deltas.log, ckpt/ and cold/ (None: deltas in RAM, no
    checkpoints, no COLD tier). `policy`: a tiers policy object (default
    StaticTierPolicy)."""

    def __init__(self, log, arena_size=4096, root=None, fs=None, policy=None,
                 clock=ticks_ms, max_regions=32, ckpt_keep=2, codec=None,
                 delta_max=16384):
        self.log = log
        self.arena = bytearray(arena_size)
        self.mv = memoryview(self.arena)
        self.buddy = Buddy(arena_size)
        self.clock = clock
        self.policy = policy if policy is not None else tiers.StaticTierPolicy()
        self.max_regions = max_regions
        self.codec = codec if codec is not None else tiers.best_codec()
        self.regions = {}       # rid -> Region
        self.quota = {}         # pid -> bytes (absent: unlimited)
        self._freed = set()     # rids freed (double-free detection)
        self.root = root
        self.ckpts = None
        self.stats_moves = 0
        self.last_restore_seq = 0   # checkpoint seq of the last F2 restore
        self.delta_max = delta_max  # compact the delta log past this (0: never)
        # optional L2 hook: on_region_access(rid, pid, nbytes, is_write)
        # after every successful read/write (coherence DC-9 access stats);
        # its exceptions are caught and counted, never reach the kernel
        self.access_observer = None
        self.observer_errors = 0
        self._horizon = {}          # rid -> seq before which history is gone
        self._horizon_all = 0       # the same for regions without a marker
        self.live = set()           # rids written in place (wasm/memory.py)
        if root is not None:
            from .flashfs import OS
            from .checkpoint import CheckpointStore
            self.fs = fs if fs is not None else OS
            self.fs.makedirs(root)
            self.ckpts = CheckpointStore(self.fs, root, ckpt_keep)
            # cold files of a previous boot name no live region (RAM state is
            # gone; partitions come back through restore_partition): free
            # the flash they hold
            for name in self.fs.listdir(root + "/cold"):
                self.fs.remove(root + "/cold/" + name)
            self.deltas = DeltaLog(root + "/deltas.log", self.fs)
            # deltas of witness records the durable log never reached
            self.deltas.truncate_from(log.next_seq)
            st = log.store
            if st is not None:
                st.before_append = self.flush
        else:
            self.fs = None
            self.deltas = MemDeltaLog()
        top = 0
        for e in self.deltas.entries():
            if e[3] > top:
                top = e[3]
            if e[1] == D_HORIZON:
                if e[3]:
                    self._horizon[e[3]] = e[4]
                else:
                    self._horizon_all = e[4]
        if self.ckpts is not None:  # ids held by checkpoints stay reserved
            from .checkpoint import read as _ck_read
            for s, p, path in self.ckpts.list():
                ck = _ck_read(self.fs, path, False)
                if not errors.is_err(ck):
                    for rr in ck["regions"]:
                        if rr[0] > top:
                            top = rr[0]
        self._next_rid = top + 1 if top < _RID_MAX else 1

    # ---- helpers ------------------------------------------------------------
    def _deny(self, op, actor, rid, err, owner=0, arg=0):
        self.log.deny(kinds.REGION_DENIED, actor, owner, err.code, 2, rid,
                      arg, op)
        return err

    def _get(self, op, actor, rid, arg=0):
        r = self.regions.get(rid) if type(rid) is int else None
        if r is None:
            e = errors.EDOUBLEFREE if (op == OP_FREE and rid in self._freed) \
                else errors.ENOENT
            self._deny(op, actor, rid if type(rid) is int else 0, e, 0, arg)
        return r

    def _new_rid(self):
        rid = self._next_rid
        for _ in range(_RID_MAX):
            if rid > _RID_MAX:
                rid = 1
            if rid not in self.regions:
                self._next_rid = rid + 1
                return rid
            rid += 1
        return -1

    def _used(self, pid):
        n = 0
        for r in self.regions.values():
            if r.owner == pid:
                n += r.size
        return n

    def set_quota(self, pid, nbytes):
        """Memory quota of a partition in bytes (0 = unlimited)."""
        if nbytes:
            self.quota[pid] = nbytes
        else:
            self.quota.pop(pid, None)

    def _block(self, size, exclude=None):
        """Arena offset for `size` bytes; under pressure demote the least
        recently used HOT regions to DORMANT until it fits."""
        off = self.buddy.alloc(size)
        while errors.is_err(off) and off is errors.ENOMEM:
            victim = None
            for r in self.regions.values():
                if r.tier == tiers.HOT and r is not exclude and r.off >= 0 \
                        and (victim is None or
                             _older(r.last_use, victim.last_use)):
                    victim = r
            if victim is None:
                return errors.ENOMEM
            if errors.is_err(self._move(victim, tiers.DORMANT, 0)):
                return errors.ENOMEM
            off = self.buddy.alloc(size)
        return off

    # ---- allocation -----------------------------------------------------------
    def alloc(self, pid, size):
        """A new zero-filled HOT region of `size` bytes owned by pid;
        returns its region id."""
        if type(size) is not int or size <= 0 or size > self.buddy.size:
            return self._deny(OP_ALLOC, pid, 0,
                              errors.EINVAL if type(size) is not int or size <= 0
                              else errors.ENOMEM, pid,
                              size if type(size) is int else 0)
        if pid < 0 or pid > _PID_MAX:
            return self._deny(OP_ALLOC, pid, 0, errors.EBADID, 0, size)
        if len(self.regions) >= self.max_regions:
            return self._deny(OP_ALLOC, pid, 0, errors.ENOMEM, pid, size)
        q = self.quota.get(pid, 0)
        if q and self._used(pid) + size > q:
            return self._deny(OP_ALLOC, pid, 0, errors.EQUOTA, pid, size)
        rid = self._new_rid()
        if rid < 0:
            return self._deny(OP_ALLOC, pid, 0, errors.ENOMEM, pid, size)
        off = self._block(size)
        if errors.is_err(off):
            return self._deny(OP_ALLOC, pid, 0, off, pid, size)
        _zero(self.mv, off, self.buddy.block_size(off))  # no stale bytes
        r = Region(rid, pid, size, off, self.clock())
        r.crc = hash32(self.mv[off:off + size])
        self.regions[rid] = r
        self._freed.discard(rid)
        seq = self.log.emit(kinds.REGION_ALLOC, pid, pid, rid, size, off,
                            tiers.HOT)
        self.deltas.append(D_ALLOC, seq, rid, size, b"")
        return rid

    def free(self, pid, rid, authorized=False):
        """0, or EDOUBLEFREE (freed already), ENOENT, ERIGHTS (not owner and
        not authorized by the kernel's proof gate), EBUSY (a live region:
        only the kernel frees it)."""
        r = self._get(OP_FREE, pid, rid)
        if r is None:
            return errors.EDOUBLEFREE if rid in self._freed else errors.ENOENT
        if not (authorized or pid == 0 or pid == r.owner):
            return self._deny(OP_FREE, pid, rid, errors.ERIGHTS, r.owner)
        if pid != 0 and rid in self.live:
            return self._deny(OP_FREE, pid, rid, errors.EBUSY, r.owner)
        self.live.discard(rid)
        if r.off >= 0:
            e = self.buddy.free(r.off)
            if errors.is_err(e):  # arena bookkeeping disagrees: refuse
                return self._deny(OP_FREE, pid, rid, e, r.owner, r.off)
        if r.tier == tiers.COLD and self.ckpts is not None:
            self.ckpts.drop_cold(rid)
        del self.regions[rid]
        self._freed.add(rid)
        seq = self.log.emit(kinds.REGION_FREE, pid, r.owner, rid, r.size)
        self.deltas.append(D_FREE, seq, rid, 0, b"")
        return 0

    def drop_partition(self, pid):
        """Free every region pid owns and withdraw its shares (termination
        drops everything in one place). Returns regions freed."""
        n = 0
        for rid in [x for x in self.regions if self.regions[x].owner == pid]:
            if self.free(0, rid) == 0:
                n += 1
        for r in self.regions.values():
            if pid in r.readers:
                self._unshare(r, pid)
        self.quota.pop(pid, None)
        return n

    def regions_of(self, pid):
        return sorted(x for x in self.regions if self.regions[x].owner == pid)

    # ---- live regions: memory an executor writes in place (wasm/memory.py) --
    def _sync(self, r):
        """Take a live region's in-place writes as the kernel's: when its
        bytes changed, new crc, REGION_WRITE (as the owner) and a FULL delta,
        so checkpoints, tiers and region_at see what the executor wrote."""
        if r.rid in self.live and r.off >= 0:
            data = bytes(self.mv[r.off:r.off + r.size])
            c = hash32(data)
            if c != r.crc:
                r.crc = c
                r.writes += 1
                seq = self.log.emit(kinds.REGION_WRITE, r.owner, r.owner, r.rid,
                                    0, r.size, c)
                self.deltas.append(D_FULL, seq, r.rid, 0, data)

    # ---- access -------------------------------------------------------------
    def _resident(self, r):
        """Fault a DORMANT/COLD region back in (HOT). 0 or error."""
        if r.off >= 0:
            return 0
        return self._move(r, tiers.HOT, 0)

    def read(self, pid, rid, off, n, authorized=False):
        """bytes(n) at off. Owner, sharers, the kernel (pid 0) or a caller
        the kernel's proof gate already authorized may read."""
        r = self._get(OP_READ, pid, rid, off)
        if r is None:
            return errors.ENOENT
        if not (authorized or pid == 0 or pid == r.owner or pid in r.readers):
            return self._deny(OP_READ, pid, rid, errors.ERIGHTS, r.owner, off)
        if type(off) is not int or type(n) is not int or off < 0 or n < 0 \
                or off + n > r.size:
            return self._deny(OP_READ, pid, rid, errors.EBOUNDS, r.owner,
                              off if type(off) is int else 0)
        e = self._resident(r)
        if errors.is_err(e):
            return self._deny(OP_READ, pid, rid, e, r.owner, off)
        r.last_use = self.clock()
        a = r.off + off
        if self.access_observer is not None:
            self._observe(rid, pid, n, False)
        return bytes(self.mv[a:a + n])

    def view(self, pid, rid):
        r = self._get(OP_READ, pid, rid)
        if r is None:
            return errors.ENOENT
        if not (pid == 0 or pid == r.owner or pid in r.readers):
            return self._deny(OP_READ, pid, rid, errors.ERIGHTS, r.owner)
        return RegionView(self, pid, rid)

    def write(self, pid, rid, off, data, authorized=False):
        """Copy `data` into the region at off through the kernel; witnessed
        REGION_WRITE (a rid, b off, c length, d crc32 of the new bytes) and
        logged as a delta. Returns the number of bytes written."""
        r = self._get(OP_WRITE, pid, rid, off)
        if r is None:
            return errors.ENOENT
        if not (authorized or pid == 0 or pid == r.owner):
            return self._deny(OP_WRITE, pid, rid, errors.ERIGHTS, r.owner, off)
        try:
            n = len(data)
        except TypeError:
            return self._deny(OP_WRITE, pid, rid, errors.EINVAL, r.owner, off)
        if type(off) is not int or off < 0 or off + n > r.size:
            return self._deny(OP_WRITE, pid, rid, errors.EBOUNDS, r.owner,
                              off if type(off) is int else 0)
        if r.tier == tiers.WARM:
            return self._deny(OP_WRITE, pid, rid, errors.ESTATE, r.owner, off)
        e = self._resident(r)
        if errors.is_err(e):
            return self._deny(OP_WRITE, pid, rid, e, r.owner, off)
        self._sync(r)
        a = r.off + off
        self.mv[a:a + n] = data
        r.crc = hash32(self.mv[r.off:r.off + r.size])
        r.last_use = self.clock()
        r.writes += 1
        new = self.mv[a:a + n]
        seq = self.log.emit(kinds.REGION_WRITE, pid, r.owner, rid, off, n,
                            hash32(new))
        self.deltas.append(D_WRITE, seq, rid, off, new)
        if self.access_observer is not None:
            self._observe(rid, pid, n, True)
        return n

    def _observe(self, rid, pid, n, is_write):
        try:
            self.access_observer.on_region_access(rid, pid, n, is_write)
        except Exception:  # L2 is optional and may fail (DC-1)
            self.observer_errors += 1

    # ---- sharing (WARM) and DC-9 reassignment --------------------------------
    def share(self, pid, rid, to_pid, authorized=False):
        """Share the region read-only into to_pid; it becomes WARM
        (read-only for everyone until the last share is withdrawn)."""
        r = self._get(OP_SHARE, pid, rid, to_pid)
        if r is None:
            return errors.ENOENT
        if not (authorized or pid == 0 or pid == r.owner):
            return self._deny(OP_SHARE, pid, rid, errors.ERIGHTS, r.owner, to_pid)
        if type(to_pid) is not int or to_pid < 1 or to_pid > _PID_MAX \
                or to_pid == r.owner:
            return self._deny(OP_SHARE, pid, rid, errors.EBADID, r.owner, 0)
        if rid in self.live:   # its owner writes it: never read-only
            return self._deny(OP_SHARE, pid, rid, errors.ESTATE, r.owner, to_pid)
        if r.tier != tiers.WARM:
            e = self._move(r, tiers.WARM, 0)
            if errors.is_err(e):
                return self._deny(OP_SHARE, pid, rid, e, r.owner, to_pid)
        if to_pid not in r.readers:
            r.readers.append(to_pid)
        self.log.emit(kinds.REGION_SHARE, pid, to_pid, rid, r.size, 1)
        return rid

    def unshare(self, pid, rid, from_pid):
        r = self._get(OP_SHARE, pid, rid, from_pid)
        if r is None:
            return errors.ENOENT
        if pid != 0 and pid != r.owner and pid != from_pid:
            return self._deny(OP_SHARE, pid, rid, errors.ERIGHTS, r.owner,
                              from_pid)
        if from_pid not in r.readers:
            return self._deny(OP_SHARE, pid, rid, errors.ENOENT, r.owner,
                              from_pid)
        self._unshare(r, from_pid)
        return 0

    def _unshare(self, r, from_pid):
        r.readers.remove(from_pid)
        self.log.emit(kinds.REGION_SHARE, 0, from_pid, r.rid, r.size, 0)
        if not r.readers and r.tier == tiers.WARM:
            self._move(r, tiers.HOT, 0)

    def reassign(self, rid, to_pid, actor=0):
        """DC-9: a split moves the region to the side the scored placement
        chose. Shares held by the new owner are dropped."""
        r = self._get(OP_REASSIGN, actor, rid, to_pid)
        if r is None:
            return errors.ENOENT
        if type(to_pid) is not int or to_pid < 1 or to_pid > _PID_MAX:
            return self._deny(OP_REASSIGN, actor, rid, errors.EBADID, r.owner, 0)
        if rid in self.live:   # its owner's executor holds it
            return self._deny(OP_REASSIGN, actor, rid, errors.ESTATE, r.owner, to_pid)
        old = r.owner
        if to_pid in r.readers:
            self._unshare(r, to_pid)
        r.owner = to_pid
        self.log.emit(kinds.REGION_REASSIGN, actor, to_pid, rid, old, r.size)
        return 0

    # ---- tiers ------------------------------------------------------------------
    def _move(self, r, tier, score):
        """Move the region's bytes to `tier`; witnessed TIER_MOVE. 0 or error."""
        old = r.tier
        if tier == old:
            return 0
        if tier == tiers.COLD and self.ckpts is None:
            return errors.ENOENT
        if tier in (tiers.HOT, tiers.WARM):
            if r.off < 0:
                data = self._contents(r)
                if errors.is_err(data):
                    return data
                off = self._block(r.size, r)
                if errors.is_err(off):
                    return off
                self.mv[off:off + r.size] = data
                r.off = off
                if old == tiers.COLD:
                    self.ckpts.drop_cold(r.rid)
                r.blob = None
        else:  # DORMANT or COLD: leave the arena
            if r.readers:
                return errors.ESTATE  # shared regions stay resident
            self._sync(r)
            data = self._contents(r)
            if errors.is_err(data):
                return data
            if tier == tiers.DORMANT:
                r.blob = tiers.encode(self.codec, data)
                r.codec = self.codec
            else:
                self.ckpts.save_cold(r.rid, r.owner, self.log.next_seq, data)
                r.blob = None
            if r.off >= 0:
                self.buddy.free(r.off)
                r.off = -1
        r.tier = tier
        self.stats_moves += 1
        self.log.emit(kinds.TIER_MOVE, 0, r.owner, r.rid, old, tier, score)
        return 0

    def _contents(self, r):
        """The region's bytes wherever they are (checked against r.crc
        when they come back from DORMANT or COLD)."""
        if r.off >= 0:
            return bytes(self.mv[r.off:r.off + r.size])
        if r.tier == tiers.DORMANT:
            out = bytearray(r.size)
            if tiers.decode_into(r.codec, r.blob, out) != r.size:
                return errors.ECORRUPT
        else:
            out = self.ckpts.load_cold(r.rid)
            if errors.is_err(out):
                return out
        if hash32(out) != r.crc:
            return errors.ECORRUPT
        return out

    def move(self, rid, tier, actor=0):
        """Move a region to a tier on request (kernel/operator). 0 or error."""
        r = self._get(OP_TIER, actor, rid, tier)
        if r is None:
            return errors.ENOENT
        if tier not in (tiers.HOT, tiers.DORMANT, tiers.COLD) or \
                (r.readers and tier != tiers.WARM):
            return self._deny(OP_TIER, actor, rid, errors.ESTATE, r.owner, tier)
        e = self._move(r, tier, self.policy.score(r, self.clock()))
        if errors.is_err(e):
            return self._deny(OP_TIER, actor, rid, e, r.owner, tier)
        return 0

    def tier_of(self, rid):
        r = self.regions.get(rid)
        return r.tier if r is not None else errors.ENOENT

    def tick(self, now=None):
        """Apply the tier policy to every unshared region; returns moves."""
        if now is None:
            now = self.clock()
        n = 0
        for rid in list(self.regions):
            r = self.regions[rid]
            if r.readers:
                continue
            want = self.policy.decide(r, now)
            if want == tiers.COLD and self.ckpts is None:
                want = tiers.DORMANT
            if want != r.tier and r.tier != tiers.WARM:
                if self._move(r, want, self.policy.score(r, now)) == 0:
                    n += 1
        return n

    # ---- durability -------------------------------------------------------------
    def flush(self):
        """Make every delta durable (the witness store calls this before it
        persists records, so a durable REGION_WRITE always has its delta)."""
        self.deltas.sync()

    def close(self):
        self.deltas.close()

    def abandon(self):
        """Power is gone: drop open files without syncing. Never raises."""
        self.deltas.abandon()

    # ---- checkpoints (F2) ----------------------------------------------------
    def checkpoint(self, pid, extra=b"", actor=0):
        """Write pid's regions and the kernel's `extra` bytes to flash.
        Returns the seq of the CHECKPOINT record (durable on return)."""
        if self.ckpts is None:
            return self._deny(OP_CHECKPOINT, actor, 0, errors.ENOENT, pid)
        self.flush()
        self.log.flush()
        seq = self.log.next_seq
        regs = []
        nbytes = 0
        for rid in self.regions_of(pid):
            r = self.regions[rid]
            self._sync(r)
            data = self._contents(r)
            if errors.is_err(data):
                return self._deny(OP_CHECKPOINT, actor, rid, data, pid)
            regs.append((rid, pid, r.tier, data))
            nbytes += r.size
        prev = self.ckpts.list(pid)
        prev_seq = prev[-1][0] if prev else 0
        size, dig = self.ckpts.save(pid, seq, regs, bytes(extra))
        s = self.log.emit(kinds.CHECKPOINT, actor, pid, size, len(regs), dig,
                          prev_seq)
        self.log.flush()
        if self.delta_max and self.deltas.size() > self.delta_max:
            self.compact()
        return s

    def restore_partition(self, pid, actor=0):
        """F2: rebuild pid's regions from its newest valid checkpoint
        (regions allocated since are freed). Returns the checkpoint's
        `extra` bytes for the kernel (caps, queues, restart point)."""
        if self.ckpts is None:
            return self._deny(OP_RESTORE, actor, 0, errors.ENOENT, pid)
        ck = self.ckpts.latest(pid)
        if errors.is_err(ck):
            return self._deny(OP_RESTORE, actor, 0, ck, pid)
        need = 0
        for rr in ck["regions"]:
            cur = self.regions.get(rr[0])
            if cur is not None and cur.owner != pid:
                return self._deny(OP_RESTORE, actor, rr[0], errors.EBUSY, pid)
            need += rr[3]
        for rid in self.regions_of(pid):
            self.live.discard(rid)   # its executor is gone (adopt_live)
            self.free(actor, rid)
        for rid, owner, tier, size, crc, data in ck["regions"]:
            off = self._block(size)
            if errors.is_err(off):
                return self._deny(OP_RESTORE, actor, rid, off, pid, size)
            self.mv[off:off + size] = data
            r = Region(rid, pid, size, off, self.clock())
            r.crc = crc
            self.regions[rid] = r
            self._freed.discard(rid)
            seq = self.log.emit(kinds.RECONSTRUCT, actor, pid, rid, ck["seq"],
                                0, crc)
            self.deltas.append(D_FULL, seq, rid, 0, data)
        self.last_restore_seq = ck["seq"]
        if self._next_rid <= max([0] + [x[0] for x in ck["regions"]]):
            self._next_rid = max(x[0] for x in ck["regions"]) + 1
        return ck["extra"]

    # ---- verification and rollback (F3) ----------------------------------------
    def verify_region(self, rid):
        """True when the region's bytes match the CRC-32 of what the kernel
        last wrote; False when they do not (corruption); ENOENT."""
        r = self.regions.get(rid)
        if r is None:
            return errors.ENOENT
        self._sync(r)   # a live region: its bytes are what its owner wrote
        if r.off >= 0:
            return hash32(self.mv[r.off:r.off + r.size]) == r.crc
        return not errors.is_err(self._contents(r))

    def horizon(self, rid):
        """Seq before which region rid's history was compacted away."""
        return self._horizon.get(rid, self._horizon_all)

    def _rebuild(self, rid, k):
        """(state, deltas applied, base seq, ok): ok False when compaction
        dropped the history seq k needs."""
        base, base_seq = None, 0
        if self.ckpts is not None:
            b = self.ckpts.base_for(rid, k)
            if b is not None:
                base_seq, base = b
        state, n, ok = rebuild_at(self.deltas.entries(), rid, k, base,
                                  base_seq, self.horizon(rid),
                                  rid in self._horizon)
        return state, n, base_seq, ok

    def compact(self):
        """Rewrite the delta log keeping only the history live regions need
        from their horizon on: the newest checkpoint holding the region, or
        its last ALLOC/FULL entry. Freed regions' history goes. HORIZON
        markers record what was dropped (region_at below them: EEXPIRED).
        Atomic (temp file + rename): a power cut leaves the old or the new
        log. Returns bytes saved."""
        if self.ckpts is None:
            return 0
        from .reconstruct import pack_delta
        from .flashfs import write_atomic
        self.flush()
        self.log.flush()
        last = self.log.next_seq - 1
        before = self.deltas.size()
        keep = {}
        for rid in self.regions:
            b = self.ckpts.base_for(rid, last)
            keep[rid] = b[0] if b is not None else 0
        for e in self.deltas.entries():  # last reset entry of each region
            if e[3] in keep and (e[1] == D_ALLOC or e[1] == D_FULL) \
                    and e[2] > keep[e[3]]:
                keep[e[3]] = e[2]
        path = self.deltas.path
        self.deltas.close()
        tmp_src = self.deltas

        def chunks():
            for pos, op, seq, rid, off, payload in tmp_src.entries():
                if op != D_HORIZON and rid in keep and seq >= keep[rid]:
                    yield pack_delta(op, seq, rid, off, payload)
                    if payload:
                        yield payload
            for rid in keep:
                yield pack_delta(D_HORIZON, last, rid, keep[rid], b"")
            yield pack_delta(D_HORIZON, last, 0, last + 1, b"")

        write_atomic(self.fs, path, chunks())  # reads the old, then renames
        self._horizon = keep
        self._horizon_all = last + 1
        self.deltas = DeltaLog(path, self.fs)
        after = self.deltas.size()
        self.log.emit(kinds.DELTA_COMPACT, 0, 0, before, after, len(keep),
                      last + 1)
        return before - after

    def rollback_region(self, rid, actor=0):
        """F3: rebuild the region from its nearest checkpoint plus deltas
        (the bytes the kernel last wrote) and put them back. 0, or ECORRUPT
        when the rebuilt bytes do not match either (escalate to F4)."""
        r = self.regions.get(rid)
        if r is None:
            return self._deny(OP_ROLLBACK, actor, rid if type(rid) is int else 0,
                              errors.ENOENT, 0)
        self._sync(r)
        self.flush()
        state, n, base_seq, ok = self._rebuild(rid, self.log.next_seq - 1)
        if not ok or state is None or len(state) != r.size \
                or hash32(state) != r.crc:
            return self._deny(OP_ROLLBACK, actor, rid, errors.ECORRUPT, r.owner)
        if r.off >= 0:
            self.mv[r.off:r.off + r.size] = state
        else:  # a corrupt blob or cold file: bring the good bytes back in
            off = self._block(r.size, r)
            if errors.is_err(off):
                return self._deny(OP_ROLLBACK, actor, rid, off, r.owner)
            self.mv[off:off + r.size] = state
            if r.tier == tiers.COLD:
                self.ckpts.drop_cold(rid)
            old = r.tier
            r.off, r.blob, r.tier = off, None, tiers.HOT
            self.log.emit(kinds.TIER_MOVE, 0, r.owner, rid, old, tiers.HOT, 0)
        self.log.emit(kinds.REGION_ROLLBACK, actor, r.owner, rid, base_seq, n,
                      r.crc)
        return 0

    # ---- time travel -------------------------------------------------------------
    def region_at(self, rid, seq):
        """The region's bytes as they were when witness record `seq` was
        emitted (bytes), ENOENT when it did not exist then, EEXPIRED when
        compaction dropped that part of its history."""
        if type(rid) is not int or type(seq) is not int or seq < 0 \
                or seq >= self.log.next_seq:
            return errors.EINVAL
        self.flush()
        state, n, base_seq, ok = self._rebuild(rid, seq)
        if not ok:
            return errors.EEXPIRED
        if state is None:
            return errors.ENOENT
        return bytes(state)


_Z = bytes(64)


def _zero(mv, off, n):
    end = off + n
    while off < end:
        k = end - off if end - off < 64 else 64
        mv[off:off + k] = _Z[0:k]
        off += k


def _older(a, b):
    from .compat import ticks_diff
    return ticks_diff(a, b) < 0
