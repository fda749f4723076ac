# CapTable: every capability in the kernel, and each partition's handle table.
# Capabilities are kernel data; agents only ever hold small-int handles.
#
# Model (seL4's derivation tree, flattened into preallocated arrays):
#
#   pool (kernel-wide, N = partitions x caps_per_partition entries)
#   idx  otype oid rights depth parent serial holder hslot flags expiry
#    0    CHAN  3   RWGV    0    -1     17     1      0    0     -
#    1    CHAN  3   R W     1     0     18     1      1    0     -
#    2    CHAN  3   R       2     1     19     2      0    0     -     <- granted to pid 2
#
#   per-partition table (pid -> array of slots): slot = gen << 16 | (idx + 1)
#   (idx + 1 == 0: free slot)     handle = gen << 8 | slot
#   gen 1..255, bumped when the slot is freed, so an old handle goes stale
#   key[idx] = otype << 16 | oid  (P1 compares one int for type and object)
#
#       root (parent -1, minted by the kernel)
#        +-- child (derive: same table, rights subset, depth + 1)
#             +-- grandchild (grant: another partition's table)
#
# Revoking an entry walks the tree by parent links (a mark pass repeated to a
# fixpoint, at most MAX_DEPTH + 1 passes over the pool) and frees the whole
# subtree in every table. A child records its parent's serial, so a reused
# pool slot can never pass as an old parent (the ownership-chain check).
#
# GRANT_ONCE: the granting entry leaves its holder's table (its handle goes
# stale) but stays in the pool as a "husk" so the grantee's chain still
# reaches the kernel; husks are freed with their subtree or their holder.
from array import array

from .compat import const, ticks_diff

R_READ = const(1)
R_WRITE = const(2)
R_GRANT = const(4)
R_REVOKE = const(8)
R_EXECUTE = const(16)
R_PROVE = const(32)
R_GRANT_ONCE = const(64)
R_ALL = const(127)
MAX_DEPTH = const(8)

OT_PARTITION = const(1)
OT_CHANNEL = const(2)
OT_DEVICE = const(3)
OT_REGION = const(4)
OT_CODE = const(5)
OT_GRAPH = const(6)

F_EXPIRES = const(1)  # expiry[] holds a ticks_ms deadline
F_HUSK = const(2)     # consumed GRANT_ONCE source kept for the chain
_SER_MASK = const(0x3FFFFFFF)


class CapTable:
    def __init__(self, pool_size, per_partition):
        n = pool_size
        self.n = n
        self.per = per_partition
        self.otype = bytearray(n)   # 0 = free entry, else OT_*
        self.rights = bytearray(n)
        self.depth = bytearray(n)
        self.flags = bytearray(n)   # F_EXPIRES | F_HUSK
        self.hslot = bytearray(n)   # slot in the holder's table
        self.oid = array("H", [0] * n)
        self.holder = array("H", [0] * n)
        self.parent = array("h", [-1] * n)  # -1: root minted by the kernel
        self.serial = array("i", [0] * n)
        self.pser = array("i", [0] * n)     # serial of the parent at derive
        self.expiry = {}                    # idx -> ticks_ms deadline (F_EXPIRES only)
        self._mark = bytearray(n)           # scratch for subtree walks
        self._free = array("h", range(n - 1, -1, -1))
        self._nfree = n
        self._ser = 0
        self.key = array("i", [0] * n)      # otype << 16 | oid
        self.tables = {}                    # pid -> array("i") of slots
        self.used = {}                      # pid -> slots in use

    # ---- tables --------------------------------------------------------
    def open(self, pid):
        """Give partition `pid` an empty handle table."""
        t = array("i", [1 << 16] * self.per)
        self.tables[pid] = t
        self.used[pid] = 0
        return t

    def handle_of(self, ci):
        s = self.hslot[ci]
        return ((self.tables[self.holder[ci]][s] >> 16) << 8) | s

    def resolve(self, pid, handle):
        """(pool index, 0) or (-1, errcode) for handle in pid's table.
        Errcodes: 1 EBADHANDLE, 2 ESTALE, 8 ESTATE (no table)."""
        t = self.tables.get(pid) if type(pid) is int else None
        if t is None:
            return -1, 8
        if type(handle) is not int or handle < 256 or handle > 0xFFFF:
            return -1, 1
        s = handle & 0xFF
        if s >= self.per:
            return -1, 1
        v = t[s]
        if v >> 16 != handle >> 8:
            return -1, 2
        ci = (v & 0xFFFF) - 1
        if ci < 0:
            return -1, 1
        return ci, 0

    # ---- allocation ----------------------------------------------------
    def _slot(self, pid):
        """A free slot in pid's table, or (-1, code)."""
        t = self.tables.get(pid)
        if t is None:
            return -1, 8
        if self.used[pid] >= self.per or self._nfree == 0:
            return -1, 19  # ENOMEM
        s = 0
        while t[s] & 0xFFFF:
            s += 1
        return s, 0

    def _put(self, pid, s, ci):
        t = self.tables[pid]
        t[s] = (t[s] & ~0xFFFF) | (ci + 1)
        self.used[pid] += 1
        self.holder[ci] = pid
        self.hslot[ci] = s

    def _alloc(self, pid):
        """Pool index + slot for a new entry held by pid, or (-1, code)."""
        s, code = self._slot(pid)
        if s < 0:
            return -1, code
        self._nfree -= 1
        ci = self._free[self._nfree]
        self._put(pid, s, ci)
        return ci, 0

    def _fill(self, ci, otype, oid, rights, depth, parent, flags, expiry):
        self.otype[ci] = otype
        self.oid[ci] = oid
        self.key[ci] = (otype << 16) | oid
        self.rights[ci] = rights
        self.depth[ci] = depth
        self.parent[ci] = parent
        self.pser[ci] = self.serial[parent] if parent >= 0 else 0
        self._ser = (self._ser + 1) & _SER_MASK
        self.serial[ci] = self._ser
        self.flags[ci] = flags
        if flags & F_EXPIRES:
            self.expiry[ci] = expiry

    def _unslot(self, ci):
        """Take entry ci out of its holder's table (its handle goes stale)."""
        pid = self.holder[ci]
        t = self.tables.get(pid)
        if t is None or self.flags[ci] & F_HUSK:
            return
        s = self.hslot[ci]
        v = t[s]
        if (v & 0xFFFF) == ci + 1:
            g = (v >> 16) + 1
            t[s] = (g if g < 256 else 1) << 16
            self.used[pid] -= 1

    def _release(self, ci):
        self._unslot(ci)
        if self.flags[ci] & F_EXPIRES:
            del self.expiry[ci]
        self.otype[ci] = 0
        self.key[ci] = 0
        self.rights[ci] = 0
        self.flags[ci] = 0
        self.parent[ci] = -1
        self.serial[ci] = 0
        self._free[self._nfree] = ci
        self._nfree += 1

    # ---- operations (validated by the kernel/gate before they are called) --
    def mint(self, pid, otype, oid, rights):
        """Root capability held by pid. Returns (handle, ci) or (-1, code)."""
        ci, code = self._alloc(pid)
        if ci < 0:
            return -1, code
        self._fill(ci, otype, oid, rights & R_ALL, 0, -1, 0, 0)
        return self.handle_of(ci), ci

    def child(self, src, pid, rights, expiry, has_exp):
        """New entry held by pid derived from pool entry src (rights and
        depth already checked). Returns (handle, ci) or (-1, code)."""
        ci, code = self._alloc(pid)
        if ci < 0:
            return -1, code
        fl = 0
        exp = 0
        if self.flags[src] & F_EXPIRES:
            fl = F_EXPIRES
            exp = self.expiry[src]
        if has_exp and (not fl or ticks_diff(expiry, exp) < 0):
            fl = F_EXPIRES
            exp = expiry
        self._fill(ci, self.otype[src], self.oid[src], rights,
                   self.depth[src] + 1, src, fl, exp)
        return self.handle_of(ci), ci

    def consume(self, ci):
        """A GRANT_ONCE source after its grant: out of the table, kept as a
        husk for its subtree's ownership chain."""
        self._unslot(ci)
        self.flags[ci] |= F_HUSK
        self.rights[ci] &= ~(R_GRANT | R_GRANT_ONCE)

    def mark_subtree(self, root):
        """Mark root and every descendant in _mark; returns the count."""
        mark = self._mark
        n = self.n
        for i in range(n):
            mark[i] = 0
        mark[root] = 1
        count = 1
        otype = self.otype
        parent = self.parent
        pser = self.pser
        serial = self.serial
        changed = True
        while changed:
            changed = False
            for i in range(n):
                if otype[i] and not mark[i]:
                    p = parent[i]
                    if p >= 0 and mark[p] and pser[i] == serial[p]:
                        mark[i] = 1
                        count += 1
                        changed = True
        return count

    def free_marked(self, keep=-1):
        """Free every marked entry except `keep`; returns how many."""
        mark = self._mark
        k = 0
        for i in range(self.n):
            if mark[i] and i != keep:
                self._release(i)
                k += 1
            mark[i] = 0
        return k

    def delete(self, root, keep_root=False):
        """Free root's subtree (and root unless keep_root). Returns count
        (husks that lost their last child are reaped, not counted)."""
        self.mark_subtree(root)
        n = self.free_marked(root if keep_root else -1)
        self._reap_husks()
        return n

    def _reap_husks(self):
        """Free consumed GRANT_ONCE husks with no live child left (a husk
        only exists to anchor its children's chain)."""
        flags = self.flags
        otype = self.otype
        parent = self.parent
        pser = self.pser
        serial = self.serial
        n = self.n
        again = True
        while again:
            again = False
            for h in range(n):
                if otype[h] and flags[h] & F_HUSK:
                    used = False
                    for i in range(n):
                        if otype[i] and parent[i] == h and pser[i] == serial[h]:
                            used = True
                            break
                    if not used:
                        self._release(h)
                        again = True

    def drop_where(self, pred_holder=-1, otype=0, oid=-1):
        """Free the subtrees of every entry held by `pred_holder` (husks
        included) or naming (otype, oid). Returns the count freed."""
        total = 0
        i = 0
        while i < self.n:
            ot = self.otype[i]
            if ot and ((pred_holder >= 0 and self.holder[i] == pred_holder)
                       or (ot == otype and (oid < 0 or self.oid[i] == oid))):
                total += self.delete(i)
            i += 1
        return total

    def attenuate(self, ci, mask):
        """AND rights of ci and its whole subtree with mask; returns count."""
        c = self.mark_subtree(ci)
        mark = self._mark
        for i in range(self.n):
            if mark[i]:
                self.rights[i] &= mask
                mark[i] = 0
        return c

    def move(self, ci, to_pid):
        """Move entry ci to to_pid's table (tree position kept).
        Returns (new handle, 0) or (-1, code)."""
        t = self.tables.get(to_pid)
        if t is None:
            return -1, 8
        if self.used[to_pid] >= self.per:
            return -1, 19
        s = 0
        while t[s] & 0xFFFF:
            s += 1
        self._unslot(ci)
        self._put(to_pid, s, ci)
        return self.handle_of(ci), 0

    def close(self, pid):
        """Drop pid's table (after drop_where(pid) freed its entries)."""
        self.used.pop(pid, None)
        return self.tables.pop(pid, None) is not None

    # ---- reading -------------------------------------------------------
    def entries(self, pid):
        """[(handle, otype, oid, rights, depth)] for pid's table."""
        out = []
        t = self.tables.get(pid) if type(pid) is int else None
        if t is None:
            return out
        for s in range(self.per):
            ci = (t[s] & 0xFFFF) - 1
            if ci >= 0:
                out.append((((t[s] >> 16) << 8) | s, self.otype[ci],
                            self.oid[ci], self.rights[ci], self.depth[ci]))
        return out

    def live(self):
        """Number of pool entries in use (husks included)."""
        return self.n - self._nfree

    def snapshot(self):
        """Bytes of the whole pool state (tests compare before/after)."""
        parts = [bytes(self.otype), bytes(self.rights), bytes(self.depth),
                 bytes(self.flags), bytes(self.hslot), bytes(self.oid),
                 bytes(self.holder), bytes(self.parent), bytes(self.serial)]
        for pid in sorted(self.tables):
            parts.append(bytes(self.tables[pid]))
        return b"".join(parts)
