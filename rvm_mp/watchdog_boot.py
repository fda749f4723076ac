# Watchdog, the boot half: witness a watchdog reset of the last boot, count
# the culprit's strike (wdt.json), hold agents at the strike limit, start
# the timer. Imported by boot (phase 5) only when the profile enables the
# watchdog and the platform has one, and dropped after phase 6
# (Watchdog.booted): the running kernel keeps only watchdog.py.
from . import errors
from . import kinds
from . import faults as F
from .watchdog import Watchdog, STRIKES_FILE, HELD


def _load(wd):
    try:
        raw = wd.pf.read_file(STRIKES_FILE)
        if raw:
            import json
            d = json.loads(raw)
            if type(d) is dict:
                return d
    except (OSError, ValueError):
        pass
    return {}


def _save(wd, st):
    import json
    try:
        wd.pf.write_file(STRIKES_FILE, json.dumps(st).encode())
    except OSError:
        pass   # a full flash: the strike is witnessed all the same


def _bundle_h(wd, rt, name):
    data = None
    b = wd.bundles
    if b is not None and name in b:
        data = b[name]
    else:
        try:
            data = rt.bundle_data(name)
        except Exception:
            data = None
    return F.h32(data) if data else 0


def _name(rt, pid, h16):
    """The agent name the word's hash names: the task with that pid
    first, then every name this board knows (profile, bundles on fs)."""
    cands = []
    for t in rt.sched.tasks:
        if t.pid == pid:
            cands.insert(0, t.name)
        else:
            cands.append(t.name)
    for a in rt.profile.get("agents", ()):
        cands.append(a.get("name") or "")
    if rt.fs is not None:
        import os
        try:
            for n in os.listdir(rt.fs + "/agents"):
                if n.endswith(".rvmb"):
                    cands.append(n[:-5])
        except OSError:
            pass
    for n in cands:
        if n and (F.h32(n) & 0xFFFF) == h16:
            return n
    return None


def witness(wd, rt):
    """Witness a watchdog reset of the last boot and count the
    culprit's strike. Runs once, before any agent code runs."""
    hw = wd.hw
    log = wd.log
    try:
        was = hw.cause()
        w = hw.scratch() if was else 0
        hw.clear_boot()
    except Exception:
        was = False
        w = 0
    st = _load(wd)
    dirty = False
    if was:
        pid = 0
        name = None
        n = 0
        if w >> 28 == 2:
            pid = w & 0xFFF
            name = _name(rt, pid, (w >> 12) & 0xFFFF)
        if name is not None:
            h = _bundle_h(wd, rt, name)
            e = st.get(name)
            prev = e[0] if type(e) is list and len(e) == 2 and \
                type(e[0]) is int and e[1] == h else 0
            n = prev + 1
            st[name] = [n, h]
            dirty = True
        wd.culprit = (pid, name, n)
        code = errors.ETIMEOUT.code
        from .hal import EXIT_WDT
        log.emit(kinds.FAULT_F4_RESET, 0, 0, EXIT_WDT, code, pid, n)
        if pid:
            log.emit(kinds.AGENT_FAULT, 0, pid, 0, code, EXIT_WDT, n)
    wd.st = st
    if dirty:
        _save(wd, st)


def holds(wd, name, data):
    """Boot asks before it loads agent `name` from bundle `data`: True
    when its watchdog strikes reached the limit (its code must not run
    at all: a module top level that spins would reset the board at
    every boot). Witnessed; a changed bundle clears the strikes."""
    st = wd.st
    e = st.get(name)
    if type(e) is not list or len(e) != 2 or type(e[0]) is not int:
        return False
    h = F.h32(data)
    if e[1] != h:
        del st[name]   # a new bundle: it starts with no strikes
        _save(wd, st)
        return False
    if e[0] < wd.strikes:
        return False
    log = wd.log
    code = errors.ETIMEOUT.code
    log.emit(kinds.FAULT_ESCALATE, 0, 0, F.F4, HELD, code, e[0])
    from .bundle import key_id
    log.deny(kinds.BUNDLE_REJECT, 0, 0, code, 0, h, len(data),
             key_id(wd.pf.device_key()))
    wd.held.append(name)
    return True


def attach(rt, hw, spec, bundles=None):
    """Boot's hook (phase 5, before any agent code runs): witness the last
    reset, count the strike, give the guard its marker and the loop its
    feeder, start the timer. `bundles`: boot's {name: bytes}, if any."""
    wd = Watchdog(hw, spec, rt.pf, rt.log)
    wd.bundles = bundles
    witness(wd, rt)
    rt.wdog = wd
    g = rt.guard
    if g is not None:
        g.wd = wd
        g.wnames = wd.names
        g.wmark = hw.mark
    wd.start()
    return wd
