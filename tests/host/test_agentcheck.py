# The agent-code verifier (host_tools/rvm/agentcheck.py): every rule refuses
# its violation with one line per finding, every escape class of the agent
# boundary is refused at bundle time, the demo agents pass, nothing is
# signed on a refusal, and docs/agents.md prints the rule table.
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from host_tools.rvm import agentcheck as C, cli  # noqa: E402
from rvm_mp import bundle  # noqa: E402

KEY_HEX = "20" * 32
MAIN = "\nasync def main(rvm):\n    await rvm.yield_()\n"

# (rule, source): each must be refused with exactly that rule among its
# findings. One or more per rule.
VIOLATIONS = [
    ("A0", "async def main(rvm):\n    await\n"),
    ("A1", "import sys" + MAIN),
    ("A1", "import os" + MAIN),
    ("A1", "import gc" + MAIN),
    ("A1", "import micropython" + MAIN),
    ("A1", "import rvm_mp.kernel" + MAIN),
    ("A1", "from . import kernel" + MAIN),
    ("A1", "from math import *" + MAIN),
    ("A1", "from json import codecs" + MAIN),
    ("A1", "import machine" + MAIN),          # no device in the spec
    ("A1", "import os.path" + MAIN),
    ("A2", "_x = 1" + MAIN),
    ("A2", "def _f():\n    pass" + MAIN),
    ("A2", "async def main(_rvm):\n    pass\n"),
    ("A2", "x = __name__" + MAIN),
    ("A2", "x = __builtins__" + MAIN),
    ("A2", "f = lambda **_k: 0" + MAIN),
    ("A3", "async def main(rvm):\n    c = rvm.__class__\n"),
    ("A3", "async def main(rvm):\n    d = rvm.__dict__\n"),
    ("A3", "async def main(rvm):\n    s = ().__class__.__subclasses__()\n"),
    ("A3", "async def main(rvm):\n    x = main.__globals__\n"),
    ("A3", "async def main(rvm):\n    f = rvm.sleep_ms(1).gi_frame\n"),
    ("A3", "async def main(rvm):\n    f = rvm.yield_().cr_frame\n"),
    ("A3", "async def main(rvm):\n    f = rvm.f_back\n"),
    ("A3", "async def main(rvm):\n    try:\n        1 / 0\n"
           "    except Exception as e:\n        f = e.__traceback__.tb_frame\n"),
    ("A3", "async def main(rvm):\n    g = rvm.f_globals\n"),
    ("A3", "async def main(rvm):\n    c = main.co_code\n"),
    ("A3", "async def main(rvm):\n    m = int.mro()\n"),
    ("A3", "async def main(rvm):\n    e = ValueError().with_traceback(None)\n"),
    ("A3", "import json\nasync def main(rvm):\n    c = json.codecs\n"),
    ("A3", "import re\nasync def main(rvm):\n    x = re.enum\n"),
    ("A4", "async def main(rvm):\n    t = type(rvm)\n"),
    ("A4", "async def main(rvm):\n    x = getattr(rvm, 'k')\n"),
    ("A4", "async def main(rvm):\n    setattr(rvm, 'k', 1)\n"),
    ("A4", "async def main(rvm):\n    delattr(rvm, 'k')\n"),
    ("A4", "async def main(rvm):\n    x = vars(rvm)\n"),
    ("A4", "async def main(rvm):\n    g = globals()\n"),
    ("A4", "async def main(rvm):\n    g = locals()\n"),
    ("A4", "async def main(rvm):\n    d = dir(rvm)\n"),
    ("A4", "async def main(rvm):\n    eval('1')\n"),
    ("A4", "async def main(rvm):\n    exec('x = 1')\n"),
    ("A4", "async def main(rvm):\n    compile('1', 'x', 'eval')\n"),
    ("A4", "async def main(rvm):\n    open('/etc/passwd')\n"),
    ("A4", "async def main(rvm):\n    o = object()\n"),
    ("A4", "class K(ValueError):\n    def f(self):\n        return super()\n" + MAIN),
    ("A4", "async def main(rvm):\n    input()\n"),
    ("A4", "async def main(rvm):\n    breakpoint()\n"),
    ("A4", "async def main(rvm):\n    f = [getattr][0]\n"),
    ("A4", "class M(ValueError, metaclass=abs):\n    pass" + MAIN),
    ("A5", "print = 1" + MAIN),
    ("A5", "async def main(rvm):\n    global len\n    len = 3\n"),
    ("A5", "async def main(rvm):\n    del print\n"),
    ("A5", "def f(len):\n    return len" + MAIN),
    ("A6", "import math\nmath.sqrt = abs" + MAIN),
    ("A6", "import struct\ndel struct.pack" + MAIN),
    ("A6", "async def main(rvm):\n    int.x = 1\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n    except:\n        pass\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n"
           "    except BaseException:\n        pass\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n"
           "    except (ValueError, GeneratorExit):\n        pass\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n"
           "    except SystemExit:\n        pass\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n"
           "    except KeyboardInterrupt:\n        pass\n"),
    ("A7", "async def main(rvm):\n    try:\n        pass\n"
           "    except* ValueError:\n        pass\n"),
    ("A7", "E = (ValueError,)\nasync def main(rvm):\n    try:\n        pass\n"
           "    except E[0]:\n        pass\n"),
    ("A8", "async def main(rvm):\n    s = '{0.__class__}'.format(rvm)\n"),
    ("A8", "async def main(rvm):\n    s = '{0[x]}'.format({'x': 1})\n"),
    ("A8", "async def main(rvm):\n    f = 'x'\n    s = f.format(rvm)\n"),
    ("A8", "async def main(rvm):\n    s = '{a.b}'.format_map({})\n"),
    ("A9", "def main(rvm):\n    pass\n"),
    ("A9", "x = 1\n"),
    ("A9", "async def main():\n    pass\n"),
]


@pytest.mark.parametrize("rule,src", VIOLATIONS)
def test_each_rule_refuses_its_violation(rule, src):
    found = C.check(src)
    assert rule in [f.rule for f in found], (rule, src, found)
    for f in found:
        line = f.format("agent.py")
        assert re.match(r"^agent\.py:\d+:\d+: .+ \(rule A\d\)$", line), line


def test_every_rule_has_a_violation_case():
    assert {r for r, _ in C.RULES} == {r for r, _ in VIOLATIONS}


ACCEPTED = [
    "import math, struct, json\nfrom collections import deque" + MAIN,
    "async def main(rvm):\n    for _ in range(3):\n        await rvm.yield_()\n",
    "async def main(rvm):\n    try:\n        await rvm.send(1, b'x')\n"
    "    except Exception as e:\n        n = e.args[0]\n",
    "async def main(rvm):\n    s = 'v=%d' % 3\n    t = '{} {:>4}'.format(1, 2)\n"
    "    u = f'{s}!'\n",
    "class Err(ValueError):\n    pass\nasync def main(rvm):\n"
    "    try:\n        raise Err('x')\n    except (Err, OSError):\n        pass\n",
    "def total(xs):\n    return sum(xs)\nasync def main(rvm):\n"
    "    print(total([1, 2]), len('ab'), isinstance(1, int))\n",
]


@pytest.mark.parametrize("src", ACCEPTED)
def test_accepted_subset(src):
    assert C.check(src) == []


def test_devices_reach_no_hardware_module():
    # devices go through rvm.lease; the kernel refuses machine & co. anyway
    src = "import machine" + MAIN
    found = C.check(src, C.allowed_imports(None, {"devices": ["temp"]}))
    assert [f.rule for f in found] == ["A1"]
    # a profile that widens to machine still cannot reach raw hardware
    wide = C.allowed_imports(None, {"imports": ["machine"]})
    assert C.check(src, wide) == []
    raw = "import machine\nasync def main(rvm):\n    machine.mem32[0] = 1\n"
    assert [f.rule for f in C.check(raw, wide)] == ["A3"]
    found = C.check("from machine import reset" + MAIN, wide)
    assert [f.rule for f in found] == ["A3"]


def test_profile_widens_the_allowlist():
    src = "import framebuf" + MAIN
    assert C.check(src)[0].rule == "A1"
    prof = {"verifier": {"imports": ["framebuf"]}}
    assert C.check(src, C.allowed_imports(prof)) == []


def _profile(name):
    with open(os.path.join(ROOT, "boards", name + ".json")) as f:
        return json.load(f)


@pytest.mark.parametrize("board", ["seed-64k", "seed-512k"])
def test_demo_agents_pass(board):
    prof = _profile(board)
    names = [a["name"] for a in prof["agents"]]
    assert len(names) >= 6
    for n in names:
        with open(os.path.join(ROOT, "agents", n + ".py"), "rb") as f:
            src = f.read()
        v = C.verify(src, n + ".py", prof, C.spec_for(prof, n))
        assert v["policy"] == C.POLICY and len(v["src"]) == 64


def test_finding_positions():
    src = "import math\n\nasync def main(rvm):\n    x = 1\n    c = rvm.__class__\n"
    (f,) = C.check(src)
    assert f.format("agent.py") == \
        "agent.py:5:9: attribute '__class__' is not allowed (rule A3)"


def test_cli_refuses_with_one_line_per_finding_and_signs_nothing(tmp_path, capsys):
    a = tmp_path / "evil.py"
    a.write_text("import sys\nasync def main(rvm):\n    t = type(rvm)\n"
                 "    x = rvm.__class__\n")
    out = tmp_path / "evil.rvmb"
    rc = cli.main(["bundle", str(a), "--key-hex", KEY_HEX, "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert not out.exists()
    assert err == [
        "evil.py:1:1: import of 'sys' is not allowed (rule A1)",
        "evil.py:3:9: builtin 'type' is not allowed (rule A4)",
        "evil.py:4:9: attribute '__class__' is not allowed (rule A3)",
    ]


def test_cli_bundle_records_verdict_or_unverified(tmp_path, capsys):
    key = bytes.fromhex(KEY_HEX)
    out = tmp_path / "s.rvmb"
    src_path = os.path.join(ROOT, "agents", "filter.py")
    assert cli.main(["bundle", src_path, "--key-hex", KEY_HEX,
                     "-o", str(out)]) == 0
    man, code = bundle.load(out.read_bytes(), key)
    assert man["verdict"]["policy"] == C.POLICY
    assert man["verdict"]["src"] == man["sha256"]
    evil = tmp_path / "evil.py"
    evil.write_text("import sys\nasync def main(rvm):\n    pass\n")
    assert cli.main(["bundle", str(evil), "--key-hex", KEY_HEX, "-o",
                     str(out), "--unverified"]) == 0
    man, code = bundle.load(out.read_bytes(), key)
    assert man["verdict"]["unverified"] == 1
    assert "UNVERIFIED" in capsys.readouterr().out


def test_cli_mpy_only_from_verified_source(tmp_path, capsys):
    mpy = tmp_path / "x.mpy"
    mpy.write_bytes(b"M\x06\x00\x1f" + bytes(20))
    out = tmp_path / "x.rvmb"
    rc = cli.main(["bundle", str(mpy), "--key-hex", KEY_HEX, "-o", str(out)])
    assert rc == 2 and not out.exists()
    assert "cannot be verified" in capsys.readouterr().err
    # with --board the verified source is compiled to .mpy for its arch
    src_path = os.path.join(ROOT, "agents", "sensor.py")
    assert cli.main(["bundle", src_path, "--key-hex", KEY_HEX, "-o", str(out),
                     "--board", "seed-64k"]) == 0
    man, code = bundle.load(out.read_bytes(), bytes.fromhex(KEY_HEX))
    assert bundle.is_mpy(code) and man["type"] == "mpy"
    with open(src_path, "rb") as f:
        assert man["verdict"] == C.verdict(f.read())


def test_deploy_stage_and_build_refuse_unverifiable_agents(tmp_path, capsys):
    from host_tools.rvm import deploy
    evil = tmp_path / "evil.py"
    evil.write_text("async def main(rvm):\n    x = getattr(rvm, 'k')\n")
    with pytest.raises(C.Refused) as ei:
        deploy.stage("seed-64k", bytes(32), agents=[str(evil)],
                     out_root=str(tmp_path / "dist"))
    assert ei.value.lines == [
        "evil.py:2:9: builtin 'getattr' is not allowed (rule A4)"]
    assert not (tmp_path / "dist").exists()   # nothing built, nothing signed
    d = deploy.stage("seed-64k", bytes(32), agents=[str(evil)],
                     out_root=str(tmp_path / "dist"), unverified=True,
                     agent_mpy=False)
    man, _ = bundle.load(open(os.path.join(d, "agents", "evil.rvmb"),
                              "rb").read(), bytes(32))
    assert man["verdict"]["unverified"] == 1


def test_rule_table_in_docs_matches():
    with open(os.path.join(ROOT, "docs", "agents.md")) as f:
        doc = f.read()
    assert C.rules_markdown() in doc


def test_syntax_error_is_one_finding():
    (f,) = C.check("async def main(rvm):\n  x = (\n")
    assert f.rule == "A0" and f.line >= 2
    (f,) = C.check(b"\xff\xfe")
    assert f.rule == "A0"


@pytest.mark.parametrize("src", [
    "async def main(rvm):\n    try:\n        await rvm.yield_()\n"
    "    except Exception as e:\n        e.code = 0\n",
    "async def main(rvm):\n    d = await rvm.lease('temp', 10)\n    d.pid = 1\n",
    "async def main(rvm):\n    rvm.send = None\n",
    "async def main(rvm):\n    x = [1]\n    x.y += 1\n",
])
def test_no_attribute_stores(src):
    assert "A6" in [f.rule for f in C.check(src)]


ESCAPE_TOKENS = ("__", "type(", "getattr", "setattr", "delattr", "vars(",
                 "dir(", "globals(", "locals(", "gi_", "cr_", "f_back",
                 "f_globals", "tb_", "global ", "del ", "object", "super(",
                 ".mro", "exec(", "eval(", "compile(", "import sys",
                 "import gc", "import builtins")


def _redteam_sources():
    """The hostile agents of tests/kernel/test_redteam.py: the first
    argument of every `_attack(...)` call (a literal, a module constant, or
    a constant + literal)."""
    import ast
    path = os.path.join(ROOT, "tests", "kernel", "test_redteam.py")
    tree = ast.parse(open(path).read())
    consts = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) \
                and isinstance(n.value.value, str):
            consts[n.targets[0].id] = n.value.value

    def value(a):
        if isinstance(a, ast.Name):
            return consts[a.id]
        if isinstance(a, ast.BinOp):
            return value(a.left) + value(a.right)
        return ast.literal_eval(a)
    out = []
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
            for n in ast.walk(fn):
                if isinstance(n, ast.Call) and \
                        getattr(n.func, "id", "") == "_attack" and n.args:
                    out.append((fn.name, consts["PRELUDE"] + value(n.args[0])))
    return out


def test_redteam_escape_attacks_are_refused_at_bundle_time():
    srcs = _redteam_sources()
    assert len(srcs) >= 30
    allow = C.allowed_imports(None, {"devices": ["temp"]})
    refused = 0
    for name, src in srcs:
        found = C.check(src, allow)
        if any(tok in src for tok in ESCAPE_TOKENS):
            assert found, "%s reaches behind the API but passes" % name
        refused += bool(found)
    # the rest only abuse call arguments; the kernel refuses those at run time
    assert refused >= 25, refused
