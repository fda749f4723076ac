"""rvm ps --port PORT [--json]"""
import json

from rvm_mp.control_text import format_text

from . import console
from .transport import open_port


def register(sub):
    p = sub.add_parser("ps", help="list partitions on a running board",
                       description="Ask the board's control console for its "
                       "partitions (pid, name, state, capabilities, leases).")
    p.add_argument("--port", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=run)


def run(args, transport=None):
    t = open_port(args.port, transport)
    try:
        parts = console.ps(t, args.timeout)
    finally:
        if transport is None:
            t.close()
    if args.json:
        print(json.dumps(parts, sort_keys=True))
    else:
        print(format_text(parts).replace("\r\n", "\n"), end="")
    return 0
