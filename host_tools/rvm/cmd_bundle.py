"""rvm bundle AGENT.py --key-hex HEX -o FILE [--board NAME] [--unverified]"""
import json
import os

from rvm_mp import bundle as B

from . import agentcheck, boards, keys
from .errors import RvmToolError


def register(sub):
    p = sub.add_parser("bundle", help="verify and sign an agent into a bundle",
                       description="Verify AGENT.py against the agent-code "
                       "subset (docs/agents.md; one line per finding, exit 2, "
                       "nothing signed), then pack it with a manifest and the "
                       "verdict into a signed bundle (HMAC-SHA256 with the "
                       "device key) that the board checks before running it.")
    p.add_argument("agent")
    p.add_argument("--key-hex")
    p.add_argument("--key", help="key file (32 raw bytes or hex)")
    p.add_argument("-o", "--output")
    p.add_argument("--name", help="agent name (default: file name)")
    p.add_argument("--manifest", help="JSON object merged into the manifest")
    p.add_argument("--board", help="board profile: its import allowlist and "
                   "the agent's devices widen the verifier's; for a board "
                   "with an mpy arch the verified source is compiled to .mpy")
    p.add_argument("--source", action="store_true",
                   help="with --board: bundle the source, not .mpy")
    p.add_argument("--unverified", action="store_true",
                   help="skip the verifier (trusted first-party code); "
                   "recorded in the bundle and in the board's witness log")
    p.set_defaults(func=run)


def compile_mpy(src, name, prof):
    """mpy-cross of exactly these (verified) source bytes for prof's arch,
    or None when the board runs source (no arch, or CPython)."""
    arch = prof.get("mpy_march") if prof else None
    if not arch or prof.get("runtime") != "micropython":
        return None
    import shutil
    import subprocess
    import tempfile
    from .build import mpy_cross_exe
    d = tempfile.mkdtemp(prefix="rvm-mpy-")
    try:
        path = os.path.join(d, name + ".py")
        with open(path, "wb") as f:
            f.write(src)
        out = os.path.join(d, name + ".mpy")
        p = subprocess.run([mpy_cross_exe(), "-march=" + arch, "-s",
                            name + ".py", "-o", out, path],
                           capture_output=True, text=True)
        if p.returncode != 0:
            lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
            raise RvmToolError("mpy-cross %s failed: %s" % (
                name, lines[-1] if lines else "no output"))
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def make(agent_path, key, name=None, manifest=None, profile=None,
         unverified=False, mpy=True):
    """(name, bundle bytes). The source is verified (agentcheck.verify:
    raises agentcheck.Refused) unless `unverified`; .mpy is only ever
    compiled here from the verified bytes."""
    try:
        with open(agent_path, "rb") as f:
            code = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (agent_path, e.strerror))
    man = {"name": name or os.path.splitext(os.path.basename(agent_path))[0]}
    if manifest:
        man.update(manifest)
    name = man.get("name")
    if code[:4] == b"\x00asm":
        # a WebAssembly module is decoded and validated here first, with the
        # kernel's own code (rvm_mp/wasm): a bad module is never signed; the
        # validator is its verifier, and the verdict says so
        from rvm_mp.wasm.agent import validate
        _m, why = validate(code, man.get("entry", "main"))
        if why:
            raise RvmToolError("bundle %s: %s" % (os.path.basename(agent_path), why))
        verdict = B.unverified(code) if unverified else agentcheck.verdict(code)
    elif B.is_mpy(code):
        if not unverified:
            raise RvmToolError(
                "%s: .mpy cannot be verified; bundle the source (with --board "
                "it is compiled for the board) or pass --unverified"
                % agent_path)
        verdict = B.unverified(code)
    elif unverified:
        verdict = B.unverified(code)
    else:
        spec = agentcheck.spec_for(profile, name) if profile else None
        verdict = agentcheck.verify(code, os.path.basename(agent_path),
                                    profile, spec)
    if mpy and profile is not None and not B.is_mpy(code) and \
            code[:4] != b"\x00asm" and \
            isinstance(name, str):
        compiled = compile_mpy(code, name, profile)
        if compiled is not None:
            code = compiled
    try:
        return man["name"], B.pack(code, man, key, verdict=verdict)
    except ValueError as e:
        raise RvmToolError("bundle: %s" % e)


def run(args, transport=None):
    key = keys.load(args.key, args.key_hex)
    extra = None
    if args.manifest:
        try:
            extra = json.loads(args.manifest)
        except ValueError:
            raise RvmToolError("--manifest is not a JSON object")
        if not isinstance(extra, dict):
            raise RvmToolError("--manifest is not a JSON object")
    prof = boards.load(args.board) if args.board else None
    name, data = make(args.agent, key, args.name, extra, prof,
                      args.unverified, not args.source)
    out = args.output or name + ".rvmb"
    with open(out, "wb") as f:
        f.write(data)
    print("bundle %s: %d bytes -> %s (%s)" % (
        name, len(data), out, "UNVERIFIED" if args.unverified else
        "verified, policy %d" % agentcheck.POLICY))
    return 0
