"""pytest plumbing for RVM-MP.

Kernel tests (tests/kernel/test_*.py) are plain functions written in the
subset CPython and MicroPython share. Each one is collected twice:
`test_x[cpython]` runs it in-process, `test_x[micropython]` runs it under the
MicroPython unix port (a subprocess running tests/kernel/mprunner.py; one
process per module, heap capped by `-X heapsize=` when the module names a
board profile with `BOARD = "name"` or a size with `HEAP = "256K"`).
A MicroPython failure shows the MicroPython traceback.
"""
import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KDIR = os.path.join(ROOT, "tests", "kernel")
for p in (ROOT, KDIR):
    if p not in sys.path:
        sys.path.insert(0, p)

RUNTIMES = ("cpython", "micropython")
_MP_CACHE = {}


def micropython_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(exe):
        return exe
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("micropython not found: run `make setup`")
    return found


def _module_setting(path, name):
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == name \
                and isinstance(node.value, ast.Constant):
            return node.value.value
    return None


def heap_for(path):
    heap = _module_setting(path, "HEAP")
    if heap:
        return str(heap)
    board = _module_setting(path, "BOARD")
    if board:
        with open(os.path.join(ROOT, "boards", board + ".json")) as f:
            prof = json.load(f)
        return str(prof.get("heap", prof["ram"]))
    return None


def _tmp_base():
    base = os.environ.get("RVM_TEST_TMP")
    if not base:
        base = tempfile.mkdtemp(prefix="rvm-tests-")
        os.environ["RVM_TEST_TMP"] = base
    return base


def run_micropython_module(path, timeout=600):
    """Run every test of a kernel module under MicroPython once; cache the
    per-test results {name: (status, traceback)}."""
    key = path
    if key in _MP_CACHE:
        return _MP_CACHE[key]
    modname = os.path.splitext(os.path.basename(path))[0]
    cmd = [micropython_cmd()]
    heap = heap_for(path)
    if heap:
        cmd += ["-X", "heapsize=" + heap]
    cmd += [os.path.join(KDIR, "mprunner.py"), ROOT, modname]
    env = dict(os.environ, RVM_TEST_TMP=_tmp_base(), RVM_REPO=ROOT)
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, rc = "timeout after %ds" % timeout, -1
    results = {}
    cur = None
    tb = None
    for line in out.splitlines():
        if line.startswith("@@RESULT "):
            _, name, status = line.split()
            results[name] = [status, ""]
            cur = name
        elif line == "@@TB":
            tb = []
        elif line == "@@ENDTB":
            if cur is not None and tb is not None:
                results[cur][1] = "\n".join(tb)
            tb = None
        elif tb is not None:
            tb.append(line)
    finished = "@@END" in out
    _MP_CACHE[key] = (results, finished, out, err, rc, cmd)
    return _MP_CACHE[key]


class KernelFailure(Exception):
    pass


class KernelItem(pytest.Item):
    def __init__(self, *, fn_name, runtime, **kw):
        super().__init__(**kw)
        self.fn_name = fn_name
        self.runtime = runtime
        self.add_marker(getattr(pytest.mark, runtime))
        self.add_marker(pytest.mark.kernel)

    def runtest(self):
        if self.runtime == "cpython":
            _tmp_base()
            os.environ.setdefault("RVM_REPO", ROOT)
            modname = os.path.splitext(os.path.basename(self.path))[0]
            mod = importlib.import_module(modname)
            try:
                getattr(mod, self.fn_name)()
            except Exception as e:
                if type(e).__name__ == "SkipTest":
                    pytest.skip(str(e))
                raise
            return
        results, finished, out, err, rc, cmd = run_micropython_module(str(self.path))
        r = results.get(self.fn_name)
        if r is None:
            raise KernelFailure(
                "MicroPython run did not report this test (exit %s%s)\n"
                "command: %s\n--- stdout tail ---\n%s\n--- stderr ---\n%s"
                % (rc, "" if finished else ", stopped early", " ".join(cmd),
                   out[-3000:], err[-3000:]))
        status, tb = r
        if status == "SKIP":
            pytest.skip(tb)
        if status != "PASS":
            raise KernelFailure("MicroPython traceback:\n" + tb)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, KernelFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "%s[%s]" % (self.fn_name, self.runtime)


class KernelModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for rt in RUNTIMES:
                    yield KernelItem.from_parent(
                        self, name="%s[%s]" % (node.name, rt),
                        fn_name=node.name, runtime=rt)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    if os.path.dirname(str(module_path)) == KDIR:
        return KernelModule.from_parent(parent, path=module_path)
    return None


def pytest_sessionstart(session):
    # the WebAssembly corpus and WAT agents (wabt -> build/wasm/), read by
    # the kernel tests on both runtimes; a failure shows in those tests
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "wasm_corpus.py")],
                   cwd=ROOT, capture_output=True)


def pytest_configure(config):
    for m in ("kernel", "cpython", "micropython", "e2e", "board"):
        config.addinivalue_line("markers", m + ": RVM-MP test category")
    config.addinivalue_line("markers", "slow: long sweeps and soaks, run by `make test-full` "
                            "(pytest --run-slow)")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (make test-full)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (make test-full)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
