"""Agent-code verifier: what a Seed board runs is checked before it is signed.

`rvm bundle`, `rvm deploy` and `rvm build` run `check()` on an agent's source
before they sign it; a finding prints as one line

    agent.py:12:8: attribute '__class__' is not allowed (rule A3)

and nothing is signed. The bundle records the verdict (POLICY, the SHA-256 of
the verified source) inside what is signed; the kernel refuses a bundle
without one, or with an older POLICY than the board requires
(rvm_mp/bundle.py, docs/agents.md "Verified agent code").

The accepted language is a subset of Python, checked on the parse tree
(`ast`) of the source. It is our own pass, not RestrictedPython: that
library rewrites code into CPython code objects whose safety depends on
guard functions called at run time (`_getattr_`, `_write_`, ...), which a
MicroPython board would have to ship and call on every attribute access,
and its policy allows much of what we must refuse (dunder-free reflection
through `getattr`, catching BaseException). A static pass needs nothing on
the board, costs no cycles there, and its rules are the table below.

Change a rule -> bump POLICY (boards may then require the new version).
"""
import ast
import builtins
import hashlib
import importlib
import string
import types

from .errors import RvmToolError

# The verifier's policy version: recorded in every bundle's verdict.
POLICY = 1

# One table: rule id, what it refuses. docs/agents.md prints it; a host test
# checks that the two agree.
RULES = (
    ("A0", "source that does not parse as Python 3 (UTF-8)"),
    ("A1", "an import of a module not on the allowlist (widened per board "
           "profile and per agent entry), a relative or star import, or "
           "importing a name that is a module or begins with `_`"),
    ("A2", "a name (variable, function, class, argument, import alias) "
           "beginning with `_` (the throwaway name `_` itself is allowed)"),
    ("A3", "an attribute beginning with `_`; an introspection attribute of "
           "frames, code, generators, coroutines, tracebacks or functions "
           "(`gi_*`, `cr_*`, `ag_*`, `f_*`, `tb_*`, `co_*`, `func_*`, `mro`, "
           "`with_traceback`); a module's attribute that is itself a module; "
           "a raw-hardware attribute (`machine.mem32`, `machine.reset`, ...)"),
    ("A4", "a reflective or escape builtin: " ),  # filled in below
    ("A5", "`global`/`nonlocal`, assignment or `del` of a builtin name "
           "(rebinding builtins)"),
    ("A6", "assignment (plain or augmented) or `del` of any attribute: "
           "modules, builtins, kernel-supplied objects and caught exceptions "
           "are shared, so an agent keeps its state in its own variables, "
           "lists and dicts (no patching)"),
    ("A7", "a bare `except:`, `except*`, or catching BaseException, "
           "GeneratorExit, SystemExit or KeyboardInterrupt"),
    ("A8", "`str.format`/`format_map` on anything but a string literal, or "
           "a format field with attribute or index access (`{0.x}`, `{0[k]}`)"),
    ("A9", "no top-level `async def main(rvm)` (the agent's entry)"),
)

FORBIDDEN_BUILTINS = (
    "type", "getattr", "setattr", "delattr", "hasattr", "vars", "globals",
    "locals", "dir", "eval", "exec", "compile", "open", "__import__",
    "object", "super", "input", "breakpoint", "help", "exit", "quit", "id",
    "memoryview", "classmethod", "staticmethod", "property",
)
RULES = tuple((r, w + ", ".join("`%s`" % b for b in FORBIDDEN_BUILTINS))
              if r == "A4" else (r, w) for r, w in RULES)

INTROSPECTION_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_")
INTROSPECTION_ATTRS = ("mro", "with_traceback")
UNCATCHABLE = ("BaseException", "GeneratorExit", "SystemExit",
               "KeyboardInterrupt")

# Pure modules every agent may import (the kernel's import gate allows a
# superset at run time; `operator`, `functools`, `string` are left out here:
# attrgetter/methodcaller and string.Formatter reach attributes by name).
BASE_IMPORTS = ("math", "cmath", "json", "ujson", "struct", "ustruct",
                "binascii", "ubinascii", "hashlib", "uhashlib", "collections",
                "ucollections", "re", "ure", "random", "urandom", "array",
                "uarray", "heapq", "uheapq", "errno", "uerrno", "deflate",
                "itertools")
# Modules a leased device adds to the allowlist: none. An agent reaches its
# devices through rvm.lease and kernel calls only; the kernel's import gate
# refuses hardware and filesystem modules to agents whatever they lease.
DEVICE_IMPORTS = ()
# Attributes of device modules that bypass the lease (raw memory, reset).
DEVICE_FORBIDDEN = {
    "machine": ("mem8", "mem16", "mem32", "reset", "soft_reset", "bootloader",
                "deepsleep", "lightsleep", "freq", "disable_irq",
                "enable_irq", "unique_id", "WDT", "Timer", "RTC"),
}


class Finding:
    def __init__(self, line, col, rule, msg):
        self.line = line
        self.col = col
        self.rule = rule
        self.msg = msg

    def format(self, filename):
        return "%s:%d:%d: %s (rule %s)" % (filename, self.line, self.col,
                                           self.msg, self.rule)

    def __repr__(self):
        return "Finding(%d, %d, %s, %r)" % (self.line, self.col, self.rule,
                                            self.msg)


def allowed_imports(profile=None, spec=None):
    """The import allowlist for one agent: the base set, widened by the
    board profile ("verifier": {"imports": [...]}) and the agent's spec
    ("imports": [...]), plus DEVICE_IMPORTS (none today) when the spec
    lists devices."""
    out = set(BASE_IMPORTS)
    if profile:
        out.update((profile.get("verifier") or {}).get("imports", ()))
    if spec:
        out.update(spec.get("imports", ()))
        if spec.get("devices"):
            out.update(DEVICE_IMPORTS)
    return frozenset(out)


def spec_for(profile, name):
    for a in (profile or {}).get("agents", ()):
        if a.get("name") == name:
            return a
    return None


def _module_attr_is_module(mod, attr):
    """True when `mod.attr` (on this host's Python) is a module."""
    try:
        m = importlib.import_module(mod)
    except Exception:
        return False
    return isinstance(getattr(m, attr, None), types.ModuleType)


_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))


class _Checker(ast.NodeVisitor):
    def __init__(self, allow):
        self.allow = allow
        self.found = []
        self.modules = {}      # local name -> imported module name
        self.builtin_names = _BUILTIN_NAMES

    def add(self, node, rule, msg):
        self.found.append(Finding(getattr(node, "lineno", 1),
                                  getattr(node, "col_offset", 0) + 1, rule, msg))

    # ---- names ----------------------------------------------------------------
    def _name(self, node, name, store=False):
        if name.startswith("_") and name != "_":
            self.add(node, "A2", "name '%s' is not allowed" % name)
        elif name in FORBIDDEN_BUILTINS:
            self.add(node, "A4", "builtin '%s' is not allowed" % name)
        elif store and name in self.builtin_names:
            self.add(node, "A5", "rebinding builtin '%s' is not allowed" % name)

    def visit_Name(self, node):
        store = isinstance(node.ctx, (ast.Store, ast.Del))
        self._name(node, node.id, store)
        if store and node.id in self.modules:
            # rebinding a module alias is fine, but it stops being a module
            del self.modules[node.id]

    def visit_arg(self, node):
        self._name(node, node.arg, True)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self._name(node, node.name, True)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._name(node, node.name, True)
        for k in node.keywords:
            self.add(k, "A4", "class keyword '%s' is not allowed" % k.arg)
        self.generic_visit(node)

    def visit_Global(self, node):
        for n in node.names:
            self._name(node, n, True)

    visit_Nonlocal = visit_Global

    def visit_keyword(self, node):
        if node.arg is not None and node.arg.startswith("_"):
            self.add(node, "A2", "name '%s' is not allowed" % node.arg)
        self.generic_visit(node)

    # ---- imports ------------------------------------------------------------------
    def _module_ok(self, node, mod):
        top = mod.split(".")[0]
        if mod != top or top not in self.allow:
            self.add(node, "A1", "import of '%s' is not allowed" % mod)
            return False
        return True

    def visit_Import(self, node):
        for a in node.names:
            if self._module_ok(node, a.name):
                local = a.asname or a.name
                self.modules[local] = a.name
            if a.asname:
                self._name(node, a.asname, True)

    def visit_ImportFrom(self, node):
        if node.level:
            self.add(node, "A1", "relative import is not allowed")
            return
        if not self._module_ok(node, node.module or ""):
            return
        for a in node.names:
            if a.name == "*":
                self.add(node, "A1", "star import is not allowed")
                continue
            if a.name.startswith("_") or \
                    _module_attr_is_module(node.module, a.name):
                self.add(node, "A1", "import of '%s.%s' is not allowed" % (
                    node.module, a.name))
            elif a.name in DEVICE_FORBIDDEN.get(node.module, ()):
                self.add(node, "A3", "attribute '%s.%s' is not allowed" % (
                    node.module, a.name))
            self._name(node, a.asname or a.name, True)

    # ---- attributes ----------------------------------------------------------------
    def visit_Attribute(self, node):
        a = node.attr
        if a.startswith("_") or a in INTROSPECTION_ATTRS or \
                a.startswith(INTROSPECTION_PREFIXES):
            self.add(node, "A3", "attribute '%s' is not allowed" % a)
        base = node.value
        if isinstance(base, ast.Name) and base.id in self.modules:
            mod = self.modules[base.id]
            if a in DEVICE_FORBIDDEN.get(mod, ()):
                self.add(node, "A3", "attribute '%s.%s' is not allowed" % (
                    mod, a))
            elif _module_attr_is_module(mod, a):
                self.add(node, "A3", "attribute '%s.%s' (a module) is not "
                         "allowed" % (mod, a))
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.add(node, "A6", "assigning attribute '%s' is not allowed" % a)
        if a in ("format", "format_map") and isinstance(node.ctx, ast.Load):
            self._format(node, base)
        self.generic_visit(node)

    def _format(self, node, base):
        if not (isinstance(base, ast.Constant) and isinstance(base.value, str)):
            self.add(node, "A8", "'.%s' on a non-literal string is not "
                     "allowed" % node.attr)
            return
        try:
            fields = list(string.Formatter().parse(base.value))
        except ValueError:
            self.add(node, "A8", "malformed format string")
            return
        for _lit, field, spec, _conv in fields:
            for f in (field or "", spec or ""):
                if "." in f or "[" in f or ("{" in f and f is spec):
                    self.add(node, "A8", "format field '%s' is not allowed"
                             % f)

    # ---- exceptions ---------------------------------------------------------------
    def visit_ExceptHandler(self, node):
        t = node.type
        if t is None:
            self.add(node, "A7", "bare 'except:' is not allowed")
        else:
            names = t.elts if isinstance(t, ast.Tuple) else [t]
            for n in names:
                if isinstance(n, ast.Name) and n.id in UNCATCHABLE:
                    self.add(n, "A7", "catching '%s' is not allowed" % n.id)
                elif not isinstance(n, (ast.Name, ast.Attribute)):
                    self.add(n, "A7", "except clause must name exception "
                             "classes")
        if node.name:
            self._name(node, node.name, True)
        self.generic_visit(node)

    def visit_TryStar(self, node):
        self.add(node, "A7", "'except*' is not allowed")
        self.generic_visit(node)


def check(src, allow=None):
    """Findings (a list, empty when the source is accepted) for agent source
    `src` (bytes or str) against import allowlist `allow`."""
    if allow is None:
        allow = allowed_imports()
    if isinstance(src, (bytes, bytearray)):
        try:
            src = bytes(src).decode("utf-8")
        except UnicodeDecodeError as e:
            return [Finding(1, 1, "A0", "source is not UTF-8 (%s)" % e.reason)]
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        return [Finding(e.lineno or 1, e.offset or 1, "A0",
                        "syntax error: %s" % e.msg)]
    c = _Checker(allow)
    c.visit(tree)
    has_main = any(isinstance(n, ast.AsyncFunctionDef) and n.name == "main"
                   and len(n.args.args) == 1 for n in tree.body)
    if not has_main:
        c.add(tree.body[0] if tree.body else ast.Module(), "A9",
              "no top-level 'async def main(rvm)'")
    c.found.sort(key=lambda f: (f.line, f.col, f.rule))
    return c.found


def verdict(src):
    """The verdict recorded in a bundle for accepted source bytes."""
    return {"policy": POLICY, "src": hashlib.sha256(bytes(src)).hexdigest()}


class Refused(RvmToolError):
    """Verification failed; `lines` are the formatted findings (the CLI
    prints them one per line and exits 2; nothing is signed)."""

    def __init__(self, lines):
        RvmToolError.__init__(self, "\n".join(lines), 2)
        self.lines = lines


def verify(src, filename, profile=None, spec=None):
    """Check `src` (bytes) for one agent; returns its verdict dict or raises
    Refused with one line per finding."""
    found = check(src, allowed_imports(profile, spec))
    if found:
        raise Refused([f.format(filename) for f in found])
    return verdict(src)


def rules_markdown():
    """The rule table as docs/agents.md prints it."""
    out = ["| rule | refused |", "|---|---|"]
    for r, what in RULES:
        out.append("| %s | %s |" % (r, what))
    return "\n".join(out)
