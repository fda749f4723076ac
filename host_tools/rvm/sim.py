"""Simulated board: the MicroPython unix port on a pseudo-terminal.

    host tool (pyserial / mpremote)          supervisor (this module)          board process
    --------------------------------         ------------------------          -------------
    opens /dev/pts/N  <-- pty slave | master -->  relay loop  -- pipes -->  micropython -X heapsize=RAM
                                                 |  0x03 -> SIGINT when         simfw.py (cwd = board fs)
                                                 |  user code runs              main.py, REPL, raw REPL
                                                 `- child exit -> restart

The board process is `micropython -X heapsize=<RAM> simfw.py` with the board's
filesystem directory as cwd (files persist across resets). simfw.py runs
main.py at power on, then a friendly REPL; it speaks the raw REPL and
raw-paste protocols, so mpremote and ampy work as with a board.

A soft reset (Ctrl-D) makes the board process exit; the supervisor prints
"MPY: soft reboot" and restarts it, in raw REPL mode when the reset came from
the raw REPL (as pyexec does). A kernel reset (exit 86/87) restarts it and
runs main.py. Ctrl-C from the host becomes SIGINT to the board process while
user code runs (a board's UART raises KeyboardInterrupt the same way).

Output is passed through unchanged (no \\n -> \\r\\n cooking): the REPL's own
lines end in \\r\\n as on a board; print() output from user code ends in \\n.
When no host reads the port, output beyond OUT_CAP bytes is dropped, as a
UART drops bytes nobody receives.
"""
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty

from . import boards
from .errors import RvmToolError

SIMFW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simfw.py")
OUT_CAP = 256 * 1024
EXIT_SOFT, EXIT_SOFT_RAW, EXIT_F4, EXIT_REBOOT = 0, 80, 86, 87
ST_RUN, ST_IDLE = 0x11, 0x12


def micropython_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(exe):
        return exe
    import shutil
    found = shutil.which("micropython")
    if not found:
        raise RvmToolError("micropython (unix port) not found: run `make setup`")
    return found


def _nonblock(fd):
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)


class Sim:
    """One simulated board. start() opens the pty and boots the board
    process; serve() relays until stop(); start_thread() runs serve() in a
    background thread (tests, tools/run_demo.py)."""

    def __init__(self, board="seed-64k", fs=None, link=None, exe=None,
                 log=None):
        self.profile = boards.load(board)
        if self.profile.get("runtime") == "cpython":
            raise RvmToolError("%s runs under CPython, not on a simulated MicroPython "
                               "board: python -m rvm_mp.main --board %s --fs DIR"
                               % (board, board))
        self.board = board
        self.fs = os.path.abspath(fs or os.path.join(".rvm-sim", board))
        self.link = link
        self.exe = exe or micropython_exe()
        self.log = log or (lambda msg: None)
        self.port = None
        self.child = None
        self.running_code = False
        self.resets = 0          # board process restarts (soft + hard + crash)
        self.exit_codes = []     # exit code of every board process, in order
        self._master = self._slave = None
        self._to_child = bytearray()
        self._to_host = bytearray()
        self._stop = threading.Event()
        self._thread = None

    # ---- lifecycle ------------------------------------------------------
    def start(self):
        os.makedirs(self.fs, exist_ok=True)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        _nonblock(self._master)
        self.port = os.ttyname(self._slave)
        if self.link:
            if os.path.islink(self.link):
                os.remove(self.link)
            elif os.path.exists(self.link):
                raise RvmToolError("--link %s exists and is not a symlink" % self.link)
            os.symlink(self.port, self.link)
        self._spawn(raw=False)
        return self.port

    def _spawn(self, raw):
        cmd = [self.exe, "-X", "heapsize=" + boards.heap_arg(self.profile),
               SIMFW] + boards.simfw_args(self.profile) \
            + (["--raw"] if raw else []) + [self.board]
        self.child = subprocess.Popen(
            cmd, cwd=self.fs, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        for f in (self.child.stdin, self.child.stdout, self.child.stderr):
            _nonblock(f.fileno())
        self.running_code = False
        self.log("board process %d started%s" % (self.child.pid, " (raw REPL)" if raw else ""))

    def start_thread(self):
        if self.port is None:
            self.start()
        self._thread = threading.Thread(target=self.serve, name="rvm-sim", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._kill_child()
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self.link and os.path.islink(self.link):
            os.remove(self.link)

    def _kill_child(self):
        c = self.child
        if c is None or c.poll() is not None:
            return
        try:
            os.killpg(c.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            c.wait(2)
        except subprocess.TimeoutExpired:
            os.killpg(c.pid, signal.SIGKILL)
            c.wait(2)

    # ---- relay ----------------------------------------------------------
    def _host_bytes(self, data):
        for b in data:
            if b == 3 and self.running_code and self.child.poll() is None:
                # Ctrl-C while user code runs: interrupt it like a board's
                # UART IRQ does (the byte itself is consumed).
                try:
                    os.kill(self.child.pid, signal.SIGINT)
                except OSError:
                    pass
                continue
            self._to_child.append(b)

    def _emit(self, data):
        self._to_host.extend(data)
        over = len(self._to_host) - OUT_CAP
        if over > 0:
            del self._to_host[:over]

    def _status(self, data):
        for b in data:
            if b == ST_RUN:
                self.running_code = True
            elif b == ST_IDLE:
                self.running_code = False
            else:
                self._emit(bytes((b,)))

    def _restart(self, code):
        self.exit_codes.append(code)
        self.resets += 1
        if code in (EXIT_SOFT, EXIT_SOFT_RAW):
            self._emit(b"MPY: soft reboot\r\n")
            self._spawn(raw=(code == EXIT_SOFT_RAW))
        elif code in (EXIT_F4, EXIT_REBOOT):
            self.log("board reset (exit %d)" % code)
            self._spawn(raw=False)
        else:
            self._emit(b"\r\nrvm-sim: board process exited with code %d; resetting\r\n" % code)
            self.log("board process exited with code %d; resetting" % code)
            time.sleep(0.2)
            self._spawn(raw=False)

    def serve(self):
        while not self._stop.is_set():
            c = self.child
            rfds = [self._master, c.stdout.fileno(), c.stderr.fileno()]
            wfds = []
            if self._to_child:
                wfds.append(c.stdin.fileno())
            if self._to_host:
                wfds.append(self._master)
            try:
                r, w, _ = select.select(rfds, wfds, [], 0.05)
            except (OSError, ValueError):
                if self._stop.is_set():
                    break
                raise
            if self._master in r:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self._host_bytes(data)
            eof = False
            if c.stdout.fileno() in r:
                try:
                    data = os.read(c.stdout.fileno(), 65536)
                except BlockingIOError:
                    data = None
                if data:
                    self._emit(data)
                elif data == b"":
                    eof = True
            if c.stderr.fileno() in r:
                try:
                    data = os.read(c.stderr.fileno(), 4096)
                except BlockingIOError:
                    data = None
                if data:
                    self._status(data)
            if self._to_child and c.stdin.fileno() in w:
                try:
                    n = os.write(c.stdin.fileno(), self._to_child)
                    del self._to_child[:n]
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    self._to_child.clear()
            if self._to_host and self._master in w:
                try:
                    n = os.write(self._master, self._to_host)
                    del self._to_host[:n]
                except (BlockingIOError, OSError):
                    pass
            if eof or c.poll() is not None:
                code = c.wait()
                # drain what the process wrote last
                for f, sink in ((c.stdout, self._emit), (c.stderr, self._status)):
                    try:
                        rest = f.read()
                    except (BlockingIOError, OSError, ValueError):
                        rest = None
                    if rest:
                        sink(rest)
                for f in (c.stdin, c.stdout, c.stderr):
                    try:
                        f.close()
                    except OSError:
                        pass
                if self._stop.is_set():
                    break
                self._to_child.clear()
                self._restart(code)


def run_cli(board, fs=None, link=None, quiet=False):
    """`rvm sim`: run until Ctrl-C or SIGTERM; print the port path first."""
    def log(msg):
        if not quiet:
            print("rvm sim: " + msg, file=sys.stderr, flush=True)

    sim = Sim(board, fs=fs, link=link, log=log)
    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)
        sim._stop.set()

    old_term = signal.signal(signal.SIGTERM, on_term)
    old_int = signal.signal(signal.SIGINT, on_term)
    try:
        port = sim.start()
        print(link or port, flush=True)
        log("%s on %s (heap %s bytes, fs %s)%s"
            % (board, port, boards.heap_arg(sim.profile), sim.fs,
               ", link " + link if link else ""))
        sim.serve()
    finally:
        sim.stop()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        log("stopped")
    return 0
