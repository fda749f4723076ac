# Buddy allocator: split, coalesce, exhaustion, double free, fragmentation.
import kt
from rvm_mp.buddy import Buddy
from rvm_mp import errors

BOARD = "seed-64k"


def test_split_and_coalesce():
    b = Buddy(1024)
    assert b.size == 1024 and b.top == 10
    a = b.alloc(16)
    assert a == 0 and b.block_size(a) == 16
    assert b.stats_splits == 6  # 1024 -> 512 -> ... -> 16
    c = b.alloc(16)
    assert c == 16  # the buddy half
    d = b.alloc(100)
    assert b.block_size(d) == 128 and d % 128 == 0
    assert b.check()
    assert b.free(a) == 0 and b.free(c) == 0 and b.free(d) == 0
    assert b.free_bytes() == 1024 and b.largest_free() == 1024
    assert b.free_sets[10] == {0} and b.check()


def test_exhaustion_and_bad_sizes():
    b = Buddy(512)
    offs = [b.alloc(64) for _ in range(8)]
    assert sorted(offs) == list(range(0, 512, 64))
    assert b.alloc(1) is errors.ENOMEM
    assert b.alloc(0) is errors.EINVAL
    assert b.alloc(513) is errors.ENOMEM
    b.free(offs[3])
    assert b.alloc(64) == offs[3]
    assert b.check()


def test_double_free_and_bogus_free():
    b = Buddy(256)
    a = b.alloc(32)
    assert b.free(a) == 0
    assert b.free(a) is errors.EDOUBLEFREE
    assert b.free(48) is errors.EINVAL  # never handed out
    assert b.free_bytes() == 256 and b.check()
    a2 = b.alloc(32)
    assert a2 == a and b.free(a2) == 0


def test_fragmentation_pattern_then_full_recovery():
    b = Buddy(4096)
    blocks = [b.alloc(32) for _ in range(128)]
    assert b.free_bytes() == 0
    for i in range(0, 128, 2):  # free every other block: checkerboard
        assert b.free(blocks[i]) == 0
    assert b.free_bytes() == 2048
    assert b.largest_free() == 32   # nothing merges
    assert b.fragmentation() > 95
    assert b.alloc(64) is errors.ENOMEM
    assert b.check()
    for i in range(1, 128, 2):
        assert b.free(blocks[i]) == 0
    assert b.largest_free() == 4096 and b.fragmentation() == 0
    assert b.stats_merges >= 127 and b.check()


def test_non_power_of_two_arena_uses_largest_fit():
    b = Buddy(3000)
    assert b.size == 2048
    assert b.alloc(2048) == 0
    assert b.alloc(16) is errors.ENOMEM
