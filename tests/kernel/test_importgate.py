# Agent import gate: pure modules pass, hardware modules never (devices are
# reached through leases and kernel calls),
# kernel internals and escape hatches never; refusals witnessed.
import kt
from rvm_mp import kinds, errors
from rvm_mp.importgate import ImportGate
from rvm_mp.witness import WitnessLog, unpack

HEAP = "256K"


def _gate(leases=None):
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=32)
    held = leases if leases is not None else {}
    g = ImportGate(log, lease_check=lambda pid: held.get(pid, False))
    g.install()
    return g, log, held


def _run(g, pid, src):
    glb = g.agent_globals("agent%d" % pid)
    g.active = pid
    try:
        g.real("exec", exec)(src, glb)  # builtins.exec refuses agents
    finally:
        g.active = 0
    return glb


def _refused(g, pid, src):
    try:
        _run(g, pid, src)
    except ImportError:
        return True
    return False


def test_pure_modules_allowed():
    g, log, held = _gate()
    try:
        glb = _run(g, 3, "import json\nimport math\nfrom struct import pack\n"
                         "X = json.dumps([math.floor(2.5)])\n")
        assert glb["X"] == "[2]"
        assert log.query(kind=kinds.IMPORT_DENIED) == []
    finally:
        g.uninstall()


def test_kernel_internals_never():
    g, log, held = _gate({3: True})
    try:
        for src in ("import rvm_mp\n", "from rvm_mp import kernel\n",
                    "import rvm_mp.witness\n", "from rvm_mp.errors import EINVAL\n"):
            assert _refused(g, 3, src), src
        recs = [unpack(r) for r in log.query(kind=kinds.IMPORT_DENIED)]
        assert len(recs) == 4
        for f in recs:
            assert f[4] & 1 and f[6] == 3 and f[8] == errors.EIMPORT.code
    finally:
        g.uninstall()


def test_escape_hatches_never_even_with_lease():
    g, log, held = _gate({3: True})
    try:
        for m in ("sys", "builtins", "gc", "micropython", "time", "asyncio"):
            assert _refused(g, 3, "import %s\n" % m), m
        assert _refused(g, 3, "import not_a_module_anyone_knows\n")
    finally:
        g.uninstall()


def test_hardware_modules_never_even_with_a_lease():
    g, log, held = _gate({})
    try:
        assert _refused(g, 5, "import os\n")
        assert _refused(g, 5, "import select\n")
        held[5] = True  # the partition now holds a device lease
        assert _refused(g, 5, "import os\n")
        assert _refused(g, 5, "import machine\n")
        assert g.refused == 4
    finally:
        g.uninstall()


def test_kernel_imports_pass_when_no_agent_runs():
    g, log, held = _gate()
    try:
        import rvm_mp.witness  # active == 0: the kernel itself
        glb = {}
        exec("import sys\n", glb)  # not agent code
    finally:
        g.uninstall()


def test_shadowed_builtins():
    g, log, held = _gate()
    try:
        for src in ("open('/etc/hostname')\n", "exec('1')\n",
                    "eval('1')\n", "__import__('sys')\n"):
            try:
                _run(g, 2, src)
                ok = False
            except ImportError:
                ok = True
            assert ok, src
    finally:
        g.uninstall()


def test_gate_replaced_by_new_kernel_keeps_original_import():
    g1, log1, h1 = _gate()
    g2, log2, h2 = _gate()
    try:
        assert _refused(g2, 1, "import sys\n")
        glb = _run(g2, 1, "import json\nOK=1\n")
        assert glb["OK"] == 1
    finally:
        g2.uninstall()
    import json  # the original import is back
    assert json.dumps(1) == "1"
