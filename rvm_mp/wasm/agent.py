# A WebAssembly partition's agent: kernel code standing in for the agent's
# coroutine (Runtime.register_agent_type). send(result)/throw(err) resume the
# module for at most one fuel slice; when the module calls an `rvm` import,
# the call box is filled exactly as an awaiting Python agent fills it (op +
# exact-typed arguments, bytes copied out of linear memory after a bounds
# check) and returned, so the same syscall table checks, serves and
# witnesses it with the partition as actor.
#
#   module ----call rvm.send(h, ptr, len)----> WasmAgent._host
#          box = [5, h, bytes(mem[ptr:ptr+len]), None]  -> runtime -> syscalls
#   result <---- send(v) / throw(OSError(code)) ---- i32: v, or -code
#
# A pointer outside linear memory never reaches the kernel as an address:
# the argument becomes None, the syscall table refuses it (EINVAL, witnessed
# as the agent) and the module gets -18. Fuel spent: the box says yield (op
# 1), the scheduler preempts at the slice. A trap raises WasmTrap: an agent
# fault (F1 restart, then the ladder).
from .. import errors
from . import interp, memory
from .module import WasmError, load

I32 = 0x7F
M32 = 0xFFFFFFFF
_EINVAL = 18
FUEL_SLICE = 2000
MEM_CAP = 4096
STACK = 256
FRAMES = 32

# import name -> (number of i32 params, has an i32 result); docs/wasm.md and
# native/wasm/rvm_agent.h describe each
ABI = {
    "yield_": (0, 1), "sleep_ms": (1, 1), "now": (0, 1), "my_id": (0, 1),
    "send": (3, 1), "recv": (4, 1), "sender": (0, 1), "handle": (2, 1),
    "lease": (3, 1), "dev": (4, 1), "release": (1, 1), "alloc": (1, 1),
    "read": (4, 1), "write": (4, 1), "free": (1, 1), "checkpoint": (2, 1),
    "restored": (2, 1), "exit": (1, 0), "log": (2, 0),
}


class WasmTrap(Exception):
    """The module trapped: the partition faults."""


def check_imports(m):
    """None, or a one-line reason the module's imports do not fit the ABI."""
    for i, (mod, name) in enumerate(m.imports):
        want = ABI.get(name) if mod == "rvm" else None
        if want is None:
            return "unknown import %s.%s" % (mod, name)
        ps, rs = m.types[m.funcs[i].tidx]
        if len(ps) != want[0] or len(rs) != want[1] or I64 in ps or I64 in rs:
            return "import rvm.%s has the wrong type" % name
    return None


I64 = 0x7E


def entry_of(m, entry):
    fi = m.export_func(entry)
    if fi is None or m.funcs[fi].imp:
        return None
    ps, rs = m.types[m.funcs[fi].tidx]
    return fi if not ps and not rs else None


def validate(data, entry="main"):
    """Host and kernel: (module, None) or (None, one-line reason)."""
    try:
        m = load(data)
    except WasmError as e:
        return None, "invalid module: %s" % e
    why = check_imports(m)
    if why is None and entry_of(m, entry) is None:
        why = "no export %s: [] -> []" % entry
    return (None, why) if why else (m, None)


class WasmAgent:
    """rm, t: the RegionManager and the task when the linear memory is a
    kernel region (wasm/memory.py); without a RegionManager it is the
    instance's own bytearray. kern(fn, *args): fn run as the kernel (this
    object runs under the partition's import gate; the region manager
    writes files)."""

    def __init__(self, m, fi, box, out, restored, fuel, mem_cap, impl=None,
                 rm=None, t=None, kern=None):
        self.rm = rm
        self.kern = kern
        self.rid = None
        buf = None
        init = True
        size = interp.mem_bytes(m, mem_cap)
        if rm is not None and size:
            rid, init = kern(memory.attach, rm, t.pid, getattr(t, "wasm_rid", None),
                             size)
            if errors.is_err(rid):
                raise MemoryError("wasm linear memory: %s" % rid.name)
            t.wasm_rid = rid
            self.rid = rid
            buf = kern(memory.view, rm, rid)
        self.inst = interp.Instance(m, mem_cap=mem_cap, nstack=STACK,
                                    nframes=FRAMES, impl=impl, mem=buf, init=init)
        self.m = m
        self.box = box
        self.out = out
        self.restored_state = restored
        self.fuel = fuel
        self.calls = [fi] if m.start is None else [m.start, fi]
        self.pending = None    # (import name, args) of the call in the kernel
        self.sender = 0
        self.host_calls = 0

    def _remap(self):
        """The memory region where it is now: kernel code ran since the
        last run (a tier move may have moved or compressed it)."""
        if self.rid is not None:
            v = self.kern(memory.view, self.rm, self.rid)
            if errors.is_err(v):
                raise WasmTrap("wasm memory region %d: %s" % (self.rid, v.name))
            self.inst.mem = v

    # ---- the coroutine protocol the runtime drives ---------------------
    def send(self, v):
        self._remap()
        p = self.pending
        if p is not None:
            self.pending = None
            self.inst.host_return(self._result(p, v))
        return self._run()

    def throw(self, err):
        self._remap()
        p = self.pending
        self.pending = None
        try:
            code = err.args[0]
        except Exception:
            code = _EINVAL
        if type(code) is not int:
            code = _EINVAL
        if p is not None and ABI[p[0]][1]:
            self.inst.host_return([(-code) & M32])
        return self._run()

    def close(self):
        self.pending = None
        self.calls = []

    # ---- the module runs ------------------------------------------------
    def _run(self):
        inst = self.inst
        left = self.fuel
        while True:
            if inst.func is None or inst.regs[interp.R_NF] == 0:
                if not self.calls:
                    raise StopIteration
                inst.call(self.calls.pop(0))
            used = inst.fuel_used
            st = inst.run(left)
            left -= inst.fuel_used - used
            if st == interp.DONE:
                inst.func = None
                continue
            if st == interp.FUEL:
                self.box[0] = 1       # yield: preempted at the slice
                return self.box
            if st == interp.TRAP:
                raise WasmTrap("wasm trap: %s" % inst.trap_name())
            fi, args = inst.host_args()
            # every ABI argument is an i32; the mask also turns MicroPython's
            # long ints from array('Q') into small ints the kernel expects
            args = [x & M32 for x in args]
            name = self.m.imports[fi][1]
            self.host_calls += 1
            if self._host(name, args):
                self.pending = (name, args)
                return self.box
            if left <= 0:
                self.box[0] = 1
                return self.box

    def _bytes(self, ptr, n):
        """A copy of linear memory [ptr, ptr+n), or None if any of it is
        outside the memory (never reaches past it)."""
        if n < 0 or n > 0x7FFFFFFF or ptr + n > self.inst.mem_size():
            return None
        return bytes(self.inst.mem[ptr:ptr + n])

    def _fits(self, ptr, n):
        return 0 <= n <= 0x7FFFFFFF and ptr + n <= self.inst.mem_size()

    def _str(self, ptr, n):
        b = self._bytes(ptr, n) if n <= 32 else None
        if b is None:
            return None
        try:
            return b.decode()
        except Exception:
            return None

    def _set(self, op, a0=None, a1=None, a2=None):
        b = self.box
        b[0] = op
        b[1] = a0
        b[2] = a1
        b[3] = a2
        return True

    def _host(self, name, a):
        """Fill the box for a kernel call (True), or serve a call that
        needs no kernel here (False, result pushed)."""
        inst = self.inst
        if name == "send":
            return self._set(5, a[0], self._bytes(a[1], a[2]))
        if name == "recv":
            tmo = a[1] - (1 << 32) if a[1] & 0x80000000 else a[1]
            return self._set(6, a[0], tmo if self._fits(a[2], a[3]) else None)
        if name == "sleep_ms":
            return self._set(2, a[0] if a[0] <= 0x1FFFFFFF else None)
        if name == "yield_":
            return self._set(1)
        if name == "now":
            return self._set(3)
        if name == "my_id":
            return self._set(4)
        if name == "handle":
            return self._set(7, self._str(a[0], a[1]))
        if name == "lease":
            d = self._str(a[0], a[1])
            self.box[5] = d
            return self._set(8, d, a[2], None)
        if name == "dev":
            op = self._str(a[1], a[2])
            arg = a[3] - (1 << 32) if a[3] & 0x80000000 else a[3]
            return self._set(20, a[0], op, () if arg < 0 else (arg,))
        if name == "release":
            return self._set(21, a[0])
        if name == "alloc":
            return self._set(9, a[0])
        if name == "read":
            return self._set(10, a[0], a[1], a[3] if self._fits(a[2], a[3]) else None)
        if name == "write":
            return self._set(11, a[0], a[1], self._bytes(a[2], a[3]))
        if name == "free":
            return self._set(12, a[0])
        if name == "checkpoint":
            return self._set(13, self._bytes(a[0], a[1]))
        if name == "exit":
            return self._set(19, a[0] if a[0] <= 255 else 0)
        # served here: no kernel object involved
        if name == "log":
            b = self._bytes(a[0], a[1] if a[1] <= 200 else 200)
            if b is not None:
                o = self.out
                if len(o) + len(b) + 2 > 240:
                    o.extend(b"~")
                else:
                    o.extend(b)
                    o.extend(b"\n")
            return False
        if name == "sender":
            inst.host_return([self.sender & M32])
            return False
        # restored(ptr, cap): the checkpointed bytes, or -1 when none
        r = self.restored_state
        if r is None:
            inst.host_return([M32])
        elif not self._fits(a[0], a[1]) or len(r) > a[1]:
            inst.host_return([(-_EINVAL) & M32])
        else:
            inst.mem[a[0]:a[0] + len(r)] = r
            inst.host_return([len(r)])
        return False

    def _result(self, p, v):
        """The i32 result of a served kernel call (a list: none for exit)."""
        name, a = p
        if not ABI[name][1]:
            return []
        if name == "recv":
            src, msg = v
            self.sender = src
            n = len(msg) if len(msg) < a[3] else a[3]
            self.inst.mem[a[2]:a[2] + n] = msg[:n]
            return [len(msg)]
        if name == "read":
            n = len(v)
            self.inst.mem[a[2]:a[2] + n] = v
            return [n]
        if v is None or v is False:
            return [0]
        if v is True:
            return [1]
        if type(v) is int:
            return [v & M32]
        return [0]

    # ---- what `rvm ps` shows ---------------------------------------------
    def stat(self):
        i = self.inst
        return {"fuel": i.fuel_used, "mem": i.mem_size(), "cap": len(i.mem),
                "impl": i.impl, "calls": self.host_calls, "rid": self.rid}


def exec_wasm(rt, t, p, man):
    """Runtime._exec for a WebAssembly bundle: validate, check the imports
    against the ABI, set t.main to make a WasmAgent at each (re)start."""
    try:
        m, why = validate(p.code(), man.get("entry", "main"))
    except MemoryError:
        print("rvm-mp: wasm bundle %s refused: no memory to load it" % t.name)
        return errors.ENOMEM
    if m is None:
        print("rvm-mp: wasm bundle %s refused: %s" % (t.name, why))
        return errors.EINVAL
    w = man.get("wasm") if type(man.get("wasm")) is dict else {}
    fuel = w.get("fuel", FUEL_SLICE)
    cap = w.get("mem", MEM_CAP)
    q = t.quota
    if q and q[1] and cap > q[1]:
        cap = q[1]            # the linear memory counts against the quota
    if type(fuel) is not int or type(cap) is not int or fuel < 1 or cap < 0:
        return errors.EINVAL
    fi = entry_of(m, man.get("entry", "main"))
    if t.out is None:
        t.out = bytearray()
    out = t.out
    try:
        # one instance up front: a module that cannot link is refused here
        interp.Instance(m, mem_cap=cap, nstack=STACK, nframes=FRAMES)
    except (interp.LinkError, MemoryError) as e:
        print("rvm-mp: wasm bundle %s refused: %s" % (t.name, e))
        return errors.EINVAL
    rt.register_agent_type(WasmAgent)

    rm = rt.k.mem   # the linear memory is a region there (wasm/memory.py)
    gate = rt.gate

    def kern(fn, *a):
        pid = gate.active
        gate.active = 0
        try:
            return fn(*a)
        finally:
            gate.active = pid

    def main(rvm):
        return WasmAgent(m, fi, rvm.b, out, rvm.restored, fuel, cap, rm=rm, t=t,
                         kern=kern)
    t.main = main
    t.globals = {}
    return None
