"""The `rvm` command: a thin argparse layer over plain functions.

Each command lives in host_tools/rvm/cmd_<name>.py with
`register(subparsers)` adding its parser and setting `func(args, transport)`.
`main(argv=None, transport=None)`: tests inject a transport instead of a port.
Expected failures raise RvmToolError -> one line on stderr, non-zero exit.
"""
import argparse
import importlib
import sys

from .errors import RvmToolError

# Command modules, in help order. Add yours here.
COMMANDS = [
    "verify",
    "sim",
    "ps",
    "console",
    "pull",
    "build",
    "deploy",
    "flash",
    "keys",
    "bundle",
    "audit",
    "reconstruct",
    "attest",
]


def build_parser(only=None):
    """The parser of every command, or of the command `only` (what a run
    of one command needs: the other command modules are not imported)."""
    p = argparse.ArgumentParser(
        prog="rvm", description="RVM-MP host tools: build, flash, deploy, "
        "control and audit RVM-MP boards.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        mod = importlib.import_module("host_tools.rvm.cmd_" + name)
        mod.register(sub)
    return p


def main(argv=None, transport=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args, transport)
    except RvmToolError as e:
        lines = getattr(e, "lines", None)  # verifier findings: one per line
        for line in lines or ["rvm: %s" % e]:
            print(line, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("rvm: interrupted", file=sys.stderr)
        return 130
    return rc or 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
