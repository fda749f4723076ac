"""Process partitions (Appliance, "isolation": "process"): agents run in
confined child interpreters; every call is a frame over a socketpair served
by the same runtime dispatch. CPython on Linux only, by nature."""
import hashlib
import os
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "kernel"))

import agentkit as ak  # noqa: E402
import kt  # noqa: E402
from rvm_mp import errors, kinds  # noqa: E402
from rvm_mp.appliance import procchild as PC, procpart as PP  # noqa: E402
from rvm_mp import faults as F, runtime as RT  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process partitions need Linux")

# the in-language gate of a child is no boundary: this reaches the child's
# real modules (the process is the boundary)
ESCAPE = ("_BI = [c for c in ().__class__.__base__.__subclasses__() "
          "if c.__name__ == 'BuiltinImporter'][0]\n"
          "posix = _BI.load_module('posix')\n"
          "_time = _BI.load_module('time')\n"
          "_real_import = _BI.load_module('builtins').__import__\n")

COUNTER = """
async def main(rvm):
    h = await rvm.handle("ch")
    n = 0
    while True:
        n += 1
        try:
            await rvm.send(h, bytes([n & 255]))
        except Exception:
            pass
        await rvm.yield_()   # (the tests' clock moves only when idle)
"""

SINK = """
async def main(rvm):
    h = await rvm.handle("ch")
    while True:
        src, p = await rvm.recv(h)
"""


_RTS = []


@pytest.fixture(autouse=True)
def _no_children_left():
    """A failing test must not leave (stopped) children behind."""
    yield
    while _RTS:
        rt = _RTS.pop()
        if rt.procs is not None:
            rt.procs.shutdown()


def make(process=None, limits=None, **kw):
    lim = {"partitions": 8, "caps_per_partition": 16, "queue_depth": 8,
           "payload_max": 64, "arena": 1 << 20, "graph_nodes": 8}
    lim.update(limits or {})
    cfg = {"slice_ms": 20, "budget_ms": 400}
    cfg.update(process or {})
    kw.setdefault("witness", {"ring": 1 << 16, "seal_every": 0,
                              "segment_records": 64})
    prof = ak.profile(isolation="process", process=cfg, limits=lim, **kw)
    # the fake clock moves 0.2 ms per ticks_us() so sleepers wake while
    # others keep the kernel busy
    pf, k, rt = ak.make(prof, mem=True, step_us=200)
    _RTS.append(rt)
    return pf, k, rt


def run_until(rt, cond, max_s=30.0):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < max_s, "timed out"
        rt.step()


def recs(rt, kind):
    return ak.recs(rt.k.log, kind)


def faults_of(rt, pid):
    return [r for r in recs(rt, kinds.PROC_FAULT) if r[6] == pid]


def pair(rt):
    """A counter and a sink partition (in child processes too), wired."""
    a = ak.load(rt, "counter", COUNTER)
    b = ak.load(rt, "sink", SINK)
    assert rt.connect("ch", a, b, 8) == 0
    return a, b


def sent(rt, pid):
    return len([r for r in recs(rt, kinds.IPC_SEND) if r[5] == pid])


def alive(rt, pid):
    return rt.procs.os_pid(pid) is not None and \
        any(r[6] == pid for r in recs(rt, kinds.PROC_SPAWN))


def assert_contained(rt, pid, reason, others):
    """The child's fault is witnessed with the partition as actor, it is an
    agent fault (F1), the kernel's own records stay whole and the other
    partitions keep working."""
    fs = faults_of(rt, pid)
    assert fs, "no PROC_FAULT for %d" % pid
    r = fs[0]
    assert r[5] == pid and r[7] == reason, r
    assert any(x[6] == pid for x in recs(rt, kinds.AGENT_FAULT))
    assert any(x[6] == pid for x in recs(rt, kinds.FAULT_F1_RESTART))
    assert not recs(rt, kinds.FAULT_F4_RESET)
    for o in others:
        n = sent(rt, o)
        run_until(rt, lambda: sent(rt, o) > n + 3)
    assert rt.check_invariants() == 0
    assert rt.k.log.verify() if hasattr(rt.k.log, "verify") else True


# ---- API and parity ------------------------------------------------------------
def test_child_api_matches_the_agent_api():
    """Same calls, same boxes: every method of the in-process API (built
    by the runtime's factory) exists in the child's and fills the call box
    the same way; device calls too."""
    box1 = [0, None, None, None, 0, None]
    r1 = RT._make_api(box1, 1, "x", StopIteration)
    box2 = [0, None, None, None, 0, None]
    r2 = PC.Rvm(box2, 1, "x")
    names = [n for n in dir(r1) if not n.startswith("_") and
             callable(getattr(r1, n))]
    assert "send" in names and "lease" in names and "device" in names
    args = {"sleep_ms": (5,), "exit": (3,), "handle": ("x",),
            "send": (1, b"p"), "recv": (2, 7), "lease": ("temp", 10, 4),
            "alloc": (9,), "read": (1, 2, 3), "write": (1, 2, b"d"),
            "free": (1,), "checkpoint": (b"s",), "spawn": ("b",),
            "wait_input": (4,), "console_read": (8,),
            "console_write": (b"w",), "call": (7, "n"), "device": (5, "led")}
    for n in names:
        assert hasattr(r2, n), "procchild.Rvm lacks %s" % n
        a = args.get(n, ())
        box1[:] = [0, None, None, None, 0, None]
        box2[:] = [0, None, None, None, 0, None]
        x1 = getattr(r1, n)(*a)
        x2 = getattr(r2, n)(*a)
        assert box1 == box2, n
        if n == "device":
            for m, ma in (("read", ()), ("on", ()), ("off", ()),
                          ("toggle", ()), ("set", (1,)), ("write", (b"z",)),
                          ("release", ())):
                getattr(x1, m)(*ma)
                getattr(x2, m)(*ma)
                assert box1 == box2, m
            assert (x1.lease_id, x1.name) == (x2.lease_id, x2.name)
    for n in ("moved", "restored"):
        assert getattr(r1, n) is None and getattr(r2, n) is None
    from rvm_mp import syscalls as SC
    for n in dir(SC):
        if n.startswith("OP_") and n != "OP_LAST":
            assert getattr(PC, n) == getattr(SC, n), n


def test_codec_round_trip_and_refusals():
    vals = [None, True, False, 0, -1, (1 << 63) - 1, b"", b"\x00" * 300,
            bytearray(b"ab"), "é", (1, (2, b"x")), [1, "a"], {1: 2, "k": b"v"},
            1.5]
    for v in vals:
        b = bytes(PC.enc(v, bytearray()))
        got, i = PC.dec(b, 0, len(b), PP._kmk)
        assert got == v and type(got) is type(v) and i == len(b)
    # what cannot cross becomes an Opaque that no kernel check accepts
    for v in (object(), 1 << 64, len, {(1, 2): 3}.keys()):
        b = bytes(PC.enc(v, bytearray()))
        assert PC.dec(b, 0, len(b), PP._kmk)[0] is PP._OPAQUE
    bad = [b"", b"\x63", b"\x04\xff\xff\xff\xff", b"\x03\x00", b"\x05\x02\x00\x00\x00\xff\xfe",
           b"\x0b\x00\x00\x05\x00\x00\x00\x00", b"\x0c\x01\x00\x05\x00\x00\x00\x00",
           b"\x06" + b"\x01\x00" + b"\x06\x01\x00" * 9 + b"\x00"]
    for b in bad:
        with pytest.raises(PC.BadFrame):
            PC.dec(b, 0, len(b), PP._kmk)


PARITY = """
async def main(rvm):
    out = []
    me = await rvm.my_id()
    o = await rvm.handle("out")
    r = await rvm.alloc(32)
    out.append(await rvm.write(r, 0, b"hello"))
    out.append(await rvm.read(r, 1, 3))
    for call in (lambda: rvm.handle("missing"), lambda: rvm.send(999, b"x"),
                 lambda: rvm.recv(999, 0), lambda: rvm.read(r, 30, 8),
                 lambda: rvm.sleep_ms("x"), lambda: rvm.send(o, object()),
                 lambda: rvm.send(o, [1]), lambda: rvm.console_write(b"no"),
                 lambda: rvm.free(r), lambda: rvm.free(r)):
        try:
            out.append(await call())
        except Exception as e:
            out.append((type(e).__name__,) + e.args)
    dev = await rvm.lease("temp", 60000, await rvm.handle("temp"))
    out.append((dev.name, type(await dev.read()).__name__,
                (await dev.call("read")) >= 0))
    try:
        await dev.set(object())
    except Exception as e:
        out.append((type(e).__name__,) + e.args)
    out.append(await dev.release())
    try:
        await dev.read()
    except Exception as e:
        out.append((type(e).__name__,) + e.args)
    print("hello from", me)
    try:
        import sys
    except ImportError as e:
        out.append("import refused")
    await rvm.send(o, repr(out).encode())
    await rvm.exit(5)
"""


def observer(rt, src, name="out"):
    """An agentless partition that receives on channel `name` from src; the
    test reads it through the kernel."""
    k = rt.k
    obs = k.part_create(0, 0, None, 0, 0, 0, "obs")
    k.part_start(0, obs)
    assert rt.connect(name, src, obs, 8) == 0
    return lambda: k.recv(obs, rt.handle(obs, name))


def _parity(isolation):
    lim = {"partitions": 8, "caps_per_partition": 16, "queue_depth": 8,
           "payload_max": 4096, "arena": 1 << 20, "graph_nodes": 8}
    if isolation == "process":
        pf, k, rt = make(limits=lim)
    else:
        pf, k, rt = ak.make(ak.profile(limits=lim), mem=True)
    pid = ak.load(rt, "parity", PARITY, {"devices": ["temp"]})
    rd = observer(rt, pid)
    run_until(rt, lambda: recs(rt, kinds.AGENT_EXIT))
    src, payload = rd()
    ex = recs(rt, kinds.AGENT_EXIT)[0]
    den = [(r[5], r[7], r[8], r[9]) for r in recs(rt, kinds.IMPORT_DENIED)]
    printed = rt.outlog.get(pid, b"")
    ak.done(rt)
    return src == pid, payload, ex[7], ex[8], den, printed


def test_same_calls_same_results_same_errors_in_both_modes():
    """One agent, every call family and its errors, in-process and in a
    child: same results, same errors, same exit, same refusal records."""
    a = _parity("inprocess")
    b = _parity("process")
    assert a[0] and b[0]
    assert a[1] == b[1], (a[1], b[1])
    assert a[2:4] == b[2:4] == (5, 0)
    assert [d[0:2] for d in a[4]] == [d[0:2] for d in b[4]] and a[4]
    assert b"EBADHANDLE" in a[1] and b"import refused" in a[1]
    assert a[5] == b[5] and a[5].startswith(b"hello from")   # print


# ---- containment: each failure is the child's, witnessed, kernel unharmed ----------
SLEEPER = """
async def main(rvm):
    while True:
        await rvm.sleep_ms(10)
"""


def _victim(src, process=None, spec=None):
    pf, k, rt = make(process)
    a, b = pair(rt)
    v = ak.load(rt, "victim", src, spec)
    assert type(v) is int
    run_until(rt, lambda: alive(rt, v) and sent(rt, a) > 2)
    return rt, v, a


def test_kill_9_of_a_child_is_an_agent_fault():
    rt, v, a = _victim(SLEEPER)
    ospid = rt.procs.os_pid(v)
    os.kill(ospid, signal.SIGKILL)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_SIGNAL, [a])
    assert faults_of(rt, v)[0][10] == signal.SIGKILL
    # F1 restarted it in a fresh process
    run_until(rt, lambda: rt.procs.os_pid(v) not in (None, ospid))
    ak.done(rt)
    assert not rt.procs.live


def test_segfault_is_an_agent_fault():
    src = ESCAPE + """
async def main(rvm):
    await rvm.sleep_ms(1)
    ctypes = _real_import("ctypes")
    ctypes.string_at(0)
"""
    rt, v, a = _victim(src)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_SIGNAL, [a])
    assert faults_of(rt, v)[0][10] == signal.SIGSEGV
    ak.done(rt)


def test_garbage_frames_are_refused():
    src = ESCAPE + """
async def main(rvm):
    await rvm.sleep_ms(1)
    posix.write(0, b"\\x00garbage that is no frame at all")
    while True:
        _time.sleep(1)
"""
    rt, v, a = _victim(src)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_FRAME, [a])
    r = faults_of(rt, v)[0]
    assert r[4] & kinds.F_DENIED and r[7] == PP.R_FRAME
    ak.done(rt)


def test_oversized_and_malformed_frames_are_refused():
    # a header announcing more than frame_max; then a CALL with a bad value
    for body, reason in (
            ("posix.write(0, bytes([0xB7, 1, 0, 0, 255, 255, 255, 127]))",
             PP.R_FRAME),
            ("posix.write(0, bytes([0xB7, 1, 0, 0, 3, 0, 0, 0, 3, 0x63, 0]))",
             PP.R_FRAME)):
        src = ESCAPE + """
async def main(rvm):
    await rvm.sleep_ms(1)
    %s
    while True:
        _time.sleep(1)
""" % body
        rt, v, a = _victim(src)
        run_until(rt, lambda: faults_of(rt, v))
        assert_contained(rt, v, reason, [a])
        ak.done(rt)


def test_a_child_flooding_its_pipe_is_refused():
    src = ESCAPE + """
import struct
async def main(rvm):
    await rvm.sleep_ms(1)
    # CALL (OP_NOW, None, None, None), a valid request, again and again
    body = bytes([6, 4, 0, 3]) + struct.pack("<q", 3) + bytes([0, 0, 0])
    f = bytes([0xB7, 1, 0, 0]) + struct.pack("<I", len(body)) + body
    while True:
        posix.write(0, f * 64)
"""
    rt, v, a = _victim(src)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_FLOOD, [a])
    ak.done(rt)


def test_a_child_that_never_reads_its_replies_is_refused():
    # one valid request whose reply (512 KB of region bytes) cannot fit in
    # the socket buffers; the child never reads it
    src = ESCAPE + """
import struct
async def main(rvm):
    r = await rvm.alloc(%d)
    # CALL (OP_READ, r, 0, n) as the codec writes it
    body = bytes([6, 4, 0]) + b"".join(bytes([3]) + struct.pack("<q", x)
                                       for x in (10, r, 0, %d))
    posix.write(0, bytes([0xB7, 1, 9, 0]) + struct.pack("<I", len(body)) + body)
    while True:
        _time.sleep(1)
""" % (512 * 1024, 512 * 1024)
    rt, v, a = _victim(src)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_STALL, [a])
    ak.done(rt)


def test_closed_pipe_is_an_agent_fault():
    src = ESCAPE + """
async def main(rvm):
    await rvm.sleep_ms(1)
    posix.close(0)
    while True:
        _time.sleep(1)
"""
    rt, v, a = _victim(src)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_CLOSED, [a])
    assert not faults_of(rt, v)[0][4] & kinds.F_DENIED   # not a refusal
    ak.done(rt)


def test_a_spinning_child_is_stopped_each_slice_then_killed():
    src = """
async def main(rvm):
    await rvm.sleep_ms(1)
    while True:
        pass
"""
    rt, v, a = _victim(src, {"budget_ms": 600})
    n0 = sent(rt, a)
    run_until(rt, lambda: faults_of(rt, v))
    # while it spun, the others ran between its slices (it was SIGSTOPped)
    assert sent(rt, a) > n0
    assert_contained(rt, v, PP.R_BUDGET, [a])
    assert faults_of(rt, v)[0][10] >= 600
    ak.done(rt)


def test_allocation_past_the_address_space_limit_is_contained():
    src = """
async def main(rvm):
    await rvm.sleep_ms(1)
    keep = []
    while True:
        keep.append(bytearray(8 << 20))
"""
    rt, v, a = _victim(src, spec={"quota": {"as_mb": 128}})
    run_until(rt, lambda: any(r[6] == v for r in recs(rt, kinds.AGENT_FAULT)))
    f = [r for r in recs(rt, kinds.AGENT_FAULT) if r[6] == v][0]
    # MemoryError in the child (ENOMEM), or the child died of it
    assert (f[7], f[8]) == (F.fault_class(MemoryError()),
                            errors.ENOMEM.code) or faults_of(rt, v)
    assert any(r[6] == v for r in recs(rt, kinds.FAULT_F1_RESTART))
    n = sent(rt, a)
    run_until(rt, lambda: sent(rt, a) > n + 3)
    ak.done(rt)


def test_the_fault_ladder_applies_to_children():
    src = """
async def main(rvm):
    await rvm.sleep_ms(1)
    raise ValueError("boom")
"""
    pf, k, rt = make()
    rt.faults.policy.max_rebuilds = 1
    a, b = pair(rt)
    v = ak.load(rt, "crash", src)
    run_until(rt, lambda: any(r[6] == v and r[7] == 0xFF
                              for r in recs(rt, kinds.AGENT_EXIT)), 60)
    fs = [r for r in recs(rt, kinds.AGENT_FAULT) if r[6] == v]
    assert fs[0][7] == F.fault_class(ValueError())
    assert [r for r in recs(rt, kinds.FAULT_F1_RESTART) if r[6] == v]
    assert [r for r in recs(rt, kinds.FAULT_F2_REBUILD) if r[6] == v]
    assert rt.procs.os_pid(v) is None
    n = sent(rt, a)
    run_until(rt, lambda: sent(rt, a) > n + 3)
    ak.done(rt)


# ---- the CPython attack classes reach only the agent's own process -----------------
ATTACK = ESCAPE + """
import hashlib
KEYHASH = %r

class Fin:
    def __del__(self):
        global FIN_RAN
        FIN_RAN = 1

async def main(rvm):
    o = await rvm.handle("out")
    found = []
    sys = _BI.load_module("sys")
    gc = _real_import("gc")
    # module internals: what modules does this process hold?
    if any(n.startswith("rvm_mp") for n in sys.modules):
        found.append("kernel modules")
    # frames: walk from a traceback and from this coroutine to the top
    try:
        raise ValueError
    except ValueError as e:
        f = e.__traceback__.tb_frame
    while f is not None:
        for v in list(f.f_globals.values()):
            if type(v).__name__ in ("Kernel", "Runtime", "WitnessLog"):
                found.append("kernel object")
        f = f.f_back
    # every object in this heap: the device key? other agents' coroutines?
    for x in gc.get_objects():
        t = type(x).__name__
        if t in ("Kernel", "Runtime", "WitnessLog", "CapTable", "ProcCoro"):
            found.append(t)
        elif t == "coroutine" and x.cr_code.co_filename != "attack":
            found.append("foreign coroutine")
    for ref in gc.get_objects():
        if type(ref) is dict:
            for v in list(ref.values()):
                if type(v) is bytes and len(v) == 32 and \\
                        hashlib.sha256(v).hexdigest() == KEYHASH:
                    found.append("key")
    # files: the kernel's folder and the key file
    try:
        posix.open(%r, 0)
        found.append("key file")
    except OSError:
        pass
    # the kernel's memory through /proc (ptrace access rules, Landlock)
    try:
        fd = posix.open("/proc/%%d/mem" %% posix.getppid(), 0)
        posix.lseek(fd, 0x400000, 0)
        posix.read(fd, 16)
        found.append("kernel memory")
    except OSError:
        pass
    # syscalls a child never needs (seccomp): unshare(0) is a no-op
    # anywhere else; ptrace of the kernel
    ctypes = _real_import("ctypes")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0) == 0:
        found.append("unshare")
    if libc.ptrace(16, posix.getppid(), 0, 0) == 0:   # PTRACE_ATTACH
        found.append("ptrace")
    # builtins mutation and a finalizer: only this process sees them
    # (the child's own frame code uses len: put it back before the next call)
    b = _BI.load_module("builtins")
    real_len = b.len
    b.len = lambda x: 0
    Fin()
    gc.collect()
    b.len = real_len
    # a signal to the kernel process
    try:
        posix.kill(%d, 19)
        found.append("signal")
    except OSError:
        pass
    await rvm.send(o, repr(found).encode())
    await rvm.exit(0)
"""


def test_attack_classes_stay_in_the_childs_process():
    pf, k, rt = make({"budget_ms": 10000}, limits={"payload_max": 4096})
    keyfile = os.path.join(pf.root, "rvm_key.bin")
    with open(keyfile, "wb") as f:
        f.write(kt.KEY)
    a, b = pair(rt)
    src = ATTACK % (hashlib.sha256(kt.KEY).hexdigest(), keyfile, os.getpid())
    v = ak.load(rt, "attack", src)
    rd = observer(rt, v)
    run_until(rt, lambda: any(r[6] == v for r in recs(rt, kinds.AGENT_EXIT)))
    src_pid, payload = rd()
    assert src_pid == v
    conf = [r for r in recs(rt, kinds.PROC_SPAWN) if r[6] == v][0][8]
    found = eval(payload.decode())
    # Landlock hides the key file and scopes signals where the host has it
    if conf & PC.C_LANDLOCK:
        assert "key file" not in found
    if conf & PC.C_LANDLOCK_SCOPE:
        assert "signal" not in found
    if conf & (PC.C_LANDLOCK | PC.C_NETNS):   # own userns / Landlock domain
        assert "kernel memory" not in found
    if conf & PC.C_SECCOMP:
        assert "unshare" not in found
    found = [x for x in found if x not in ("key file", "signal",
                                           "kernel memory", "unshare")]
    assert found == [], found
    assert len([1, 2]) == 2      # the kernel's builtins are its own
    n = sent(rt, a)
    run_until(rt, lambda: sent(rt, a) > n + 3)
    assert rt.check_invariants() == 0
    ak.done(rt)


def test_a_child_killed_while_blocked_is_noticed_within_an_epoch():
    src = """
async def main(rvm):
    h = await rvm.handle("never")
    await rvm.recv(h)          # blocks forever: nothing resumes it
"""
    pf, k, rt = make()
    a, b = pair(rt)
    v = ak.load(rt, "blocked", src)
    h = rt.k.chan_create(v, 4)
    rt.set_handle(v, "never", h)
    run_until(rt, lambda: alive(rt, v) and rt.sched.task(v).state == 2)
    ospid = rt.procs.os_pid(v)
    os.kill(ospid, signal.SIGKILL)
    run_until(rt, lambda: faults_of(rt, v))
    assert_contained(rt, v, PP.R_SIGNAL, [a])
    run_until(rt, lambda: rt.procs.os_pid(v) not in (None, ospid))
    ak.done(rt)


def test_the_demo_agents_run_as_processes_on_the_appliance_profile():
    """boards/appliance.json (isolation process) booted through main.run
    with the Seed demo's six agents: each in its own OS process, devices
    leased across the pipe, IPC flowing, the crasher contained, nothing
    left running after shutdown."""
    import json
    from rvm_mp import bundle, hal
    from rvm_mp.main import run
    from rvm_mp.witness import unpack
    root = os.path.dirname(os.path.dirname(HERE))
    with open(os.path.join(root, "boards", "appliance.json")) as f:
        prof = json.load(f)
    with open(os.path.join(root, "boards", "seed-64k.json")) as f:
        seed = json.load(f)
    assert prof["isolation"] == "process"
    prof.update(agents=seed["agents"], channels=seed["channels"],
                console=False)
    bundles = {}
    for a in seed["agents"]:
        with open(os.path.join(root, "agents", a["name"] + ".py"), "rb") as f:
            src = f.read()
            bundles[a["name"]] = bundle.pack(src, {"name": a["name"]},
                                             kt.KEY, verdict=bundle.unverified(src))
    pf = hal.Platform(kt.tmpdir("appl"), kt.DEVICE_ID, kt.KEY)
    b = run(fs=pf.root, platform=pf, profile=prof, bundles=bundles,
            max_ms=6000)
    rt = b.runtime
    assert [type(r) for n, r in b.started] == [int] * 6
    log = rt.log

    def rr(kind):
        return [unpack(r) for r in log.query(kind=kind)]
    sp = rr(kinds.PROC_SPAWN)
    assert {r[6] for r in sp} == set(range(1, 7))
    ospids = [r[7] for r in sp]
    assert len(set(ospids)) == len(ospids)            # one process each
    pids = b.pids
    assert [r for r in rr(kinds.LEASE_GRANT) if r[6] == pids["sensor"]]
    assert [r for r in rr(kinds.IPC_RECV) if r[5] == pids["filter"]]
    crash = [r for r in rr(kinds.AGENT_FAULT) if r[6] == pids["crasher"]]
    assert crash
    assert [r for r in rr(kinds.IMPORT_DENIED) if r[6] == pids["crasher"]]
    assert not rr(kinds.FAULT_F4_RESET)
    assert not rt.procs.live                          # all ended at shutdown
    for p in ospids:
        with pytest.raises(OSError):
            os.kill(p, 0)


ORPHAN = r"""
import os, sys, time
sys.path[:0] = [%r, %r]
import agentkit as ak
from rvm_mp import kinds
prof = ak.profile(isolation="process", process={"slice_ms": 10, "budget_ms": 600000})
pf, k, rt = ak.make(prof, mem=True, step_us=200)
pid = ak.load(rt, "spin", "async def main(rvm):\n    await rvm.yield_()\n    while True:\n        pass\n")
t0 = time.time()
while time.time() - t0 < 20:
    rt.step()
    c = rt.procs.live.get(pid)
    if c is not None and c.st == 3:   # SIGSTOPped right now
        print(c.proc.pid, flush=True)
        os._exit(0)                   # the kernel dies without cleaning up
"""


def test_children_die_with_the_kernel_even_when_stopped():
    import subprocess
    root = os.path.dirname(os.path.dirname(HERE))
    src = ORPHAN % (os.path.join(root, "tests", "kernel"), root)
    p = subprocess.run([sys.executable, "-c", src], capture_output=True,
                       text=True, timeout=60)
    ospid = int(p.stdout.split()[0])
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        try:
            os.kill(ospid, 0)
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(ospid, signal.SIGKILL)
        raise AssertionError("child %d outlived its kernel" % ospid)


PARITY2 = """
async def main(rvm):
    out = []
    o = await rvm.handle("out")
    me = await rvm.handle("self")
    for call in (lambda: rvm.recv(me, 0), lambda: rvm.recv(me, 30),
                 lambda: rvm.spawn("kid"), lambda: rvm.spawn(5),
                 lambda: rvm.sleep_ms(-1), lambda: rvm.lease("nodev", 10)):
        try:
            out.append(await call())
        except Exception as e:
            out.append((type(e).__name__,) + e.args)
    await rvm.send(me, b"to myself")
    out.append(await rvm.recv(me, 0))
    n = 0
    try:
        while True:                 # message quota: 4 per epoch
            await rvm.send(me, b"q")
            await rvm.recv(me, 0)
            n += 1
    except Exception as e:
        out.append((n,) + e.args)
    await rvm.send(o, repr(out).encode())
"""


def _parity2(isolation):
    lim = {"partitions": 8, "caps_per_partition": 16, "queue_depth": 8,
           "payload_max": 4096, "arena": 1 << 16, "graph_nodes": 8}
    if isolation == "process":
        pf, k, rt = make(limits=lim)
    else:
        pf, k, rt = ak.make(ak.profile(limits=lim), mem=True, step_us=200)
    rt.add_bundle("kid", ak.pack("kid", "async def main(rvm):\n"
                                 "    await rvm.exit(3)\n"))
    pid = ak.load(rt, "p2", PARITY2, {"spawn": True, "quota": {"msgs": 4}})
    h = rt.k.chan_create(pid, 8)
    rt.set_handle(pid, "self", h)
    rd = observer(rt, pid)
    got = []

    def done():
        r = rd()
        if type(r) is tuple:
            got.append(r)
        return got
    run_until(rt, done, 60)
    thr = [r for r in recs(rt, kinds.QUOTA_THROTTLE) if r[6] == pid]
    kids = [r[7] for r in recs(rt, kinds.AGENT_EXIT) if r[6] != pid]
    spawned = [r[6] for r in recs(rt, kinds.PROC_SPAWN)]
    ak.done(rt)
    return got[0], bool(thr), kids, spawned


def test_blocking_timeouts_spawn_and_quota_alike_in_both_modes():
    a = _parity2("inprocess")
    b = _parity2("process")
    assert a[0][1] == b[0][1], (a[0][1], b[0][1])
    assert b"ETIMEOUT" in a[0][1] and b"EEMPTY" in a[0][1]
    assert b"EQUOTA" in a[0][1]
    assert a[1] and b[1]                  # throttled in both
    assert a[2] == b[2] == [3]            # the spawned child ran and exited
    assert len(b[3]) == 2 and not a[3]    # ... in its own process


def _host_supports():
    """What this Linux offers an unprivileged process, probed here (in a
    throwaway child, so this test process is not changed)."""
    import subprocess
    probe = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ll = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
ns = libc.unshare(0x10000000 | 0x40000000) == 0
sc = any(l.startswith("Seccomp:") for l in open("/proc/self/status"))
print(int(ll), int(ns), int(sc))
"""
    out = subprocess.run([sys.executable, "-I", "-c", probe],
                         capture_output=True, text=True).stdout.split()
    ll, ns, sc = (int(x) for x in out)
    want = PC.C_RLIMITS | PC.C_NO_NEW_PRIVS
    if ns:
        want |= PC.C_NETNS
    if ll >= 1:
        want |= PC.C_LANDLOCK
    if ll >= 6:
        want |= PC.C_LANDLOCK_SCOPE
    if sc:
        want |= PC.C_SECCOMP
    return want


def test_children_get_every_confinement_the_host_offers():
    want = _host_supports()
    pf, k, rt = make()
    v = ak.load(rt, "idle", SLEEPER)
    run_until(rt, lambda: alive(rt, v))
    got = [r for r in recs(rt, kinds.PROC_SPAWN) if r[6] == v][0][8]
    assert got & want == want, (got, want)
    ak.done(rt)


def test_a_child_that_cannot_start_is_an_agent_fault():
    pf, k, rt = make({"python": "/nonexistent/python3"})
    v = ak.load(rt, "nostart", SLEEPER)
    assert type(v) is int
    run_until(rt, lambda: faults_of(rt, v))
    r = faults_of(rt, v)[0]
    assert r[7] == PP.R_START and r[4] & kinds.F_DENIED
    assert any(x[6] == v for x in recs(rt, kinds.FAULT_F1_RESTART))
    assert not rt.procs.live and rt.check_invariants() == 0
    ak.done(rt)
