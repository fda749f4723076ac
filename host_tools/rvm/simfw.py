# The simulated board's "firmware": runs inside the MicroPython unix port
# (started by host_tools/rvm/sim.py with cwd = the board's filesystem) and
# supplies what the unix port lacks and a board's firmware has: run main.py at
# power on, a friendly REPL, the raw REPL and raw-paste protocol mpremote
# speaks, Ctrl-D soft reset (this process exits, the supervisor restarts it).
#
# Exit codes the supervisor understands:
#   0   soft reset from the friendly REPL  -> restart, run main.py
#   80  soft reset from the raw REPL       -> restart in raw REPL, skip main.py
#   86  kernel F4 reset (hal.EXIT_F4), 87 operator reboot (hal.EXIT_REBOOT)
#       -> hard reset: restart, run main.py
# Status bytes on stderr tell the supervisor whether user code is running
# (0x11: Ctrl-C should interrupt it with SIGINT) or the REPL waits (0x12).
import sys

_RAW = "--raw" in sys.argv
_BOARD = sys.argv[-1] if len(sys.argv) > 1 and not sys.argv[-1].startswith("--") else "sim"
_RAM = 0
for _a in sys.argv:
    if _a.startswith("--ram="):
        _RAM = int(_a[6:])
sys.path[:] = ["", ".frozen", "lib"]

_in = sys.stdin.buffer
_out = sys.stdout.buffer
_err = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else sys.stderr
_G = {"__name__": "__main__"}
EXIT_SOFT = 0
EXIT_SOFT_RAW = 80
_PASTE_WINDOW = 1024


def w(data):
    if isinstance(data, str):
        data = data.encode()
    _out.write(data)
    _out.flush()


def state(running):
    _err.write(b"\x11" if running else b"\x12")
    _err.flush()


_pushback = []


def getc():
    """One byte of input (blocking); -1 at end of input."""
    if _pushback:
        return _pushback.pop(0)
    while True:
        try:
            b = _in.read(1)  # blocks; SIGINT interrupts it (KeyboardInterrupt)
            return b[0] if b else -1
        except KeyboardInterrupt:
            return 3


def banner():
    impl = sys.implementation
    v = "%d.%d.%d" % impl.version[0:3]
    w("MicroPython v%s on %s; rvm-sim %s (unix port)\r\n" % (v, sys.platform, _BOARD))
    w('Type "help()" for more information.\r\n')


def run_code(src, name, raw=False):
    """Compile and run src in the REPL's globals. In raw mode the output is
    followed by 0x04, the error text, 0x04 (pyexec's EXEC_FLAG_PRINT_EOF).
    SystemExit ends the process (a soft reset, or a hard one for 86/87)."""
    err = None
    state(True)
    try:
        code = compile(src, name, "exec")
        exec(code, _G)
    except SystemExit as e:
        code = e.args[0] if e.args else 0
        if raw:
            w(b"\x04\x04")
        w("\r\n")
        sys.exit(code if code in (86, 87) else (EXIT_SOFT_RAW if _RAW else EXIT_SOFT))
    except BaseException as e:  # noqa: B902 - a board prints every error
        err = e
    finally:
        state(False)
    if raw:
        w(b"\x04")
    if err is not None:
        sys.print_exception(err, sys.stdout)
    if raw:
        w(b"\x04")


def run_main():
    try:
        f = open("main.py")
    except OSError:
        return
    with f:
        src = f.read()
    run_code(src, "main.py")


def raw_paste():
    """Raw-paste mode: the host sends up to a window of bytes, we ask for
    more with 0x01; 0x04 ends the code. Reply 0x04 then run it."""
    w(b"R\x01")
    w(bytes((_PASTE_WINDOW & 0xFF, _PASTE_WINDOW >> 8)))
    buf = bytearray()
    remain = _PASTE_WINDOW
    while True:
        c = getc()
        if c == 4 or c < 0:
            break
        if c == 3:
            w(b"\x04")
            return None
        buf.append(c)
        remain -= 1
        if remain == 0:
            w(b"\x01")
            remain = _PASTE_WINDOW
    w(b"\x04")
    return bytes(buf)


def raw_repl():
    """The raw REPL (Ctrl-A), byte for byte as pyexec.c: '>' prompt, code up
    to Ctrl-D, 'OK', output, 0x04, error, 0x04. Returns on Ctrl-B."""
    global _RAW
    _RAW = True
    w("raw REPL; CTRL-B to exit\r\n")
    while True:
        w(">")
        line = bytearray()
        while True:
            c = getc()
            if c == 1:
                if len(line) == 2 and line[0] == 5 and line[1] == 0x41:
                    src = raw_paste()
                    if src is not None:
                        run_code(src, "<stdin>", True)
                    line = None
                    break
                w("raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                w(">")
                continue
            if c == 2:
                w("\r\n")
                _RAW = False
                return
            if c == 3:
                line = bytearray()
                continue
            if c == 4 or c < 0:
                break
            line.append(c)
        if line is None:
            continue
        w("OK")
        if len(line) == 0:
            w("\r\n")
            sys.exit(EXIT_SOFT_RAW)
        run_code(bytes(line), "<stdin>", True)


def _incomplete(src):
    lines = src.split("\n")
    last = lines[-1].rstrip()
    if last.endswith(":") or last.endswith("\\"):
        return True
    return len(lines) > 1 and last != ""


def read_line(prompt):
    """Line input with echo and backspace; returns str, or an int for a
    control key (1 raw REPL, 2 banner, 3 cancel, 4 soft reset, 5 paste)."""
    w(prompt)
    line = bytearray()
    while True:
        c = getc()
        if c in (1, 2, 3, 5) or (c == 4 and not line) or c < 0:
            return 4 if c < 0 else c
        if c in (13, 10):
            w("\r\n")
            return line.decode()
        if c in (8, 127):
            if line:
                line = line[:-1]
                w(b"\x08 \x08")
            continue
        if c == 27:  # escape sequence (arrow keys): ignore it
            c2 = getc()
            if c2 == 0x5B:
                getc()
            continue
        if c >= 32:
            line.append(c)
            w(bytes((c,)))


def paste_mode():
    w("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    buf = bytearray()
    while True:
        c = getc()
        if c == 3:
            w("\r\n")
            return
        if c == 4 or c < 0:
            w("\r\n")
            break
        buf.append(c)
        if c == 13:
            w("\r\n=== ")
        else:
            w(bytes((c,)))
    run_code(bytes(buf).replace(b"\r", b"\n"), "<stdin>")


def friendly_repl():
    banner()
    while True:
        r = read_line(">>> ")
        if r == 1:
            w("\r\n")
            raw_repl()
            banner()
            continue
        if r == 2:
            w("\r\n")
            banner()
            continue
        if r == 3:
            w("\r\n")
            continue
        if r == 4:
            w("\r\n")
            sys.exit(EXIT_SOFT)
        if r == 5:
            paste_mode()
            continue
        src = r
        if not src.strip():
            continue
        while _incomplete(src):
            more = read_line("... ")
            if isinstance(more, int):
                src = None
                break
            src += "\n" + more
        if src is None:
            w("\r\n")
            continue
        state(True)
        try:
            try:
                code = compile(src, "<stdin>", "single")
            except SyntaxError:
                code = compile(src, "<stdin>", "exec")
            exec(code, _G)
        except SystemExit as e:
            code = e.args[0] if e.args else 0
            sys.exit(code if code in (86, 87) else EXIT_SOFT)
        except BaseException as e:  # noqa: B902
            sys.print_exception(e, sys.stdout)
        finally:
            state(False)


# ---- code in flash ------------------------------------------------------
# On a board the kernel is frozen into firmware (ports/) or run from ROMFS:
# its bytecode costs flash, not RAM, and the board's RAM is all data. The unix
# port keeps bytecode in its heap, so with `--ram=N` the simulator (1) imports
# the kernel modules deployed on the board's filesystem once at power-on, as
# frozen modules are present at power-on, then (2) pins a ballast so exactly N
# bytes of heap stay free. The kernel's data, the agents' code and data, the
# REPL and mpremote's transfers all have to fit in those N bytes, as on the
# board. The ballast comes out of the largest free block, so the free space
# left is the fragmented holes plus the rest of that block (gc.mem_free()
# equals N after power-on).
_ballast = None


def _freeze_kernel():
    import os
    try:
        names = os.listdir("rvm_mp")
    except OSError:
        return 0
    n = 0
    for name in names:
        if name.endswith(".mpy") or name.endswith(".py"):
            mod = name.rsplit(".", 1)[0]
            if mod == "__init__":
                continue
            try:
                __import__("rvm_mp." + mod)
                n += 1
            except Exception:  # noqa: B902 - main.py reports real errors
                pass
    return n


def _largest_block(limit):
    """Size of the largest bytearray the heap can hold now (binary search;
    each probe is collected before the next, or it would shrink the heap)."""
    import gc
    lo, hi = 0, limit
    while hi - lo > 64:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            b = None
            lo = mid
        except MemoryError:
            hi = mid
        gc.collect()
    return lo


def _pin_ram(ram):
    """Leave `ram` bytes free, contiguous. Importing code leaves small holes
    between code objects (on a board that code is in flash and leaves none),
    so first fill the holes with one-block fillers (the allocator is
    first-fit, so they land in the holes before the top block), then take
    the ballast from the top block."""
    global _ballast
    import gc
    gc.collect()
    free = gc.mem_free()
    if free <= ram:
        return free
    big = _largest_block(free)
    n = (free - big) // 16 + 64
    fill = [None] * n
    gc.collect()
    top = _largest_block(gc.mem_free())
    gc.collect()
    i = 0
    while i < n and gc.mem_free() > top + 64:
        fill[i] = bytearray(1)
        i += 1
    gc.collect()
    size = gc.mem_free() - ram - 64
    _ballast = (fill, bytearray(size) if size > 0 else None)
    gc.collect()
    return gc.mem_free()


def _ctrl_c_during_boot():
    """Bytes that arrived while the board was powering on wait in the
    pushback buffer; a Ctrl-C among them interrupts main.py before it starts,
    as the UART interrupt does on a board."""
    import select
    p = select.poll()
    p.register(_in, select.POLLIN)
    hit = False
    while p.poll(0):
        b = _in.read(1)
        if not b:
            break
        if b[0] == 3:
            hit = True
            del _pushback[:]
        else:
            _pushback.append(b[0])
    return hit


def power_on():
    state(False)
    if _RAM:
        _freeze_kernel()
        _pin_ram(_RAM)
    if not _RAW and _ctrl_c_during_boot():
        w("KeyboardInterrupt\r\n")
    elif not _RAW:
        try:
            run_main()
        except KeyboardInterrupt:
            w("\r\n")
    while True:
        try:
            if _RAW:
                raw_repl()
            friendly_repl()
        except KeyboardInterrupt:  # Ctrl-C landed between two statements
            w("\r\n")


power_on()
