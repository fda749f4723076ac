# Host-side console and simulator figures: pull throughput over the
# in-process board against the store-read floor, and the simulated board
# over a real pty (mpremote exec round trip, fs cp throughput).
import os
import shutil
import subprocess
import sys
import tempfile
import time


def bench(emit):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, root)
    sys.path.insert(0, os.path.join(root, "tests", "host"))
    from boardkit import Board
    from host_tools.rvm import console
    tmp = tempfile.mkdtemp(prefix="rvm-hb-console-")
    try:
        brd = Board(os.path.join(tmp, "b"))
        log = brd.kernel.log
        n = 3000
        for i in range(n):
            log.emit(0x32, 2, 3, i)
            if i % 50 == 0:
                log.service()
        log.flush()
        t = time.perf_counter()
        cnt = sum(1 for _ in log.store.iter_range(0, log.next_seq))
        floor = cnt / (time.perf_counter() - t)
        t = time.perf_counter()
        rep = console.pull(brd.t, os.path.join(tmp, "x.rvmw"), window=64)
        rate = rep["records"] / (time.perf_counter() - t)
        emit("pull, in-process board", rate, "rec/s", "%d records, 64/window, seq+chain checked" % rep["records"])
        emit("store read floor (iter_range)", floor, "rec/s", "")
        emit("pull / store read", floor / rate, "x", "protocol + checks overhead")

        from host_tools.rvm import sim as S
        fs = os.path.join(tmp, "fs")
        os.makedirs(fs)
        sim = S.Sim("seed-64k", fs=fs, link=os.path.join(tmp, "port"))
        t = time.perf_counter()
        sim.start_thread()
        mp = [sys.executable, "-m", "mpremote", "connect", sim.link]
        try:
            p = subprocess.run(mp + ["exec", "pass"], capture_output=True, timeout=60)
            emit("sim: first mpremote exec (incl. soft reset)", (time.perf_counter() - t) * 1000, "ms", "")
            t = time.perf_counter()
            for _ in range(3):
                subprocess.run(mp + ["resume", "exec", "pass"], capture_output=True, timeout=60)
            emit("sim: mpremote resume exec round trip", (time.perf_counter() - t) / 3 * 1000, "ms",
                 "process start + raw REPL")
            blob = os.path.join(tmp, "blob.bin")
            with open(blob, "wb") as f:
                f.write(os.urandom(64 * 1024))
            t = time.perf_counter()
            subprocess.run(mp + ["resume", "fs", "cp", blob, ":blob.bin"], capture_output=True,
                           timeout=120, check=True)
            dt = time.perf_counter() - t
            emit("sim: mpremote fs cp 64 KB to the board", 64 / dt, "KB/s", "raw-paste")
            t = time.perf_counter()
            shutil.copyfile(blob, os.path.join(tmp, "copy.bin"))
            emit("sim fs cp / local file copy", dt / max(time.perf_counter() - t, 1e-6), "x", "")
        finally:
            sim.stop()
        _kernel_on_pty(emit, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _kernel_on_pty(emit, tmp):
    """Deploy the demo to a simulated seed-512k and pull its log over the pty."""
    from host_tools.rvm import deploy, console, sim as S
    from host_tools.rvm.transport import SerialTransport
    fs = os.path.join(tmp, "fs512")
    os.makedirs(fs)
    sim = S.Sim("seed-512k", fs=fs, link=os.path.join(tmp, "port512"))
    sim.start_thread()
    try:
        key = os.urandom(32)
        t = time.perf_counter()
        deploy.deploy("seed-512k", sim.link, key, out_root=os.path.join(tmp, "dist"))
        emit("deploy seed-512k via mpremote (build+copy+boot)", time.perf_counter() - t, "s",
             "46 files")
        time.sleep(3)
        tr = SerialTransport(sim.link)
        try:
            t = time.perf_counter()
            st = console.run_command(tr, "stat")
            emit("console `stat` round trip over the pty", (time.perf_counter() - t) * 1000, "ms",
                 "incl. hello")
            emit("kernel heap in use after 3 s (seed-512k demo)", st["mem_alloc"] / 1024.0, "KB",
                 "gc.mem_alloc on the board, uncollected garbage included")
            t = time.perf_counter()
            rep = console.pull(tr, os.path.join(tmp, "p.rvmw"))
            dt = time.perf_counter() - t
        finally:
            tr.close()
        emit("pull over the pty", rep["records"] / dt, "rec/s", "%d records incl. seal" % rep["records"])
    finally:
        sim.stop()
