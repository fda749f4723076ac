# Import gate: what an agent's `import` may reach.
#
# Agents run with a controlled `__import__`: the gate is installed once as
# builtins.__import__ (both MicroPython and CPython call it for every import
# statement) and enforces only while agent code runs (`active` is the pid of
# the agent being resumed or loaded; 0 = kernel code, pass straight through).
# Imports the gate allowed may themselves import (nested imports of a
# module's own dependencies pass); the agent's own statements never do.
#
#   pure modules      allowed (math, json, struct, hashlib, ...)
#   hardware / fs     machine, os, socket, network, select, vfs, io, ...:
#                     never (a device is reached through rvm.lease and
#                     kernel calls that check the lease on every use)
#   kernel internals  rvm_mp and rvm_mp.*: never
#   escape hatches    sys, builtins, gc, micropython, _thread, asyncio, time:
#                     never (they reach the module table, the heap, the real
#                     __import__, or block the kernel loop)
#   anything else     refused (allow-list)
#
# Agent globals also shadow the builtins that reach outside the agent
# (open, exec, eval, compile, __import__, input) and KeyboardInterrupt (a
# real Ctrl-C stops the kernel; an agent's "raise KeyboardInterrupt" is an
# ordinary fault).
#
# Honest limit: on a microcontroller without an MPU this is language-level
# isolation. It keeps well-behaved code in its lane and refuses the obvious
# paths; Python introspection (e.g. type(x).__subclasses__() on CPython) is
# not a hardware boundary.
import hashlib

from .compat import const, IS_MICROPYTHON
from .errors import EIMPORT
from .kinds import IMPORT_DENIED
from .api import hook as _hook, make_globals as _make_globals, \
    guard as _guard

_REF_KERNEL = const(1)
_REF_ESCAPE = const(2)
_REF_LEASE = const(3)
_REF_UNKNOWN = const(4)
_REF_BUILTIN = const(5)
_GUARDED = ("open", "print", "exec", "eval", "compile", "input")

PURE = ("math", "cmath", "json", "ujson", "struct", "ustruct", "binascii",
        "ubinascii", "hashlib", "uhashlib", "collections", "ucollections",
        "re", "ure", "random", "urandom", "array", "uarray", "heapq",
        "uheapq", "errno", "uerrno", "deflate", "framebuf", "btree_pure",
        "string", "functools", "itertools", "operator", "_collections_abc")
DEVICE = ("machine", "os", "uos", "socket", "usocket", "network", "select",
          "uselect", "vfs", "io", "uio", "bluetooth", "ubluetooth", "esp",
          "esp32", "rp2", "pyb", "stm", "neopixel", "onewire", "dht")
NEVER = ("sys", "usys", "builtins", "gc", "micropython", "_thread",
         "asyncio", "uasyncio", "time", "utime", "ffi", "uctypes",
         "importlib", "ctypes", "subprocess", "signal", "inspect")


class ImportGate:
    """One per kernel. `install()` once; the runtime sets `active` around
    every agent resume and load."""

    def __init__(self, log=None, lease_check=None):
        self.log = log
        self.lease_check = lease_check  # fn(pid) -> True if it holds a lease
        self.active = 0                 # pid of the agent running, 0 = kernel
        self.depth = 0                  # nested imports of allowed modules
        self.loading = None             # agent module being loaded (.mpy)
        self.refused = 0
        self.last_refused = None
        self._orig = None
        self._real = {}                 # guarded builtins (MicroPython)
        self.print_for = None           # fn(pid) -> that agent's print
        self.pure = PURE
        self.device = DEVICE

    def install(self):
        import builtins
        prev = _GATES[0]
        if prev is not None:
            # another kernel's gate is installed (tests make many kernels):
            # take over from it, keep the original import underneath
            self._orig = prev._orig
        else:
            self._orig = builtins.__import__
        # the hook is a closure built by rvm_mp/api.py: its globals hold
        # nothing, so the builtins.__import__ an agent may find leads nowhere
        self._fn = _hook(self._import)
        _GATES[0] = self
        builtins.__import__ = self._fn
        if IS_MICROPYTHON:
            # MicroPython looks a name up in the module's globals, then in
            # the one builtins module: an agent that deletes its shadow
            # (`global open; del open`) would reach the real builtin. So the
            # builtins themselves ask who runs (CPython agents have their
            # own __builtins__ copy instead).
            real = prev._real if prev is not None else {}
            self._real = real
            for name in _GUARDED:
                if name not in real:
                    real[name] = getattr(builtins, name, None)
                if real[name] is not None:
                    setattr(builtins, name, _guard(self._builtin, name,
                                                   real[name]))

    def uninstall(self):
        import builtins
        if self._orig is not None and _GATES[0] is self:
            builtins.__import__ = self._orig
            for name in self._real:
                if self._real[name] is not None:
                    setattr(builtins, name, self._real[name])
            _GATES[0] = None

    def real(self, name, default):
        """The builtin `name` itself, for the kernel's own use."""
        r = self._real.get(name)
        return r if r is not None else default

    def _builtin(self, name, real, a, k):
        """A guarded builtin called: the kernel's own calls pass; an
        agent's print goes to its log channel, the rest are refused
        (witnessed IMPORT_DENIED, reason 5)."""
        pid = self.active
        if pid == 0 or self.depth > 0:
            return real(*a, **k)
        if name == "print" and self.print_for is not None:
            p = self.print_for(pid)
            if p is not None:
                return p(*a, **k)
        self.refused += 1
        if self.log is not None:
            self.log.deny(IMPORT_DENIED, pid, pid, EIMPORT.code, 0,
                          _h32(name), _REF_BUILTIN)
        raise ImportError("rvm: not available to agents")

    def classify(self, name, pid):
        """0 if pid may import `name`, else a refusal reason."""
        top = name.split(".")[0]
        if top == "rvm_mp":
            return _REF_KERNEL
        if top in NEVER:
            return _REF_ESCAPE
        if top in self.device:
            # hardware and filesystem modules are never an agent's: devices
            # are reached through rvm.lease and kernel calls only
            return _REF_LEASE
        if top in self.pure:
            return 0
        return _REF_UNKNOWN

    def _import(self, name, globals, locals, fromlist, level):
        pid = self.active
        orig = self._orig
        if pid == 0 or self.depth > 0:
            return orig(name, globals, locals, fromlist, level)
        return self.agent_import(name, fromlist, level)

    def agent_import(self, name, fromlist=(), level=0):
        """An import on behalf of the running agent (pid `active`). Every
        argument is checked by exact type first: a str subclass whose
        split() lies, or a fromlist object, never runs in the gate."""
        pid = self.active
        orig = self._orig
        if pid == 0 or self.depth > 0:
            return orig(name, None, None, fromlist, level)
        if type(name) is not str or not 0 < len(name) <= 64 or \
                type(level) is not int:
            return self._refuse(pid, "", _REF_UNKNOWN)
        if fromlist is None:
            fromlist = ()
        elif type(fromlist) is list or type(fromlist) is tuple:
            for x in fromlist:
                if type(x) is not str:
                    return self._refuse(pid, name, _REF_UNKNOWN)
            fromlist = tuple(fromlist)
        else:
            return self._refuse(pid, name, _REF_UNKNOWN)
        globals = locals = None
        if name == self.loading:  # the agent's own .mpy: its imports stay gated
            self.loading = None
            return orig(name, globals, locals, fromlist, level)
        if level:
            why = _REF_KERNEL  # relative imports would land in kernel space
        else:
            why = self.classify(name, pid)
        if why:
            return self._refuse(pid, name, why)
        self.depth += 1
        try:
            return orig(name, globals, locals, fromlist, level)
        finally:
            self.depth -= 1

    def _refuse(self, pid, name, why):
        """Witness the refusal with the agent as actor, then raise a fresh
        ImportError into the agent."""
        self.refused += 1
        self.last_refused = name
        if self.log is not None:
            self.log.deny(IMPORT_DENIED, pid, pid, EIMPORT.code, 0,
                          _h32(name), why)
        raise ImportError("rvm: import refused")

    def agent_globals(self, name, out=None):
        """A fresh globals dict for agent code (rvm_mp/api.py make_globals):
        its own print into `out`, __import__ through this gate, the
        builtins that reach outside the agent shadowed."""
        if out is None:
            out = bytearray()
        g = _make_globals(name, out, ImportError, RuntimeError, str, len,
                          self.agent_import)
        if not IS_MICROPYTHON:
            # CPython: exec would add the real builtins as __builtins__;
            # give the agent a copy with the same names shadowed
            import builtins
            b = dict(builtins.__dict__)
            for k in g:
                if k != "__name__":
                    b[k] = g[k]
            g["__builtins__"] = b
        return g


_GATES = [None]


def _h32(s):
    if isinstance(s, str):
        s = s.encode()
    d = hashlib.sha256(s).digest()
    return d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)
