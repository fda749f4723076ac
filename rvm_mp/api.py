# The agent API, built fresh for every agent start: the `rvm` object that
# `async def main(rvm)` receives, the awaitable every call returns, device
# handles, and the agent's own `print`, `__import__` and shadow builtins.
#
#   kernel (runtime)                         agent (this factory's objects)
#   ----------------                         ------------------------------
#   box = [op, a0, a1, a2, st, _] --make-->   rvm.send(h, p): box[0..2] = ...
#   (a plain list the kernel made)           `await` yields box itself
#   y = coro.send(result)        <--yield--  box
#   y is t.box ? read box[0..3],
#   check each by exact type                  result / OSError(code, "ENAME")
#
# Why a factory, and why it looks odd. Nothing an agent can reach may lead
# to a kernel object or to state another partition shares:
# * Every class here is created per agent (type(name, (), dict) in make()),
#   so patching type(rvm).send changes only the patcher's own API. The
#   methods are plain functions shared by all agents, which is safe because
#   a function object cannot be changed on MicroPython, and because they
#   name no global and no builtin: everything they use is an attribute of
#   `self` (the agent's own box, awaitable, classes) or a literal. Their
#   __globals__ is this module's dict, which the runtime empties after
#   import (runtime._seal_api), so it holds nothing an agent could use, and
#   filling it with names changes no API function. The closures of
#   make_globals name only their own cells (invisible on MicroPython).
#   tests/kernel/test_redteam.py checks the "no free global name" rule.
# * The kernel never calls a method of anything here: it reads the box (a
#   builtin list) by index and checks each value with type(x) is ..., so a
#   patched class or a lying __len__ cannot run in the kernel's context.
# * Errors thrown into an agent are fresh builtin OSError(code, "ENAME")
#   objects (nothing shared, nothing growing).
# On CPython in-process, closures expose __closure__ and functions
# __builtins__; there the boundary is the verifier and OS processes
# (docs/agents.md, threat model).


# ---- the awaitable: one per agent, it yields the agent's box ------------
# self.b: the box (b[4]: 0 idle, 1 yielded); self.s: the agent's own
# StopIteration; self.SI: StopIteration; self.Dev: the agent's Device class

def _q_iter(self):
    return self


def _q_next(self):
    b = self.b
    if b[4] == 0:
        b[4] = 1
        return b
    b[4] = 0
    s = self.s
    s.__traceback__ = None
    raise s


def _q_send(self, v):
    b = self.b
    if b[4] == 0:
        b[4] = 1
        return b
    b[4] = 0
    if v is None:
        s = self.s
        s.__traceback__ = None
        raise s
    if b[0] == 8:          # lease: the kernel returns the lease id
        if self.Dev is None:
            self.Dev = self.mk()
        v = self.Dev(v, b[5])
    raise self.SI(v)


def _q_throw(self, typ, val=None, tb=None):
    self.b[4] = 0
    if val is None:
        raise typ
    raise val


def _q_close(self):
    self.b[4] = 0


# ---- a leased device: every operation is a kernel call (await dev.read())

def _d_init(self, lid, dname):
    self.lease_id = lid
    self.name = dname


def _d_call(self, op, *args):
    b = self.b
    b[0] = 20
    b[1] = self.lease_id
    b[2] = op
    b[3] = args
    return self.q


def _d_on(self):
    return self.call("on")


def _d_off(self):
    return self.call("off")


def _d_toggle(self):
    return self.call("toggle")


def _d_set(self, v):
    return self.call("set", v)


def _d_read(self, *args):
    b = self.b
    b[0] = 20
    b[1] = self.lease_id
    b[2] = "read"
    b[3] = args
    return self.q


def _d_write(self, data):
    return self.call("write", data)


def _d_release(self):
    b = self.b
    b[0] = 21
    b[1] = self.lease_id
    return self.q


# ---- the rvm object: every method fills the box and returns the awaitable.
# Op numbers are rvm_mp/syscalls.py's table.

def _set(self, op, a0=None, a1=None, a2=None):
    b = self.b
    b[0] = op
    b[1] = a0
    b[2] = a1
    b[3] = a2
    return self.q


def _yield(self):
    self.b[0] = 1
    return self.q


def _sleep_ms(self, ms):
    b = self.b
    b[0] = 2
    b[1] = ms
    return self.q


def _now(self):
    self.b[0] = 3
    return self.q


def _my_id(self):
    self.b[0] = 4
    return self.q


def _handle(self, hname):
    return self.call(7, hname)


def _send(self, h, payload):
    return self.call(5, h, payload)


def _recv(self, h, timeout_ms=-1):
    return self.call(6, h, timeout_ms)


def _lease(self, device, duration_ms, h=None):
    self.b[5] = device   # the agent's own note: names its Device
    return self.call(8, device, duration_ms, h)


def _alloc(self, size):
    return self.call(9, size)


def _read(self, rid, off, n):
    return self.call(10, rid, off, n)


def _write(self, rid, off, data):
    return self.call(11, rid, off, data)


def _free(self, rid):
    return self.call(12, rid)


def _checkpoint(self, state=b""):
    return self.call(13, state)


def _spawn(self, bundle_name):
    return self.call(14, bundle_name)


def _wait_input(self, timeout_ms=-1):
    return self.call(15, timeout_ms)


def _console_read(self, n=64):
    return self.call(16, n)


def _console_write(self, data):
    return self.call(17, data)


def _exit(self, status=0):
    return self.call(19, status)


def _device(self, lid, dname=""):
    q = self.q
    if q.Dev is None:
        q.Dev = q.mk()
    return q.Dev(lid, dname)


# The per-agent values (the box, ...) go into each copy of these tables,
# not onto the instances: an instance without attributes has no member
# table of its own, and a table copied with its keys already present is
# never regrown (MicroPython copies a dict at its allocated size).
_Q = {"__iter__": _q_iter, "__await__": _q_iter, "__next__": _q_next,
      "send": _q_send, "throw": _q_throw, "close": _q_close, "Dev": None,
      "b": None, "s": None, "SI": None, "mk": None}
_D = {"__init__": _d_init, "call": _d_call, "on": _d_on, "off": _d_off,
      "toggle": _d_toggle, "set": _d_set, "read": _d_read, "write": _d_write,
      "release": _d_release, "b": None, "q": None}
_R = {"call": _set, "yield_": _yield, "sleep_ms": _sleep_ms, "now": _now,
      "my_id": _my_id, "handle": _handle, "send": _send, "recv": _recv,
      "lease": _lease, "alloc": _alloc, "read": _read, "write": _write,
      "free": _free, "checkpoint": _checkpoint, "spawn": _spawn,
      "wait_input": _wait_input, "console_read": _console_read,
      "console_write": _console_write, "exit": _exit, "device": _device,
      "moved": None, "restored": None, "b": None, "q": None, "pid": 0,
      "name": ""}


def make(box, pid, name, SI, Q=_Q, D=_D, R=_R, T=type, DI=dict):
    """A fresh API for one agent start: its `rvm` object. box: the
    kernel's call box [op, a0, a1, a2, state, agent's note]; SI:
    StopIteration. Classes of its own: the awaitable and rvm now, Device
    at the first lease. (The defaults bind the builtins at import: an
    agent filling this module's dict cannot change what make() calls.)"""
    def mkdev(_):   # a class attribute: called as q.mk(), bound to q
        d = DI(D)
        d["b"] = box
        d["q"] = q
        return T("Device", (), d)

    d = DI(Q)
    d["b"] = box
    d["s"] = SI()
    d["SI"] = SI
    d["mk"] = mkdev
    q = T("Request", (), d)()   # (CPython copies d: fill it first)
    r = DI(R)
    r["b"] = box
    r["q"] = q
    r["pid"] = pid
    r["name"] = name
    return T("Rvm", (), r)()


def make_globals(name, out, IE, RE, ST, LEN, imp_fn):
    """A fresh globals dict for one agent module: its own print (into
    `out`, the agent's bounded bytearray), __import__ (imp_fn(name,
    fromlist, level), the gate), KeyboardInterrupt (RE: the builtin
    RuntimeError, so an agent can never raise the real one, which stops the
    kernel), and the builtins that reach outside the agent shadowed by a
    refusal. IE/ST/LEN: the builtins ImportError, str, len."""
    def agent_print(*args, sep=" ", end="\n"):
        # into the agent's own bounded buffer; the kernel drains it to the
        # partition's log channel (never raw onto the console line)
        n = LEN(args)
        i = 0
        for a in args:
            s = ST(a)
            if LEN(out) + LEN(s) + 2 > 240:
                out.extend(b"~")
                return
            out.extend(s.encode())
            i += 1
            if i < n:
                out.extend(sep.encode())
        if LEN(out) + LEN(end) <= 240:
            out.extend(end.encode())

    def denied(*a, **k):
        raise IE("rvm: not available to agents")

    def agent_import(iname, globals=None, locals=None, fromlist=(), level=0):
        return imp_fn(iname, fromlist, level)

    g = {"__name__": name, "print": agent_print, "__import__": agent_import,
         "KeyboardInterrupt": RE, "open": denied, "exec": denied,
         "eval": denied, "compile": denied, "input": denied}
    return g


def hook(fn):
    """The process-wide builtins.__import__ while the gate is installed: a
    closure over the gate's import (fn(name, globals, locals, fromlist,
    level)), so a `del __import__` in agent code finds nothing but this."""
    def rvm_import(iname, globals=None, locals=None, fromlist=(), level=0):
        return fn(iname, globals, locals, fromlist, level)
    return rvm_import


def guard(fn, name, real):
    """A process-wide builtin (open, print, exec, ...) while the gate is
    installed on MicroPython: fn(name, real, args, kwargs) decides by who is
    running, so an agent that deletes its shadow finds only this."""
    def rvm_builtin(*a, **k):
        return fn(name, real, a, k)
    return rvm_builtin
