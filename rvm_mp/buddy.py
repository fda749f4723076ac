# Buddy allocator over the kernel arena (one preallocated bytearray).
#
# The arena is 2**top bytes (the largest power of two that fits the
# profile's limits.arena), cut into blocks of 2**k bytes, k in min..top.
# A block at offset o of order k has its buddy at o ^ 2**k; freeing a block
# whose buddy is free merges them into the order k+1 block, and so on up.
#
#   order top  [................................................]
#   order top-1[.......................][.......................]
#   order top-2[...........][...........][...........][.........]
#                      alloc(20 bytes) splits down to the smallest fitting
#
# Bookkeeping is per allocator, not per byte: one set of free offsets per
# order and one dict offset -> order of live blocks. A free of an offset
# that is not live is refused: EDOUBLEFREE when that offset was handed out
# and already freed (it sits in the freed-history set), EINVAL otherwise.
# Nothing raises; calls return an offset or a preallocated RvmError.
from .compat import const
from . import errors

_MIN_ORDER = const(4)  # 16-byte blocks: small enough for a 4 KB arena


class Buddy:
    def __init__(self, size, min_order=_MIN_ORDER):
        top = min_order
        while (1 << (top + 1)) <= size:
            top += 1
        if (1 << top) > size:
            raise ValueError("arena smaller than one minimum block")
        self.size = 1 << top        # bytes managed (rest of arena unused)
        self.min_order = min_order
        self.top = top
        # free offsets per order; a set is made the first time its order
        # holds a free block (most orders of a small arena never do)
        self.free_sets = [None] * (top + 1)
        self.free_sets[top] = {0}
        self.live = {}              # offset -> order of allocated blocks
        self._freed = set()         # offsets freed and not reissued
        self.used = 0               # bytes in live blocks
        self.stats_splits = 0
        self.stats_merges = 0

    def order_for(self, n):
        k = self.min_order
        while (1 << k) < n:
            k += 1
        return k

    def alloc(self, n):
        """Offset of a block of at least n bytes, or ENOMEM / EINVAL."""
        if n <= 0:
            return errors.EINVAL
        k = self.order_for(n)
        if k > self.top:
            return errors.ENOMEM
        j = k
        while j <= self.top and not self.free_sets[j]:
            j += 1
        if j > self.top:
            return errors.ENOMEM
        off = self.free_sets[j].pop()
        while j > k:  # split, keeping the lower half
            j -= 1
            self._add(j, off + (1 << j))
            self.stats_splits += 1
        self.live[off] = k
        self._freed.discard(off)
        self.used += 1 << k
        return off

    def free(self, off):
        """0, or EDOUBLEFREE (already freed) / EINVAL (never a block)."""
        k = self.live.pop(off, -1)
        if k < 0:
            return errors.EDOUBLEFREE if off in self._freed else errors.EINVAL
        self.used -= 1 << k
        self._freed.add(off)
        while k < self.top:
            b = off ^ (1 << k)
            fs = self.free_sets[k]
            if fs is None or b not in fs:
                break
            fs.remove(b)
            off = off if off < b else b
            k += 1
            self.stats_merges += 1
        self._add(k, off)
        return 0

    def _add(self, k, off):
        fs = self.free_sets[k]
        if fs is None:
            fs = set()
            self.free_sets[k] = fs
        fs.add(off)

    def block_size(self, off):
        k = self.live.get(off, -1)
        return (1 << k) if k >= 0 else 0

    def free_bytes(self):
        return self.size - self.used

    def largest_free(self):
        for k in range(self.top, self.min_order - 1, -1):
            if self.free_sets[k]:
                return 1 << k
        return 0

    def fragmentation(self):
        """1 - largest free block / free bytes, in percent (0 = none)."""
        fb = self.free_bytes()
        if fb == 0:
            return 0
        return 100 - (self.largest_free() * 100) // fb

    def check(self):
        """Invariant: live and free blocks tile the arena exactly once,
        and no two free buddies are left unmerged. True when it holds."""
        spans = []
        for off in self.live:
            spans.append((off, 1 << self.live[off]))
        for k in range(len(self.free_sets)):
            for off in self.free_sets[k] or ():
                if k < self.top and (off ^ (1 << k)) in self.free_sets[k]:
                    return False
                spans.append((off, 1 << k))
        spans.sort()
        pos = 0
        for off, n in spans:
            if off != pos or off % n:
                return False
            pos += n
        return pos == self.size
