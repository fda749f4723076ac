"""ports/*/manifest.py: evaluated with MicroPython's manifest functions
stubbed, they name existing kernel modules (and coherence only where asked)."""
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = sorted(glob.glob(os.path.join(ROOT, "ports", "*", "manifest.py")))


class Options:
    """makemanifest's IncludeOptions."""

    def __init__(self, **kw):
        self._kw = kw
        self._defaults = {}

    def defaults(self, **kw):
        self._defaults = kw

    def __getattr__(self, name):
        return self._kw.get(name, self._defaults.get(name))


def run_manifest(path):
    """Evaluate a manifest the way makemanifest does: cwd = the manifest's
    directory while it runs, include() kwargs as `options`."""
    frozen = []

    def include(p, **kw):
        if p.startswith("$("):
            return  # the port's own manifest
        run(os.path.abspath(p), kw)

    def module(rel, base_path=".", opt=None):
        frozen.append(os.path.abspath(os.path.join(base_path, rel)))

    def run(p, kw):
        prev = os.getcwd()
        os.chdir(os.path.dirname(p))
        try:
            with open(p) as f:
                exec(compile(f.read(), p, "exec"),
                     {"include": include, "module": module, "options": Options(**kw)})
        finally:
            os.chdir(prev)
    run(path, {})
    return frozen


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.split(os.sep)[-2])
def test_manifest_freezes_the_kernel(path):
    files = run_manifest(path)
    assert files and all(os.path.isfile(f) for f in files)
    rel = [os.path.relpath(f, ROOT) for f in files]
    for m in ("rvm_mp/kernel.py", "rvm_mp/control.py", "rvm_mp/witness.py", "rvm_mp/main.py"):
        assert m in rel
    with open(path) as f:
        want_coh = "coherence=True" in f.read()
    assert any("/coherence/" in r for r in rel) == want_coh


def test_every_port_has_a_manifest():
    ports = {p.split(os.sep)[-2] for p in MANIFESTS}
    assert {"esp32", "esp8266", "rp2", "stm32", "unix"} <= ports
