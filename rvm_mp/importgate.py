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
#                     only while the partition holds a live device lease
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
from .errors import EIMPORT, forget
from .kinds import IMPORT_DENIED

_REF_KERNEL = const(1)
_REF_ESCAPE = const(2)
_REF_LEASE = const(3)
_REF_UNKNOWN = const(4)

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


def _denied(*a, **k):
    forget(EIMPORT)  # preallocated: no traceback kept from the last raise
    raise EIMPORT


class AgentInterrupt(Exception):
    """What the name KeyboardInterrupt means inside agent code: a real
    Ctrl-C stops the kernel, so an agent must not be able to raise one."""


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
        gate = self

        def rvm_import(name, globals=None, locals=None, fromlist=(), level=0):
            return gate._import(name, globals, locals, fromlist, level)
        _GATES[0] = self
        self._fn = rvm_import
        builtins.__import__ = rvm_import

    def uninstall(self):
        import builtins
        if self._orig is not None and _GATES[0] is self:
            builtins.__import__ = self._orig
            _GATES[0] = None

    def classify(self, name, pid):
        """0 if pid may import `name`, else a refusal reason."""
        top = name.split(".")[0]
        if top == "rvm_mp":
            return _REF_KERNEL
        if top in NEVER:
            return _REF_ESCAPE
        if top in self.device:
            if self.lease_check is not None and self.lease_check(pid):
                return 0
            return _REF_LEASE
        if top in self.pure:
            return 0
        return _REF_UNKNOWN

    def _import(self, name, globals, locals, fromlist, level):
        pid = self.active
        orig = self._orig
        if pid == 0 or self.depth > 0:
            return orig(name, globals, locals, fromlist, level)
        if name == self.loading:  # the agent's own .mpy: its imports stay gated
            self.loading = None
            return orig(name, globals, locals, fromlist, level)
        if level:
            why = _REF_KERNEL  # relative imports would land in kernel space
        else:
            why = self.classify(name, pid)
        if why:
            self.refused += 1
            self.last_refused = name
            if self.log is not None:
                self.log.deny(IMPORT_DENIED, 0, pid, EIMPORT.code, 0,
                              _h32(name), why)
            raise ImportError("rvm: import of %s refused" % name)
        self.depth += 1
        try:
            return orig(name, globals, locals, fromlist, level)
        finally:
            self.depth -= 1

    def agent_globals(self, name):
        """A fresh globals dict for agent code, dangerous builtins shadowed."""
        d = _denied
        g = {"__name__": name}
        for b in ("open", "exec", "eval", "compile", "__import__", "input"):
            g[b] = d
        g["__import__"] = self._fn if self._orig is not None else d
        g["KeyboardInterrupt"] = AgentInterrupt
        if not IS_MICROPYTHON:
            # CPython: exec would add the real builtins as __builtins__;
            # give the agent a copy with the same names shadowed
            import builtins
            b = dict(builtins.__dict__)
            for k in ("open", "exec", "eval", "compile", "input",
                      "breakpoint", "help", "exit", "quit"):
                b[k] = d
            b["KeyboardInterrupt"] = AgentInterrupt
            b["__import__"] = g["__import__"]
            g["__builtins__"] = b
        return g


_GATES = [None]


def _h32(s):
    if isinstance(s, str):
        s = s.encode()
    d = hashlib.sha256(s).digest()
    return d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)
