# Entry point: boot the kernel with a board profile and its agents, run
# until stopped, seal the log on the way out.
#
#   micropython -m rvm_mp.main --board seed-64k [--fs DIR] [--max-ms N]
#   python -m rvm_mp.main --board appliance --fs /var/lib/rvm
#
# On a board, main.py is two lines:  import rvm_mp.main as m; m.run()
# (the profile is the deployed board.json, the filesystem root is ".").
#
# Stops on Ctrl-C (and SIGTERM under CPython), on the console's `reboot`
# (hosted runtimes then exit with hal.EXIT_REBOOT so a supervisor restarts
# them; a board resets), or on an F4 kernel fault (exit hal.EXIT_F4).
import sys

from .compat import IS_MICROPYTHON

USAGE = "usage: rvm_mp.main [--board NAME] [--fs DIR] [--max-ms N] [--quiet]"


def find_profile(board, fs):
    """(profile, raw bytes): fs/board.json when it is that board (or no
    board was named), else boards/NAME.json near fs or the cwd."""
    import json
    from . import board as B
    cands = []
    if fs is not None:
        cands.append(fs + "/board.json")
    if board:
        for d in ((fs + "/boards") if fs else None, "boards", "/boards"):
            if d:
                cands.append("%s/%s.json" % (d, board))
    for path in cands:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        prof = B.from_dict(json.loads(raw))
        if board and prof["name"] != board:
            continue
        return prof, raw
    raise ValueError("unknown board %s" % board)


PRELOAD = ("witness", "witness_store", "kernel", "region", "runtime", "bundle",
           "control", "boot")


def preload():
    """Import the kernel modules boot needs before anything else is
    allocated, then collect. With the kernel in flash (ROMFS or frozen) the
    objects its imports make are permanent; made first, they sit together at
    the start of the heap instead of between the kernel's data, which leaves
    the data larger contiguous blocks (main.py of a ROMFS/frozen deploy
    calls this)."""
    import gc
    for name in PRELOAD:
        try:
            __import__("rvm_mp." + name)
        except ImportError:  # optional module not on this board (control)
            pass
    gc.collect()
    try:  # collect every eighth of the heap: short-lived objects do not
        gc.threshold(gc.mem_free() // 8)  # pile up between long-lived ones
    except AttributeError:
        pass


def _sigterm():
    if IS_MICROPYTHON:
        return
    try:
        import signal

        def _h(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, _h)
    except (ImportError, ValueError):
        pass  # not the main thread


def run(board=None, fs=".", platform=None, profile=None, bundles=None,
        max_ms=None, max_epochs=None, console=None, quiet=True, signal=None,
        policy=None):
    """Boot and run. Returns the Boot object (runtime in .runtime, stop
    reason in .runtime.stop_reason: 0 stopped, 1 limit, 2 F4, 3 reboot).
    `platform`/`profile`/`bundles`/`console` let a board's main.py or a test
    inject what a board would provide."""
    from .boot import Boot
    fs = (fs or ".").rstrip("/") or "."
    raw = None
    if profile is None:
        profile, raw = find_profile(board, fs)
    b = Boot(board, fs, platform, profile, profile_bytes=raw,
             bundles=bundles, console=console, signal=signal, policy=policy)
    rt = b.run()
    if not quiet:
        _report(b)
    reason = 0
    try:
        reason = rt.run(max_ms=max_ms, max_epochs=max_epochs)
    except KeyboardInterrupt:
        rt.stop(0)
        reason = 0
    finally:
        if rt.stop_reason != 2:  # F4 has sealed already
            rt.shutdown(reason)
    if reason == 3:
        from .hal import EXIT_REBOOT
        b.platform.reset(EXIT_REBOOT)
    return b


def _report(b):
    d = "".join("%02x" % x for x in b.digest)
    print("rvm-mp: board %s boot %d attest %s" % (b.board, b.boot_no, d))
    for name, r in b.started:
        print("rvm-mp: agent %s -> %s" % (name, r if isinstance(r, int)
                                          else getattr(r, "name", r)))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    board = None
    fs = "."
    max_ms = None
    quiet = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--board", "--fs", "--max-ms") and i + 1 < len(argv):
            v = argv[i + 1]
            if a == "--board":
                board = v
            elif a == "--fs":
                fs = v
            else:
                max_ms = int(v)
            i += 2
        elif a == "--quiet":
            quiet = True
            i += 1
        elif a in ("-h", "--help"):
            print(USAGE)
            return 0
        else:
            print("rvm_mp.main: unknown argument %s\n%s" % (a, USAGE))
            return 2
    _sigterm()
    try:
        b = run(board, fs, max_ms=max_ms, quiet=quiet)
    except ValueError as e:
        print("rvm_mp.main: %s" % e)
        return 2
    return 0 if b.runtime.stop_reason in (0, 1) else b.runtime.stop_reason


if __name__ == "__main__":
    sys.exit(main())
