"""rvm bundle AGENT.py --key-hex HEX -o FILE"""
import json
import os

from rvm_mp import bundle as B

from . import keys
from .errors import RvmToolError


def register(sub):
    p = sub.add_parser("bundle", help="sign an agent into a bundle",
                       description="Pack AGENT.py (or .mpy) with a manifest into a "
                       "signed bundle (HMAC-SHA256 with the device key) that the "
                       "board checks before running it.")
    p.add_argument("agent")
    p.add_argument("--key-hex")
    p.add_argument("--key", help="key file (32 raw bytes or hex)")
    p.add_argument("-o", "--output")
    p.add_argument("--name", help="agent name (default: file name)")
    p.add_argument("--manifest", help="JSON object merged into the manifest")
    p.set_defaults(func=run)


def make(agent_path, key, name=None, manifest=None):
    try:
        with open(agent_path, "rb") as f:
            code = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (agent_path, e.strerror))
    man = {"name": name or os.path.splitext(os.path.basename(agent_path))[0]}
    if manifest:
        man.update(manifest)
    if code[:4] == b"\x00asm":
        # a WebAssembly module is decoded and validated here first, with the
        # kernel's own code (rvm_mp/wasm): a bad module is never signed
        from rvm_mp.wasm.agent import validate
        _m, why = validate(code, man.get("entry", "main"))
        if why:
            raise RvmToolError("bundle %s: %s" % (os.path.basename(agent_path), why))
    try:
        return man["name"], B.pack(code, man, key)
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
    name, data = make(args.agent, key, args.name, extra)
    out = args.output or name + ".rvmb"
    with open(out, "wb") as f:
        f.write(data)
    print("bundle %s: %d bytes -> %s" % (name, len(data), out))
    return 0
