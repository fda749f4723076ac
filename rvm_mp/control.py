# Control partition and console protocol (DC-15 of ADR-132).
#
# The control partition is the first partition at boot: the operator's
# interface to the kernel over the serial line. It holds elevated
# capabilities (the spawn right, a root capability on every partition it
# spawns or adopts, every device) but it is still a partition: every command
# is a Kernel call with caller = the control partition's pid, so the proof
# gate checks and witnesses it like any other request. Kernel-level actions
# with no Kernel call of their own (seal, reboot, log pull, checkpoint) are
# checked with k.gate.check() on the control partition's capabilities first.
#
#   serial line bytes --> frame.Decoder --+-- text --> line editor --> command --> text reply
#                                         `-- frame --> command ----------------> JSON reply frame
#
# Both modes run the same command table; one witness record per command
# (OP_COMMAND, or OP_DENIED when the kernel refused it; OP_BAD_FRAME for a
# frame that failed its CRC/length checks; OP_PULL per log window sent).
# Log pulls stream from the persisted segments a few records at a time
# (WitnessLog.iter_range -> WitnessStore.iter_range), so a pull never holds
# more than a frame's worth of log in RAM.
# The protocol is documented in docs/console-protocol.md.
import json
import struct

from .compat import const, ticks_ms, ticks_diff
from . import errors
from . import frame as F
from . import kinds

PROTO = const(1)
_LINE_MAX = const(128)
_FRAME_TIMEOUT_MS = const(2000)
_READ_CHUNK = const(64)
_RECS_PER_FRAME = const(4)
_PULL_MAX = const(256)       # records per logread request

# gate operation codes for console actions that have no Kernel call of
# their own (kernel-api.md: ops 32..63 are free for other layers)
OP_CHECKPOINT = const(32)
OP_SEAL = const(33)
OP_REBOOT = const(34)
OP_PULL = const(35)
OP_INSPECT = const(36)

# rights and object types (captable.py)
_R_READ = const(1)
_R_WRITE = const(2)
_R_GRANT = const(4)
_R_REVOKE = const(8)
_R_ALL = const(127)
_OT_PARTITION = const(1)
_OT_DEVICE = const(3)

# command codes: OP_COMMAND / OP_DENIED field a
CMDS = ("", "help", "ps", "caps", "log", "stat", "spawn", "kill", "suspend",
        "resume", "grant", "revoke", "lease", "checkpoint", "seal", "reboot",
        "hello", "loginfo", "logread", "files", "fileread", "out", "keyrotate",
        "ack")
# frame error number (frame.FE_*) -> the kernel error witnessed in b
_FE_ERR = (None, errors.ECORRUPT, errors.EINVAL, errors.ETOOBIG,
           errors.EINVAL, errors.ETIMEOUT)
STATE_NAMES = ("created", "running", "suspended", "hibernated", "recovering",
               "terminated")


def h32(data):
    """32-bit digest of a command (field d of OP_COMMAND): CRC-32."""
    return F.crc32(data)


def create_control_partition(k):
    """Create the control partition (call it first at boot, before any
    agent partition) and mint its elevated capabilities: the spawn right
    (OT_PARTITION 0) and every device of the profile. Returns its pid."""
    pid = k.part_create(0, name="control")
    if errors.is_err(pid):
        return pid
    k.part_start(0, pid)
    k.cap_mint(pid, _OT_PARTITION, 0, _R_ALL)
    devs = k.profile.get("devices", {}) if hasattr(k, "profile") else {}
    for name in sorted(devs):
        did = k.device_id(name)
        if not errors.is_err(did):
            k.cap_mint(pid, _OT_DEVICE, did, _R_ALL)
    return pid



def _pieces(obj):
    """The JSON text of a reply in small pieces: a dict's list values an
    item at a time (ps, caps, log rows), everything else whole."""
    if type(obj) is not dict:
        yield json.dumps(obj)
        return
    sep = "{"
    for k in obj:
        yield sep + json.dumps(k) + ": "
        sep = ", "
        v = obj[k]
        if type(v) is list:
            s2 = "["
            for x in v:
                yield s2 + json.dumps(x)
                s2 = ", "
            yield "[]" if s2 == "[" else "]"
        else:
            yield json.dumps(v)
    yield "{}" if sep == "{" else "}"

class InputWait:
    """The console partition's one kernel call, wait_input(200 ms), as an
    awaitable over its call box: the console is trusted kernel code, so it
    needs no per-agent API (api.make), only this (runtime.adopt(api=))."""

    def __init__(self, box):
        self.b = box

    def __iter__(self):
        return self

    __await__ = __iter__

    def __next__(self):
        return self.send(None)

    def send(self, v):
        b = self.b
        if b[4] == 0:
            b[0] = 15        # syscalls.OP_WAIT_INPUT
            b[1] = 200
            b[2] = None
            b[3] = None
            b[4] = 1
            return b
        b[4] = 0
        raise StopIteration

    def throw(self, typ, val=None, tb=None):
        self.b[4] = 0
        raise typ if val is None else val

    def close(self):
        self.b[4] = 0


class Control:
    """The control console. `poll()` reads what the serial line has and
    answers; the kernel loop calls it when platform.wait_io() reports input
    (and now and then, so a half-received frame times out).

    runtime (optional): the agent runtime; used by `spawn` (runtime.spawn(
    name, caller, handle) -> pid or error), `ps` (runtime.task_info(pid) ->
    dict) and `checkpoint` (runtime.checkpoint(pid) -> seq or error)."""

    def __init__(self, kernel, platform, pid=None, runtime=None, board="",
                 banner=True):
        self.k = kernel
        self.log = kernel.log
        self.pf = platform
        self.runtime = runtime
        self.board = board
        self.pid = create_control_partition(kernel) if pid is None else pid
        self.dec = F.Decoder()
        self.line = bytearray()
        self._overlong = False
        self._frame_t = 0
        self._cur_seq = 0      # seq of the frame being answered (0: typed)
        self.commands = 0
        self.bad_frames = 0
        self.booted_ms = ticks_ms()
        self.reboot_requested = False
        if banner:
            self._w(b"\r\nRVM-MP control console (partition %d) on %s; type help\r\nrvm> "
                    % (self.pid, board.encode()))

    # ---- I/O -------------------------------------------------------------
    def _w(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.pf.console_write(data)

    def _send(self, ftype, seq, payload):
        self._w(F.encode(ftype, seq, payload))

    def poll(self, budget=512):
        """Process up to `budget` bytes of console input. Returns bytes
        consumed."""
        n = 0
        while n < budget:
            data = self.pf.console_read(_READ_CHUNK)
            if not data:
                break
            for b in data:
                self._byte(b)
            n += len(data)
        if self.dec.in_frame and n == 0 and \
                ticks_diff(ticks_ms(), self._frame_t) > _FRAME_TIMEOUT_MS:
            self._bad(self.dec.abort())
        return n

    def _byte(self, b):
        dec = self.dec
        was_in = dec.in_frame
        r = dec.feed(b)
        if r == F.R_NONE:
            if dec.in_frame and not was_in:
                self._frame_t = ticks_ms()
            return
        if r == F.R_TEXT:
            self._text(b)
            return
        if r == F.R_FRAME:
            if dec.ftype == F.T_REQ:
                self._cur_seq = dec.seq
                try:
                    line = dec.payload.decode()
                except UnicodeError:
                    self._error(dec.seq, errors.EINVAL, "command is not utf-8")
                    return
                self.execute(line, dec.seq, True)
            else:
                self._error(dec.seq, errors.EINVAL, "unexpected frame type")
            return
        self._bad(r)
        if dec.in_frame:  # a new SOF cut the old frame; this one goes on
            self._frame_t = ticks_ms()

    def _bad(self, r):
        if r >= 0:
            return
        code = -r
        self.bad_frames += 1
        seq = self.dec.seq
        self.log.deny(kinds.OP_BAD_FRAME, self.pid, 0, _FE_ERR[code].code, 0,
                      self.dec.length, seq & 0xFFFF if seq >= 0 else 0xFFFF,
                      code)
        self._send(F.T_ERR, seq if seq >= 0 else 0xFFFF,
                   json.dumps({"err": F.FE_NAMES[code], "code": code,
                               "msg": "bad frame"}).encode())

    def _text(self, b):
        if b == 13 or b == 10:
            if b == 10 and not self.line and not self._overlong:
                return  # \r\n: the \n of a line already run
            self._w(b"\r\n")
            if self._overlong:
                self._overlong = False
                self.line = bytearray()
                self._w(b"error: line longer than %d bytes\r\nrvm> " % _LINE_MAX)
                return
            line = bytes(self.line)
            self.line = bytearray()
            try:
                text = line.decode().strip()
            except UnicodeError:
                text = None
            if text is None:
                self._w(b"error: not utf-8\r\n")
            elif text:
                self._cur_seq = 0
                self.execute(text, 0, False)
            self._w(b"rvm> ")
            return
        if b == 8 or b == 127:
            if self.line:
                self.line = self.line[:-1]
                self._w(b"\x08 \x08")
            return
        if b < 32 or b > 126:
            return  # control keys and non-ASCII: not part of a command line
        if len(self.line) >= _LINE_MAX:
            self._overlong = True
            return
        self.line.append(b)
        self._w(bytes((b,)))

    # ---- replies ---------------------------------------------------------
    def _reply(self, framed, seq, obj):
        if framed:
            # a long reply goes out as MORE frames and a final ANS frame,
            # encoded a list item at a time: the whole JSON text never
            # needs one block of a small board's fragmented heap
            mx = F.MAX_PAYLOAD
            buf = bytearray()
            for p in _pieces(obj):
                buf += p.encode()
                while len(buf) > mx:
                    self._send(F.T_MORE, seq, bytes(buf[:mx]))
                    buf = buf[mx:]
            self._send(F.T_ANS, seq, bytes(buf))
        else:
            # human text: the formatter is loaded on first use, so a board
            # driven only by tools never holds it
            from .control_text import format_text
            self._w(format_text(obj))

    def _error(self, seq, err, msg, framed=True):
        if framed:
            self._send(F.T_ERR, seq, json.dumps(
                {"err": err.name, "code": err.code, "msg": msg}).encode())
        else:
            self._w("error: %s (%s)\r\n" % (msg, err.name))

    # ---- commands ----------------------------------------------------------
    def execute(self, line, seq=0, framed=False):
        """Run one command line; reply on the console. Returns the result
        object or an RvmError."""
        parts = line.split()
        name = parts[0].lower() if parts else ""
        args = parts[1:]
        try:
            code = CMDS.index(name)
        except ValueError:
            code = 0
        dig = h32(line.encode())
        if code == 0:
            self.log.deny(kinds.OP_DENIED, self.pid, 0, errors.EINVAL.code, 0,
                          0, seq, dig)
            self._error(seq, errors.EINVAL, "unknown command %r (try help)" % name[:16], framed)
            return errors.EINVAL
        self.commands += 1
        target = _num(args[0]) if args else 0
        arg = _num(args[1]) if len(args) > 1 else 0
        if code == 18:  # logread: witnessed as OP_PULL by _logread
            return self._logread(args, seq, framed)
        if code == 20:  # fileread: control_files witnesses it (OP_PULL)
            if not framed:
                self.log.deny(kinds.OP_DENIED, self.pid, 0, errors.EINVAL.code,
                              0, 20, seq, dig)
                self._error(seq, errors.EINVAL, "fileread is framed-only (use rvm pull)", False)
                return errors.EINVAL
            try:
                from .control_files import fileread
                return fileread(self, args, seq, dig)
            except MemoryError:  # short of RAM: refuse, keep serving
                self.log.deny(kinds.OP_DENIED, self.pid, 0, errors.ENOMEM.code,
                              0, 20, seq, dig)
                self._error(seq, errors.ENOMEM, "fileread refused", True)
                return errors.ENOMEM
        fn = getattr(self, "c_" + name)
        try:
            res = fn(args)
        except (ValueError, IndexError, TypeError, KeyError):
            res = errors.EINVAL
        except MemoryError:  # the board is short of RAM: refuse, keep serving
            res = errors.ENOMEM
        if errors.is_err(res):
            self.log.deny(kinds.OP_DENIED, self.pid, target, res.code, 0,
                          code, seq, dig)
            self._error(seq, res, "%s refused" % name, framed)
            return res
        self.log.emit(kinds.OP_COMMAND, self.pid, target, code, arg, seq, dig)
        try:
            self._reply(framed, seq, res)
        except MemoryError:
            res = None
            self._error(seq, errors.ENOMEM, "reply too large for free RAM", framed)
        if self.reboot_requested and self.runtime is None:
            # with a runtime, its loop sees reboot_requested, stops, shuts
            # down (SHUTDOWN, seal, flush) and resets; alone, we do it here
            self._do_reboot()
        return res

    def _cap(self, otype, oid):
        """The control partition's handle with the most rights on (otype,
        oid), or 0 (the gate then refuses: EBADHANDLE, witnessed)."""
        best = 0
        best_r = -1
        for h, ot, o, rights, depth in self.k.cap_list(self.pid):
            if ot == otype and o == oid and rights > best_r:
                best, best_r = h, rights
        return best

    def _gate(self, otype, oid, rights, op):
        r = self.k.gate.check(self.pid, self._cap(otype, oid), otype, oid,
                              rights, op)
        return r if errors.is_err(r) else 0

    @staticmethod
    def _int(s):
        """An operator's number: ASCII digits only (int() would take other
        scripts' digits, and a lying one must not reach the kernel)."""
        for c in s:
            if ord(c) > 127:
                raise ValueError
        return int(s, 0)

    def c_help(self, args):
        from .control_text import HELP
        return {"commands": list(HELP)}

    def c_hello(self, args):
        return {"proto": PROTO, "board": self.board, "pid": self.pid,
                "device_id": _hex(self.log.device_id), "boot": self.log.boot,
                "next": self.log.next_seq}

    def c_ps(self, args):
        k = self.k
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_INSPECT)
        if r:
            return r
        out = []
        for pid, st, name in k.part_list():
            caps = k.cap_list(pid)
            leases = k.leases_of(pid)
            row = {"pid": pid, "name": name,
                   "state": STATE_NAMES[st] if 0 <= st < len(STATE_NAMES) else str(st),
                   "caps": len(caps) if isinstance(caps, list) else 0,
                   "leases": [l[0] for l in leases] if isinstance(leases, list) else []}
            if self.runtime is not None and hasattr(self.runtime, "task_info"):
                info = self.runtime.task_info(pid)
                if info:
                    row.update(info)
            out.append(row)
        return {"partitions": out}

    def c_caps(self, args):
        pid = self._int(args[0]) if args else self.pid
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_INSPECT)
        if r:
            return r
        caps = self.k.cap_list(pid)
        if errors.is_err(caps):
            return caps
        return {"pid": pid, "caps": [{"handle": h, "otype": ot, "oid": o,
                                      "rights": ri, "depth": d}
                                     for h, ot, o, ri, d in caps]}

    def c_log(self, args):
        n = self._int(args[0]) if args else 10
        n = max(1, min(n, 32))
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_INSPECT)
        if r:
            return r
        log = self.log
        hi = log.next_seq
        lo = max(0, hi - n)
        names = kinds.names()
        recs = []
        for rec in log.iter_range(lo, hi):
            f = struct.unpack_from("<IIHBBHHIIII", rec, 0)
            recs.append({"seq": f[0], "t": f[1], "boot": f[2],
                         "kind": names.get(f[3], "KIND_%02X" % f[3]),
                         "flags": f[4], "actor": f[5], "target": f[6],
                         "a": f[7], "b": f[8], "c": f[9], "d": f[10]})
        return {"records": recs}

    def c_stat(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_INSPECT)
        if r:
            return r
        log = self.log
        try:
            import gc
            free, used = gc.mem_free(), gc.mem_alloc()
        except (ImportError, AttributeError):
            free = used = 0
        out = {"board": self.board, "boot": log.boot, "next_seq": log.next_seq,
               "last_seal": log.last_seal_seq, "degraded": bool(log.degraded),
               "partitions": len(self.k.part_list()),
               "uptime_ms": ticks_diff(ticks_ms(), self.booted_ms),
               "mem_free": free, "mem_alloc": used,
               "commands": self.commands, "bad_frames": self.bad_frames}
        if log.store is not None:
            out["stored_low"] = log.store.low()
        from .impls import which   # natmod / viper / native / portable per hot path
        out["impls"] = which()
        if args and args[0] == "heap":  # `stat heap`: after a collection
            from .diag import heap_figures
            out["heap_free"], out["max_block"] = heap_figures()
        return out

    def c_spawn(self, args):
        name = args[0]
        h = self._cap(_OT_PARTITION, 0)
        rt = self.runtime
        if rt is not None and hasattr(rt, "spawn"):
            pid = rt.spawn(name, self.pid, h)
        else:
            pid = self.k.part_create(self.pid, h, name=name)
        if errors.is_err(pid):
            return pid
        return {"pid": pid, "name": name}

    def _pid_call(self, args, fn):
        pid = self._int(args[0])
        r = fn(self.pid, pid, self._cap(_OT_PARTITION, pid))
        if errors.is_err(r):
            return r
        st = self.k.part_state(pid)
        return {"pid": pid, "state": STATE_NAMES[st] if not errors.is_err(st) and
                0 <= st < len(STATE_NAMES) else str(st)}

    def c_kill(self, args):
        k = self.k
        if self._int(args[0]) == self.pid:
            return errors.ERIGHTS   # the console does not end itself
        return self._pid_call(args, lambda c, p, h: k.part_terminate(c, p, h))

    def c_suspend(self, args):
        if self._int(args[0]) == self.pid:
            return errors.ERIGHTS
        return self._pid_call(args, self.k.part_suspend)

    def c_out(self, args):
        """What partition PID's agent printed (its log channel, escaped:
        agent text never reaches the console line raw)."""
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_INSPECT)
        if r:
            return r
        rt = self.runtime
        logs = rt.outlog if rt is not None else {}
        pids = [self._int(args[0])] if args else sorted(logs)
        out = []
        for pid in pids:
            txt = logs.get(pid, b"")
            lines = []
            for ln in txt.split(b"\n"):
                if ln:
                    lines.append(_escape(ln))
            out.append({"pid": pid, "lines": lines})
        return {"out": out}

    def c_resume(self, args):
        return self._pid_call(args, self.k.part_resume)

    def c_grant(self, args):
        pid = self._int(args[0])
        h = self._int(args[1])
        rights = self._int(args[2]) if len(args) > 2 else _R_READ
        ttl = self._int(args[3]) if len(args) > 3 else 0
        nh = self.k.cap_grant(self.pid, h, pid, rights, ttl)
        if errors.is_err(nh):
            return nh
        return {"pid": pid, "handle": nh, "rights": rights}

    def c_revoke(self, args):
        n = self.k.cap_revoke(self.pid, self._int(args[0]))
        if errors.is_err(n):
            return n
        return {"revoked": n}

    def c_lease(self, args):
        """lease DEV MS [NONCE MACHEX] | lease revoke DEV. The optional
        nonce and HMAC are the P3 proof a profile with lease_p3 demands
        (kernel.lease_message, keyed with the device key, made on the host)."""
        k = self.k
        if args[0] == "revoke":
            name = args[1]
            did = k.device_id(name)
            if errors.is_err(did):
                return did
            r = k.lease_revoke(self.pid, name, self._cap(_OT_DEVICE, did))
            return r if errors.is_err(r) else {"device": name, "revoked": True}
        name = args[0]
        ms = self._int(args[1]) if len(args) > 1 else 1000
        did = k.device_id(name)
        if errors.is_err(did):
            return did
        nonce = -1
        proofs = None
        if len(args) > 3:
            from .proofgate import P3_HMAC
            nonce = self._int(args[2])
            proofs = [(P3_HMAC, bytes.fromhex(args[3]))]
        px = k.lease(self.pid, self._cap(_OT_DEVICE, did), name, ms, nonce, proofs)
        if errors.is_err(px):
            return px
        return {"device": name, "ms": ms, "holder": self.pid}

    def c_checkpoint(self, args):
        pid = self._int(args[0])
        r = self._gate(_OT_PARTITION, pid, _R_WRITE, OP_CHECKPOINT)
        if r:
            return r
        rt = self.runtime
        if rt is not None and hasattr(rt, "checkpoint"):
            seq = rt.checkpoint(pid)
        elif getattr(self.k, "mem", None) is not None:
            seq = self.k.mem.checkpoint(pid)
        else:
            return errors.ENOENT
        if errors.is_err(seq):
            return seq
        return {"pid": pid, "checkpoint_seq": seq}

    def c_seal(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_WRITE, OP_SEAL)
        if r:
            return r
        s = self.log.seal()
        if s < 0:
            return errors.ENOENT  # no device key: nothing can be sealed
        self.log.service()
        # the last record the seal covers (a signed seal is 4 records)
        return {"seal_seq": self.log.last_seal_seq, "next": self.log.next_seq}

    def c_keyrotate(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_WRITE, OP_SEAL)
        if r:
            return r
        from .eseal import console_rotate
        return console_rotate(self)

    def c_ack(self, args):
        """ack SEQ: the host stored records below SEQ (rvm pull); flash
        retention drops those first. Witnessed as OP_COMMAND (code 23)."""
        r = self._gate(_OT_PARTITION, 0, _R_WRITE, OP_SEAL)
        if r:
            return r
        st = self.log.store
        if st is None or not hasattr(st, "seg_records"):
            return errors.ENOENT  # no witness store on this board
        n = self._int(args[0])
        if n < 0:
            return errors.EINVAL
        from .retention import set_ack
        return {"acked": set_ack(st, n), "low": st.low()}

    def c_reboot(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_WRITE, OP_REBOOT)
        if r:
            return r
        self.reboot_requested = True
        return {"rebooting": True}

    def _do_reboot(self):
        from .hal import EXIT_REBOOT
        log = self.log
        log.emit(kinds.SHUTDOWN, 0, 0, 3, ticks_diff(ticks_ms(), self.booted_ms))
        log.seal()
        log.flush()
        if log.store is not None:
            log.store.close()
        self.pf.reset(EXIT_REBOOT)

    def c_loginfo(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_PULL)
        if r:
            return r
        log = self.log
        log.flush()
        low = log.store.low() if log.store is not None else log.ring_low()
        if log.store is None and low > log.first_seq:
            low += 1  # the ring's oldest record: its predecessor is gone
        anchor = log.anchor_for(low)
        return {"device_id": _hex(log.device_id), "low": low,
                "next": log.next_seq, "boot": log.boot,
                "last_seal": log.last_seal_seq,
                "anchor": _hex(anchor) if anchor is not None else None}

    def c_files(self, args):
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_PULL)
        if r:
            return r
        from .control_files import files
        return files(self)

    def _logread(self, args, seq, framed):
        """logread LO N: stream records LO..LO+N-1 as DATA frames (u32 first
        seq + up to 4 records each), then an END frame {"next", "count"}."""
        log = self.log
        try:
            lo = self._int(args[0])
            n = self._int(args[1]) if len(args) > 1 else _PULL_MAX
        except (ValueError, IndexError):
            self.log.deny(kinds.OP_DENIED, self.pid, 0, errors.EINVAL.code, 0, 18, seq, 0)
            self._error(seq, errors.EINVAL, "usage: logread LO N", framed)
            return errors.EINVAL
        if not framed:
            self._error(seq, errors.EINVAL, "logread is framed-only (use rvm pull)", False)
            return errors.EINVAL
        r = self._gate(_OT_PARTITION, 0, _R_READ, OP_PULL)
        if r:
            self._error(seq, r, "logread refused", True)
            return r
        n = max(0, min(n, _PULL_MAX))
        hi = min(lo + n, log.next_seq)
        buf = bytearray(4 + _RECS_PER_FRAME * 64)
        struct.pack_into("<I", buf, 0, lo & 0xFFFFFFFF)
        k = 0
        cur = lo
        count = 0
        for rec in log.iter_range(lo, hi):
            buf[4 + k * 64:4 + (k + 1) * 64] = rec
            k += 1
            count += 1
            if k == _RECS_PER_FRAME:
                self._send(F.T_DATA, seq, buf)
                cur += k
                k = 0
                struct.pack_into("<I", buf, 0, cur & 0xFFFFFFFF)
        if k:
            self._send(F.T_DATA, seq, memoryview(buf)[0:4 + k * 64])
            cur += k
        end = lo + count
        self.log.emit(kinds.OP_PULL, self.pid, 0, lo, end - 1 if count else lo,
                      log.last_seal_seq, count)
        self._send(F.T_END, seq, json.dumps({"next": end, "count": count,
                                             "head": log.next_seq}).encode())
        return count


def _num(s):
    """s as a witness field number when it is plain ASCII digits, else 0."""
    if not s or len(s) > 9:
        return 0
    for c in s:
        if not 48 <= ord(c) <= 57:
            return 0
    return int(s)


def _escape(b):
    """Agent text made safe for the console line: printable ASCII kept,
    everything else (control bytes, frame markers) as \\xNN."""
    out = []
    for c in b:
        if 32 <= c < 127 and c != 92:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def _hex(b):
    return "".join("%02x" % x for x in b)
