# Red team: hostile agents against the trust boundary (docs/agents.md,
# threat model), on both runtimes, loaded WITHOUT the host verifier (the
# kernel must hold on its own). Every attack runs next to a victim agent
# that loops sending itself numbered messages over its own channel. Each
# test checks, through _attack():
#   * the attack got nothing: whatever the attacker collected in FOUND holds
#     no kernel object, no module, no kernel module's dict or function, no
#     device key, no other partition's objects or data;
#   * the victim kept running, unfaulted, its messages intact;
#   * the kernel kept running (stopped by the run limit, not by F4);
#   * the log's hash chain verifies, and every denied record and every
#     fault/exit record names the attacker, never the victim.
# Attacks that only CPython's object model allows (__closure__, frames,
# __subclasses__) are outside this suite: on CPython the boundary for
# untrusted code is the verifier and OS processes (docs/agents.md).
import kt
import agentkit as K
from rvm_mp import errors, kinds
from rvm_mp.compat import IS_MICROPYTHON
from rvm_mp.witness import chain_link, genesis_link, unpack

VICTIM = """
N = [0]
BAD = []
async def main(rvm):
    h = await rvm.handle("loop")
    i = 0
    while True:
        i += 1
        msg = ("v" + str(i)).encode()
        await rvm.send(h, msg)
        src, got = await rvm.recv(h)
        if got != msg or src != rvm.pid:
            BAD.append(got)
        N[0] += 1
        await rvm.yield_()
        await rvm.sleep_ms(5)
"""

PRELUDE = """
FOUND = []
CALLED = []
def grab(f):
    try:
        x = f()
    except Exception:
        return None
    FOUND.append(x)
    return x
def grab_all(d):
    try:
        for v in list(d.values()):
            FOUND.append(v)
    except Exception:
        pass
"""


def _forbidden(k, rt, pf, vt):
    import sys
    ids = [k, rt, pf, rt.gate, k.log, k.gate, k.caps, k.parts, k.leases,
           rt.sched, rt.faults, vt, vt.rvm, vt.req, vt.globals, rt.handles,
           rt.bundles, sys]
    try:
        import builtins
        ids.append(builtins)
        ids.append(builtins.__dict__)
    except ImportError:
        pass
    for name in list(sys.modules):
        if name.startswith("rvm_mp") and name != "rvm_mp.api":
            m = sys.modules[name]
            ids.append(m)
            d = m.__dict__
            if len(d) > 2:
                ids.append(d)
    return ids


def _leaks(objs, bad, depth=0):
    """The first forbidden object reachable from objs (containers walked a
    few levels), or None."""
    if depth > 3:
        return None
    for o in objs:
        for b in bad:
            if o is b:
                return o
        if type(o).__name__ == "module":
            return o
        if type(o) is bytes and o == kt.KEY:
            return o
        if type(o) is bytes and o[:1] == b"v" and o[1:].isdigit():
            return o        # a victim's message
        try:
            g = o.__globals__
        except Exception:
            g = None
        if g is not None:
            for b in bad:
                if g is b:
                    return o    # a kernel module's function
            r = _leaks(list(g.values()), bad, depth + 1)
            if r is not None:
                return r
        t = type(o)
        if t is dict:
            r = _leaks(list(o.values()), bad, depth + 1)
        elif t is list or t is tuple:
            r = _leaks(o, bad, depth + 1)
        else:
            r = None
        if r is not None:
            return r
    return None


def _chain_ok(log):
    prev = genesis_link(kt.DEVICE_ID)
    n = 0
    for rec in log.iter_range(0):
        if rec[32:64] != chain_link(prev, rec):
            return False
        prev = rec[32:64]
        n += 1
    return n > 0


def _attack(src, ms=400, spec=None, mem=False, devices=None, after=None):
    """Run the attacker next to the victim; check the boundary held.
    Returns (attacker pid, its FOUND, its CALLED, records, rt, pf)."""
    prof = K.profile(witness={"ring": 4096, "seal_every": 0,
                              "segment_records": 64})
    pf, k, rt = K.make(prof, mem=mem)
    try:
        v = K.load(rt, "victim", VICTIM)
        assert rt.set_handle(v, "loop", k.chan_create(v)) == 256
        vt = rt.sched.task(v)
        sp = dict(spec or {})
        if devices:
            sp["devices"] = devices
        a = K.load(rt, "evil", PRELUDE + src, sp)
        found = []
        called = []
        if not errors.is_err(a):
            g = rt.sched.task(a).globals
            found = g.get("FOUND", [])
            called = g.get("CALLED", [])
        rt.run(max_ms=ms)
        assert rt.stop_reason == 1, "kernel stopped (F4)"
        assert rt.sched.task(v) is vt and vt.faults == 0 and vt.coro is not None
        assert vt.globals["N"][0] >= 10, vt.globals["N"][0]
        assert vt.globals["BAD"] == []
        at = rt.sched.task(a) if not errors.is_err(a) else None
        if at is not None and at.globals is not None:
            more = at.globals.get("FOUND", [])
            if more is not found:   # a rebuild ran the module again
                found = found + more
        leak = _leaks(found, _forbidden(k, rt, pf, vt))
        assert leak is None, "attack reached %r" % (leak,)
        recs = [unpack(r) for r in rt.log.iter_range(0)]
        for f in recs:
            if f[4] & 1:
                assert f[5] != v, "a refusal charged to the victim"
            if f[3] in (kinds.AGENT_FAULT, kinds.AGENT_EXIT,
                        kinds.FAULT_F1_RESTART, kinds.FAULT_ESCALATE,
                        kinds.PART_TERMINATE):
                assert f[6] != v, "the victim was faulted or ended"
        if after is not None:
            after(rt, k, pf, a, recs)
    finally:
        K.done(rt)
    assert _chain_ok(rt.log)
    return a, found, called, recs


def _denied(recs, a, kind=None):
    return [f for f in recs if f[4] & 1 and f[5] == a and
            (kind is None or f[3] == kind)]


def _refused(recs, a, kind):
    """Refusals of `kind` by a: the records, plus those a flood record
    counted instead (every refusal is accounted for)."""
    n = len(_denied(recs, a, kind))
    for f in recs:
        if f[3] == kinds.REFUSAL_FLOOD and f[5] == a:
            n += f[8]
    return n


# ---- 1. the import shadow ----------------------------------------------------
def test_import_function_globals_lead_nowhere():
    _attack("""
async def main(rvm):
    g = grab(lambda: __import__.__globals__)
    if g is not None:
        grab_all(g)
    await rvm.sleep_ms(1000)
""")


def test_deleted_import_shadow_exposes_only_the_hook():
    _attack("""
del __import__
async def main(rvm):
    g = grab(lambda: __import__.__globals__)
    if g is not None:
        grab_all(g)
    try:
        grab(lambda: __import__("sys"))
    except ImportError:
        pass
    await rvm.sleep_ms(1000)
""")


def test_api_functions_carry_no_kernel_builtins():
    _attack("""
async def main(rvm):
    for f in (rvm.send, rvm.yield_, rvm.now, print, __import__):
        for name in ("__builtins__", "__globals__"):
            g = grab(lambda: getattr(f, name))
            if g is not None:
                grab(lambda: g["__builtins__"])
                grab(lambda: g.get("isinstance"))
    await rvm.sleep_ms(1000)
""")


def test_print_and_shadow_globals_lead_nowhere():
    _attack("""
async def main(rvm):
    for f in (print, open, exec, eval, compile, input):
        g = grab(lambda: f.__globals__)
        if g is not None:
            grab_all(g)
    await rvm.sleep_ms(1000)
""")


# ---- 2. the kernel never runs agent code -----------------------------------
def test_exception_str_raising_systemexit_is_never_called():
    a, found, called, recs = _attack("""
class Evil(Exception):
    def __str__(self):
        CALLED.append("str")
        raise SystemExit
    def __repr__(self):
        CALLED.append("repr")
        raise SystemExit
async def main(rvm):
    await rvm.sleep_ms(20)
    raise Evil()
""")
    assert called == []
    assert [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a]


def test_exception_str_raising_valueerror_does_not_reset():
    a, found, called, recs = _attack("""
class Evil(Exception):
    def __str__(self):
        CALLED.append(1)
        raise ValueError("x")
async def main(rvm):
    raise Evil()
""")
    assert called == []


def test_len_minus_one_as_region_data_is_refused():
    a, found, called, recs = _attack("""
class L:
    def __len__(self):
        CALLED.append(1)
        return -1
async def main(rvm):
    r = await rvm.alloc(16)
    try:
        await rvm.write(r, 0, L())
    except OSError as e:
        FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", mem=True)
    assert called == [] and "EINVAL" in found


def test_bytes_subclass_payload_never_runs():
    a, found, called, recs = _attack("""
class B(bytes):
    def __len__(self):
        CALLED.append("len")
        return 1
    def __hash__(self):
        CALLED.append("hash")
        return 1
async def main(rvm):
    try:
        await rvm.send(256, B(b"abc"))
    except OSError as e:
        FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", spec={})
    assert called == []


def test_int_subclass_handle_never_runs():
    a, found, called, recs = _attack("""
class I(int):
    def __hash__(self):
        CALLED.append("hash")
        return 1
    def __eq__(self, o):
        CALLED.append("eq")
        return True
async def main(rvm):
    for call in (lambda: rvm.send(I(256), b"x"), lambda: rvm.recv(I(257), 0),
                 lambda: rvm.free(I(258)), lambda: rvm.read(I(259), 0, 1)):
        try:
            await call()
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""")
    assert called == []
    assert found.count("EBADHANDLE") == 4
    assert len(_denied(recs, a, kinds.SYSCALL_DENIED)) == 4


def test_str_subclass_with_lying_split_cannot_import():
    a, found, called, recs = _attack("""
class S(str):
    def split(self, sep=None):
        CALLED.append("split")
        return ["math"]
    def startswith(self, x):
        CALLED.append("startswith")
        return False
async def main(rvm):
    try:
        grab(lambda: __import__(S("sys")))
    except ImportError:
        pass
    await rvm.sleep_ms(1000)
""")
    assert called == []
    assert _denied(recs, a, kinds.IMPORT_DENIED)


def test_coroutine_finalizer_runs_gated_after_kill():
    def kill(rt, k, pf, a, recs):
        pass
    a, found, called, recs = _attack("""
async def main(rvm):
    try:
        while True:
            await rvm.sleep_ms(10)
    finally:
        try:
            FOUND.append(__import__("sys"))
        except ImportError:
            CALLED.append("gated")
""", ms=100)
    # K.done closed the attacker's coroutine: its finally ran, gated
    assert called == ["gated"]


def test_object_with_del_passed_as_argument():
    _attack("""
class D:
    def __del__(self):
        try:
            FOUND.append(__import__("sys"))
        except ImportError:
            pass
async def main(rvm):
    r = await rvm.alloc(8) if False else 0
    for i in range(5):
        try:
            await rvm.send(256, D())
        except OSError:
            pass
    await rvm.sleep_ms(1000)
""")


def test_main_that_is_not_a_coroutine():
    a, found, called, recs = _attack("""
class Fake:
    def send(self, v):
        CALLED.append("send")
        return None
    def throw(self, *a):
        CALLED.append("throw")
    def close(self):
        CALLED.append("close")
def main(rvm):
    return Fake()
""")
    assert called == []


# ---- 3. shared mutable objects -----------------------------------------------
def test_patching_own_api_class_does_not_touch_the_victim():
    a, found, called, recs = _attack("""
async def main(rvm):
    C = type(rvm)
    real = C.send
    def spy(self, h, payload):
        FOUND.append(payload)
        return real(self, h, payload)
    C.send = spy
    C.recv = None
    C.yield_ = None
    await rvm.sleep_ms(1000)
""")


def test_patching_the_awaitable_class_only_hurts_the_attacker():
    a, found, called, recs = _attack("""
async def main(rvm):
    aw = rvm.now()
    T = type(aw)
    def fake(self):
        return [19, 0, None, None, 0, None]
    T.__next__ = fake
    T.send = lambda self, v: [19, 0, None, None, 0, None]
    try:
        await rvm.now()
    except OSError:
        pass
    await rvm.sleep_ms(1000)
""")


def test_api_class_dict_walk():
    _attack("""
async def main(rvm):
    for T in (type(rvm), type(rvm.now())):
        d = grab(lambda: T.__dict__)
        if d is not None:
            for v in list(d.values()):
                FOUND.append(v)
                g = grab(lambda: v.__globals__)
                if g is not None:
                    grab_all(g)
    try:
        await rvm.now()
    except Exception:
        pass
    await rvm.sleep_ms(1000)
""")


def test_filling_the_api_module_dict_changes_nothing():
    # names dropped into the (empty) module dict the API functions see
    _attack("""
async def main(rvm):
    g = rvm.send.__globals__
    g["StopIteration"] = ValueError
    g["type"] = None
    g["dict"] = None
    g["OSError"] = None
    await rvm.sleep_ms(1000)
""")


def test_errors_are_fresh_builtin_objects():
    a, found, called, recs = _attack("""
async def main(rvm):
    errs = []
    for i in range(3):
        try:
            await rvm.handle("nope")
        except OSError as e:
            errs.append(e)
    FOUND.append(isinstance(errs[0], OSError))
    FOUND.append(errs[0] is errs[1])
    FOUND.append(errs[0].args)
    try:
        errs[0].args = (1, "EQUOTA")
    except Exception:
        pass
    try:
        grab(lambda: type(errs[0]).__init__.__globals__)
    except Exception:
        pass
    await rvm.sleep_ms(1000)
""")
    assert found[0] is True and found[1] is False
    assert found[2] == (errors.EBADHANDLE.code, "EBADHANDLE")
    assert errors.EBADHANDLE.code == 1 and errors.EBADHANDLE.name == "EBADHANDLE"


def test_refusal_loop_does_not_grow_the_heap():
    import gc
    a, found, called, recs = _attack("""
async def main(rvm):
    for i in range(2000):
        try:
            await rvm.handle("nope")
        except OSError:
            pass
        if i % 50 == 0:
            await rvm.sleep_ms(50)
    await rvm.sleep_ms(10000)
""", ms=2500)
    gc.collect()


# ---- 4. device access --------------------------------------------------------
def test_device_handle_leads_nowhere():
    a, found, called, recs = _attack("""
async def main(rvm):
    d = await rvm.lease("relay", 1000)
    FOUND.append(d.lease_id)
    grab_all(d.__dict__)
    for T in (type(d),):
        dd = grab(lambda: T.__dict__)
        if dd is not None:
            for v in list(dd.values()):
                FOUND.append(v)
                g = grab(lambda: v.__globals__)
                if g is not None:
                    grab_all(g)
    await d.on()
    await rvm.sleep_ms(1000)
""", devices=["relay"])
    assert type(found[0]) is int


def test_device_use_after_expiry_is_refused_and_witnessed():
    def after(rt, k, pf, a, recs):
        assert len(_denied(recs, a, kinds.LEASE_DENIED)) >= 1
    a, found, called, recs = _attack("""
async def main(rvm):
    d = await rvm.lease("relay", 20)
    await d.on()
    await rvm.sleep_ms(60)
    try:
        await d.off()
        FOUND.append("used after expiry")
    except OSError as e:
        FOUND.append(e.args[1])
    d.lease_id = d.lease_id + 1
    try:
        await d.on()
    except OSError as e:
        FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", devices=["relay"], after=after)
    assert "used after expiry" not in found
    assert found[0] in ("EEXPIRED", "ESTALE")


def test_lease_without_capability_is_refused():
    a, found, called, recs = _attack("""
async def main(rvm):
    for name in ("relay", "temp", "nope", "x" * 40):
        try:
            await rvm.lease(name, 1000)
            FOUND.append("leased")
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""")
    assert "leased" not in found


def test_a_lease_does_not_open_machine_os_io():
    a, found, called, recs = _attack("""
async def main(rvm):
    d = await rvm.lease("relay", 100000)
    for m in ("machine", "os", "io", "uos", "vfs", "socket"):
        try:
            FOUND.append(__import__(m))
        except ImportError:
            pass
    await rvm.sleep_ms(1000)
""", devices=["relay"])
    assert len(_denied(recs, a, kinds.IMPORT_DENIED)) == 6


def test_device_call_with_hostile_arguments():
    a, found, called, recs = _attack("""
class V(int):
    def __bool__(self):
        CALLED.append(1)
        return True
async def main(rvm):
    d = await rvm.lease("relay", 100000)
    for args in ((V(1),), ([1],), (None,), (1, 2, 3, 4, 5)):
        try:
            await d.call("set", *args)
        except OSError as e:
            FOUND.append(e.args[1])
    for op in ("__init__", "nope", 5, "x" * 40):
        try:
            await d.call(op)
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", devices=["relay"])
    assert called == [] and len(found) == 8


# ---- 5. builtins --------------------------------------------------------------
def test_deleted_keyboardinterrupt_raises_an_ordinary_fault():
    a, found, called, recs = _attack("""
del KeyboardInterrupt
async def main(rvm):
    await rvm.sleep_ms(20)
    raise KeyboardInterrupt
""")
    assert [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a]


def test_deleted_shadows_inside_a_function_reach_nothing():
    def after(rt, k, pf, a, recs):
        assert b"\x02frame" in rt.outlog.get(a, b"")   # its log channel
    a, found, called, recs = _attack("""
def widen():
    global open, print, exec, eval, compile
    for n in ("open", "print", "exec", "eval", "compile"):
        try:
            del globals_()[n]
        except Exception:
            pass
    try:
        del open
    except Exception:
        pass
    try:
        del print
    except Exception:
        pass
    try:
        del exec
    except Exception:
        pass
def globals_():
    return {}
async def main(rvm):
    widen()
    for f in (lambda: open("rvm_key.bin", "rb").read(),
              lambda: open("x", "w"), lambda: exec("FOUND.append(1)"),
              lambda: eval("1")):
        try:
            FOUND.append(f())
        except ImportError:
            CALLED.append("refused")
    print("\x02frame")
    await rvm.sleep_ms(1000)
""", after=after)
    assert called == ["refused"] * 4
    assert found == []


def test_systemexit_is_an_agent_fault():
    a, found, called, recs = _attack("""
async def main(rvm):
    await rvm.sleep_ms(20)
    raise SystemExit(3)
""")
    assert [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a]


def test_shadowed_builtins_refuse():
    a, found, called, recs = _attack("""
async def main(rvm):
    for f in (lambda: open("x", "w"), lambda: exec("1"), lambda: eval("1"),
              lambda: compile("1", "x", "exec"), lambda: input()):
        try:
            f()
            FOUND.append("ran")
        except ImportError:
            pass
    await rvm.sleep_ms(1000)
""")
    assert "ran" not in found


def test_escape_imports_refused_and_witnessed_as_the_agent():
    a, found, called, recs = _attack("""
async def main(rvm):
    for m in ("sys", "builtins", "gc", "micropython", "rvm_mp",
              "rvm_mp.kernel", "_thread", "time", "uctypes"):
        try:
            FOUND.append(__import__(m))
        except ImportError:
            pass
    try:
        from . import kernel
        FOUND.append(kernel)
    except ImportError:
        pass
    await rvm.sleep_ms(1000)
""")
    assert len(_denied(recs, a, kinds.IMPORT_DENIED)) == 10


# ---- 6. every refusal witnessed as the agent ------------------------------
def test_refusals_that_left_no_record_now_do():
    a, found, called, recs = _attack("""
async def main(rvm):
    calls = (lambda: rvm.console_write(b"x"), lambda: rvm.console_read(4),
             lambda: rvm.wait_input(0), lambda: rvm.handle("unknown"),
             lambda: rvm.sleep_ms(-1), lambda: rvm.checkpoint([1]),
             lambda: rvm.spawn(5))
    for c in calls:
        try:
            await c()
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""")
    assert len(found) == 7
    assert len(_denied(recs, a, kinds.SYSCALL_DENIED)) == 7


def test_awaiting_a_foreign_object_is_refused():
    a, found, called, recs = _attack("""
class Fake:
    def __await__(self):
        yield [18, "ps", (), None, 0, None]
    __iter__ = __await__
async def main(rvm):
    try:
        await Fake()
    except OSError as e:
        FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""")
    assert found == ["EINVAL"]
    assert _denied(recs, a, kinds.SYSCALL_DENIED)


def test_agent_print_goes_to_its_log_channel_escaped():
    def after(rt, k, pf, a, recs):
        assert b"\x02RVM" in rt.outlog.get(a, b"")
        from rvm_mp.control import _escape
        assert "\x02" not in _escape(rt.outlog[a])
        out = [f for f in recs if f[3] == kinds.AGENT_OUTPUT]
        assert out and all(f[5] == a for f in out)
    _attack("""
async def main(rvm):
    print("\\x02RVM forged frame \\x03", 1, 2)
    await rvm.sleep_ms(1000)
""", after=after)


def _last_slice_kept(tag):
    def after(rt, k, pf, a, recs):
        assert tag in rt.outlog.get(a, b"")
        out = [f for f in recs if f[3] == kinds.AGENT_OUTPUT]
        assert out and all(f[5] == a for f in out)
    return after


def test_output_of_the_last_slice_is_kept():
    # an agent that prints and returns, or prints and fails, in one slice:
    # its text still reaches its log channel and is witnessed
    _attack("""
async def main(rvm):
    print("bye-now")
""", after=_last_slice_kept(b"bye-now"))
    _attack("""
async def main(rvm):
    print("boom-now")
    raise ValueError
""", after=_last_slice_kept(b"boom-now"))


# ---- 7. malformed arguments ---------------------------------------------------
def test_malformed_region_arguments_are_refused():
    a, found, called, recs = _attack("""
import array
async def main(rvm):
    r = await rvm.alloc(16)
    bad = ("str", [1, 2], array.array("I", [1]), memoryview(b"ab"),
           memoryview(array.array("I", [1, 2])), None, 3)
    for d in bad:
        try:
            await rvm.write(r, 0, d)
            FOUND.append("wrote")
        except OSError as e:
            pass
    for off, n in ((-1, 1), (0, -1), (1 << 62, 1), (0, "1"), (0.5, 1)):
        try:
            await rvm.read(r, off, n)
            FOUND.append("read")
        except OSError:
            pass
    for size in (0, -5, 1 << 62, "8", 2.0):
        try:
            await rvm.alloc(size)
            FOUND.append("alloc")
        except OSError:
            pass
    await rvm.write(r, 0, bytearray(b"ok"))
    FOUND.append(await rvm.read(r, 0, 2))
    await rvm.sleep_ms(1000)
""", mem=True)
    assert found == [b"ok"]
    assert _refused(recs, a, kinds.SYSCALL_DENIED) == 17


def test_malformed_ipc_arguments_are_refused():
    a, found, called, recs = _attack("""
import array
async def main(rvm):
    for h, p in (([1], b"x"), ({}, b"x"), (None, b"x"), (-1, b"x"),
                 (1 << 62, b"x"), (256, "str"), (256, [1]),
                 (256, memoryview(array.array("I", [1, 2]))), (256.0, b"x")):
        try:
            await rvm.send(h, p)
            FOUND.append("sent")
        except OSError:
            pass
    for t in ("1", 1 << 62, -2, None):
        try:
            await rvm.recv(256, t)
        except OSError:
            pass
    await rvm.sleep_ms(1000)
""")
    assert "sent" not in found
    assert _refused(recs, a, kinds.SYSCALL_DENIED) == 13


def test_huge_and_negative_sleeps_are_refused():
    a, found, called, recs = _attack("""
async def main(rvm):
    for ms in (1 << 62, -1, 1 << 30, "5", 1.5, None, True + 0.5):
        try:
            await rvm.sleep_ms(ms)
            FOUND.append("slept")
        except OSError:
            pass
    await rvm.sleep_ms(1000)
""")
    assert "slept" not in found


def test_spawn_with_nul_or_path_names_is_refused():
    def after(rt, k, pf, a, recs):
        assert len(rt.measured) == 2   # only victim and evil were measured
    a, found, called, recs = _attack("""
async def main(rvm):
    for n in ("../../../../etc/passwd\\x00", "a\\x00b", "../x", "A", "",
              "x" * 33, "sens or", "\\u00e9t\\u00e9", 7):
        try:
            await rvm.spawn(n)
            FOUND.append("spawned")
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", spec={"spawn": True}, after=after)
    assert "spawned" not in found
    assert set(found) <= {"EINVAL", "ENOENT"}


def test_spawn_without_the_right_costs_no_proof():
    def after(rt, k, pf, a, recs):
        assert len(rt.measured) == 2
        assert not [f for f in recs if f[3] == kinds.PROOF_P3 and f[5] == a]
    a, found, called, recs = _attack("""
async def main(rvm):
    for i in range(200):
        try:
            await rvm.spawn("victim")
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", after=after)
    assert set(found) == {"ERIGHTS"}


def test_checkpoint_arguments():
    a, found, called, recs = _attack("""
async def main(rvm):
    for st in ([1], "s", memoryview(b"x"), b"x" * 5000):
        try:
            await rvm.checkpoint(st)
            FOUND.append("ok")
        except OSError as e:
            FOUND.append(e.args[1])
    await rvm.sleep_ms(1000)
""", mem=True)
    assert found == ["EINVAL"] * 4


def test_exit_with_a_hostile_status():
    a, found, called, recs = _attack("""
class S(int):
    def __index__(self):
        CALLED.append(1)
        return 5
async def main(rvm):
    await rvm.exit(S(3))
""")
    ex = [f for f in recs if f[3] == kinds.AGENT_EXIT and f[6] == a]
    assert ex and ex[0][7] == 0 and called == []


# ---- 8. floods -----------------------------------------------------------------
def test_refusal_flood_is_coalesced_charged_and_faulted():
    def after(rt, k, pf, a, recs):
        fl = [f for f in recs if f[3] == kinds.REFUSAL_FLOOD and f[5] == a]
        assert fl and fl[0][8] > 0        # refusals were coalesced
        assert any(f[10] == 1 for f in fl)  # and the agent was faulted
        assert [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a
                and f[8] == errors.EQUOTA.code]
        # the log did not grow with the flood
        assert len(_denied(recs, a)) < 200
    _attack("""
async def main(rvm):
    while True:
        try:
            await rvm.send(999, b"x")
        except OSError:
            pass
""", ms=600, after=after)


def test_handle_guessing_reaches_no_channel():
    a, found, called, recs = _attack("""
async def main(rvm):
    rvm.pid = 1
    for h in range(1, 1200):
        try:
            FOUND.append(await rvm.recv(h, 0))
        except OSError:
            pass
        try:
            await rvm.send(h, b"x")
            FOUND.append(h)
        except OSError:
            pass
    await rvm.sleep_ms(1000)
""", ms=800)
    assert not [x for x in found if type(x) is tuple]


# ---- 9. faults stay agent faults -------------------------------------------
def test_deep_recursion_is_an_agent_fault():
    a, found, called, recs = _attack("""
def r(n):
    return r(n + 1) + 1
async def main(rvm):
    await rvm.sleep_ms(10)
    r(0)
""")
    assert [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a]


def test_memory_hog_is_an_agent_fault():
    a, found, called, recs = _attack("""
async def main(rvm):
    await rvm.sleep_ms(10)
    x = bytearray(1 << 40)
""")
    af = [f for f in recs if f[3] == kinds.AGENT_FAULT and f[6] == a]
    assert af and af[0][8] == errors.ENOMEM.code


def test_ignoring_generatorexit_on_kill():
    def after(rt, k, pf, a, recs):
        pass
    pf, k, rt = K.make()
    try:
        v = K.load(rt, "victim", VICTIM)
        rt.set_handle(v, "loop", k.chan_create(v))
        a = K.load(rt, "evil", """
async def main(rvm):
    while True:
        try:
            await rvm.sleep_ms(5)
        except BaseException:
            pass
""")
        rt.run(max_ms=100)
        assert k.part_terminate(0, a, 0) == 0
        rt.run(max_ms=200)
        assert rt.stop_reason == 1
        assert rt.sched.task(a) is None
        assert rt.sched.task(v).globals["N"][0] >= 10
    finally:
        K.done(rt)


def test_stopiteration_and_generator_tricks():
    _attack("""
async def main(rvm):
    await rvm.sleep_ms(10)
    raise StopIteration
""")


# ---- 10. the console ----------------------------------------------------------
def _ctl():
    from rvm_mp import control
    from rvm_mp.hal import MemConsole
    pf, k, rt = K.make()
    con = MemConsole()
    pf.attach_console(con)
    ctl = control.Control(k, pf, runtime=rt, board="test-board")
    rt.control = ctl
    return pf, k, rt, ctl, con


def test_console_cannot_kill_or_suspend_itself():
    pf, k, rt, ctl, con = _ctl()
    try:
        assert ctl.execute("kill %d" % ctl.pid) is errors.ERIGHTS
        assert ctl.execute("suspend %d" % ctl.pid) is errors.ERIGHTS
        assert k.part_state(ctl.pid) == 1
        recs = K.recs(rt.log, kinds.OP_DENIED)
        assert len(recs) == 2 and recs[0][5] == ctl.pid
    finally:
        K.done(rt)


def test_console_spawn_names_never_form_a_path():
    pf, k, rt, ctl, con = _ctl()
    try:
        n0 = len(k.part_list())
        for name in ("../../../../etc/passwd", "a/b", "x\x00y", "A", "\u00e9"):
            assert errors.is_err(ctl.execute("spawn " + name))
        assert len(k.part_list()) == n0
        rej = K.recs(rt.log, kinds.BUNDLE_REJECT)
        assert len(rej) == 5 and all(f[8] == errors.EINVAL.code for f in rej)
    finally:
        K.done(rt)


def test_console_non_ascii_digits_are_refused_not_raised():
    pf, k, rt, ctl, con = _ctl()
    try:
        for line in ("kill \u00b2", "kill \u0661", "suspend \uff11",
                     "caps \u00b3", "log \u0662", "grant \u00b2 \u00b2"):
            r = ctl.execute(line, 1, True)
            assert errors.is_err(r)
        assert k.part_state(ctl.pid) == 1
    finally:
        K.done(rt)


# ---- fuzz: every agent call, every console command ---------------------------
FUZZ = """
class I(int):
    def __hash__(self):
        CALLED.append("I")
        return 1
class S(str):
    def __len__(self):
        CALLED.append("S")
        return 1
class B(bytes):
    def __len__(self):
        CALLED.append("B")
        return 1
class O:
    def __eq__(self, o):
        CALLED.append("O")
        return True
    def __hash__(self):
        CALLED.append("O")
        return 1
    def __index__(self):
        CALLED.append("O")
        return 1
import array
VALUES = (None, True, False, -1, 0, 1, 255, 256, 65536, 1 << 29, 1 << 30,
          1 << 62, -(1 << 62), 1 << 100, 1.5, "", "\\x00", "a\\x00b",
          "\\u00e9", "\\u00b2", "\\u0661\\u0662", "x" * 300, b"", b"\\x00",
          b"x" * 5000, bytearray(3), memoryview(b"ab"),
          array.array("I", [1, 2]), [1], (1,), {}, set(), object(), I(256),
          S("relay"), B(b"abc"), O())
NCALLS = [0]
async def main(rvm):
    r = await rvm.alloc(16)
    d = await rvm.lease("relay", 100000)
    forms = (
        lambda v: rvm.sleep_ms(-v if type(v) is int and 300 < v < (1 << 29)
                               else v),
        lambda v: rvm.handle(v),
        lambda v: rvm.send(v, b"x"), lambda v: rvm.send(256, v),
        lambda v: rvm.recv(v, 0), lambda v: rvm.recv(256, v),
        lambda v: rvm.lease(v, 10), lambda v: rvm.lease("relay", v),
        lambda v: rvm.lease("temp", 10, v), lambda v: rvm.alloc(v),
        lambda v: rvm.read(v, 0, 1), lambda v: rvm.read(r, v, 1),
        lambda v: rvm.read(r, 0, v), lambda v: rvm.write(v, 0, b"x"),
        lambda v: rvm.write(r, v, b"x"), lambda v: rvm.write(r, 0, v),
        lambda v: rvm.checkpoint(v), lambda v: rvm.spawn(v),
        lambda v: rvm.wait_input(v), lambda v: rvm.console_read(v),
        lambda v: rvm.console_write(v), lambda v: d.call(v),
        lambda v: d.call("set", v), lambda v: d.set(v), lambda v: d.write(v),
        lambda v: d.read(v), lambda v: rvm.device(v).on(),
        lambda v: rvm.call(v, v, v, v))
    for f in forms:
        for v in VALUES:
            try:
                x = await f(v)
                if type(x) not in (int, bytes, tuple, bool, type(None)):
                    FOUND.append(x)
            except OSError:
                pass
            NCALLS[0] += 1
        await rvm.sleep_ms(1)
    FOUND.append("done")
    await rvm.sleep_ms(100000)
"""


def test_fuzz_every_agent_call_with_hostile_values():
    prof = K.profile(witness={"ring": 4096, "seal_every": 0,
                              "segment_records": 64})
    prof["limits"]["refusals_per_epoch"] = 1 << 20   # no flood fault here
    pf, k, rt = K.make(prof, mem=True)
    try:
        v = K.load(rt, "victim", VICTIM)
        rt.set_handle(v, "loop", k.chan_create(v))
        a = K.load(rt, "evil", PRELUDE + FUZZ, {"devices": ["relay"]})
        g = rt.sched.task(a).globals
        rt.run(max_ms=3000)
        assert rt.stop_reason == 1
        assert g["CALLED"] == []
        assert g["FOUND"] == ["done"], g["FOUND"][:3]
        assert g["NCALLS"][0] == 28 * 37
        vt = rt.sched.task(v)
        assert vt.faults == 0 and vt.globals["N"][0] >= 10
        assert rt.sched.task(a).faults == 0
        for r in rt.log.iter_range(0):
            f = unpack(r)
            if f[4] & 1:
                assert f[5] == a
    finally:
        K.done(rt)
    assert _chain_ok(rt.log)


def test_fuzz_every_console_command_text_and_frames():
    from rvm_mp import control, frame
    pf, k, rt, ctl, con = _ctl()
    try:
        vals = ("", "0", "1", "-1", "99999", "4096", "65535", "1" * 40,
                "0x10", "\u00b2", "\u0661", "\uff11", "\x00", "a\x00b", "x" * 200,
                "\u00e9t\u00e9", "../../etc/passwd", "%s", "{}", "1.5")
        n = 0
        for name in control.CMDS[1:]:
            if name in ("reboot",):
                continue
            for v in vals:
                for line in (name + " " + v, name + " " + v + " " + v,
                             name + " " + v + " " + v + " " + v):
                    r = ctl.execute(line, n & 0xFFFF, bool(n & 1))
                    n += 1
                    # answered or refused, never raised
                    assert r is None or errors.is_err(r) or type(r) in (
                        dict, list, tuple, int, bytes, str, bool)
        # the same through the byte stream: frames and junk
        for i in range(200):
            body = ("kill \u00b2 %d" % i).encode()
            con.feed(frame.encode(frame.T_REQ, i, body))
            con.feed(bytes([(i * 37 + j) & 0xFF for j in range(i % 17)]))
            ctl.poll()
        assert k.part_state(ctl.pid) == 1
        assert n > 1000
    finally:
        K.done(rt)


def test_the_awaitable_and_its_factory_lead_only_to_the_agents_own_objects():
    # what an agent reaches from its awaitable: its own box, its own
    # StopIteration, the Device factory closure; calling that factory makes
    # one more class of its own, whose dict holds the same box again
    a, found, called, recs = _attack("""
async def main(rvm):
    q = rvm.q
    for x in (q, q.b, q.s, q.SI, q.mk, type(q), type(rvm).__dict__):
        FOUND.append(x)
    D = q.mk()
    FOUND.append(D)
    grab_all(D.__dict__)
    d = D(99, "relay")
    try:
        await d.on()
    except OSError as e:
        FOUND.append(e.args[1])
    g = grab(lambda: q.mk.__globals__)
    if g is not None:
        grab_all(g)
    await rvm.sleep_ms(1000)
""", devices=["relay"])
    assert "ESTALE" in found
