# Process partitions (Appliance, "isolation": "process"): each partition's
# agent runs in its own OS process, a fresh interpreter that holds only its
# agent source, its handles and one socket to the kernel. CPython on Linux.
#
#   kernel process (all state, the key)              child process (agent)
#   +--------------------------------------+         +----------------------+
#   | Runtime.step: y = t.coro.send(r)     |         | procchild.py         |
#   |   t.coro is a ProcCoro:              |  frames | rlimits, no_new_privs|
#   |     reply r  ---------------------------------->| netns, Landlock      |
#   |     wait <= slice for the next frame <----------| rvm.<call>() -> CALL |
#   |       CALL   -> t.req (the call box) |         |                      |
#   |       OUT    -> t.out (printed)      |         |                      |
#   |       IMPORT -> IMPORT_DENIED, reply |         |                      |
#   |       DONE   -> OP_EXIT request      |         |                      |
#   |       FAULT  -> raise (agent fault)  |         |                      |
#   |       none in the slice -> SIGSTOP,  |         |                      |
#   |         hand the runtime a yield;    |         |                      |
#   |         next send(None): SIGCONT     |         |                      |
#   |   dispatch(t.req) as for any agent   |         |                      |
#   +--------------------------------------+         +----------------------+
#
# The runtime sees a coroutine-like object (a registered agent type):
# send(result) / throw(error) return the task's own call box, filled from
# the child's CALL frame by one function (to_request), and served by the
# same syscall table as in-process agents, with caller = the partition. Everything that can go wrong with a
# child (garbage, a flood, replies not taken, a closed pipe, a signal such
# as SIGSEGV or the OOM killer's SIGKILL, a slice budget overrun, no start)
# is witnessed PROC_FAULT with the partition as actor, the child is killed
# and reaped, and the runtime gets an exception: an agent fault (F1 restart,
# then the ladder), never a kernel fault.
#
# Frames and values: procchild.py (shared codec), docs/appliance.md.
import sys

if sys.implementation.name != "cpython":
    raise ImportError("procpart: CPython only")

import os  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from .. import errors  # noqa: E402
from .. import kinds  # noqa: E402
from . import procchild as PC  # noqa: E402
from ..faults import h32  # noqa: E402
# (no imports below this line run while an agent is resumed: the kernel's
# import gate is active for the partition then)

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "procchild.py")

# PROC_FAULT reasons (record a)
R_FRAME = 1      # malformed frame (magic, type, length, value encoding)
R_FLOOD = 2      # bytes beyond one request before the reply
R_STALL = 3      # the child did not take its reply
R_CLOSED = 4     # pipe closed / the child exited without DONE
R_SIGNAL = 5     # the child was killed by a signal (d = signal number)
R_BUDGET = 6     # ran past its budget without a kernel call: killed
R_START = 7      # did not come up (READY) within spawn_ms
REASONS = ("", "frame", "flood", "stall", "closed", "signal", "budget",
           "start")

_ST_START = 0    # spawned, READY not seen yet
_ST_WAIT = 1     # the child waits for our reply
_ST_RUN = 2      # the child runs (we wait for its next frame)
_ST_STOPPED = 3  # SIGSTOPped after a slice overrun
_ST_DEAD = 4

DEFAULTS = {"slice_ms": 20, "budget_ms": 2000, "as_mb": 512, "cpu_s": 60,
            "nofile": 32, "frame_max": 1 << 20, "spawn_ms": 10000,
            "stall_ms": 100}


# builtin exception classes an agent's fault is reported as (by name, from
# a fixed list: AGENT_FAULT records the class as for in-process agents);
# any other name is ProcAgentError ("other")
_BUILTIN_FAULTS = {}
for _c in (Exception, MemoryError, OSError, ValueError, TypeError, KeyError,
           IndexError, AttributeError, NameError, ImportError, RuntimeError,
           ZeroDivisionError, SystemExit, AssertionError, OverflowError,
           NotImplementedError, RecursionError):
    _BUILTIN_FAULTS[_c.__name__] = _c
del _c


class ProcAgentError(Exception):
    """An agent in a child raised a class of its own."""


def _child_fault(err):
    """What the runtime catches when a child fails: a fresh builtin
    OSError(code, "ENAME") (AGENT_FAULT: class OSError, the error code)."""
    return OSError(err.code, err.name)


def to_request(box, call):
    """THE translation: a child's CALL (op, a0, a1, a2) into the form the
    runtime serves, the task's own call box [op, a0, a1, a2, state, note].
    Values were rebuilt by the codec from bytes (None, bool, int, float,
    bytes, bytearray, str, tuple, list, dict, or an Opaque marker): the
    syscall table checks each by exact type, as for an in-process agent."""
    if type(call) is not tuple or len(call) != 4:
        return None
    box[0], box[1], box[2], box[3] = call
    return box


class Opaque:
    """A value the agent passed that could not cross the pipe (an object,
    a function): the kernel refuses it like any wrongly typed argument."""
    __slots__ = ()


_OPAQUE = Opaque()


def _kmk(tag, a, s):
    # kernel-side decoding: a child never sends errors (or proxies) as values
    if tag == PC.V_OPAQUE:
        return _OPAQUE
    raise PC.BadFrame("value tag %d from a child" % tag)


class ProcHost:
    """One per Runtime when the profile asks for process isolation.
    Profile: "isolation": "process", "process": {slice_ms, budget_ms,
    as_mb, cpu_s, nofile, frame_max, spawn_ms, stall_ms, python};
    per agent "quota": {"as_mb", "cpu_s"} override as_mb and cpu_s."""

    def __init__(self, rt):
        if not sys.platform.startswith("linux"):
            raise ValueError("isolation process needs Linux")
        self.rt = rt
        self.log = rt.log
        cfg = dict(DEFAULTS)
        cfg.update(rt.profile.get("process", {}))
        self.cfg = cfg
        self.python = cfg.get("python") or sys.executable
        # children's stderr: /dev/null, or inherited with "debug": true
        self.stderr = None if cfg.get("debug") else subprocess.DEVNULL
        from .. import importgate as G
        self.lists = (G.PURE, G.DEVICE, G.NEVER)
        self.live = {}        # partition pid -> ProcCoro with a live child
        rt.register_agent_type(ProcCoro)

    def prepare(self, t, p, man):
        """Runtime._exec for a process partition: the code is compiled here
        for syntax only (nothing of it runs in the kernel) and t.main
        becomes a factory of ProcCoro. None or an RvmError."""
        from .. import bundle as B
        if p.ctype == B.CODE_MPY:
            return errors.ENOTSUP
        try:
            src = bytes(p.code()).decode()
            compile(src, t.name, "exec")
        except MemoryError:
            return errors.ENOMEM
        except Exception:   # SyntaxError, UnicodeError, RecursionError, ...
            return errors.EINVAL
        t.main = ProcMain(self, t, src, man.get("entry", "main"))
        t.globals = None
        return None

    def os_pid(self, pid):
        c = self.live.get(pid)
        return c.proc.pid if c is not None and c.proc is not None else None

    def check(self, now):
        """Once an epoch (Runtime._epoch): a child that died while its
        partition is blocked or asleep (so nothing resumes it) is an agent
        fault now, not at some later resume."""
        rt = self.rt
        for pid in list(self.live):
            c = self.live.get(pid)
            if c is None or c.st not in (_ST_WAIT, _ST_STOPPED) or \
                    c.proc.poll() is None:
                continue
            t = rt.sched.task(pid)
            try:
                c._fail(R_CLOSED, errors.ESTATE)
            except OSError as e:
                if t is None or t.coro is not c:
                    continue
                rt.sched.unheap(t)
                t.pending = False
                rt._fault(t, e, now)

    def shutdown(self):
        for c in list(self.live.values()):
            c.close()


class ProcMain:
    """t.main of a process partition: calling it (Runtime._begin, also on
    every F1 restart and F2 rebuild) spawns a fresh child."""

    def __init__(self, host, t, src, entry):
        self.host = host
        self.t = t
        self.src = src
        self.entry = entry

    def __call__(self, rvm):
        # kernel work (the runtime called us with the agent's import gate
        # up): spawning imports nothing of the agent's and runs none of it
        gate = self.host.rt.gate
        was = gate.active
        gate.active = 0
        try:
            return ProcCoro(self.host, self.t, rvm, self.src, self.entry)
        finally:
            gate.active = was


class ProcCoro:
    """A child process that behaves like the agent's coroutine for the
    runtime: send()/throw() deliver the reply and return the next request."""

    def __init__(self, host, t, rvm, src, entry):
        self.h = host
        self.log = host.log
        self.pid = t.pid
        self.req = t.req      # the call box
        self.t = t
        self.cfg = host.cfg
        self.fmax = host.cfg["frame_max"]
        self.gate = host.rt.gate
        self.buf = bytearray()
        self.st = _ST_START
        self.ran_ms = 0       # slice time since the last kernel call
        self.conf = 0
        self.seq = 0
        self.proc = None
        self.sock = None
        self.dir = None
        q = t.spec.get("quota", {}) if t.spec else {}
        as_mb = q.get("as_mb", self.cfg["as_mb"])
        cpu_s = q.get("cpu_s", self.cfg["cpu_s"])
        self.as_mb = as_mb
        self._spawn(as_mb, cpu_s)
        restored = rvm.restored
        if restored is not None:
            restored = bytes(restored)
        moved = rvm.moved if isinstance(rvm.moved, dict) else None
        st = (t.pid, t.name, src, entry, restored, moved, host.lists)
        self._write(PC.T_START, PC.enc(st, bytearray()))

    # ---- process ----------------------------------------------------------
    def _spawn(self, as_mb, cpu_s):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.dir = tempfile.mkdtemp(prefix="rvm-p%d-" % self.pid)
        self.t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                [self.h.python, "-I", "-S", "-B", CHILD,
                 str(as_mb << 20), str(cpu_s), str(self.cfg["nofile"]),
                 str(os.getpid())] +
                (["debug"] if self.cfg.get("debug") else []),
                stdin=b.fileno(), stdout=subprocess.DEVNULL,
                stderr=self.h.stderr, env={}, cwd=self.dir,
                close_fds=True, start_new_session=True)
        except (OSError, ValueError, subprocess.SubprocessError):
            # no process for it (EAGAIN, ENOMEM, no interpreter): nothing
            # left behind, witnessed, an agent fault like a failed start
            a.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self.st = _ST_DEAD
            self.log.deny(kinds.PROC_FAULT, self.pid, self.pid,
                          errors.ENOMEM.code, 0, R_START, 0, 0)
            raise _child_fault(errors.ENOMEM)
        finally:
            b.close()
        self.proc = proc
        a.setblocking(False)
        self.sock = a
        self.fd = a.fileno()
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLIN)
        self.h.live[self.pid] = self

    def _reap(self, kill=True, grace=0.2):
        """End and reap the child; its return code (negative: the signal
        that ended it), or None when it was still running and we killed it
        (kill=False gives it `grace` seconds to exit on its own first)."""
        p = self.proc
        rc = None
        if p is not None:
            if not kill:
                try:
                    rc = p.wait(grace)
                except subprocess.TimeoutExpired:
                    rc = None
            if rc is None:
                try:
                    p.kill()
                except OSError:
                    pass
                try:
                    p.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
        if self.sock is not None:
            try:
                self.poll.unregister(self.fd)
            except (KeyError, ValueError):
                pass
            self.sock.close()
            self.sock = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self.h.live.get(self.pid) is self:
            del self.h.live[self.pid]
        self.st = _ST_DEAD
        return rc

    def _fail(self, reason, err, detail=0, refused=True):
        """End the child, witness PROC_FAULT (actor = the partition) and
        raise the agent fault into the runtime."""
        p = self.proc
        ospid = p.pid if p is not None else 0
        if reason == R_CLOSED:
            # an exit of its own (not a refusal): a signal says more
            refused = False
            rc = self._reap(kill=False)
            if rc is not None and rc < 0:
                reason, detail, err, refused = R_SIGNAL, -rc, errors.ESTATE, \
                    False
            elif rc is not None and reason == R_CLOSED:
                detail = rc & 0xFF
        else:
            self._reap()
        if refused:
            self.log.deny(kinds.PROC_FAULT, self.pid, self.pid, err.code, 0,
                          reason, ospid, detail)
        else:
            self.log.emit(kinds.PROC_FAULT, self.pid, self.pid, reason,
                          err.code, ospid, detail)
        raise _child_fault(err)

    # ---- the pipe ------------------------------------------------------------
    def _write(self, ftype, body):
        self.seq = (self.seq + 1) & 0xFFFF
        data = PC.frame(ftype, self.seq, body)
        try:                     # the usual case: all of it at once
            n = os.write(self.fd, data)
            if n == len(data):
                return
        except BlockingIOError:
            n = 0
        except OSError:          # EPIPE, ECONNRESET: the child is gone
            self._fail(R_CLOSED, errors.ESTATE)
        self._write_slow(memoryview(data)[n:])

    def _write_slow(self, data):
        stall = self.cfg["stall_ms"]
        while data:
            try:
                n = os.write(self.fd, data)
                data = data[n:]
                continue
            except BlockingIOError:
                pass
            except OSError:      # EPIPE, ECONNRESET: the child is gone
                self._fail(R_CLOSED, errors.ESTATE)
            self.poll.modify(self.fd, select.POLLOUT)
            ev = self.poll.poll(stall)
            self.poll.modify(self.fd, select.POLLIN)
            if not ev:
                self._fail(R_STALL, errors.EBUSY, len(data))

    def _frame(self, ms):
        """(type, body) of the child's next frame, or None after ms."""
        buf = self.buf
        if not buf and self.poll.poll(ms):
            # the usual case: one whole frame in one read
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if not chunk:
                if chunk is not None:
                    self._fail(R_CLOSED, errors.ESTATE)
            elif len(chunk) >= 8:
                m, ft, seq, n = PC.HDR.unpack_from(chunk, 0)
                if len(chunk) == 8 + n and m == PC.MAGIC and \
                        1 <= ft <= PC.T_OUT and n <= self.fmax:
                    return ft, chunk[8:]
                buf += chunk
            else:
                buf += chunk
        elif not buf:
            return None
        fmax = self.cfg["frame_max"]
        deadline = time.monotonic() + ms / 1000.0
        while True:
            if len(buf) >= 8:
                m, ft, seq, n = PC.HDR.unpack_from(buf, 0)
                if m != PC.MAGIC or not 1 <= ft <= PC.T_OUT:
                    self._fail(R_FRAME, errors.EINVAL, buf[0] | buf[1] << 8)
                if n > fmax:
                    self._fail(R_FRAME, errors.ETOOBIG, n)
                if len(buf) >= 8 + n:
                    if len(buf) > 8 + n:   # more than one request: a flood
                        self._fail(R_FLOOD, errors.EFULL, len(buf))
                    body = bytes(buf[8:8 + n])
                    del buf[:]
                    return ft, body
            left = int((deadline - time.monotonic()) * 1000 + 0.999)
            if left <= 0 or not self.poll.poll(left):
                return None
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._fail(R_CLOSED, errors.ESTATE)
            buf += chunk
            if len(buf) > fmax + 8 + (1 << 16):
                self._fail(R_FLOOD, errors.EFULL, len(buf))

    def _reply(self, v):
        """Results are builtin values (ints, bytes, tuples, ...); a
        returned error crosses as its code and name."""
        out = bytearray()
        if errors.is_err(v):
            out.append(PC.V_ERROR)
            out += PC._H.pack(v.code & 0xFFFF)
            PC.enc(v.name, out)
        else:
            PC.enc(v, out)
        self._write(PC.T_OK, out)

    # ---- the coroutine protocol the runtime drives ---------------------------------
    def send(self, v):
        # kernel code from here on (no agent code runs in this process):
        # the import gate the runtime raised for the partition stays down
        self.gate.active = 0
        st = self.st
        if st == _ST_WAIT:
            self._reply(v)
        elif st == _ST_STOPPED:
            self._cont()
        elif st == _ST_DEAD:
            raise StopIteration
        return self._next()

    def throw(self, err, val=None, tb=None):
        if val is not None:
            err = val
        self.gate.active = 0
        st = self.st
        if st == _ST_WAIT:
            # the runtime throws OSError(code, "ENAME"), kernel-made (CPython
            # gives some codes a subclass: PermissionError for 1, ...)
            a = err.args if isinstance(err, OSError) else ()
            code = a[0] if len(a) > 1 and type(a[0]) is int else \
                errors.EINVAL.code
            self._write(PC.T_ERR, PC.enc((code, errors.err(code).name),
                                         bytearray()))
        elif st == _ST_STOPPED:
            self._cont()   # nothing awaits an answer: the error is dropped
        elif st == _ST_DEAD:
            raise StopIteration
        return self._next()

    def close(self):
        # the runtime closes agents with the partition's gate up; this is
        # kernel work (kill and reap), no agent code runs here
        self.gate.active = 0
        if self.st != _ST_DEAD:
            self._reap()

    def _cont(self):
        try:
            os.kill(self.proc.pid, signal.SIGCONT)
        except OSError:
            pass

    def _next(self):
        """Wait at most one slice for the child's next frame; serve device
        calls and import reports in place; hand the runtime its request."""
        cfg = self.cfg
        sl = cfg["slice_ms"]
        self.st = _ST_RUN if self.st != _ST_START else _ST_START
        t0 = time.monotonic()
        while True:
            left = sl - int((time.monotonic() - t0) * 1000)
            fr = self._frame(left if left > 0 else 0)
            if fr is None:
                return self._overrun(sl)
            ft, body = fr
            try:
                r = self._serve(ft, body)
            except PC.BadFrame:
                self._fail(R_FRAME, errors.EINVAL, ft)
            if r is not None:
                return r

    def _overrun(self, sl):
        if self.st == _ST_START:
            if (time.monotonic() - self.t0) * 1000 > self.cfg["spawn_ms"]:
                self._fail(R_START, errors.ETIMEOUT, self.cfg["spawn_ms"])
            return self._yield()   # still starting: others run meanwhile
        self.ran_ms += sl
        if self.ran_ms >= self.cfg["budget_ms"]:
            self._fail(R_BUDGET, errors.EQUOTA, self.ran_ms)
        try:
            os.kill(self.proc.pid, signal.SIGSTOP)
        except OSError:
            pass
        self.st = _ST_STOPPED
        return self._yield()

    def _yield(self):
        b = self.req
        b[0] = 1          # OP_YIELD
        b[1] = b[2] = b[3] = None
        return b

    def _serve(self, ft, body):
        """One frame: the runtime's request, or None when served here."""
        n = len(body)
        if self.st == _ST_START:
            if ft != PC.T_READY:
                raise PC.BadFrame("expected READY")
            conf, _ = PC.dec(body, 0, n, _kmk)
            if type(conf) is not int:
                raise PC.BadFrame("READY")
            self.conf = conf & 0xFF
            us = int((time.monotonic() - self.t0) * 1e6)
            self.log.emit(kinds.PROC_SPAWN, 0, self.pid, self.proc.pid,
                          self.conf, us, self.as_mb)
            self.st = _ST_WAIT
            self._reply(None)
            self.st = _ST_RUN
            return None
        self.ran_ms = 0
        if ft == PC.T_CALL:
            call, i = PC.dec(body, 0, n, _kmk)
            if i != n:
                raise PC.BadFrame("trailing bytes")
            r = to_request(self.req, call)
            if r is None:
                raise PC.BadFrame("CALL")
            if r[0] == 19:       # exit: the child is done either way
                self._reap()
                return r
            self.st = _ST_WAIT
            return r
        if ft == PC.T_OUT:
            v, i = PC.dec(body, 0, n, _kmk)
            if i != n or type(v) is not bytes:
                raise PC.BadFrame("OUT")
            o = self.t.out
            if o is not None:     # bounded as an in-process agent's print
                room = 240 - len(o)
                if len(v) > room:
                    v = v[:room - 1] + b"~" if room > 0 else b""
                o.extend(v)
            self.st = _ST_WAIT
            self._reply(None)
            self.st = _ST_RUN
            return None
        if ft == PC.T_IMPORT:
            v, i = PC.dec(body, 0, n, _kmk)
            if i != n or type(v) is not tuple or len(v) != 2:
                raise PC.BadFrame("IMPORT")
            name, why = v
            if type(why) is not int or not 1 <= why <= 4:
                why = 4
            self.log.deny(kinds.IMPORT_DENIED, self.pid, self.pid,
                          errors.EIMPORT.code, 0,
                          h32(name if type(name) is str else ""), why)
            self.st = _ST_WAIT
            self._reply(None)
            self.st = _ST_RUN
            return None
        if ft == PC.T_DONE:
            v, _ = PC.dec(body, 0, n, _kmk)
            self._reap(kill=False)
            b = self.req
            b[0] = 19         # OP_EXIT
            b[1] = v if type(v) is int and 0 <= v <= 255 else 0
            b[2] = b[3] = None
            return b
        if ft == PC.T_FAULT:
            v, _ = PC.dec(body, 0, n, _kmk)
            if type(v) is not tuple or len(v) != 2:
                raise PC.BadFrame("FAULT")
            tname, code = v
            self._reap(kill=False)
            if type(code) is not int or not 0 <= code < 256:
                code = 0
            if tname == "OSError" and code:
                raise OSError(code, errors.err(code).name)
            cls = _BUILTIN_FAULTS.get(tname) if type(tname) is str else None
            raise (cls or ProcAgentError)()
        raise PC.BadFrame("frame type %d" % ft)
