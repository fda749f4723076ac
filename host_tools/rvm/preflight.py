"""What `rvm deploy` checks on the board before it changes anything, and the
deploy modes that decide where the kernel's code lives.

Modes (profile key "deploy", or --mode / --romfs / --frozen):

  fs      the kernel as .mpy files on the board's filesystem (rvm_mp/);
          MicroPython loads all of their bytecode into the heap
  romfs   the kernel in a ROMFS image (`mpremote romfs build`) that the board
          maps from flash at /rom: bytecode runs in place, only the objects
          it makes are in the heap
  frozen  the kernel frozen into the firmware (ports/ recipes); deploy puts
          everything but the kernel on the filesystem

One probe (a short script over mpremote) reports the board's filesystem
(writable? free bytes), heap, .mpy arch, ROMFS contents and whether a frozen
kernel is present; `check()` turns a mismatch into one line saying what to do.
"""
import json

from .errors import RvmToolError

MODES = ("fs", "romfs", "frozen")

# Heap the kernel's import takes, per byte of its .mpy files, by mode: the
# measured figures on the emulated Cortex-M3 (docs/boards.md): 117 KB of .mpy
# took 116.6 KB of heap from littlefs, 73.2 KB from ROMFS, 34.8 KB frozen.
IMPORT_FACTOR = {"fs": 1.0, "romfs": 0.63, "frozen": 0.30}
# heap the kernel, the console and small agents need beyond the imports: the
# data RAM of kernel + 4 partitions + ring + console measured on the 32-bit
# emulated board (docs/performance.md, held at <= 28 KB by
# tests/host/test_ram_budget.py) plus 4 KB of room
DATA_MIN = 32 * 1024
# filesystem room kept for the witness log, checkpoints and the delta log
FS_RESERVE = 64 * 1024

# sys.implementation._mpy: bits 10.. are the native arch of the firmware
ARCHS = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
         "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")

PROBE = """\
import os, sys, gc
r = {'rw': 0, 'free': -1, 'mpy': getattr(sys.implementation, '_mpy', 0),
     'rom': None, 'frozen': 0, 'platform': sys.platform}
try:
    s = os.statvfs('.')
    r['free'] = s[0] * s[4]
except (AttributeError, OSError) as e:
    r['fserr'] = repr(e)
try:
    f = open('.rvm_probe', 'wb')
    f.write(b'rvm')
    f.close()
    os.remove('.rvm_probe')
    r['rw'] = 1
except OSError as e:
    r['fserr'] = repr(e)
try:
    import hashlib
    _d = hashlib.sha256(b'RVMA-v1').digest()
    _st = ['']
    _fs = []
    while _st:
        _rel = _st.pop()
        for _n in os.listdir('/rom/rvm_mp' + ('/' + _rel if _rel else '')):
            _r = _rel + '/' + _n if _rel else _n
            if os.stat('/rom/rvm_mp/' + _r)[0] & 0x4000:
                _st.append(_r)
            elif _n.endswith('.py') or _n.endswith('.mpy'):
                _fs.append(_r)
    _fs.sort()
    _b = bytearray(512)
    for _r in _fs:
        _h = hashlib.sha256(_r.encode())
        _h.update(bytes(1))
        with open('/rom/rvm_mp/' + _r, 'rb') as _f:
            while True:
                _k = _f.readinto(_b)
                if not _k:
                    break
                _h.update(memoryview(_b)[0:_k])
        _x = hashlib.sha256(b'RVMA')
        _x.update(_d)
        _x.update(_h.digest())
        _d = _x.digest()
    r['rom'] = ''.join('%02x' % _c for _c in _d)
    r['romn'] = len(_fs)
except OSError:
    pass
_p = sys.path[:]
sys.path[:] = ['.frozen']
try:
    import rvm_mp
    r['frozen'] = 1
except ImportError:
    pass
sys.path[:] = _p
sys.modules.pop('rvm_mp', None)
gc.collect()
r['heap'] = gc.mem_free()
print('RVMPROBE' + repr(r).replace("'", '"').replace('None', 'null'))
"""


def arch_of(mpy):
    a = (mpy >> 10) & 0x3F
    return ARCHS[a] if a < len(ARCHS) else "arch%d" % a


def arch_loads(built, board):
    """Whether .mpy code for `built` loads on firmware of native arch
    `board` (MicroPython: the same arch, or for Thumb any of armv6m..the
    firmware's own; armv6m loads on every Cortex-M)."""
    if not built or built == board:
        return True
    thumb = ARCHS.index("armv6m"), ARCHS.index("armv7emdp")
    if built in ARCHS and board in ARCHS:
        b, f = ARCHS.index(built), ARCHS.index(board)
        return thumb[0] <= b <= f <= thumb[1]
    return False


def parse_probe(out):
    for line in out.splitlines():
        if line.startswith("RVMPROBE"):
            return json.loads(line[8:])
    raise RvmToolError("the board did not answer the deploy probe: %s" % (
        out.strip().splitlines()[-1] if out.strip() else "no output"))


def check(probe, mode, arch, kernel_bytes, fs_bytes, port):
    """One-line RvmToolError when the board cannot take this deploy."""
    if not probe.get("rw"):
        raise RvmToolError(
            "%s has no writable filesystem (%s): flash a MicroPython firmware "
            "with a filesystem (littlefs or FAT), then deploy again" % (
                port, probe.get("fserr", "unknown error")))
    mpy = probe.get("mpy", 0)
    if arch and mpy and mode != "frozen":
        fw = arch_of(mpy)
        if not arch_loads(arch, fw):
            raise RvmToolError(
                "the build is for %s but the firmware on %s loads %s .mpy: set "
                "the profile's mpy_march to %s (or armv6m, which every Cortex-M "
                "loads) and build again" % (arch, port, fw, fw))
    free = probe.get("free", -1)
    need_fs = fs_bytes + FS_RESERVE
    if free >= 0 and free < need_fs:
        raise RvmToolError(
            "%s has %d KB free on its filesystem, the deploy needs about %d KB "
            "(%d KB of files + %d KB for the witness log): free space or deploy "
            "with --romfs/--frozen" % (port, free // 1024, need_fs // 1024,
                                        fs_bytes // 1024, FS_RESERVE // 1024))
    if mode == "frozen" and not probe.get("frozen"):
        raise RvmToolError(
            "the firmware on %s has no frozen kernel (rvm_mp): build the "
            "firmware with ports/<port>/manifest.py (ports/README.md) or deploy "
            "without --frozen" % port)
    heap = probe.get("heap", 0)
    need = int(kernel_bytes * IMPORT_FACTOR[mode]) + DATA_MIN
    if heap and heap < need:
        alt = {"fs": "--romfs or --frozen", "romfs": "--frozen",
               "frozen": "a profile with fewer agents"}[mode]
        raise RvmToolError(
            "%s has %d KB of heap; the kernel in %s mode needs about %d KB "
            "(%d KB to import + %d KB of data): deploy with %s (docs/boards.md)"
            % (port, heap // 1024, mode, need // 1024,
               int(kernel_bytes * IMPORT_FACTOR[mode]) // 1024, DATA_MIN // 1024, alt))
