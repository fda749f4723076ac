# The emulated Cortex-M3 board (qemu mps2-an385, real MicroPython firmware,
# 137 KB heap): the demo (kernel, console, six agents) deployed by
# `rvm deploy` in each deploy mode; free heap and the largest free block
# (`stat heap`: after a collection) right after boot and after
# RVM_BENCH_QEMU_MIN minutes (default 10) of running.
#   fs      kernel .mpy on littlefs: the imports alone exceed the heap
#   romfs   kernel in a ROMFS image mapped by qemu (code runs in place)
#   frozen  needs a firmware with the kernel frozen in (ports/); the
#           shared firmware has none, so it is reported as not measured
import os
import sys
import tempfile
import time

DEFAULT = False   # a 10-minute soak per mode: `tools/bench.py --only hb_qemu`


def _stat(port):
    from host_tools.rvm import console
    from host_tools.rvm.transport import SerialTransport
    t = SerialTransport(port)
    try:
        return console.run_command(t, "stat heap", timeout=10.0)
    finally:
        t.close()


def bench(emit):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, root)
    sys.path.insert(0, os.path.join(root, "tests", "host"))
    import qemuboard as Q
    from host_tools.rvm import cli, deploy as D
    from host_tools.rvm.errors import RvmToolError
    why = Q.skip_reason()
    if why:
        emit("qemu board", 0, "-", "not measured: " + why)
        return
    minutes = float(os.environ.get("RVM_BENCH_QEMU_MIN", "10"))
    tmp = tempfile.mkdtemp(prefix="rvm-hb-qemu-")
    key = os.path.join(tmp, "dev.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    with open(key, "rb") as f:
        keyb = f.read()
    board = "qemu-an385"
    dist = os.path.join(tmp, "dist")
    assert cli.main(["build", "--board", board, "-o", dist]) == 0
    img = os.path.join(tmp, "romfs.img")  # a deploy rebuilds dist/: keep it apart
    os.replace(os.path.join(dist, board, "romfs.img"), img)
    for mode in os.environ.get("RVM_BENCH_QEMU_MODES", "fs,romfs").split(","):
        b = Q.QemuBoard(os.path.join(tmp, mode), romfs=img if mode == "romfs" else None)
        port = b.start()
        try:
            try:  # without the probe's refusal: what really happens
                D.deploy(board, port, keyb, out_root=dist, mode=mode, check=False,
                         wait_s=90)
            except RvmToolError as e:
                emit("%s: heap after boot" % mode, 0, "B", "does not boot: %s" % str(e)[:120])
                continue
            time.sleep(5)
            s0 = _stat(port)
            emit("%s: free heap after boot" % mode, s0["heap_free"], "B", "of ~137 KB")
            emit("%s: largest free block after boot" % mode, s0["max_block"], "B", "")
            time.sleep(minutes * 60)
            s1 = _stat(port)
            emit("%s: free heap after %g min" % (mode, minutes), s1["heap_free"], "B",
                 "%d records" % s1["next_seq"])
            emit("%s: largest free block after %g min" % (mode, minutes), s1["max_block"],
                 "B", "")
            emit("%s: heap change over the run" % mode, s0["heap_free"] - s1["heap_free"],
                 "B", "free after boot - free at the end (positive: less free)")
        finally:
            b.stop(keep_flash=False)
    emit("frozen: heap after boot", 0, "B", "not measured: the shared firmware has no frozen "
         "kernel (build one with ports/qemu/manifest.py, ports/README.md)")
