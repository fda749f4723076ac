"""rvm deploy: put the kernel, the board profile, the device key, the agent
bundles and a main.py that boots the kernel onto a board's filesystem.

    dist/NAME/                       board filesystem
      rvm_mp/*.mpy      ---------->  rvm_mp/          (old rvm_mp/ removed first)
      board.json        ---------->  board.json
      rvm_key.bin       ---------->  rvm_key.bin      (the device key, 32 bytes)
      agents/*.rvmb     ---------->  agents/          (signed with that key)
      main.py           ---------->  main.py          (boots the kernel)

The transport is mpremote (`--via mpremote`, default) or adafruit-ampy
(`--via ampy`), both run as the user would run them. Agents come from
--agent FILE.py (verified by the agent-code verifier, agentcheck.py, then
compiled from the verified source by mpy-cross for the board's arch unless
--agent-source, then signed here with the device key and the verdict;
--unverified skips the verifier and is recorded), --bundle FILE.rvmb,
or by default every agent the board profile lists that exists as
agents/NAME.py in this repository. After copying, deploy resets the board into main.py
(Ctrl-C, Ctrl-B, Ctrl-D: a soft reset from the friendly REPL, the same on a
board and on `rvm sim`) and waits for the control console's banner.

The witness log, boot counter and device id on the board are left alone: a
redeploy continues the board's chain.
"""
import os
import shutil
import subprocess
import sys
import time

from rvm_mp import bundle as B

from . import boards, build as BL, keys as KY
from .errors import RvmToolError

AGENTS_DIR = os.path.join(boards.ROOT, "agents")
BANNER = b"RVM-MP control console"

MAIN_PY = """\
# main.py written by `rvm deploy` for board %(board)s: boots the RVM-MP
# kernel from this filesystem (board.json, rvm_key.bin, agents/, witness/).
# Ctrl-C at the console stops it and gives the MicroPython REPL.
import rvm_mp.main as m
m.run()
"""

_CLEAN = """\
import os
def _rm(p):
    try:
        st = os.stat(p)[0]
    except OSError:
        return
    if st & 0x4000:
        for n in os.listdir(p):
            _rm(p + '/' + n)
        os.rmdir(p)
    else:
        os.remove(p)
for _p in ('rvm_mp', 'agents'):
    _rm(_p)
try:
    os.mkdir('agents')
except OSError:
    pass
"""


def stage(board, key, agents=(), bundles=(), out_root="dist", log=None,
          agent_mpy=True, unverified=False, seal_seed=None):
    """Build and stage everything for `board`; returns the staging dir.
    Every agent is verified first (agentcheck.Refused: nothing staged).
    `seal_seed`: the Ed25519 seal key (rvm keys gen --ed25519) to provision;
    without it a board whose profile signs seals makes its own at first boot."""
    from .cmd_bundle import make
    paths = list(agents)
    prof = boards.load(board)
    if not agents and not bundles:
        for spec in prof.get("agents", ()):
            p = os.path.join(AGENTS_DIR, spec.get("name", "") + ".py")
            if os.path.exists(p):
                paths.append(p)
    for p in paths:
        if not os.path.isfile(p):
            raise RvmToolError("cannot read agent %s" % p)
    signed = [make(p, key, profile=prof, unverified=unverified, mpy=agent_mpy)
              for p in paths]
    BL.build(board, out_root, log=log, verify_agents=False)
    d = os.path.join(out_root, board)
    KY.write(os.path.join(d, "rvm_key.bin"), key)
    sp = os.path.join(d, "rvm_ed25519.key")
    if seal_seed is not None:
        KY.write(sp, seal_seed)
    elif os.path.exists(sp):
        os.remove(sp)
    with open(os.path.join(d, "main.py"), "w") as f:
        f.write(MAIN_PY % {"board": board})
    ad = os.path.join(d, "agents")
    os.makedirs(ad, exist_ok=True)
    for name, data in signed:
        with open(os.path.join(ad, name + ".rvmb"), "wb") as f:
            f.write(data)
    for p in bundles:
        if not os.path.exists(p):
            raise RvmToolError("bundle %s not found" % p)
        data = open(p, "rb").read()
        if B.errors.is_err(B.check(data, key)):
            raise RvmToolError("bundle %s is not signed with this device key" % p)
        e = B.check_verdict(B.parse(data), prof.get("verifier"))
        if e is not None:
            raise RvmToolError("bundle %s: the board would refuse its verdict "
                               "(%s)" % (p, e.name))
        shutil.copyfile(p, os.path.join(ad, os.path.basename(p)))
    return d


def _run(cmd, what, cwd=None, timeout=300):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RvmToolError("%s timed out after %d s" % (what, timeout))
    if p.returncode != 0:
        lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
        raise RvmToolError("%s failed (exit %d): %s" % (
            what, p.returncode, lines[-1] if lines else "no output"))
    return p.stdout


def _files(d):
    out = []
    for dirpath, dirnames, files in os.walk(d):
        dirnames.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, f), d)
            if rel in ("BUILD.json",):
                continue
            out.append(rel)
    return out


def copy_mpremote(stage_dir, port, log=None):
    mp = [sys.executable, "-m", "mpremote", "connect", port]
    cmd = mp + ["exec", _CLEAN]
    dirs = sorted(set(os.path.dirname(f) for f in _files(stage_dir) if os.path.dirname(f)))
    for dd in dirs:
        if dd != "agents":
            cmd += ["+", "fs", "mkdir", ":" + dd]
    for f in _files(stage_dir):
        cmd += ["+", "fs", "cp", f, ":" + f]
    if log:
        log("mpremote: %d files to %s" % (len(_files(stage_dir)), port))
    _run(cmd, "mpremote", cwd=stage_dir)


def copy_ampy(stage_dir, port, log=None):
    import tempfile
    amp = [sys.executable, "-m", "ampy.cli", "--port", port]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_CLEAN)
        clean = f.name
    try:
        _run(amp + ["run", clean], "ampy run")
    finally:
        os.remove(clean)
    files = _files(stage_dir)
    for dd in sorted(set(os.path.dirname(f) for f in files if os.path.dirname(f))):
        if dd != "agents":
            _run(amp + ["mkdir", "--exists-okay", dd], "ampy mkdir")
    if log:
        log("ampy: %d files to %s" % (len(files), port))
    for f in files:
        _run(amp + ["put", os.path.join(stage_dir, f), f], "ampy put " + f)


def reset_into_main(port, wait_s=30.0, transport=None):
    """Ctrl-C, Ctrl-B, Ctrl-D: soft reset from the friendly REPL, which runs
    main.py; wait for the control console banner. Returns the output seen."""
    from .transport import open_port
    t = open_port(port, transport)
    try:
        t.write(b"\r\x03\x03")
        time.sleep(0.2)
        t.write(b"\r\x02")
        time.sleep(0.2)
        t.reset_input()
        t.write(b"\x04")
        seen = bytearray()
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            seen += t.read(0.1)
            if BANNER in seen:
                return bytes(seen)
            if b"Traceback" in seen and seen.rstrip().endswith(b">>>"):
                # main.py failed and the board is back at the REPL
                lines = [l.strip() for l in bytes(seen).decode("utf-8", "replace").splitlines()]
                err = [l for l in lines if "Error" in l and not l.startswith("File")]
                where = [l for l in lines if l.startswith("File") and "rvm_mp" in l]
                raise RvmToolError("the kernel did not start on %s: %s%s" % (
                    port, err[-1] if err else "main.py failed",
                    (" (" + where[-1] + ")") if where else ""))
        tail = bytes(seen[-300:]).decode("utf-8", "replace").strip().splitlines()
        raise RvmToolError("the kernel did not start on %s within %.0f s%s" % (
            port, wait_s, (": last output: " + tail[-1]) if tail else " (no output)"))
    finally:
        if transport is None:
            t.close()


def deploy(board, port, key, agents=(), bundles=(), via="mpremote",
           out_root="dist", start=True, wait_s=30.0, log=None, agent_mpy=True,
           unverified=False, seal_seed=None):
    if via not in ("mpremote", "ampy"):
        raise RvmToolError("--via must be mpremote or ampy")
    if not os.path.exists(port):
        raise RvmToolError("port %s does not exist (is the board or `rvm sim` running?)" % port)
    d = stage(board, key, agents, bundles, out_root, log, agent_mpy,
              unverified, seal_seed)
    (copy_mpremote if via == "mpremote" else copy_ampy)(d, port, log)
    out = None
    if start:
        out = reset_into_main(port, wait_s)
    return {"board": board, "port": port, "files": _files(d), "via": via,
            "started": out is not None}
