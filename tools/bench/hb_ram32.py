# Kernel data RAM on a 32-bit board: the emulated Cortex-M3 (qemu mps2-an385,
# real MicroPython 1.29 firmware, kernel from ROMFS as `rvm build --board
# qemu-an385` makes it). The same measurement as kb_sched's ram group (its
# comment defines it) on 32-bit words, with the same seed-64k profile (4
# agents, the console, ring 32, 4 KB arena): a script run over the raw REPL
# writes the 4 signed bundles to the board's filesystem, imports every
# module the boot imports and the natmods, then takes gc.mem_alloc() after
# gc.collect() before and after Boot.run(). One qemu start per figure.
# The 64-bit unix port figure (kb_sched.ram) is larger: every object header,
# pointer and dict slot is twice the size and the GC block is 32 bytes, not
# 16; byte buffers (arena, witness ring, capability columns) are the same.
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "host"))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))

KEY = bytes(range(32, 64))
DEV = bytes(range(16))
SLEEPER = b"""
async def main(rvm):
    while True:
        await rvm.sleep_ms(100)
"""

SCRIPT = r"""
import gc, os, json
def _mk(p):
    try:
        os.mkdir(p)
    except OSError:
        pass
R = "/rvmram"
_mk(R)
_mk(R + "/agents")
for _n, _b in %(bundles)r.items():
    with open(R + "/agents/" + _n + ".rvmb", "wb") as _f:
        _f.write(_b)
_prof = json.loads(%(profile)r)
_prof["console"] = %(console)r
del _n, _b, _f
for _m in %(mods)r:
    try:
        __import__("rvm_mp." + _m)
    except ImportError:
        pass
from rvm_mp import impls, hal
for _m in ("rvmn_link", "rvmn_p1", "rvmn_crc"):
    impls.natmod(_m)
from rvm_mp.boot import Boot
import hashlib, struct, sys
_before = set(sys.modules)
_pf = hal.Platform(R, %(dev)r, %(key)r)
gc.collect()
_a0 = gc.mem_alloc()
_b = Boot(fs=R, platform=_pf, profile=_prof)
_rt = _b.run()
gc.collect()
_a1 = gc.mem_alloc()
_late = [m for m in sys.modules if m not in _before]
print("@@RAM %%d %%s" %% (_a1 - _a0, ",".join(_late) or "-"))
"""


def _romfs():
    from host_tools.rvm import cli
    import hb_boot
    cache = os.path.join(ROOT, "build", "bench", "ram32")
    stamp = os.path.join(cache, "src.sha256")
    dig = hb_boot._src_digest()
    img = os.path.join(cache, "qemu-an385", "romfs.img")
    if os.path.exists(stamp) and os.path.exists(img):
        with open(stamp) as f:
            if f.read() == dig:
                return img
    if cli.main(["build", "--board", "qemu-an385", "-o", cache]) != 0:
        raise RuntimeError("rvm build --board qemu-an385 failed")
    with open(stamp, "w") as f:
        f.write(dig)
    return img


def _measure(port, console):
    import json
    from kb_sched import _BOOT_MODULES
    from rvm_mp import bundle
    # the Seed profile (as kb_sched.ram), its devices simulated here
    with open(os.path.join(ROOT, "boards", "seed-64k.json")) as f:
        prof = json.load(f)
    prof["agents"] = [{"name": "a%d" % i} for i in range(4)]
    prof["channels"] = []
    bundles = {a["name"]: bundle.pack(SLEEPER, {"name": a["name"]}, KEY,
                                      verdict=bundle.unverified(SLEEPER))
               for a in prof["agents"]}
    code = SCRIPT % {"bundles": bundles, "profile": json.dumps(prof),
                     "console": console, "mods": _BOOT_MODULES, "dev": DEV,
                     "key": KEY}
    d = tempfile.mkdtemp(prefix="rvm-hb-ram32-")
    path = os.path.join(d, "ram.py")
    with open(path, "w") as f:
        f.write(code)
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    p = subprocess.run([mpremote, "connect", port, "run", path],
                       capture_output=True, text=True, timeout=300)
    for line in p.stdout.splitlines():
        i = line.find("@@RAM ")
        if i >= 0:
            n, late = line[i + 6:].split()
            return int(n), late
    raise RuntimeError("no figure from the board: %s %s"
                       % (p.stdout[-500:], p.stderr[-500:]))


def bench(emit):
    import qemuboard as Q
    why = Q.skip_reason()
    if why:
        emit("data RAM on the 32-bit board", None, "KB", "not measured: " + why)
        return
    img = _romfs()
    for console in (True, False):
        work = tempfile.mkdtemp(prefix="rvm-hb-ram32-q-")
        b = Q.QemuBoard(work, romfs=img)
        port = b.start()
        try:
            n, late = _measure(port, console)
        finally:
            b.stop(keep_flash=False)
        note = "" if late == "-" else "late imports counted: " + late
        if console:
            emit("32-bit data RAM: kernel + 4 partitions + ring + console",
                 n / 1024.0, "KB", "seed-64k profile on qemu-an385 (Cortex-M3); goal <= 28 " + note)
            emit("32-bit data RAM with console / 28 KB goal", n / 1024.0 / 28, "x", "")
        else:
            emit("32-bit data RAM: kernel + 4 partitions + ring, no console",
                 n / 1024.0, "KB", note)
