"""rvm pull --port PORT -o FILE [--deltas FILE] [--ckpt-dir DIR]"""
import sys

from . import console
from .transport import open_port


def register(sub):
    p = sub.add_parser("pull", help="seal and pull the witness log",
                       description="Seal the board's witness log, then pull "
                       "every persisted record into a .rvmw file (checked "
                       "record by record; resumes if the board reboots). With --deltas "
                       "and --ckpt-dir it then fetches the region delta log and "
                       "the checkpoint files over the same console, for rvm "
                       "reconstruct; the kernel keeps running.")
    p.add_argument("--port", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--deltas", metavar="FILE",
                   help="also fetch the region delta log (mem/deltas.log) to FILE")
    p.add_argument("--ckpt-dir", metavar="DIR",
                   help="also fetch the checkpoint files (mem/ckpt/*.ck) into DIR")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _progress(done, total, note):
    pct = 100.0 * done / total if total else 100.0
    sys.stderr.write("\rpull: %d/%d records (%3.0f%%)%s" % (
        done, total, pct, (" - " + note) if note else " " * 10))
    sys.stderr.flush()


def _file_progress(done, total, name):
    pct = 100.0 * done / total if total else 100.0
    sys.stderr.write("\rpull: %s %d/%d bytes (%3.0f%%)%s" % (
        name, done, total, pct, " " * 10))
    sys.stderr.flush()


def run(args, transport=None):
    t = open_port(args.port, transport)
    try:
        rep = console.pull(t, args.output, None if args.quiet else _progress,
                           timeout=args.timeout, deltas=args.deltas,
                           ckpt_dir=args.ckpt_dir,
                           file_progress=None if args.quiet else _file_progress)
    finally:
        if transport is None:
            t.close()
        if not args.quiet:
            sys.stderr.write("\n")
    print("pulled %d records (seq %d..%d, sealed at %d%s) -> %s" % (
        rep["records"], rep["first_seq"], rep["last_seq"], rep["seal_seq"],
        ", resumed after %d reset(s)" % rep["resumed"] if rep["resumed"] else "",
        rep["file"]))
    fl = rep.get("files")
    if fl and fl["deltas"] is not None:
        print("pulled the delta log (%d bytes) -> %s" % (fl["deltas"], args.deltas))
    if fl and args.ckpt_dir:
        print("pulled %d checkpoint file(s) (%d bytes) -> %s" % (
            len(fl["ckpt"]), fl["ckpt_bytes"], args.ckpt_dir))
    return 0
