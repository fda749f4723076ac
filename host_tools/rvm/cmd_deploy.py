"""rvm deploy --board NAME --port PORT [--key FILE | --key-hex HEX] [--via ampy]"""
import sys

from . import deploy as D
from . import keys


def register(sub):
    p = sub.add_parser("deploy", help="copy kernel, profile, key, agents and main.py to a board",
                       description="Build the kernel for the board, then copy it with "
                       "the board profile (board.json), the device key, signed agent "
                       "bundles and a main.py that boots the kernel; reset the board "
                       "into the kernel and wait for its control console.")
    p.add_argument("--board", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--key", help="device key file (rvm keys gen -o FILE)")
    p.add_argument("--key-hex")
    p.add_argument("--seal-key", help="Ed25519 seal key file (rvm keys gen --ed25519 "
                   "-o FILE), for profiles with witness.seal = ed25519")
    p.add_argument("--agent", action="append", default=[],
                   help="agent .py to sign and deploy (default: the profile's agents)")
    p.add_argument("--bundle", action="append", default=[], help="signed .rvmb to deploy")
    p.add_argument("--agent-source", action="store_true",
                   help="bundle agents as source (default: .mpy for the board's arch)")
    p.add_argument("--unverified", action="store_true",
                   help="skip the agent-code verifier (trusted first-party "
                   "code; recorded in the bundles and the witness log)")
    p.add_argument("--via", default="mpremote", choices=("mpremote", "ampy"))
    p.add_argument("-o", "--out", default="dist", help="build/staging directory")
    p.add_argument("--mode", choices=("fs", "romfs", "frozen"),
                   help="where the kernel's code lives: .mpy files on the filesystem, "
                   "a ROMFS image run in place, or frozen into the firmware "
                   "(default: the profile's \"deploy\", else fs)")
    p.add_argument("--romfs", dest="mode", action="store_const", const="romfs",
                   help="same as --mode romfs")
    p.add_argument("--frozen", dest="mode", action="store_const", const="frozen",
                   help="same as --mode frozen: deploy everything but the kernel")
    p.add_argument("--no-check", action="store_true",
                   help="skip the board probe (filesystem, heap, arch) before copying")
    p.add_argument("--no-start", action="store_true", help="copy only; do not reset")
    p.add_argument("--wait", type=float, default=30.0)
    p.set_defaults(func=run)


_WHERE = {"fs": "on the filesystem", "romfs": "in ROMFS", "frozen": "frozen in the firmware"}


def run(args, transport=None):
    key = keys.load(args.key, args.key_hex)
    rep = D.deploy(args.board, args.port, key, args.agent, args.bundle, args.via,
                   args.out, not args.no_start, args.wait,
                   log=lambda m: print("rvm deploy: " + m, file=sys.stderr),
                   agent_mpy=not args.agent_source, mode=args.mode,
                   check=not args.no_check, unverified=args.unverified,
                   seal_seed=keys.load(args.seal_key) if args.seal_key else None)
    print("deployed %s to %s via %s, kernel %s (%d files)%s" % (
        rep["board"], rep["port"], rep["via"], _WHERE[rep["mode"]], len(rep["files"]),
        "; kernel started" if rep["started"] else ""))
    return 0
