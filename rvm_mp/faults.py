# Faults F1-F4 (ADR-132 DC-14): classification, thresholds, escalation.
#
#   F1 agent failure      the agent raised (anything, MemoryError included):
#                         restart its coroutine inside the same partition.
#   F2 partition failure  more than max_restarts F1s: rebuild the partition
#                         from its last checkpoint (RegionManager
#                         .restore_partition) and reload its bundle fresh.
#                         No checkpoint yet: rebuilt from the bundle alone.
#                         More than max_rebuilds F2s: the partition stops.
#   F3 memory corruption  a region whose bytes no longer match the checksum
#                         of its last write: roll it back (RegionManager
#                         .rollback_region) in Recovery mode.
#   F4 kernel failure     a kernel invariant broke or F3 rollback failed:
#                         witness, seal, flush, reset the board (hosted
#                         runtimes exit with hal.EXIT_F4).
#
#   agent raises --> AGENT_FAULT --> F1_RESTART (n <= max_restarts)
#                                 \-> ESCALATE 1->2 --> F2_REBUILD
#                                        (n_rebuilds > max_rebuilds: AGENT_EXIT, stop)
#   region check --> F3_ROLLBACK --(rollback fails)--> ESCALATE 3->4 --> F4_RESET
#
# Mechanism here, thresholds in FaultPolicy (the board profile's "faults"
# dict chooses them; a profile may name another policy class). The recovery
# work (F2, F3) runs as jobs while the scheduler is in Recovery mode, so
# ordinary agents do not run on half-restored state. One agent's failure
# never stops the others: the runtime catches every agent exception.
import hashlib

from .compat import const, collect
from . import errors
from . import kinds

F1 = const(1)
F2 = const(2)
F3 = const(3)
F4 = const(4)
STOP = const(5)


def h32(x):
    if isinstance(x, str):
        x = x.encode()
    d = hashlib.sha256(x).digest()
    return d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)


class FaultPolicy:
    """Thresholds. Profile: "faults": {"max_restarts": 3, "max_rebuilds": 3,
    "restart_delay_ms": 50, "verify_every": 4}."""

    def __init__(self, max_restarts=3, max_rebuilds=3, restart_delay_ms=50,
                 verify_every=4):
        self.max_restarts = max_restarts      # F1s before F2
        self.max_rebuilds = max_rebuilds      # F2s before the partition stops
        self.restart_delay_ms = restart_delay_ms  # backoff base (doubles)
        self.verify_every = verify_every      # epochs between F3 region scans

    def classify_agent_fault(self, restarts, rebuilds):
        """F1, F2 or STOP for an agent that raised, given its history."""
        if restarts < self.max_restarts:
            return F1
        if rebuilds < self.max_rebuilds:
            return F2
        return STOP

    def restart_delay(self, restarts):
        d = self.restart_delay_ms << (restarts if restarts < 6 else 6)
        return d


def _oserrors():
    # OSError and the builtin subclasses CPython picks for an errno
    out = [OSError]
    import builtins
    for n in ("PermissionError", "FileNotFoundError", "ProcessLookupError",
              "InterruptedError", "ChildProcessError", "BlockingIOError",
              "FileExistsError", "NotADirectoryError", "IsADirectoryError",
              "BrokenPipeError", "ConnectionError", "TimeoutError"):
        c = getattr(builtins, n, None)
        if c is not None:
            out.append(c)
    return tuple(out)


_OSERRORS = _oserrors()


def _is_oserror(te):
    for c in _OSERRORS:
        if c is te:
            return True
    return False


def error_code(exc):
    """The errors code a fault carries, by exact type: the kernel never asks
    an agent's exception object anything (no isinstance, no str)."""
    te = type(exc)
    if te is errors.RvmError:
        return exc.code
    if te is MemoryError:
        return errors.ENOMEM.code
    if _is_oserror(te):
        a = exc.args   # a builtin's own tuple: reading it runs no agent code
        if type(a) is tuple and a and type(a[0]) is int:
            return a[0] & 0xFF   # an error the kernel threw, not caught
    return 0


# exception class -> small number for AGENT_FAULT's `a` field; a fixed table
# compared by identity (an agent's own class is 0: "other")
_CLASSES = (None, Exception, MemoryError, OSError, ValueError, TypeError,
            KeyError, IndexError, AttributeError, NameError, ImportError,
            RuntimeError, ZeroDivisionError, StopIteration, SystemExit,
            KeyboardInterrupt, GeneratorExit, AssertionError, OverflowError,
            NotImplementedError)


def fault_class(exc):
    """Index of exc's exact class in the fixed table (0: any other)."""
    te = type(exc)
    for i in range(1, len(_CLASSES)):
        if _CLASSES[i] is te:
            return i
    return 3 if _is_oserror(te) else 0


class FaultManager:
    """Applies the policy; the runtime calls it. `mem` is the persistence
    RegionManager (or None: F2 restarts from the bundle, F3 has
    nothing to check)."""

    def __init__(self, log, policy=None, platform=None, mem=None):
        self.log = log
        self.policy = policy if policy is not None else FaultPolicy()
        self.platform = platform
        self.mem = mem
        self.count = 0            # faults handled since boot
        self.f4_hook = None       # fn(code) run before the reset (seal, flush)
        self.last = None          # (class, pid, error code) of the last fault

    # ---- F1 / F2: an agent raised ----------------------------------------------
    def agent_fault(self, t, exc):
        """Record the fault of task t and decide: F1, F2 or STOP."""
        if type(exc) is MemoryError:
            collect()  # give the kernel its heap back before we allocate
        self.count += 1
        t.faults += 1
        code = error_code(exc)
        cls = fault_class(exc)
        txt = 0
        self.log.emit(kinds.AGENT_FAULT, 0, t.pid, cls, code, txt, t.faults)
        rebuilds = getattr(t, "rebuilds", 0)
        action = self.policy.classify_agent_fault(t.restarts, rebuilds)
        if action == F1:
            t.restarts += 1
            self.log.emit(kinds.FAULT_F1_RESTART, 0, t.pid, t.restarts, code,
                          txt)
        elif action == F2:
            self.log.emit(kinds.FAULT_ESCALATE, 0, t.pid, F1, F2, code,
                          t.faults)
        else:
            self.log.emit(kinds.FAULT_ESCALATE, 0, t.pid, F2, STOP, code,
                          t.faults)
        self.last = (action, t.pid, code)
        return action

    def rebuild(self, t):
        """F2: restore the partition's checkpoint. Returns (extra bytes or
        None, error code). Witnessed FAULT_F2_REBUILD."""
        t.rebuilds = getattr(t, "rebuilds", 0) + 1
        t.restarts = 0
        extra = None
        code = 0
        ck_seq = 0
        nreg = 0
        mem = self.mem
        if mem is not None:
            r = mem.restore_partition(t.pid)
            if errors.is_err(r):
                code = r.code   # ENOENT: no checkpoint yet, bundle only
            else:
                extra = r
                try:
                    nreg = len(mem.regions_of(t.pid))
                except Exception:
                    nreg = 0
                ck_seq = getattr(mem, "last_restore_seq", 0) or 0
        else:
            code = errors.ENOENT.code
        self.log.emit(kinds.FAULT_F2_REBUILD, 0, t.pid, ck_seq, code, nreg)
        return extra, code

    # ---- F3: region checksums ----------------------------------------------------
    def scan_regions(self, pids):
        """Region ids (with owner) whose bytes fail their checksum."""
        bad = []
        mem = self.mem
        if mem is None:
            return bad
        for pid in pids:
            try:
                rids = mem.regions_of(pid)
            except Exception:
                continue
            for rid in rids:
                if mem.verify_region(rid) is False:
                    bad.append((pid, rid))
        return bad

    def rollback(self, pid, rid):
        """F3: roll region rid back. True on success; on failure escalates
        to F4 (returns False, the caller resets)."""
        self.count += 1
        r = self.mem.rollback_region(rid)
        code = r.code if errors.is_err(r) else 0
        seq = self.log.next_seq - 1 if not code else 0
        self.log.emit(kinds.FAULT_F3_ROLLBACK, 0, pid, rid, code, seq)
        self.last = (F3, pid, code)
        if code:
            self.log.emit(kinds.FAULT_ESCALATE, 0, pid, F3, F4, code,
                          self.count)
            return False
        return True

    # ---- F4: the kernel itself ------------------------------------------------------
    def kernel_fault(self, code=0, reset_code=None):
        """F4: witness, let the kernel seal and flush, reset."""
        from .hal import EXIT_F4
        if reset_code is None:
            reset_code = EXIT_F4
        self.count += 1
        self.last = (F4, 0, code)
        self.log.emit(kinds.FAULT_F4_RESET, 0, 0, reset_code, code, self.count)
        if self.f4_hook is not None:
            try:
                self.f4_hook(code)
            except Exception:
                pass
        if self.platform is not None:
            self.platform.reset(reset_code)
        return reset_code


def policy_from_profile(profile):
    """FaultPolicy from the profile's "faults" dict."""
    f = profile.get("faults", {}) if profile else {}
    return FaultPolicy(max_restarts=f.get("max_restarts", 3),
                       max_rebuilds=f.get("max_rebuilds", 3),
                       restart_delay_ms=f.get("restart_delay_ms", 50),
                       verify_every=f.get("verify_every", 4))
