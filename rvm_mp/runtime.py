# Agent runtime: the kernel loop that runs agents in partitions.
#
#   step():
#     epoch due?  -> quotas reset, EPOCH_SUMMARY, lease expiry, F3 scan,
#                    invariants (F4 on failure)
#     wake sleepers whose time came
#     Recovery jobs pending? -> run one (F2 rebuild, F3 rollback)
#     t = sched.pick(now)
#       none  -> platform.wait_io(sched.next_timeout(now))   (idle, no spin)
#       t     -> resume t's coroutine:  coro.send(result) / coro.throw(err)
#                 | returns its Request -> dispatch(op) -> Kernel call with
#                 |                        caller = t.pid (never the agent's
#                 |                        choice) -> result / error / block
#                 | StopIteration     -> AGENT_EXIT
#                 | any exception     -> FaultManager (F1 restart / F2 / stop)
#     log.service() when records are pending (outside the switch path)
#
# The switch path (pick, resume, dispatch of yield_/sleep_ms, accounting)
# does not allocate: the Request is reused, results of None end the await
# with a preallocated StopIteration, errors are the preallocated RvmErrors.
#
# Every agent call reaches the kernel with caller = the partition of the
# running agent, so the proof gate checks that partition's own capability
# table; handles the agent names are looked up there, never trusted.
import sys

from .compat import ticks_diff, ticks_add, collect, IS_MICROPYTHON
from . import errors
from . import kinds
from . import syscalls as SC
from . import scheduler as S
from . import faults as F
from . import bundle as B
from .importgate import ImportGate
from .errors import is_err
from . import api as _apimod

# The agent API factory, taken out of its module so that the module dict an
# agent can see through a closure's __globals__ holds nothing (api.py).
_make_api = _apimod.make
_API_G = _apimod.__dict__   # the one dict every agent's API function sees


def _seal_api(m):
    d = m.__dict__
    tables = (d["_Q"], d["_D"], d["_R"])
    for key in list(d):
        if key != "__name__":
            del d[key]
    if not IS_MICROPYTHON:
        # CPython: a function keeps the builtins of its creation as
        # __builtins__; give the API functions (and closures made later)
        # an empty one instead of the kernel's
        d["__builtins__"] = {}
        import types
        for tab in tables:
            for key in tab:
                f = tab[key]
                if type(f) is types.FunctionType:
                    tab[key] = types.FunctionType(f.__code__, d, f.__name__,
                                                  f.__defaults__)


_seal_api(_apimod)
del _apimod
_API_N = len(_API_G)


async def _probe():
    pass


_c = _probe()
_CORO = type(_c)   # what `async def main` must return, exactly
try:
    _c.close()
except Exception:
    pass
del _c

# Partition states (partition.py; kept literal so this module does not need
# the kernel's import to type-check its observer)
_ST_RUNNING = 1
_ST_SUSPENDED = 2
_ST_HIBERNATED = 3
_ST_TERMINATED = 5

_OT_PARTITION = 1
_OT_DEVICE = 3
_R_READ = 1
_R_WRITE = 2
_R_ALL = 127
_OP_CODE_LOAD = 15

_INPUT_POLL_MS = 20
_Q_REFUSALS = 4         # scheduler quota kind for the refusal budget
_OPY = 1                # syscalls.OP_YIELD, OP_SLEEP: compared with `is`
_OPS = 2


def _h32(x):
    return F.h32(x)


def make_signal(profile, kernel=None):
    """The scheduler's priority signal the profile chooses:
    "scheduler": {"signal": "none" | "static" | "coherence", ...}.
    "coherence" imports the optional engine lazily (L2); if it is absent or
    fails to start, the NullSignal is used and the kernel runs degraded."""
    sc = profile.get("scheduler", {}) if profile else {}
    kind = sc.get("signal", "coherence" if profile and profile.get("coherence")
                  else "none")
    if kind == "static":
        return S.StaticSignal(sc.get("pressure", {}))
    if kind == "coherence" and kernel is not None:
        try:
            from .coherence import signal as csig
            return csig.make(kernel, profile)
        except Exception:
            return S.NullSignal()
    return S.NullSignal()


class Runtime:
    def __init__(self, kernel, platform=None, profile=None, signal=None,
                 policy=None, fs=None):
        k = kernel
        self.k = k
        self.log = k.log
        self.pf = platform if platform is not None else k.platform
        self.profile = profile if profile is not None else k.profile
        prof = self.profile
        sc = prof.get("scheduler", {})
        if bool(sc.get("native", True)) != NATIVE and _NATIVE_OK[0] is not False:
            use_native(sc.get("native", True))
        self.fs = fs
        cap = prof["limits"]["partitions"] + 1
        if signal is None:
            signal = make_signal(prof, k)
        self.sched = S.Scheduler(
            self.log, self.pf.ticks_ms, self.pf.ticks_us, capacity=cap,
            signal=signal, epoch_ms=sc.get("epoch_ms", 1000),
            horizon_ms=sc.get("horizon_ms", 1000),
            boost_weight=sc.get("boost_weight_ms", 0) * S.PRIO_Q,
            wake_weight=sc.get("wake_weight_ms", 10) * S.PRIO_Q,
            reflex_budget_us=sc.get("reflex_budget_us", 20000),
            idle_max_ms=sc.get("idle_max_ms", 1000))
        self.faults = F.FaultManager(
            self.log, policy if policy is not None else
            F.policy_from_profile(prof), self.pf, k.mem)
        self.faults.f4_hook = self._f4_final
        self.gate = ImportGate(self.log, self._holds_lease)
        self.gate.install()
        self.gate.print_for = self._print_for
        self.handles = {}        # pid -> {name: handle}
        self.bundles = {}        # bundle name -> bytes (spawn, F2 reload)
        self.bundle_paths = {}   # bundle name -> file (read again on demand)
        self.measured = []       # SHA-256 of every bundle loaded (attestation)
        self.jobs = []           # Recovery work: (fn, arg)
        self.running = False
        self.stop_reason = 0
        self.control = None      # the console's Control object, if any
        self.input_ready = False
        self._last_poll = 0
        self._serviced = -1
        self._last_service = self.pf.ticks_ms()
        self._half_ring = self.log.ring_n // 2
        self.flush_ms = sc.get("flush_ms", 200)
        self._seen_seq = self.log.next_seq
        self.first_seq = self.log.next_seq  # boot sets the BOOT_BEGIN seq
        self._own_transition = False
        self.steps = 0
        self.idle_waits = 0
        self.epochs_run = 0
        self.booted_ms = self.pf.ticks_ms()
        # clocks: the hosted/board Platform's own ticks are the compat
        # builtins; call those directly on the switch path
        from . import hal
        from .compat import ticks_ms as _tms, ticks_us as _tus
        pt = type(self.pf)
        self._ms = _tms if pt.ticks_ms is hal.Platform.ticks_ms else \
            self.pf.ticks_ms
        self._us = _tus if pt.ticks_us is hal.Platform.ticks_us else \
            self.pf.ticks_us
        self._last_us = self._us()
        self.d_default = sc.get("deadline_ms", 100)
        lim = prof.get("limits", {})
        self.refuse_mute = lim.get("refusals_per_epoch", 32)
        self.refuse_epochs = lim.get("refusal_epochs", 3)
        self.outlog = {}          # pid -> the tail of what its agent printed
        self.zombies = []         # coroutines that refused to close
        self.agent_types = []     # kernel classes that stand in for agents
        self._api_g = _API_G      # (switch_native.step reads these)
        self._api_n = _API_N
        self.outlog_max = lim.get("agent_log", 256)
        # "isolation": "process" (CPython on Linux): agents run in child
        # processes (appliance/procpart.py, loaded only then); None: in-process
        self.procs = None
        if prof.get("isolation") == "process":
            from .appliance.procpart import ProcHost
            self.procs = ProcHost(self)
        # preemption + heap quota around untrusted resumes (preempt.py);
        # "slice_ms": 0 turns it off
        sl = sc.get("slice_ms", 200)
        self.guard = None
        self.wdog = None   # the board's watchdog (watchdog.py), set by boot
        if sl:
            from .preempt import Guard
            self.guard = Guard(sl)
        k.state_observers.append(self)

    # ---- helpers ------------------------------------------------------------
    def register_agent_type(self, cls):
        """Declare a kernel class whose objects may stand in for an agent's
        coroutine (an agent in another process, a WebAssembly module): the
        object's send(result)/throw(err)/close() are kernel code, it
        fills t.req (the call box) and returns it like an awaiting agent.
        Checked by identity, never by isinstance."""
        for k in self.agent_types:
            if k is cls:
                return
        self.agent_types.append(cls)

    def _kernel_agent(self, c):
        tc = type(c)
        for k in self.agent_types:
            if k is tc:
                return True
        return False

    def _print_for(self, pid):
        """The print of agent pid's own globals (its log channel)."""
        t = self.sched.task(pid)
        return t.aprint if t is not None else None

    def _holds_lease(self, pid):
        try:
            return bool(self.k.leases_of(pid))
        except Exception:
            return False

    def handle(self, pid, name):
        return self.handles.get(pid, {}).get(name, 0)

    def set_handle(self, pid, name, h):
        if not is_err(h):
            self.handles.setdefault(pid, {})[name] = h
        return h

    # ---- loading agents ---------------------------------------------------------
    def add_bundle(self, name, data):
        self.bundles[name] = data

    def load(self, data, spec=None, caller=0, handle=0, name=None,
             keep=True):
        """Verify a bundle (P3 through the proof gate) and start its agent
        in a new partition. pid or RvmError; nothing of the bundle's code runs
        unless every check passed."""
        spec = spec or {}
        p = B.parse(data)
        kid = B.key_id(self.k.device_key)
        if is_err(p):
            return self._reject(caller, data, p, kid)
        e = self._verify(p, caller)
        if e is None:  # the host verifier's verdict, inside the signature
            e = B.check_verdict(p, self.profile.get("verifier"))
        if e is not None:
            return self._reject(caller, data, e, kid)
        collect()  # the verification copies are garbage now: compact first
        man = p.manifest
        name = name or spec.get("name") or man["name"]
        if keep and name not in self.bundles and name not in self.bundle_paths:
            self.bundles[name] = data
        self.measured.append(p.digest())
        return self._start(name, man, p, spec, caller, handle, kid)

    def _verify(self, p, caller):
        """None if the bundle's signature and digest pass P3, else error."""
        k = self.k
        signed = B.SIG_DOMAIN + bytes(p.signed())
        from .proofgate import P3_HMAC, P3_PREIMAGE, P3_ED25519
        try:
            digest = bytes.fromhex(p.manifest.get("sha256", ""))
        except (ValueError, TypeError):
            return errors.EPROOF
        if p.alg == B.ALG_HMAC:
            sigp = (P3_HMAC, signed, bytes(p.sig()))
        else:
            pks = k.trusted_ed25519
            sigp = (P3_ED25519, pks[0] if pks else bytes(32), signed,
                    bytes(p.sig()))
        r = k.gate.p3(caller, _OP_CODE_LOAD, 0,
                      [sigp, (P3_PREIMAGE, digest, bytes(p.code()))])
        return r if r else None

    def _reject(self, caller, data, err, kid):
        try:
            h = _h32(bytes(data))
            n = len(data)
        except Exception:
            h = n = 0
        self.log.deny(kinds.BUNDLE_REJECT, caller, 0, err.code, 3, h, n, kid)
        return err

    def _start(self, name, man, p, spec, caller, handle, kid):
        k = self.k
        q = spec.get("quota", man.get("quota", {}))
        cpu_ms = q.get("cpu_ms", 0)
        msgs = q.get("msgs", 0)
        mem = q.get("mem", 0)
        pid = k.part_create(caller, handle, spec.get("pid"), mem, cpu_ms,
                            msgs, name)
        if is_err(pid):
            return pid
        self.log.emit(kinds.BUNDLE_LOAD, caller, pid, _h32(bytes(p.data)),
                      len(p.data), kid, B.verdict_policy(man))
        t = S.Task(pid, name)
        t.spec = spec
        t.hard = bool(spec.get("hard", man.get("hard", False)))
        if spec.get("recovery", man.get("recovery", False)):
            t.fl |= S.F_RECOVERY
        t.deadline_ms = spec.get("deadline_ms",
                                 man.get("deadline_ms", self.d_default))
        t.cpu_quota_us = cpu_ms * 1000
        if q.get("heap") and IS_MICROPYTHON:
            t.heap_q = q["heap"]
        if msgs or mem:
            t.quota = (msgs, mem)
        if mem and k.mem is not None and hasattr(k.mem, "set_quota"):
            k.mem.set_quota(pid, mem)
        r = self._exec(t, p, man)
        if is_err(r):
            self._own_transition = True
            k.part_terminate(0, pid, 0, r.code)
            self._own_transition = False
            self.log.deny(kinds.BUNDLE_REJECT, caller, pid, r.code, 3,
                          _h32(bytes(p.data)), len(p.data), kid)
            return r
        self.sched.add(t)
        self._own_transition = True
        k.part_start(0, pid)
        self._own_transition = False
        self._wire(t, spec, caller)
        self._begin(t, None)
        return pid

    def _exec(self, t, p, man):
        """Run the bundle's module code under the import gate; find main."""
        if t.out is None:
            t.out = bytearray()
        if p.ctype == B.CODE_WASM:   # a WebAssembly module: rvm_mp/wasm/agent.py
            from .wasm.agent import exec_wasm
            return exec_wasm(self, t, p, man)
        if self.procs is not None:   # a child process runs it, not us
            return self.procs.prepare(t, p, man)
        g = self.gate.agent_globals(t.name, t.out)
        shadows = dict(g)
        t.aprint = g["print"]
        entry = man.get("entry", "main")
        gate = self.gate
        gate.active = t.pid
        pg = self.guard
        if pg is not None:
            pg.arm(t)
        try:
            if p.ctype == B.CODE_MPY:
                g = self._exec_mpy(t, p, g)
                if is_err(g):
                    return g
            else:
                # the real exec: builtins.exec refuses while an agent runs
                self.gate.real("exec", exec)(bytes(p.code()), g)
        except ImportError:
            return errors.EIMPORT
        except MemoryError:
            collect()
            return errors.ENOMEM
        except Exception:
            return errors.EINVAL
        except BaseException as e:   # module code that never finishes
            if pg is None or pg.exc(e) is e:
                raise e
            return errors.ETIMEOUT
        finally:
            gate.active = 0
            if pg is not None:
                pg.disarm(t)
        # a `del print` / `del KeyboardInterrupt` at the agent's top level
        # would expose the real builtin on MicroPython: shadow them again
        for key in shadows:
            g[key] = shadows[key]
        fn = g.get(entry)
        if fn is None or type(fn) is not type(_probe):
            return errors.EINVAL
        t.main = fn
        t.globals = g
        return None

    def _exec_mpy(self, t, p, g):
        """.mpy code: MicroPython only. Written to the board's fs under the
        agent's name and imported as a module, its globals then replaced by
        the gate's shadows (the module's top level already ran gated)."""
        if not IS_MICROPYTHON or self.fs is None:
            return errors.ENOTSUP
        modname = "_rvma_" + t.name
        path = self.fs + "/" + modname + ".mpy"
        gate = self.gate
        pid = gate.active
        gate.active = 0            # the kernel writes the file
        try:
            with open(path, "wb") as f:
                f.write(p.code())
        finally:
            gate.active = pid
        sys.path.insert(0, self.fs)
        try:
            self.gate.loading = modname
            mod = __import__(modname)
        finally:
            self.gate.loading = None
            sys.path.pop(0)
            sys.modules.pop(modname, None)
        # the module's functions see its own dict as globals: put the
        # shadows there (its top level already ran, imports gated)
        d = mod.__dict__
        for key in g:
            if key != "__name__":
                d[key] = g[key]
        return d

    def _wire(self, t, spec, caller=0):
        """Capabilities the board setup gives the agent: devices it may
        lease, the spawn right; channels are wired by the boot code (both
        ends must exist first)."""
        k = self.k
        pid = t.pid
        for dev in spec.get("devices", ()):
            did = k.device_id(dev)
            if not is_err(did):
                self.set_handle(pid, dev, k.cap_mint(pid, _OT_DEVICE, did,
                                                     _R_READ | _R_WRITE))
        if spec.get("spawn"):
            self.set_handle(pid, "spawn", k.cap_mint(pid, _OT_PARTITION, 0,
                                                     _R_WRITE))
        if self.control is not None and self.control.pid not in (pid, caller):
            # the control partition adopts every agent partition (a partition
            # it spawned itself already has its root capability)
            k.cap_mint(self.control.pid, _OT_PARTITION, pid, _R_ALL & ~64)
        t.console = bool(spec.get("console"))

    def connect(self, name, src_pid, dst_pid, depth=0):
        """A channel `name` from src to dst: created by the receiver (it
        holds read/write/grant/revoke), write right granted to the sender.
        Returns 0 or the error."""
        k = self.k
        h = k.chan_create(dst_pid, depth)
        if is_err(h):
            return h
        self.set_handle(dst_pid, name, h)
        h2 = k.cap_grant(dst_pid, h, src_pid, _R_WRITE)
        if is_err(h2):
            return h2
        self.set_handle(src_pid, name, h2)
        return 0

    def _begin(self, t, restored, moved=None):
        """(Re)start t's coroutine from its entry function. `restored`:
        checkpointed restart bytes (rvm.restored); `moved`: after a
        migration, {handle in the old partition: handle here} (rvm.moved)."""
        box = [0, None, None, None, 0, None]   # the call box (syscalls.py)
        t.req = box
        mk = getattr(t, "api", None)   # kernel code (adopt) may bring its own
        rvm = mk(box) if mk is not None else \
            _make_api(box, t.pid, t.name, StopIteration)
        if restored is not None:
            rvm.restored = restored
        if moved is not None:
            rvm.moved = moved   # else the class default None
        t.rvm = rvm
        t.result = None
        t.exc = None
        t.pending = False
        t.started = self.pf.ticks_ms()
        self.gate.active = 0 if t.trusted else t.pid
        try:
            c = t.main(rvm)
        except BaseException as e:
            self.gate.active = 0
            self._fault(t, e, self.pf.ticks_ms())
            return
        self.gate.active = 0
        if type(c) is not _CORO and not self._kernel_agent(c):
            # main must be an `async def` (or a kernel-made agent object)
            self._close(t, c)
            self._fault(t, errors.EINVAL, self.pf.ticks_ms())
            return
        t.coro = c
        self.log.emit(kinds.AGENT_START, 0, t.pid, _h32(t.name), t.restarts)
        self.sched.make_ready(t, self.pf.ticks_ms())

    def adopt(self, pid, name, coro_fn, trusted=True, recovery=True,
              console=True, deadline_ms=None, api=None):
        """Run kernel-supplied code (the control console) as the agent of an
        existing partition. coro_fn(rvm) -> coroutine; api(box) -> what
        coro_fn receives instead of an agent API (kernel code that needs one
        call does not pay for a per-agent API)."""
        t = S.Task(pid, name)
        t.api = api
        t.trusted = trusted
        if recovery:
            t.fl |= S.F_RECOVERY
        t.console = console
        t.deadline_ms = deadline_ms or self.d_default
        t.main = coro_fn
        self.sched.add(t)
        self._begin(t, None)
        return t

    # ---- services for the control console ---------------------------------------
    def bundle_data(self, name):
        """Bytes of bundle `name`: held in RAM (tests, rvm.spawn of a bundle
        added at run time) or read again from the board's fs."""
        data = self.bundles.get(name)
        if data is not None:
            return data
        path = self.bundle_paths.get(name)
        if path is None and self.fs is not None:
            path = "%s/agents/%s.rvmb" % (self.fs, name)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def spawn(self, name, caller=0, handle=0):
        """Start agent `name` from a bundle the board holds (in RAM since
        boot, or agents/NAME.rvmb on the board's fs). pid or error."""
        if not SC.bundle_name_ok(name):   # never a path, never a NUL
            self.log.deny(kinds.BUNDLE_REJECT, caller, 0, errors.EINVAL.code,
                          0, 0, 0, 0)
            return errors.EINVAL
        data = self.bundle_data(name)
        if data is None:
            self.log.deny(kinds.BUNDLE_REJECT, caller, 0, errors.ENOENT.code,
                          0, _h32(name), 0, 0)
            return errors.ENOENT
        spec = {}
        for a in self.profile.get("agents", ()):
            if a.get("name") == name:
                spec = a
        spec = dict(spec)
        spec.pop("pid", None)
        return self.load(data, spec, caller, handle, name, keep=False)

    def task_info(self, pid):
        t = self.sched.task(pid)
        if t is None:
            return {}
        info = {"run": ("ready", "sleep", "wait", "throttled", "suspended",
                        "done")[t.state],
                "restarts": t.restarts, "faults": t.faults,
                "rebuilds": t.rebuilds, "cpu_us": t.cpu_us,
                "hard": t.hard}
        if self.procs is not None:   # process partitions: the OS pid
            info["os_pid"] = self.procs.os_pid(pid)
        c = t.coro
        if c is not None and self._kernel_agent(c) and hasattr(c, "stat"):
            s = c.stat()   # a WebAssembly partition: fuel used, memory
            info["wasm"] = "fuel=%d mem=%d/%d %s" % (s["fuel"], s["mem"], s["cap"],
                                                     s["impl"])
            if s.get("rid") is not None:   # the memory is a kernel region
                info["wasm"] += " region=%d" % s["rid"]
        return info

    def checkpoint(self, pid, extra=b"", caller=0):
        """Checkpoint partition pid (its regions + `extra`): the seq of the
        CHECKPOINT record or an error."""
        if self.k.mem is None:
            return errors.ENOENT
        return self.k.region_checkpoint(caller, pid, extra)

    # ---- partition state observer (kernel -> scheduler) ---------------------
    def on_state(self, pid, old, new):
        if self._own_transition:
            return
        t = self.sched.task(pid)
        if t is None:
            return
        now = self.pf.ticks_ms()
        if new == _ST_TERMINATED:
            self._drop(t)
        elif new in (_ST_SUSPENDED, _ST_HIBERNATED):
            self.sched.unheap(t)
            t.state = S.T_SUSPENDED
        elif new == _ST_RUNNING and t.state == S.T_SUSPENDED:
            self.sched.make_ready(t, now)

    def _drop(self, t):
        """Forget t's coroutine (its finally blocks run gated)."""
        c = t.coro
        t.coro = None
        self.sched.remove(t)
        self.handles.pop(t.pid, None)
        self.outlog.pop(t.pid, None)
        self._close(t, c)

    # ---- the loop ---------------------------------------------------------------------
    def step_py(self):
        """One scheduling decision. True if an agent ran."""
        s = self.sched
        now = self._ms()
        if ticks_diff(now, s.epoch_start) >= s.epoch_ms:
            self._epoch(now)
            if not self.running:
                return False
        if s.nheap:
            s.wake_due(now)
        if self.jobs:
            self._run_job()
            return False
        if self.control is not None:
            self._poll_console(now)
        t = s.pick(now)
        if t is None:
            self._idle(now)
            return False
        fl = t.fl
        if fl & S.F_PENDING:
            t.fl = fl & ~S.F_PENDING
            self._dispatch(t, now)
            if t.state != S.T_READY:
                return False
        if ticks_diff(now, t.deadline) > 0:
            s.miss(t, now)   # picked after its deadline
        # resume the agent: the partition switch
        gate = self.gate
        us1 = self._us()
        gate.active = 0 if fl & S.F_TRUSTED else t.pid
        b = t.req
        pg = None if fl & S.F_TRUSTED else self.guard
        if pg is not None:   # preemption + heap quota (preempt.py)
            pg.arm(t)
        try:
            exc = t.exc
            if exc is not None:
                t.exc = None
                # a fresh builtin error: nothing shared, nothing growing
                y = t.coro.throw(OSError(exc.code, exc.name))
            else:
                v = t.result
                t.result = None
                y = t.coro.send(v)
        except StopIteration:
            gate.active = 0
            if pg is not None:
                pg.disarm(t)
            self._exit(t, 0, 0, now)
            return True
        except BaseException as e:  # the agent failed: contain it
            gate.active = 0
            if pg is not None:
                e = pg.exc(e)      # the guard's kick -> ETIMEOUT (before disarm)
                pg.disarm(t)
                now = self._ms()   # it may have run long: restart delay from now
            if type(e) is KeyboardInterrupt and fl & S.F_TRUSTED:
                raise e   # the console saw Ctrl-C: stop the kernel
            self._fault(t, e, now)
            return True
        gate.active = 0
        if pg is not None:
            e = pg.disarm(t)
            if e is not None:   # its resume took it past its heap quota
                self._fault(t, e, now)
                return True
        us2 = self._us()
        if y is b:
            op = b[0]
            # `is` with small ints: never compares (runs) an agent's object
            if op is _OPY:  # OP_YIELD, the hot request, served inline
                t.deadline = ticks_add(now, t.deadline_ms)
                t.state = S.T_THROTTLED if t.thr else S.T_READY
            elif op is _OPS and type(b[1]) is int and 0 <= b[1] <= SC.MS_MAX:
                s.sleep(t, ticks_add(now, b[1]))   # OP_SLEEP
            else:
                SC.dispatch(self, t, now)
        else:  # awaited something that is not its call box
            SC.refuse(self, t, errors.EINVAL, 0, 0, now)
        if t.out:
            self._drain(t)
        if len(_API_G) > _API_N:
            self._api_tamper(t, now)
        # accounting: Scheduler.ran() inlined on the hot path. Switch time is
        # from the end of the previous slice to the start of this one.
        n = s.switch_no + 1
        s.switch_no = n
        t.last = n
        s.e_switches += 1
        s.e_switch_us += ticks_diff(us1, self._last_us)
        self._last_us = us2
        pid = t.pid
        s.e_active |= (1 << (pid - 1)) if pid <= 30 else 0x40000000
        cpu = t.cpu_us + ticks_diff(us2, us1)
        t.cpu_us = cpu
        q = t.cpu_quota_us
        if q and cpu > q:
            s.throttle(t, S.Q_CPU, cpu, q)
        if not t.state:   # ready: its new place in the ready heap (it stays
            i = t.hidx      # in it while it runs; blocking takes it out)
            if 0 <= i < s.nrq and s.rq[i] is t and t.deadline_ms <= s.horizon:
                S.rq_sift(s, t, i)   # (rq_push without its far check)
            else:
                s.rq_push(t, now)
        self.steps += 1
        return True

    step = step_py

    def _fail(self, t, err, now):
        """Throw err into t at its next resume. Refusals count against the
        partition's per-epoch budget: past `refuse_mute` its refusal
        records are coalesced (one REFUSAL_FLOOD at the epoch end) and it is
        throttled; past `refuse_fault` it is faulted (F1, then the ladder)."""
        t.exc = err
        if err is not errors.EEMPTY and err is not errors.ETIMEOUT:
            n = t.refusals + 1
            t.refusals = n
            if n == self.refuse_mute >> 1:
                self.log.mute(t.pid)      # the rest of this epoch: counted
            if n >= self.refuse_mute:
                self.sched.throttle(t, _Q_REFUSALS, n, self.refuse_mute)
        self.sched.make_ready(t, now)

    def _flood_epoch(self, now):
        """Epoch end: one REFUSAL_FLOOD per partition over its budget."""
        log = self.log
        for t in list(self.sched.tasks):
            n = t.refusals
            if not n:
                if t.floods:
                    t.floods = 0
                continue
            t.refusals = 0
            if n < self.refuse_mute >> 1:
                t.floods = 0
                continue
            hushed = log.unmute(t.pid)
            bad = False
            if n >= self.refuse_mute:
                t.floods += 1
                bad = t.floods >= self.refuse_epochs and t.state != S.T_DONE
            else:
                t.floods = 0
            log.emit(kinds.REFUSAL_FLOOD, t.pid, t.pid, n, hushed,
                     self.refuse_mute, 1 if bad else 0)
            if bad and t.coro is not None and not t.trusted:
                t.floods = 0
                self._close(t, t.coro)
                self._fault(t, errors.EQUOTA, now)

    def _api_tamper(self, t, now):
        """The agent that just ran wrote into the module dict all API
        functions share (a channel to other partitions outside the kernel):
        undo it, witness it as the agent's, fault the agent."""
        for key in list(_API_G):
            if key != "__name__" and key != "__builtins__":
                del _API_G[key]
        self.log.deny(kinds.SYSCALL_DENIED, t.pid, 0, errors.ERIGHTS.code, 0,
                      0xFF, 0, 0)
        if not t.trusted and t.coro is not None:
            self._close(t, t.coro)
            self._fault(t, errors.ERIGHTS, now)

    def _drain(self, t):
        """The agent printed: its text goes to the partition's log channel
        (AGENT_OUTPUT witnessed; `out PID` on the console shows it
        escaped), never raw onto the console line."""
        o = t.out
        n = len(o)
        data = bytes(o)
        o[:] = b""
        drop = 1 if data[-1:] == b"~" else 0
        self.log.emit(kinds.AGENT_OUTPUT, t.pid, t.pid, n, drop,
                      _h32(data), 0)
        keep = self.outlog.get(t.pid, b"") + data
        self.outlog[t.pid] = keep[-self.outlog_max:]

    def _close(self, t, c):
        """End an agent's coroutine in the agent's own context (its finally
        blocks and, on CPython, finalizers run gated, never as the kernel)."""
        if c is None:
            return
        gate = self.gate
        gate.active = 0 if t.trusted else t.pid
        pg = None if t.trusted else self.guard
        if pg is not None:   # a finally block that spins is stopped too
            pg.arm(t)
        try:
            if type(c) is _CORO or self._kernel_agent(c):
                c.close()
        except BaseException:
            # it would not end (caught GeneratorExit): keep it a while, so
            # CPython does not finalize it later in the kernel's context;
            # the oldest is let go here, gated
            z = self.zombies
            z.append(c)
            if len(z) > 8:
                z.pop(0)
        c = None
        gate.active = 0
        if pg is not None:
            pg.disarm(t)

    def _dispatch(self, t, now):
        SC.dispatch(self, t, now)

    # ---- syscall bodies that need the scheduler (syscalls.py calls them) ----
    def sys_send(self, t, h, payload, now):
        s = self.sched
        k = self.k
        if not s.ipc_allowed(t):
            return self._mode_refusal(t, h, now)
        res = k.send(t.pid, h, payload)
        if is_err(res):
            if res is errors.EQUOTA:
                p = k.parts.get(t.pid)
                s.throttle(t, S.Q_MSGS, p.msgs_used if p else 0,
                           t.quota[0] if t.quota else 0)
            return self._fail(t, res, now)
        s.make_ready(t, now)
        s.wake_waiters(SC.OP_RECV, now)
        if s._wake is not None:   # wake boost for the receiver
            rt = s.task(k.last_dst)
            if rt is not None and rt is not t:
                s.wake_boost(rt, t.pid)

    def sys_alloc(self, t, n, now):
        k = self.k
        res = k.region_alloc(t.pid, n)
        if res is errors.EQUOTA:
            mem = k.mem
            used = 0
            for rid in mem.regions_of(t.pid):
                used += mem.regions[rid].size
            self.sched.throttle(t, S.Q_MEM, used,
                                t.quota[1] if t.quota else 0)
        if is_err(res):
            return self._fail(t, res, now)
        t.result = res
        self.sched.make_ready(t, now)

    def sys_wait_input(self, t, tmo, now):
        if self.input_ready or self.pf.wait_io(0):
            self.input_ready = False
            t.wait_until = 0
            t.fl &= ~S.F_TIMED_OUT
            t.result = True
            self.sched.make_ready(t, now)
        else:
            self._block(t, SC.OP_WAIT_INPUT, tmo, now, False)

    def _block(self, t, op, tmo, now, empty_result):
        """Park t on op (timeout tmo ms, < 0 forever); after a timeout the
        retried call returns `empty_result` (False) or throws ETIMEOUT."""
        s = self.sched
        if type(tmo) is not int:
            tmo = -1
        if tmo == 0 or (t.fl & S.F_TIMED_OUT and tmo > 0):
            t.fl &= ~S.F_TIMED_OUT
            t.wait_until = 0
            if empty_result is None:
                return self._fail(t, errors.ETIMEOUT if tmo else errors.EEMPTY,
                                  now)
            t.result = empty_result
            s.make_ready(t, now)
            return
        if tmo > 0:
            if not t.pending and not t.wait_until:
                t.wait_until = ticks_add(now, tmo)
            left = ticks_diff(t.wait_until, now)
            tmo = left if left > 0 else 0
        t.pending = True
        s.wait(t, op, tmo, now)

    def _recv(self, t, h, tmo, now):
        s = self.sched
        if not s.ipc_allowed(t):
            return self._mode_refusal(t, h, now)
        res = self.k.recv(t.pid, h)
        if res is errors.EEMPTY:
            return self._block(t, SC.OP_RECV, tmo, now, None)
        t.wait_until = 0
        t.fl &= ~S.F_TIMED_OUT
        if is_err(res):
            return self._fail(t, res, now)
        t.result = res
        if t.wboost:   # the wake boost is spent by the receive it was for
            t.wboost = 0
        s.make_ready(t, now)

    def _mode_refusal(self, t, h, now):
        self.log.deny(kinds.IPC_DENIED, t.pid, 0, errors.EMODE.code, 0,
                      h if type(h) is int else 0, 0, self.sched.mode)
        return self._fail(t, errors.EMODE, now)

    # ---- ends and faults ------------------------------------------------------------
    def _exit(self, t, status, code, now):
        if t.out:   # what it printed in its last slice
            self._drain(t)
        self.log.emit(kinds.AGENT_EXIT, 0, t.pid, status, code,
                      ticks_diff(now, t.started))
        self.sched.unheap(t)
        t.state = S.T_DONE
        t.coro = None

    def _fault(self, t, exc, now):
        c = t.coro
        t.coro = None  # drop the dead coroutine (and its heap) first
        self._close(t, c)
        c = None
        if t.out:   # what it printed in its last slice or its finally blocks
            self._drain(t)
        action = self.faults.agent_fault(t, exc)
        code = F.error_code(exc)
        exc = None
        if t.trusted:
            # the kernel's own console: always restarted from kernel code
            action = F.F1
        if action == F.F1:
            r = t.rvm
            self._begin(t, r.restored, r.moved)
            if t.state == S.T_READY:
                d = self.faults.policy.restart_delay(t.restarts - 1)
                self.sched.sleep(t, ticks_add(now, d))
        elif action == F.F2:
            self.sched.unheap(t)
            t.state = S.T_SUSPENDED
            self.jobs.append((self._rebuild, t))
            self.sched.set_mode(S.MODE_RECOVERY, F.F2)
        else:
            self.log.emit(kinds.AGENT_EXIT, 0, t.pid, 0xFF, code,
                          ticks_diff(now, t.started))
            self._own_transition = True
            self.k.part_terminate(0, t.pid, 0, 0xFF)
            self._own_transition = False
            self._drop(t)

    def _rebuild(self, t):
        """F2 job: partition to Recovering, regions from the checkpoint,
        module reloaded fresh from its bundle, back to Running."""
        k = self.k
        self._own_transition = True
        k.part_recover(0, t.pid)
        extra, code = self.faults.rebuild(t)
        data = self.bundle_data(t.name)
        p = B.parse(data) if data is not None else errors.ENOENT
        if not is_err(p):   # read again from the fs: check it again
            e = self._verify(p, 0) or B.check_verdict(
                p, self.profile.get("verifier"))
            if e is not None:
                p = e
        r = p if is_err(p) else self._exec(t, p, p.manifest)
        k.part_start(0, t.pid)
        self._own_transition = False
        if is_err(r):
            self.log.emit(kinds.FAULT_ESCALATE, 0, t.pid, F.F2, F.STOP,
                          r.code, t.faults)
            self._own_transition = True
            k.part_terminate(0, t.pid, 0, 0xFF)
            self._own_transition = False
            self._drop(t)
            return
        self._begin(t, extra)

    def _f3(self, pids):
        bad = self.faults.scan_regions(pids)
        for pid, rid in bad:
            self.jobs.append((self._rollback, (pid, rid)))
        if bad:
            self.sched.set_mode(S.MODE_RECOVERY, F.F3)

    def _rollback(self, arg):
        pid, rid = arg
        if not self.faults.rollback(pid, rid):
            self.kernel_fault(errors.ECORRUPT.code)

    def _run_job(self):
        fn, arg = self.jobs.pop(0)
        fn(arg)
        if not self.jobs and self.sched.mode == S.MODE_RECOVERY:
            self.sched.set_mode(S.MODE_FLOW)

    # ---- epochs, invariants, F4 ----------------------------------------------------------
    def _epoch(self, now):
        k = self.k
        s = self.sched
        for t in s.tasks:
            k.quota_reset(t.pid)
        self._flood_epoch(now)
        s.end_epoch(now)
        self.epochs_run += 1
        if self.procs is not None:   # children that died while blocked
            self.procs.check(now)
        k.expire_leases()
        mem = k.mem
        if mem is not None:
            try:
                mem.tick(now)
            except Exception:
                pass
        ve = self.faults.policy.verify_every
        if mem is not None and ve and self.epochs_run % ve == 0:
            self._f3([t.pid for t in s.tasks])
        bad = self.check_invariants()
        if bad:
            self.kernel_fault(bad)

    def check_invariants(self):
        """0 when the kernel's own state is consistent, else an error code."""
        s = self.sched
        for i in range(s.nheap):
            t = s.heap[i]
            if t is None or t.hidx != i or t.state not in (S.T_SLEEP,
                                                           S.T_WAIT):
                return errors.ESTATE.code
        for t in s.tasks:
            if t.state == S.T_DONE:
                continue
            if t.state == S.T_SLEEP and (t.hidx < 0 or s.heap[t.hidx] is not t):
                return errors.ESTATE.code
            if t.state == S.T_READY and not (0 <= t.hidx < s.nrq and
                                             s.rq[t.hidx] is t):
                return errors.ESTATE.code   # a ready task the pick cannot see
            st = self.k.part_state(t.pid)
            if is_err(st) or st == _ST_TERMINATED:
                return errors.ESTATE.code
        if self.log.next_seq < self._seen_seq:
            return errors.ECORRUPT.code
        self._seen_seq = self.log.next_seq
        return 0

    def kernel_fault(self, code):
        """F4: seal and reset (exits with hal.EXIT_F4 on hosted runtimes)."""
        self.running = False
        self.stop_reason = 2
        return self.faults.kernel_fault(code)

    def _f4_final(self, code):
        self._shutdown_records(2)

    # ---- idle and console --------------------------------------------------------------------
    def _idle(self, now):
        s = self.sched
        tmo = s.next_timeout(now)
        if s.e_switches:  # close this epoch on time
            d = ticks_diff(ticks_add(s.epoch_start, s.epoch_ms), now)
            if d < tmo:
                tmo = d if d > 0 else 0
        self.maybe_service()
        if self.log.next_seq != self._serviced:
            d = self.flush_ms - ticks_diff(now, self._last_service)
            if d < tmo:
                tmo = d if d > 0 else 0
        self.idle_waits += 1
        if self.pf.wait_io(tmo):
            self._input(self.pf.ticks_ms())
        self._last_us = self._us()

    def _input(self, now):
        self.input_ready = True
        self.sched.wake_waiters(SC.OP_WAIT_INPUT, now)

    def _poll_console(self, now):
        if ticks_diff(now, self._last_poll) < _INPUT_POLL_MS:
            return
        self._last_poll = now
        if self.pf.wait_io(0):
            self._input(now)

    def maybe_service(self):
        """Persist at most every flush_ms, or sooner when half the RAM ring
        holds unpersisted records (so emit never has to spill)."""
        pending = self.log.next_seq - self._serviced
        if pending <= 0:
            return
        now = self.pf.ticks_ms()
        if pending >= self._half_ring or \
                ticks_diff(now, self._last_service) >= self.flush_ms:
            self.service()

    def service(self):
        """Flush point outside the switch path: region deltas, then the log
        (link, due seal, persist)."""
        log = self.log
        if log.next_seq != self._serviced:
            mem = self.k.mem
            if mem is not None:
                mem.flush()
            log.service()
            self._serviced = log.next_seq
            self._last_service = self.pf.ticks_ms()

    def run(self, max_steps=None, max_ms=None, max_epochs=None):
        """Run until stop() / a reboot request / a limit. Returns the stop
        reason (0 request, 1 limit, 2 F4, 3 operator reboot)."""
        self.running = True
        pf = self.pf
        t0 = pf.ticks_ms()
        n = 0
        try:
            while self.running:
                try:
                    ran = self.step()
                except KeyboardInterrupt:
                    g = self.guard
                    if g is not None and g.stray():
                        continue   # a preemption kick that landed late
                    raise
                except SystemExit:
                    raise
                except Exception:
                    self.kernel_fault(errors.ESTATE.code)
                    break
                n += 1
                wd = self.wdog   # the board's watchdog, fed after every
                if wd is not None and \
                        ticks_diff(self._ms(), wd.last) >= wd.period:
                    wd.feed()    # step when due: a reset blames the resume
                    #              that ran long, not the one after it
                if not ran or not n & 3:
                    self.maybe_service()
                ctl = self.control
                if ctl is not None and ctl.reboot_requested:
                    self.stop(3)
                    break
                if max_steps is not None and n >= max_steps:
                    self.stop(1)
                elif max_ms is not None and \
                        ticks_diff(pf.ticks_ms(), t0) >= max_ms:
                    self.stop(1)
                elif max_epochs is not None and \
                        self.sched.epoch >= max_epochs:
                    self.stop(1)
        finally:
            self.service()
        return self.stop_reason

    def stop(self, reason=0):
        self.running = False
        self.stop_reason = reason

    def _shutdown_records(self, reason):
        log = self.log
        log.emit(kinds.SHUTDOWN, 0, 0, reason,
                 ticks_diff(self.pf.ticks_ms(), self.booted_ms),
                 log.next_seq - self.first_seq)
        log.seal()
        mem = self.k.mem
        if mem is not None:
            try:
                mem.flush()
            except Exception:
                pass
        log.flush()

    def shutdown(self, reason=None):
        """Witness SHUTDOWN, seal and flush the log, close the store,
        uninstall the import gate."""
        if reason is None:
            reason = self.stop_reason
        for t in list(self.sched.tasks):
            if t.coro is not None:  # end each agent (its finally blocks gated)
                self._drop(t)
        self._shutdown_records(reason)
        if self.wdog is not None:
            self.wdog.stop()
        if self.log.store is not None:
            self.log.store.close()
        self.gate.uninstall()


NATIVE = False
_NATIVE_OK = [None]   # None untried, False: this port has no native emitter


def use_native(on=True):
    """Install the native-emitter Scheduler.pick / Runtime.step
    (switch_native.py) where the port has the emitter, or the portable
    ones. The profile chooses ("scheduler": {"native": false} keeps the
    portable code, saving the module's RAM). Returns whether native is on."""
    global NATIVE
    Scheduler = S.Scheduler
    if on:
        try:
            from .switch_native import pick, sift, step
            Scheduler.pick = S.natmod_pick() or pick
            S.rq_sift = S.natmod_pick() and S._PICK_C[1] or sift
            Runtime.step = step
            NATIVE = True
            _NATIVE_OK[0] = True
            return True
        except (ImportError, SyntaxError, ValueError) as e:
            from .diag import native_fallback
            native_fallback("switch_native", e)
            _NATIVE_OK[0] = False
    Scheduler.pick = Scheduler.pick_py
    S.rq_sift = S._rq_sift_py
    Runtime.step = Runtime.step_py
    NATIVE = False
    return False
