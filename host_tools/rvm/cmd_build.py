"""rvm build --board NAME [-o DIR]"""
import os
import sys

from . import build as B


def register(sub):
    p = sub.add_parser("build", help="compile the kernel for a board (mpy-cross)",
                       description="Compile rvm_mp/ with mpy-cross for the board "
                       "profile's arch into DIR/NAME/ (default dist/NAME/), with "
                       "the profile as board.json. The profile's agents in "
                       "agents/ are run through the agent-code verifier "
                       "first (one line per finding, exit 2).")
    p.add_argument("--board", required=True)
    p.add_argument("-o", "--out", default="dist")
    p.set_defaults(func=run)


def run(args, transport=None):
    log = lambda m: print("rvm build: " + m, file=sys.stderr)  # noqa: E731
    rep = B.build(args.board, args.out, log=log)
    from . import attest, boards, deploy as D
    attest.record(os.path.join(args.out, args.board))
    if boards.load(args.board).get("deploy") == "romfs":
        D.romfs_image(os.path.join(args.out, args.board), log)
    print("built %s: %d modules for %s (%d bytes) -> %s/%s%s" % (
        args.board, len(rep["files"]), rep["arch"] or "CPython (sources)",
        rep["total_bytes"], args.out, args.board,
        "; skipped %d" % len(rep["skipped"]) if rep["skipped"] else ""))
    av = rep.get("agents_verified")
    if av:
        print("verified %d agents (policy %d): %s" % (
            len(av["agents"]), av["policy"], ", ".join(av["agents"])))
    return 0
