# Block device with power cuts, and littlefs mounted over it (MicroPython).
import kt
from rvm_mp.blockdev import BlockDev, FileBlockDev, PowerCut
from rvm_mp import flashfs


def test_read_write_erase_and_counters():
    bd = BlockDev(256, 8)
    assert bd.ioctl(4, 0) == 8 and bd.ioctl(5, 0) == 256
    buf = bytearray(16)
    bd.readblocks(2, buf, 0)
    assert buf == b"\xff" * 16
    bd.writeblocks(2, b"hello", 10)
    bd.readblocks(2, buf, 8)
    assert bytes(buf[2:7]) == b"hello"
    assert bd.ioctl(6, 2) == 0
    bd.readblocks(2, buf, 8)
    assert buf == b"\xff" * 16
    assert bd.progs == 1 and bd.erases == 1 and bd.ops == 2


def test_power_cut_tears_write_and_kills_device():
    bd = BlockDev(256, 4)
    bd.cut_after(1)
    bd.writeblocks(0, b"A" * 8, 0)
    e = kt.raises(PowerCut, bd.writeblocks, 1, b"B" * 8, 0)
    assert "write 2" in str(e)
    # torn: the first half reached the medium, the rest did not
    assert bytes(bd.data[256:264]) == b"BBBB" + b"\xff" * 4
    kt.raises(PowerCut, bd.writeblocks, 2, b"C", 0)
    kt.raises(PowerCut, bd.ioctl, 6, 3)
    nxt = bd.survivor()
    assert nxt.data == bd.data and nxt.ops == 0
    nxt.writeblocks(2, b"C", 0)  # the new board runs
    bd.power_on()
    bd.writeblocks(3, b"D", 0)
    assert bd.data[768] == ord("D")


def test_untorn_cut_writes_nothing():
    bd = BlockDev(128, 4)
    bd.cut_after(0, torn=False)
    kt.raises(PowerCut, bd.writeblocks, 0, b"Z" * 8, 0)
    assert bytes(bd.data[0:8]) == b"\xff" * 8


def test_file_backed_device_persists():
    d = kt.tmpdir("bd")
    bd = FileBlockDev(d + "/img.bin", 128, 4)
    bd.writeblocks(1, b"xyz", 5)
    bd.close()
    bd2 = FileBlockDev(d + "/img.bin", 128, 4)
    buf = bytearray(3)
    bd2.readblocks(1, buf, 5)
    assert buf == b"xyz"
    assert bd2.image()[0] == 0xFF
    bd2.close()
    kt.raises(ValueError, FileBlockDev, d + "/img.bin", 128, 5)
    kt.rmtree(d)


def test_littlefs_over_blockdev_survives_remount():
    if not flashfs.have_littlefs():
        kt.skip("no vfs.VfsLfs2 on CPython: the store runs on a directory")
    bd = BlockDev(512, 64)
    fl = flashfs.Flash(bd, "/kt_bd0", fresh=True)
    with open("/kt_bd0/a.bin", "wb") as f:
        f.write(b"x" * 1000)
    flashfs.write_atomic(flashfs.OS, "/kt_bd0/b.bin", (b"one", b"two"))
    fl.umount()
    fl2 = flashfs.Flash(bd.survivor(), "/kt_bd0")
    with open("/kt_bd0/a.bin", "rb") as f:
        assert f.read() == b"x" * 1000
    with open("/kt_bd0/b.bin", "rb") as f:
        assert f.read() == b"onetwo"
    fl2.umount()


def test_crashfs_loses_unsynced_and_tears_sync():
    d = kt.tmpdir("cfs")
    fs = flashfs.CrashFS()
    f = fs.open(d + "/f", "wb")
    f.write(b"12345678")
    fs.fsync(f)               # ops: write=1, flush=2
    f.write(b"abcdefgh")      # op 3
    fs.cut_after(0)           # op 4 (the flush) is cut
    kt.raises(PowerCut, fs.fsync, f)
    kt.raises(PowerCut, fs.rename, d + "/f", d + "/g")
    f.close()
    with open(d + "/f", "rb") as g:
        assert g.read() == b"12345678abcd"
    kt.rmtree(d)
