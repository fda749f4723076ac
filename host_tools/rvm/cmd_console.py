"""rvm console --port PORT: interactive control console with history."""
import os
import sys

from rvm_mp.control_text import format_text

from . import console
from .transport import open_port

HISTORY = os.path.expanduser("~/.rvm_history")


def register(sub):
    p = sub.add_parser("console", help="interactive control console",
                       description="Send console commands (help, ps, caps, log, "
                       "stat, spawn, kill, suspend, resume, grant, revoke, lease, "
                       "checkpoint, seal, reboot) to the board over CRC frames; "
                       "line editing and history with readline. exit or Ctrl-D "
                       "leaves.")
    p.add_argument("--port", required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("-c", "--command", action="append",
                   help="run this command and exit (repeatable)")
    p.set_defaults(func=run)


def session(client, lines, out=print):
    """Run command lines; print replies. Returns the number of failures."""
    bad = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rep = client.request(line)
            out(format_text(rep).replace("\r\n", "\n").rstrip("\n"))
        except console.BoardError as e:
            out("error: %s" % e)
            bad += 1
        except console.NotAnswering as e:
            out("error: %s" % e)
            bad += 1
            try:
                client.wait_ready(10)
                out("(board answers again)")
            except console.NotAnswering:
                raise
    return bad


def _interactive():
    try:
        import readline
    except ImportError:
        readline = None
    if readline is not None:
        try:
            readline.read_history_file(HISTORY)
        except OSError:
            pass
    try:
        while True:
            try:
                line = input("rvm> ")
            except EOFError:
                print()
                return
            if line.strip() in ("exit", "quit"):
                return
            yield line
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY)
            except OSError:
                pass


def run(args, transport=None):
    t = open_port(args.port, transport)
    try:
        c = console.connect(t, args.timeout)
        if args.command:
            return 1 if session(c, args.command) else 0
        h = c.hello
        print("connected to %s (board %s, device %s, boot %d); help lists commands"
              % (t.name, h.get("board"), h.get("device_id", "")[:12], h.get("boot", 0)))
        session(c, _interactive())
        return 0
    finally:
        if transport is None:
            t.close()
