# Measured boot: seven phases, each witnessed, and an attestation digest.
#
#   1 platform          Platform object (board, unix port, CPython)
#   2 board profile     profile loaded; its bytes measured
#   3 witness store     boot counter persisted (platform.next_boot()), segment
#     and chain head    store opened, chain head restored -> BOOT_BEGIN is the
#                       first record of this boot; phases 1-3 are witnessed
#                       right after it with their measured times
#   4 capability roots  Kernel (caps, gate, IPC, leases) + RegionManager;
#                       kernel modules measured
#   5 partitions        Runtime; the control partition first (DC-15) when the
#                       profile has "console": true and rvm_mp/control.py is
#                       present
#   6 agents            every bundle the profile lists, verified (P3) before
#                       its code runs, measured, started; channels wired
#   7 scheduler start   epoch 0; DEGRADED_ENTER here without an engine;
#                       BOOT_ATTEST carries the attestation digest
#
# Attestation digest (SHA-256, extended):
#   D0 = SHA-256(b"RVMA-v1")
#   D  = SHA-256(b"RVMA" + D + m)  for m in
#          [SHA-256(name + 0x00 + bytes) of every kernel module file, by name]
#        + [SHA-256(board profile bytes)]
#        + [SHA-256(bundle) of every bundle actually loaded, in load order]
# BOOT_ATTEST a..d = D[0:16] (four little-endian u32); the full digest is
# Boot.digest (and the console's stat). Same inputs -> same digest; one
# changed byte in a module, the profile or a bundle -> a different one.
import hashlib
import json
import os
import struct

from .compat import ticks_ms, ticks_diff, IS_MICROPYTHON, collect
from . import errors
from . import kinds
from .errors import is_err

VERSION = (0 << 16) | (1 << 8) | 0  # kernel version major.minor.patch
_CHUNK = 512


def _free():
    try:
        import gc
        return gc.mem_free() if hasattr(gc, "mem_free") else 0
    except ImportError:
        return 0


def _canon(obj):
    """Canonical JSON bytes of a profile given as a dict (sorted keys), the
    same on both runtimes (MicroPython's json has no sort_keys)."""
    if isinstance(obj, dict):
        items = []
        for k in sorted(obj):
            items.append(json.dumps(str(k)) + ":" + _canon(obj[k]))
        return "{" + ",".join(items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_canon(x) for x in obj) + "]"
    return json.dumps(obj)


def extend(d, m):
    h = hashlib.sha256(b"RVMA")
    h.update(d)
    h.update(m)
    return h.digest()


def _isdir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def module_files(root):
    """Kernel module files under root (.py and .mpy, recursively), sorted by
    their path relative to root."""
    out = []
    stack = [""]
    while stack:
        rel = stack.pop()
        d = root + ("/" + rel if rel else "")
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            r = rel + "/" + n if rel else n
            if _isdir(root + "/" + r):
                if n != "__pycache__":
                    stack.append(r)
            elif n.endswith(".py") or n.endswith(".mpy"):
                out.append(r)
    out.sort()
    return out


def measure_modules(root, buf=None, fold=None):
    """[SHA-256(relpath + 0x00 + file bytes)] for the kernel modules; with
    `fold` (a digest), returns (fold extended by each, count) instead, so
    boot keeps 32 bytes rather than a list."""
    buf = buf or bytearray(_CHUNK)
    mv = memoryview(buf)
    out = []
    n = 0
    for rel in module_files(root):
        h = hashlib.sha256(rel.encode())
        h.update(b"\x00")
        with open(root + "/" + rel, "rb") as f:
            while True:
                k = f.readinto(buf)
                if not k:
                    break
                h.update(mv[0:k])
        n += 1
        if fold is not None:
            fold = extend(fold, h.digest())
        else:
            out.append(h.digest())
    if fold is not None:
        return fold, n
    return out


def kernel_dir():
    """Directory of the rvm_mp package, or None (frozen into firmware)."""
    import rvm_mp
    f = getattr(rvm_mp, "__file__", None)
    if not f:
        return None
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


D0 = b"RVMA-v1"


def frozen_measure():
    """What a kernel frozen into the firmware can measure: not its bytecode
    (MicroPython gives no access to frozen module bytes) but the identity
    the firmware reports: SHA-256(b"frozen:" + build name, version, .mpy
    format). It tells firmware builds apart; it cannot tell two firmwares
    that report the same identity apart (docs/boot.md)."""
    import sys
    impl = sys.implementation
    ident = "%s %s %s" % (getattr(impl, "_build", ""), tuple(impl.version),
                          getattr(impl, "_mpy", 0))
    return hashlib.sha256(b"frozen:" + ident.encode()).digest()


def attest(module_hashes, profile_hash, bundle_hashes, d=None):
    """The attestation digest from its parts (`d`: modules already folded)."""
    if d is None:
        d = hashlib.sha256(D0).digest()
        for m in module_hashes:
            d = extend(d, m)
    d = extend(d, profile_hash)
    for b in bundle_hashes:
        d = extend(d, b)
    return d


def read_profile(name, dirs=("boards", "/boards", ".")):
    """(profile dict with defaults, raw bytes) of boards/NAME.json."""
    from . import board
    for d in dirs:
        try:
            with open("%s/%s.json" % (d, name), "rb") as f:
                raw = f.read()
        except OSError:
            continue
        return board.from_dict(json.loads(raw)), raw
    raise ValueError("unknown board %s" % name)


class Boot:
    """Runs the seven phases; `run()` returns the Runtime ready to schedule.
    fs: the board's filesystem root (witness segments, regions, bundles)."""

    def __init__(self, board=None, fs=".", platform=None, profile=None,
                 profile_bytes=None, bundles=None, module_root=None,
                 console=None, signal=None, policy=None, use_store=True):
        self.board = board
        self.fs = fs.rstrip("/") or "."
        self.platform = platform
        self.profile = profile
        self.profile_bytes = profile_bytes
        self.bundles = bundles      # {name: bytes}; else fs/agents/NAME.rvmb
        self.module_root = module_root
        self.console = console      # a console object for the platform
        self.signal = signal
        self.policy = policy
        self.use_store = use_store
        self.phase_ms = []
        self.phase_err = []
        self.digest = None
        self.boot_no = 0
        self.t_first_witness_ms = -1
        self.started = []           # (name, pid or error)
        self.kernel = None
        self.runtime = None

    def _phase(self, t0, err=0):
        self.phase_ms.append(ticks_diff(ticks_ms(), t0))
        self.phase_err.append(err)
        self._free.append(_free())
        return ticks_ms()

    def _emit_phase(self, n):
        self.log.emit(kinds.BOOT_PHASE, 0, 0, n, self.phase_err[n - 1],
                      self.phase_ms[n - 1], self._free[n - 1])

    def run(self):
        self._free = []
        t_start = ticks_ms()
        self._t0 = t_start
        t = t_start
        # 1 platform
        pf = self.platform
        if pf is None:
            from .hal import default_platform
            pf = default_platform(self.fs)
            self.platform = pf
        t = self._phase(t)
        # 2 board profile
        if self.profile is None:
            self.profile, self.profile_bytes = read_profile(self.board)
        else:
            from . import board as _b
            self.profile = _b.from_dict(self.profile)
        if self.profile_bytes is None:
            self.profile_bytes = _canon(self.profile).encode()
        prof = self.profile
        self.board = prof["name"]
        prof_hash = hashlib.sha256(self.profile_bytes).digest()
        self.profile_bytes = None  # measured; RAM is scarce
        self.profile_hash = prof_hash
        t = self._phase(t)
        # 3 witness store and chain head
        from .witness import WitnessLog, genesis_link
        fs_err = 0  # a full or failing filesystem: boot on, degraded
        try:
            self.boot_no = pf.next_boot()
        except OSError as e:
            fs_err = _errno(e)
            self.boot_no = _last_boot(pf) + 1
        dev = pf.unique_id()
        key = pf.device_key()
        w = prof["witness"]
        store = None
        if self.use_store:
            from .witness_store import WitnessStore
            try:
                store = WitnessStore(self.fs + "/witness", w["segment_records"],
                                     genesis_link(dev), None,
                                     w.get("max_bytes", 0), w.get("retain", "all"),
                                     w.get("min_free", 0))
            except OSError as e:
                fs_err = fs_err or _errno(e)
            if store is not None and (store.max_bytes or store.min_free):
                try:  # retention first: a full flash frees space here
                    from .retention import make_room
                    make_room(store)
                except OSError as e:
                    fs_err = fs_err or _errno(e)
        kw = {}
        if w.get("seal") == "ed25519":  # public-key seals (rvm_mp/eseal.py)
            from .eseal import SignedWitnessLog as WitnessLog, load_seed
            kw["signer"] = load_seed(pf, True)[0]
        log = WitnessLog(dev, boot=self.boot_no, key=key, ring=w["ring"],
                         seal_every=w["seal_every"], store=store,
                         clock=pf.ticks_ms, **kw)
        self.log = log
        restored = log.next_seq
        log.emit(kinds.BOOT_BEGIN, 0, 0, self.boot_no,
                 _h32(self.board), prof.get("ram", 0), VERSION)
        self.t_first_witness_ms = ticks_diff(ticks_ms(), t_start)
        if store is not None and restored:
            log.emit(kinds.CHAIN_RESTORED, 0, 0, restored, self.boot_no,
                     len(store.segments()), store.torn)
        if fs_err:  # the log lives in RAM only this boot
            log.emit(kinds.DEGRADED_ENTER, 0, 0, 5, fs_err, 0, log.next_seq)
        t = self._phase(t)
        for n in (1, 2, 3):
            self._emit_phase(n)
        # 4 capability roots (+ the kernel code measured)
        from .kernel import Kernel
        k = Kernel(pf, prof, log=log)
        self.kernel = k
        try:
            from .region import RegionManager
            k.mem = RegionManager(log, prof["limits"]["arena"],
                                  root=self.fs + "/mem", clock=pf.ticks_ms)
            if store is not None and hasattr(store, "before_append"):
                store.before_append = k.mem.flush
        except ImportError:
            k.mem = None
        root = self.module_root or kernel_dir()
        d0 = hashlib.sha256(D0).digest()
        err4 = 0
        if root:  # files: the filesystem, or ROMFS (mapped flash, readable)
            dmods, self.module_count = measure_modules(root, fold=d0)
            # `rvm build` recorded what it built (kernel.dig, shipped by
            # `rvm deploy`): a kernel that is not that build is flagged
            want = self.platform.read_file("kernel.dig") \
                if hasattr(self.platform, "read_file") else None
            if want is not None and len(want) == 32 and want != dmods:
                err4 = errors.ECORRUPT.code
        else:  # frozen into the firmware: its bytes are not readable here
            dmods, self.module_count = extend(d0, frozen_measure()), 1
        self.kernel_fold = dmods
        t = self._phase(t, err4)
        self._emit_phase(4)
        # 5 partitions: runtime, control partition first
        from .runtime import Runtime
        rt = Runtime(k, pf, prof, signal=self.signal, policy=self.policy,
                     fs=self.fs)
        rt.first_seq = restored
        self.runtime = rt
        wspec = prof.get("watchdog")
        if wspec and wspec.get("enabled", True):  # the last resort where a
            # port cannot preempt: running before any agent code runs
            hw = pf.watchdog(wspec) if hasattr(pf, "watchdog") else None
            if hw is not None:
                from .watchdog_boot import attach
                attach(rt, hw, wspec, self.bundles)
        err5 = 0
        if prof.get("console"):
            err5 = self._start_console(rt)
        t = self._phase(t, err5)
        self._emit_phase(5)
        # 6 agents
        err6 = self._start_agents(rt)
        if rt.wdog is not None:
            rt.wdog.booted()   # its boot-time code leaves RAM
        t = self._phase(t, err6)
        self._emit_phase(6)
        # 7 scheduler start + attestation
        rt.sched.start(pf.ticks_ms())
        self.digest = attest(None, prof_hash, rt.measured, dmods)
        a, b, c, d = struct.unpack("<IIII", self.digest[0:16])
        log.emit(kinds.BOOT_ATTEST, 0, 0, a, b, c, d)
        self._phase(t)
        self._emit_phase(7)
        self._free = None
        # the phase times and errors are in the BOOT_PHASE records now
        self.phase_ms = self.phase_err = None
        self.total_ms = ticks_diff(ticks_ms(), t_start)
        for key in ("channels", "description", "flash", "sim", "simulated",
                    "port", "arch", "mpy_march", "runtime"):
            if key in prof:  # boot-only and host-only profile parts: give the RAM back
                del prof[key]
        rt.service()
        return rt

    def _start_console(self, rt):
        try:
            from . import control
        except ImportError:
            return 0  # no console module on this board: run without one
        pf = self.platform
        if pf.console is None:
            pf.attach_console(self.console)
        ctl = control.Control(rt.k, pf, runtime=rt, board=self.board)
        if is_err(ctl.pid):
            return ctl.pid.code
        rt.control = ctl

        async def console_main(wait):
            while True:
                await wait       # control.InputWait: wait_input(200)
                ctl.poll()

        rt.adopt(ctl.pid, "control", console_main, trusted=True,
                 recovery=True, console=True, api=control.InputWait)
        return 0

    def _bundle(self, name, spec):
        if self.bundles is not None and name in self.bundles:
            return self.bundles[name]
        path = spec.get("bundle") or "agents/%s.rvmb" % name
        if not path.startswith("/"):
            path = self.fs + "/" + path
        self.runtime.bundle_paths[name] = path
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def _start_agents(self, rt):
        prof = self.profile
        first_err = 0
        pids = {}
        for spec in prof.get("agents", ()):
            name = spec.get("name")
            if not name:
                continue
            if spec.get("autostart", True) is False:
                if self.bundles is not None and name in self.bundles:
                    rt.add_bundle(name, self.bundles[name])
                else:
                    self._bundle(name, spec)  # path noted for spawn
                continue
            collect()  # one bundle at a time in RAM, on a compacted heap
            data = self._bundle(name, spec)
            wd = rt.wdog
            if wd is not None and data is not None:
                wd.feed()
                if wd.holds(name, data):  # too many watchdog strikes:
                    # not started (`spawn NAME` starts it by hand)
                    if self.bundles is not None and name in self.bundles:
                        rt.add_bundle(name, data)
                    self.started.append((name, errors.ETIMEOUT))
                    continue
            if data is None:
                self.log.deny(kinds.BUNDLE_REJECT, 0, 0, errors.ENOENT.code,
                              0, _h32(name), 0, 0)
                r = errors.ENOENT
            else:
                keep = self.bundles is not None and name in self.bundles
                r = rt.load(data, spec, 0, 0, name, keep=keep)
                data = None
            self.started.append((name, r))
            if is_err(r):
                first_err = first_err or r.code
            else:
                pids[name] = r
        for ch in prof.get("channels", ()):
            a = pids.get(ch.get("from"))
            b = pids.get(ch.get("to"))
            if a is None or b is None:
                continue
            r = rt.connect(ch["name"], a, b, ch.get("depth", 0))
            if is_err(r):
                first_err = first_err or r.code
        self.pids = pids
        return first_err


def _errno(e):
    return e.args[0] if e.args and type(e.args[0]) is int else 5


def _last_boot(pf):
    try:
        raw = pf.read_file("boot.cnt")
        return int(raw) if raw else -1
    except (OSError, ValueError):
        return -1


def _h32(x):
    if isinstance(x, str):
        x = x.encode()
    d = hashlib.sha256(x).digest()
    return d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)
