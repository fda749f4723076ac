# The child side of a process partition (Appliance, "isolation": "process").
# Run by the kernel as a fresh interpreter, never imported by it:
#
#     python -I -S -B rvm_mp/procchild.py AS_BYTES CPU_S NOFILE KERNEL_PID
#
# fd 0 is the kernel's end of a socketpair, fds 1 and 2 are /dev/null; the
# environment is empty and the working folder is an empty temp folder. This
# file imports nothing of the kernel package (it is run as a script with
# -I, so its own folder is not on sys.path): a child holds only its agent's
# source, its handles (small integers) and the pipe, never the device key.
#
#   kernel (procpart.ProcCoro)                 child (this file)
#   ------------------------------            -----------------------------
#   spawn, write START -------------------->  confine (rlimits, no_new_privs,
#                                              namespaces, Landlock, seccomp),
#                                              exec source
#                        <------------------  READY confinement bits
#   OK ----------------------------------->
#                        <------------------  CALL (op, a0, a1, a2): the box
#   runtime serves it, send()/throw() ----->  OK value | ERR code name
#                        <------------------  OUT printed bytes / IMPORT name
#   OK ----------------------------------->
#                        <------------------  DONE status | FAULT type code
#
# Frames and values: docs/appliance.md. The agent API here is a copy of
# rvm_mp/api.py's (same calls, same op codes, the same call box, errors as
# fresh OSError(code, "ENAME"), devices through kernel calls);
# tests/host/test_procpart.py checks the two stay alike.
import sys

if sys.implementation.name != "cpython":
    # CPython only; on a board (or the unix port importing every kernel
    # module at power-on) this costs nothing but the refused import
    raise ImportError("procchild: CPython only")

import os  # noqa: E402
import struct  # noqa: E402

# ---- frames (docs/appliance.md) ---------------------------------------------
MAGIC = 0xB7
HDR = struct.Struct("<BBHI")   # magic, type, seq, body length
# kernel -> child
T_START = 0x81
T_OK = 0x82
T_ERR = 0x83
# child -> kernel
T_CALL = 0x01
T_DEV = 0x02       # reserved (device calls are CALLs since op 20)
T_DONE = 0x03
T_FAULT = 0x04
T_IMPORT = 0x05
T_READY = 0x06
T_OUT = 0x07       # what the agent printed (its log channel)

# value tags
V_NONE = 0
V_FALSE = 1
V_TRUE = 2
V_INT = 3
V_BYTES = 4
V_STR = 5
V_TUPLE = 6
V_LIST = 7
V_BARRAY = 8
V_FLOAT = 9
V_OPAQUE = 10   # a value that cannot cross (an object, a function, ...)
V_PROXY = 11    # reserved (unused since device calls are kernel calls)
V_ERROR = 12    # u16 code + str name (a returned, not raised, error)
V_DICT = 13
MAX_DEPTH = 8
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

_I = struct.Struct("<I")
_H = struct.Struct("<H")
_Q = struct.Struct("<q")
_D = struct.Struct("<d")


def enc(v, out, depth=0):
    """Append the encoding of v to the bytearray out. Anything that is not
    None/bool/int(i64)/float/bytes/bytearray/str/tuple/list/dict is sent as
    V_OPAQUE: the kernel sees a value of no accepted type and refuses it
    with the same error an in-process agent would get."""
    t = type(v)
    if v is None:
        out.append(V_NONE)
    elif v is True:
        out.append(V_TRUE)
    elif v is False:
        out.append(V_FALSE)
    elif t is int and I64_MIN <= v <= I64_MAX:
        out.append(V_INT)
        out += _Q.pack(v)
    elif t is bytes or t is bytearray or t is memoryview:
        b = bytes(v)
        out.append(V_BARRAY if t is bytearray else V_BYTES)
        out += _I.pack(len(b))
        out += b
    elif t is str:
        b = v.encode("utf-8", "surrogatepass")
        out.append(V_STR)
        out += _I.pack(len(b))
        out += b
    elif t is float:
        out.append(V_FLOAT)
        out += _D.pack(v)
    elif (t is tuple or t is list) and depth < MAX_DEPTH and len(v) < 65536:
        out.append(V_TUPLE if t is tuple else V_LIST)
        out += _H.pack(len(v))
        for x in v:   # the common items inline (every call is a 4-tuple)
            tx = type(x)
            if x is None:
                out.append(V_NONE)
            elif tx is int and I64_MIN <= x <= I64_MAX:
                out.append(V_INT)
                out += _Q.pack(x)
            elif tx is bytes:
                out.append(V_BYTES)
                out += _I.pack(len(x))
                out += x
            else:
                enc(x, out, depth + 1)
    elif t is dict and depth < MAX_DEPTH and len(v) < 65536:
        out.append(V_DICT)
        out += _H.pack(len(v))
        for k in v:
            enc(k, out, depth + 1)
            enc(v[k], out, depth + 1)
    else:
        out.append(V_OPAQUE)
    return out


class BadFrame(Exception):
    pass


def dec(buf, i, end, mk, depth=0):
    """(value, next index) from buf[i:end]; mk(tag, a, b) builds V_OPAQUE,
    V_PROXY and V_ERROR values (they differ between kernel and child).
    BadFrame on anything malformed."""
    if i >= end:
        raise BadFrame("short value")
    tag = buf[i]
    i += 1
    if tag == V_NONE:
        return None, i
    if tag == V_TRUE:
        return True, i
    if tag == V_FALSE:
        return False, i
    if tag == V_INT:
        if i + 8 > end:
            raise BadFrame("short int")
        return _Q.unpack_from(buf, i)[0], i + 8
    if tag == V_FLOAT:
        if i + 8 > end:
            raise BadFrame("short float")
        return _D.unpack_from(buf, i)[0], i + 8
    if tag in (V_BYTES, V_BARRAY, V_STR):
        if i + 4 > end:
            raise BadFrame("short length")
        n = _I.unpack_from(buf, i)[0]
        i += 4
        if i + n > end:
            raise BadFrame("length past the frame")
        b = bytes(buf[i:i + n])
        if tag == V_STR:
            try:
                return b.decode("utf-8", "surrogatepass"), i + n
            except UnicodeError:
                raise BadFrame("bad utf-8")
        return (bytearray(b) if tag == V_BARRAY else b), i + n
    if tag in (V_TUPLE, V_LIST, V_DICT):
        if depth >= MAX_DEPTH:
            raise BadFrame("nested too deep")
        if i + 2 > end:
            raise BadFrame("short count")
        n = _H.unpack_from(buf, i)[0]
        i += 2
        if tag == V_DICT:
            d = {}
            for _ in range(n):
                k, i = dec(buf, i, end, mk, depth + 1)
                if type(k) not in (int, str, bytes):
                    raise BadFrame("bad dict key")
                d[k], i = dec(buf, i, end, mk, depth + 1)
            return d, i
        items = []
        for _ in range(n):   # None and int items inline, the rest recursive
            if i < end:
                t2 = buf[i]
                if t2 == V_NONE:
                    items.append(None)
                    i += 1
                    continue
                if t2 == V_INT and i + 9 <= end:
                    items.append(_Q.unpack_from(buf, i + 1)[0])
                    i += 9
                    continue
                if t2 == V_BYTES and i + 5 <= end:
                    m = _I.unpack_from(buf, i + 1)[0]
                    if i + 5 + m <= end:
                        items.append(bytes(buf[i + 5:i + 5 + m]))
                        i += 5 + m
                        continue
            x, i = dec(buf, i, end, mk, depth + 1)
            items.append(x)
        return (tuple(items) if tag == V_TUPLE else items), i
    if tag == V_OPAQUE:
        return mk(V_OPAQUE, 0, None), i
    if tag in (V_PROXY, V_ERROR):
        if i + 2 > end:
            raise BadFrame("short id")
        a = _H.unpack_from(buf, i)[0]
        s, i = dec(buf, i + 2, end, mk, depth + 1)
        if type(s) is not str:
            raise BadFrame("bad name")
        return mk(tag, a, s), i
    raise BadFrame("unknown tag %d" % tag)


def frame(ftype, seq, body):
    return HDR.pack(MAGIC, ftype, seq & 0xFFFF, len(body)) + body


# ---- the agent API (the same calls as rvm_mp/api.py, same op codes) ---------
# The call box is [op, a0, a1, a2, state, note] as in-process; awaiting a
# call yields the box, and the driver below turns it into a CALL frame.
# Here plain classes do (the process is the boundary, not these objects).
OP_YIELD = 1
OP_SLEEP = 2
OP_NOW = 3
OP_MY_ID = 4
OP_SEND = 5
OP_RECV = 6
OP_HANDLE = 7
OP_LEASE = 8
OP_ALLOC = 9
OP_READ = 10
OP_WRITE = 11
OP_FREE = 12
OP_CHECKPOINT = 13
OP_SPAWN = 14
OP_WAIT_INPUT = 15
OP_CON_READ = 16
OP_CON_WRITE = 17
OP_CONTROL = 18
OP_EXIT = 19
OP_DEV = 20
OP_RELEASE = 21


def make_error(code, name):
    """The error an agent sees for kernel error `code`: a fresh builtin
    OSError(code, "ENAME"), as the runtime throws in-process."""
    return OSError(code, name)


class Request:
    """The awaitable every call returns: yields the box, ends the await
    with the kernel's result (a lease's id becomes a Device)."""

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
            b[4] = 1
            return b
        b[4] = 0
        if v is None:
            raise StopIteration
        if b[0] == OP_LEASE:
            v = Device(self, v, b[5])
        raise StopIteration(v)

    def throw(self, typ, val=None, tb=None):
        self.b[4] = 0
        raise (typ if val is None else val)

    def close(self):
        self.b[4] = 0


class Device:
    """A leased device: every operation is a kernel call
    (`await dev.read()`), the lease checked by the kernel."""

    def __init__(self, q, lid, dname=""):
        self.q = q
        self.lease_id = lid
        self.name = dname

    def call(self, op, *args):
        b = self.q.b
        b[0] = OP_DEV
        b[1] = self.lease_id
        b[2] = op
        b[3] = args
        return self.q

    def on(self):
        return self.call("on")

    def off(self):
        return self.call("off")

    def toggle(self):
        return self.call("toggle")

    def set(self, v):
        return self.call("set", v)

    def read(self, *args):
        return self.call("read", *args)

    def write(self, data):
        return self.call("write", data)

    def release(self):
        b = self.q.b
        b[0] = OP_RELEASE
        b[1] = self.lease_id
        return self.q


class Rvm:
    moved = None
    restored = None

    def __init__(self, box, pid, name):
        self.b = box
        self.q = Request(box)
        self.pid = pid
        self.name = name

    def call(self, op, a0=None, a1=None, a2=None):
        b = self.b
        b[0] = op
        b[1] = a0
        b[2] = a1
        b[3] = a2
        return self.q

    def yield_(self):
        self.b[0] = OP_YIELD
        return self.q

    def sleep_ms(self, ms):
        b = self.b
        b[0] = OP_SLEEP
        b[1] = ms
        return self.q

    def now(self):
        self.b[0] = OP_NOW
        return self.q

    def my_id(self):
        self.b[0] = OP_MY_ID
        return self.q

    def handle(self, hname):
        return self.call(OP_HANDLE, hname)

    def send(self, h, payload):
        return self.call(OP_SEND, h, payload)

    def recv(self, h, timeout_ms=-1):
        return self.call(OP_RECV, h, timeout_ms)

    def lease(self, device, duration_ms, h=None):
        self.b[5] = device
        return self.call(OP_LEASE, device, duration_ms, h)

    def alloc(self, size):
        return self.call(OP_ALLOC, size)

    def read(self, rid, off, n):
        return self.call(OP_READ, rid, off, n)

    def write(self, rid, off, data):
        return self.call(OP_WRITE, rid, off, data)

    def free(self, rid):
        return self.call(OP_FREE, rid)

    def checkpoint(self, state=b""):
        return self.call(OP_CHECKPOINT, state)

    def spawn(self, bundle_name):
        return self.call(OP_SPAWN, bundle_name)

    def wait_input(self, timeout_ms=-1):
        return self.call(OP_WAIT_INPUT, timeout_ms)

    def console_read(self, n=64):
        return self.call(OP_CON_READ, n)

    def console_write(self, data):
        return self.call(OP_CON_WRITE, data)

    def exit(self, status=0):
        return self.call(OP_EXIT, status)

    def device(self, lid, dname=""):
        return Device(self.q, lid, dname)


# ---- the pipe ------------------------------------------------------------------
class Link:
    def __init__(self, fd, pid):
        self.fd = fd
        self.pid = pid
        self.seq = 0
        self.buf = bytearray()
        self.out = bytearray()    # what the agent printed, not yet sent

    def write(self, ftype, body):
        self.seq = (self.seq + 1) & 0xFFFF
        data = frame(ftype, self.seq, body)
        mv = memoryview(data)
        while mv:
            n = os.write(self.fd, mv)
            mv = mv[n:]

    def read(self):
        """(type, body) of the next frame; exits quietly when the kernel
        closed the pipe (it is ending this partition)."""
        buf = self.buf
        while True:
            if len(buf) >= 8:
                m, t, seq, n = HDR.unpack_from(buf, 0)
                if m != MAGIC:
                    os._exit(3)
                if len(buf) >= 8 + n:
                    body = bytes(buf[8:8 + n])
                    del buf[:8 + n]
                    return t, body
            chunk = os.read(self.fd, 65536)
            if not chunk:
                os._exit(0)
            buf += chunk

    def reply(self):
        """The kernel's answer: (value, None) or (None, error to raise)."""
        t, body = self.read()
        if t == T_OK:
            v, _ = dec(body, 0, len(body), _cmk)
            return v, None
        if t == T_ERR:
            v, _ = dec(body, 0, len(body), _cmk)
            return None, make_error(v[0], v[1])
        os._exit(3)

    def flush_out(self):
        if self.out:
            data = bytes(self.out)
            self.out[:] = b""
            self.write(T_OUT, bytes(enc(data, bytearray())))
            self.reply()

    def call(self, b):
        if self.out:
            self.flush_out()
        self.write(T_CALL, bytes(enc((b[0], b[1], b[2], b[3]), bytearray())))
        return self.reply()


def _cmk(tag, a, s):
    if tag == V_ERROR:
        return make_error(a, s)
    return None


# ---- confinement ----------------------------------------------------------------
C_RLIMITS = 1
C_NO_NEW_PRIVS = 2
C_NETNS = 4
C_LANDLOCK = 8
C_LANDLOCK_SCOPE = 16
C_SECCOMP = 32

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_SYS_LANDLOCK = (444, 445, 446)   # create_ruleset, add_rule, restrict_self
_LL_READ = 1 | 4 | 8              # EXECUTE, READ_FILE, READ_DIR


def confine(as_bytes, cpu_s, nofile, parent):
    """Apply what an unprivileged Linux process can apply to itself, before
    any agent code runs. Returns the C_* bits that took effect."""
    got = 0
    try:
        import resource
        lim = ((resource.RLIMIT_CPU, cpu_s), (resource.RLIMIT_NOFILE, nofile),
               (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0))
        if as_bytes > 0:
            lim = lim + ((resource.RLIMIT_AS, as_bytes),)
        for r, v in lim:
            resource.setrlimit(r, (v, v))
        got |= C_RLIMITS
    except (ImportError, ValueError, OSError):
        pass
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return got
    # die with the kernel, also when SIGSTOPped (a stopped child never
    # reads the EOF of its pipe); if the kernel is already gone, go
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(5)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        got |= C_NO_NEW_PRIVS
    # a user namespace of its own with an empty network namespace: no
    # sockets reach anything (unprivileged where the host allows userns)
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        got |= C_NETNS
    if got & C_NO_NEW_PRIVS:
        got |= _landlock(libc, ctypes)
        got |= _seccomp(libc, ctypes)
    return got


# seccomp: a deny list of syscalls an agent never needs and an attacker
# would want (debugging other processes, running programs, kernel attack
# surface, namespaces after ours). Numbers: x86-64, then aarch64.
_SC_DENY = (
    # ptrace process_vm_readv/writev execve execveat kexec_load bpf keyctl
    # add_key request_key userfaultfd perf_event_open mount umount2
    # pivot_root chroot setns unshare init_module finit_module
    # delete_module reboot swapon swapoff acct io_uring_setup
    # name_to_handle_at open_by_handle_at personality
    (0xC000003E, (101, 310, 311, 59, 322, 246, 321, 250, 248, 249, 323, 298,
                  165, 166, 155, 161, 308, 272, 175, 313, 176, 169, 167, 168,
                  163, 425, 303, 304, 135)),
    (0xC00000B7, (117, 270, 271, 221, 281, 104, 280, 219, 217, 218, 282, 241,
                  40, 39, 41, 51, 268, 97, 105, 273, 106, 142, 224, 225, 89,
                  425, 264, 265, 92)),
)


def _seccomp(libc, ctypes):
    """Install the deny list (EPERM) for this machine's arch; a call from
    another arch ABI (x32, 32-bit) kills the process. C_SECCOMP or 0."""
    import platform
    m = platform.machine()
    arch, nrs = _SC_DENY[0] if m in ("x86_64", "AMD64") else \
        _SC_DENY[1] if m in ("aarch64", "arm64") else (0, ())
    if not arch:
        return 0

    class F(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(F))]

    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    deny = 0x00050000 | 1              # SECCOMP_RET_ERRNO | EPERM
    prog = [F(ld, 0, 0, 4), F(jeq, 1, 0, arch), F(ret, 0, 0, 0x80000000),
            F(ld, 0, 0, 0)]
    if arch == 0xC000003E:             # x32 ABI calls
        prog.append(F(jge, 0, 1, 0x40000000))
        prog.append(F(ret, 0, 0, deny))
    for nr in nrs:
        prog.append(F(jeq, 0, 1, nr))
        prog.append(F(ret, 0, 0, deny))
    prog.append(F(ret, 0, 0, 0x7FFF0000))   # SECCOMP_RET_ALLOW
    arr = (F * len(prog))(*prog)
    fp = Prog(len(prog), ctypes.cast(arr, ctypes.POINTER(F)))
    # prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)
    if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0:
        return 0
    return C_SECCOMP


def _landlock(libc, ctypes):
    """Landlock: the filesystem becomes read-only stdlib folders and nothing
    else (no writes anywhere, no reads of the kernel's files or key); from
    ABI 6 also no signals to or abstract sockets of processes outside."""
    sc = libc.syscall
    sc.restype = ctypes.c_long
    abi = sc(_SYS_LANDLOCK[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs = (1 << 13) - 1
    if abi >= 2:
        fs |= 1 << 13        # REFER
    if abi >= 3:
        fs |= 1 << 14        # TRUNCATE
    if abi >= 5:
        fs |= 1 << 15        # IOCTL_DEV
    scoped = 3 if abi >= 6 else 0

    class Attr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64),
                    ("scoped", ctypes.c_uint64)]

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    attr = Attr(fs, 0, scoped)
    size = ctypes.sizeof(Attr) if scoped else 16
    rs = sc(_SYS_LANDLOCK[0], ctypes.byref(attr), ctypes.c_size_t(size),
            ctypes.c_uint32(0))
    if rs < 0:
        return 0
    for p in sys.path:
        if not p or not os.path.isdir(p):
            continue
        try:
            fd = os.open(p, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        rule = Beneath(_LL_READ, fd)
        sc(_SYS_LANDLOCK[1], ctypes.c_int(rs), ctypes.c_int(1),
           ctypes.byref(rule), ctypes.c_uint32(0))
        os.close(fd)
    ok = sc(_SYS_LANDLOCK[2], ctypes.c_int(rs), ctypes.c_uint32(0)) == 0
    os.close(rs)
    if not ok:
        return 0
    return C_LANDLOCK | (C_LANDLOCK_SCOPE if scoped else 0)


# ---- the agent's import gate and globals (API parity with in-process) -------------
class _Gate:
    """The kernel's allow-list (it sends it): pure modules pass, everything
    else raises ImportError and is reported (the kernel witnesses
    IMPORT_DENIED). Inside this process it is no boundary: the process is."""

    def __init__(self, link, pure, device, never, real):
        self.link = link
        self.pure = pure
        self.device = device
        self.never = never
        self.real = real
        self.depth = 0

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        if self.depth:
            return self.real(name, globals, locals, fromlist, level)
        if type(name) is not str or type(level) is not int:
            name, level = "", 0
        top = name.split(".")[0]
        if level == 0 and top in self.pure:
            self.depth += 1
            try:
                return self.real(name, globals, locals, fromlist, level)
            finally:
                self.depth -= 1
        if level or top == "rvm_mp":
            why = 1
        elif top in self.never:
            why = 2
        elif top in self.device:
            why = 3
        else:
            why = 4
        self.link.write(T_IMPORT, bytes(enc((name[:64], why), bytearray())))
        self.link.reply()
        raise ImportError("rvm: import refused")


def agent_globals(name, gate, out):
    """As the kernel's (api.make_globals): its own print into `out`,
    __import__ through the gate, KeyboardInterrupt is RuntimeError, the
    builtins that reach outside the agent shadowed by a refusal."""
    import builtins

    def agent_print(*args, sep=" ", end="\n"):
        n = len(args)
        i = 0
        for a in args:
            s = str(a)
            if len(out) + len(s) + 2 > 240:
                out.extend(b"~")
                return
            out.extend(s.encode())
            i += 1
            if i < n:
                out.extend(sep.encode())
        if len(out) + len(end) <= 240:
            out.extend(end.encode())

    def denied(*a, **k):
        raise ImportError("rvm: not available to agents")

    g = {"__name__": name, "print": agent_print, "__import__": gate,
         "KeyboardInterrupt": RuntimeError, "open": denied, "exec": denied,
         "eval": denied, "compile": denied, "input": denied}
    b = dict(builtins.__dict__)
    for k in g:
        if k != "__name__":
            b[k] = g[k]
    for k in ("breakpoint", "help", "exit", "quit"):
        b[k] = denied
    g["__builtins__"] = b
    return g


# ---- main ------------------------------------------------------------------------------
DEBUG = False


def run(argv):
    global DEBUG
    as_bytes, cpu_s, nofile = int(argv[1]), int(argv[2]), int(argv[3])
    parent = int(argv[4])
    DEBUG = len(argv) > 5 and argv[5] == "debug"
    conf = confine(as_bytes, cpu_s, nofile, parent)
    link = Link(0, 0)
    t, body = link.read()
    if t != T_START:
        os._exit(3)
    st, _ = dec(body, 0, len(body), _cmk)
    pid, name, source, entry, restored, moved, lists = st
    link.pid = pid
    import builtins
    gate = _Gate(link, lists[0], lists[1], lists[2], builtins.__import__)
    g = agent_globals(name, gate, link.out)
    box = [0, None, None, None, 0, None]
    rvm = Rvm(box, pid, name)
    if restored is not None:
        rvm.restored = restored
    if moved is not None:
        rvm.moved = moved
    try:
        exec(compile(source, name, "exec"), g)
        fn = g.get(entry)
        coro = fn(rvm) if fn is not None and callable(fn) else None
        if type(coro).__name__ != "coroutine":
            raise TypeError("main must be an async def")
        # the agent is loaded: say so, with how this process is confined
        link.write(T_READY, bytes(enc(conf, bytearray())))
        link.reply()
        v = None
        err = None
        while True:
            if err is not None:
                e = err
                err = None
                y = coro.throw(e)
            else:
                y = coro.send(v)
            if y is not box:      # awaited something else: the kernel
                y = box           # refuses op 0 (EINVAL), as in-process
                box[0] = 0
            if box[0] == OP_EXIT:     # (a bad status means 0, as in-process)
                st = box[1] if type(box[1]) is int and 0 <= box[1] <= 255 \
                    else 0
                link.flush_out()
                link.write(T_DONE, bytes(enc(st, bytearray())))
                os._exit(0)
            v, err = link.call(box)
            box[1] = box[2] = box[3] = None
    except StopIteration:
        link.flush_out()
        link.write(T_DONE, bytes(enc(0, bytearray())))
        os._exit(0)
    except BaseException as e:  # the agent failed: tell the kernel, end
        if DEBUG:
            import traceback
            traceback.print_exc()
        code = 19 if type(e) is MemoryError else 0
        a = e.args if isinstance(e, OSError) else ()
        if type(a) is tuple and a and type(a[0]) is int:
            code = a[0] & 0xFF
        try:
            tname = type(e).__name__
        except BaseException:
            tname = "Exception"
        try:
            link.flush_out()
            link.write(T_FAULT, bytes(enc((tname, code), bytearray())))
        except BaseException:
            pass
        os._exit(1)


if __name__ == "__main__":
    try:
        run(sys.argv)
    except BaseException:
        os._exit(4)
