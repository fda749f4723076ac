"""rvm sim --board NAME [--fs DIR] [--link PATH]"""
from . import sim


def register(sub):
    p = sub.add_parser(
        "sim", help="run a simulated board on a pseudo-terminal",
        description="Start the MicroPython unix port, heap capped to the board's "
        "RAM, on a pseudo-terminal; print the port path (or make --link a "
        "symlink to it). The --fs directory is the board's filesystem and "
        "survives resets. Stop with Ctrl-C or SIGTERM.")
    p.add_argument("--board", default="seed-64k")
    p.add_argument("--fs", help="board filesystem directory (default .rvm-sim/BOARD)")
    p.add_argument("--link", help="make this path a symlink to the pty")
    p.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    p.set_defaults(func=run)


def run(args, transport=None):
    return sim.run_cli(args.board, fs=args.fs, link=args.link, quiet=args.quiet)
