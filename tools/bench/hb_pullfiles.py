# Host-side figures for rvm pull --deltas: the region delta log fetched over
# the console (fileread, 2048 bytes per request, 256-byte DATA frames) from
# the in-process board, against reading the same file straight off the disk
# (the floor) and against the witness log pull of the same session.
import os
import shutil
import sys
import tempfile
import time


def bench(emit):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, root)
    sys.path.insert(0, os.path.join(root, "tests", "host"))
    from boardkit import Board
    from host_tools.rvm import console
    from rvm_mp.region import RegionManager
    tmp = tempfile.mkdtemp(prefix="rvm-hb-pullfiles-")
    try:
        brd = Board(os.path.join(tmp, "b"))
        k = brd.kernel
        k.mem = RegionManager(k.log, 8192, root=brd.path + "/mem", delta_max=0)
        pid = k.part_create(0, name="w")
        rid = k.mem.alloc(pid, 256)
        for i in range(2000):
            k.mem.write(pid, rid, (i * 13) % 224, bytes([i & 255]) * 32)
            if i % 50 == 0:
                k.log.service()
        k.mem.checkpoint(pid)
        path = brd.path + "/mem/deltas.log"
        size = os.path.getsize(path)
        t = time.perf_counter()
        for _ in range(5):
            with open(path, "rb") as f:
                f.read()
        floor = 5 * size / (time.perf_counter() - t)
        t0 = time.perf_counter()
        c = console.connect(brd.t)
        rep = console.pull(brd.t, os.path.join(tmp, "x.rvmw"), window=64)
        t1 = time.perf_counter()
        fr = console.pull_files(brd.t, os.path.join(tmp, "d.bin"),
                                os.path.join(tmp, "ck"), client=c)
        t2 = time.perf_counter()
        log_rate = rep["records"] * 64 / (t1 - t0)
        file_rate = (fr["deltas"] + fr["ckpt_bytes"]) / (t2 - t1)
        emit("delta log + checkpoint pull, in-process board", file_rate / 1024, "KiB/s",
             "%d + %d bytes, 2048 B/request, 256 B/frame" % (fr["deltas"], fr["ckpt_bytes"]))
        emit("witness log pull, same board", log_rate / 1024, "KiB/s",
             "%d records x 64 B, seq+chain checked" % rep["records"])
        emit("file read floor (disk)", floor / 1024, "KiB/s", "")
        emit("file pull / witness log pull", file_rate / log_rate, "x", "bytes per second")
        emit("file read floor / file pull", floor / file_rate, "x", "protocol overhead")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
