"""rvm pull --port PORT -o FILE"""
import sys

from . import console
from .transport import open_port


def register(sub):
    p = sub.add_parser("pull", help="seal and pull the witness log",
                       description="Seal the board's witness log, then pull "
                       "every persisted record into a .rvmw file (checked "
                       "record by record; resumes if the board reboots).")
    p.add_argument("--port", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _progress(done, total, note):
    pct = 100.0 * done / total if total else 100.0
    sys.stderr.write("\rpull: %d/%d records (%3.0f%%)%s" % (
        done, total, pct, (" - " + note) if note else " " * 10))
    sys.stderr.flush()


def run(args, transport=None):
    t = open_port(args.port, transport)
    try:
        rep = console.pull(t, args.output, None if args.quiet else _progress,
                           timeout=args.timeout)
    finally:
        if transport is None:
            t.close()
        if not args.quiet:
            sys.stderr.write("\n")
    print("pulled %d records (seq %d..%d, sealed at %d%s) -> %s" % (
        rep["records"], rep["first_seq"], rep["last_seq"], rep["seal_seq"],
        ", resumed after %d reset(s)" % rep["resumed"] if rep["resumed"] else "",
        rep["file"]))
    return 0
