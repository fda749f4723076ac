# Boot from .mpy in a fresh process (host bench: drives the MicroPython unix
# port). `rvm build --board seed-64k` compiles the kernel to .mpy (cached in
# build/bench/boot-mpy, rebuilt when a kernel source changes); each repeat
# lays out a fresh board filesystem the way `rvm deploy` does (the build,
# board.json, four signed agent bundles) and starts a new `micropython`
# process in it, which imports the kernel from the .mpy files and boots it
# (7 phases, console on, 4 agents).
#   boot, process start to booted   wall time from spawning the process to
#                                   its "booted" line (interpreter start,
#                                   .mpy imports, boot)
#   boot, in the process            ticks from the script's first line to
#                                   Boot.run() returning
#   first witness, in the process   Boot.t_first_witness_ms (from run())
#   floor: empty process            the same interpreter, `-c` printing one
#                                   line: what any process start costs
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

KEY = bytes(range(32, 64))
DEV = bytes(range(16))
SLEEPER = b"""
async def main(rvm):
    while True:
        await rvm.sleep_ms(100)
"""
SCRIPT = r"""
import time
t0 = time.ticks_us()
from rvm_mp import hal
from rvm_mp.boot import Boot
from rvm_mp.main import find_profile
prof, raw = find_profile(None, ".")
b = Boot(None, ".", hal.Platform(".", %(dev)r, %(key)r), prof, profile_bytes=raw)
rt = b.run()
t1 = time.ticks_us()
print("@@BOOTED %%d %%d" %% (time.ticks_diff(t1, t0), b.t_first_witness_ms))
rt.shutdown()
"""


def _mp():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


def _src_digest():
    h = hashlib.sha256()
    for dirpath, dirnames, files in os.walk(os.path.join(ROOT, "rvm_mp")):
        dirnames.sort()
        for f in sorted(files):
            if f.endswith(".py"):
                p = os.path.join(dirpath, f)
                st = os.stat(p)
                h.update(("%s %d %d\n" % (p, st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def _build():
    """dist/seed-64k of the current sources (cached)."""
    from host_tools.rvm import build as B
    cache = os.path.join(ROOT, "build", "bench", "boot-mpy")
    stamp = os.path.join(cache, "src.sha256")
    dig = _src_digest()
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == dig:
                return os.path.join(cache, "seed-64k")
    if os.path.isdir(cache):
        shutil.rmtree(cache)
    os.makedirs(cache)
    B.build("seed-64k", out_root=cache)
    with open(stamp, "w") as f:
        f.write(dig)
    return os.path.join(cache, "seed-64k")


def _board_fs(dist):
    from rvm_mp import bundle
    fs = tempfile.mkdtemp(prefix="rvm-hb-boot-")
    for name in os.listdir(dist):
        s = os.path.join(dist, name)
        if os.path.isdir(s):
            shutil.copytree(s, os.path.join(fs, name))
        else:
            shutil.copy(s, fs)
    with open(os.path.join(fs, "board.json")) as f:
        prof = json.load(f)
    prof["agents"] = [{"name": "a%d" % i} for i in range(4)]
    prof["channels"] = []
    prof["console"] = True
    with open(os.path.join(fs, "board.json"), "w") as f:
        json.dump(prof, f)
    os.mkdir(os.path.join(fs, "agents"))
    for a in prof["agents"]:
        with open(os.path.join(fs, "agents", a["name"] + ".rvmb"), "wb") as f:
            f.write(bundle.pack(SLEEPER, {"name": a["name"]}, KEY,
                                verdict=bundle.unverified(SLEEPER)))
    return fs


def _spawn(cmd, cwd, marker):
    """Wall seconds from spawn to the marker line, and that line."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = ""
    t1 = None
    for raw in p.stdout:
        i = raw.find(marker)
        if i >= 0:
            t1 = time.perf_counter()
            line = raw[i:]
            break
    p.communicate(timeout=120)
    if t1 is None:
        raise RuntimeError("no %r from %s" % (marker, cmd[:3]))
    return t1 - t0, line


def bench(emit):
    import benchutil
    dist = _build()
    fs = _board_fs(dist)
    try:
        mp = _mp()
        code = SCRIPT % {"dev": DEV, "key": KEY}
        boot = [mp, "-X", "heapsize=1M", "-c", code]
        empty = [mp, "-X", "heapsize=1M", "-c", "print('@@BOOTED 0 0')"]
        if benchutil.ROUND & 1:
            fl, _ = _spawn(empty, fs, "@@BOOTED")
            wall, line = _spawn(boot, fs, "@@BOOTED")
        else:
            wall, line = _spawn(boot, fs, "@@BOOTED")
            fl, _ = _spawn(empty, fs, "@@BOOTED")
        _, inproc, first = line.split()
        emit("boot from .mpy, process start to booted", wall * 1000, "ms",
             "seed-64k build, console + 4 agents, fresh process")
        emit("boot from .mpy, in the process", int(inproc) / 1000.0, "ms",
             ".mpy imports + 7 phases")
        emit("first witness, in the process", int(first), "ms",
             "from Boot.run(); goal <= 50")
        emit("floor: empty micropython process", fl * 1000, "ms", "same repeat")
        emit("boot process - empty process", (wall - fl) * 1000, "ms", "")
    finally:
        shutil.rmtree(fs, ignore_errors=True)
