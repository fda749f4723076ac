"""The bench driver (tools/bench.py): groups, the repeat method, the record of
the machine. It runs one small group, not the benches (`make bench` does)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import bench  # noqa: E402


def test_plan_has_the_goal_groups_on_their_runtimes():
    p = bench.plan()
    have = set((m, g, rt) for m, g, rt, heap in p)
    for m, g in (("kb_witness", "record"), ("kb_sched", "switch"),
                 ("kb_sched", "switch128"), ("kb_sched", "ram"),
                 ("hb_boot", "bench"), ("hb_verify", "process1m"),
                 ("hb_ram32", "bench")):
        rts = ("cpython",) if m.startswith("hb_") else ("micropython", "cpython")
        for rt in rts:
            assert (m, g, rt) in have, (m, g, rt)
    # the 10-minute qemu soak runs only when named
    assert not any(m == "hb_qemu" for m, g, rt, heap in p)
    assert any(m == "hb_qemu" for m, g, rt, heap in bench.plan(["hb_qemu"]))
    # a group, a module, or module.group
    assert set(g for m, g, rt, heap in bench.plan(["switch"])) == {"switch"}
    assert set(g for m, g, rt, heap in bench.plan(["kb_sched.ram"])) == {"ram"}
    assert bench.plan(["no_such_group"]) == []


def test_median_and_load_warning():
    assert bench.median([5, 1, 3]) == 3
    assert bench.median([4, 1, 3, 2]) == 2.5
    assert bench.high_load((1.5, 0, 0), 2) is True
    assert bench.high_load((0.5, 0.2, 0.1), 2) is False


def test_one_group_gives_min_and_median_of_its_repeats(tmp_path):
    out = tmp_path / "b.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench.py"),
                        "--only", "kb_witness.seal", "--quick", "--repeats", "2",
                        "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "load average at start" in p.stdout and "load average at the end" in p.stdout
    d = json.loads(out.read_text())
    assert d["repeats"] == 2 and d["machine"]["cores"] == os.cpu_count()
    assert len(d["load_start"]) == 3 and len(d["load_end"]) == 3
    rts = set()
    for r in d["rows"]:
        assert len(r["values"]) == 2
        assert r["min"] == min(r["values"]) and r["min"] <= r["median"] <= max(r["values"])
        rts.add(r["runtime"])
    assert rts == {"micropython", "cpython"}


def test_unknown_group_is_one_line_and_exit_2():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench.py"),
                        "--only", "no_such_group"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert len(p.stdout.strip().splitlines()) == 1 and "Traceback" not in p.stderr
