#!/usr/bin/env python3
"""`make bench`: figures and ratios measured in one run. Never a test.

Method (docs/performance.md):
* every figure is the min and the median of R repeats (R = 5 by default,
  `--repeats`); a repeat is one fresh process per bench group, and the
  repeats are interleaved: round 1 runs every group once, then round 2, ...
  so a burst of load on the shared machine hits one repeat of every group,
  not every repeat of one;
* inside a repeat a group measures each side of a comparison once, close
  together (alternating which side goes first), and emits the ratio of that
  repeat: a ratio row's min/median are over the per-repeat ratios, never a
  ratio of two separately chosen bests;
* the output records the date, the machine (CPU model, cores) and the load
  average at the start and at the end, and warns when the load was high.

Bench modules live in tools/bench/:
  kb_<area>.py  kernel benches, run under MicroPython (the unix port, a
                subprocess) and under CPython (a subprocess too)
  hb_<area>.py  host-tool benches, CPython only
A module either lists its groups, `GROUPS = ("switch", "ram")`, each a
function `bench_<group>(emit)`, or defines one `bench(emit)` (group
"bench"). `emit(name, value, unit, note="")` is called once per figure per
repeat. `benchutil.QUICK` is True under `--quick` (smaller sizes) and
`benchutil.INNER` is the number of inner repeats a legacy module may still
take (1: one measurement per repeat). `HEAP = "8M"` in a kernel module sets
its MicroPython heap. A module may set `RUNTIMES = ("micropython",)` and
`DEFAULT = False` (run only when named with --only). A legacy module's
"(min)"/"(median)" rows over its own inner repeats collapse into one row
(with one inner repeat they are the same measurement).

usage: tools/bench.py [--quick] [--repeats R] [--only NAME ...] [--list]
                      [--json FILE] [--markdown FILE]
  NAME: a module (kb_sched), a group (switch), or module.group (kb_sched.switch)
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BDIR = os.path.join(ROOT, "tools", "bench")

RUNNER = r'''
import sys
sys.path.insert(0, %(root)r)
sys.path.insert(0, %(bdir)r)
import benchutil
benchutil.QUICK = %(quick)r
benchutil.INNER = 1
benchutil.ROUND = %(round)d
def emit(name, value, unit, note=""):
    # a module's own "(min)" / "(median)" rows over its inner repeats are
    # one measurement each with INNER = 1: keep one, the driver's repeats
    # give the min and median
    if name.endswith(" (median)"):
        return
    if name.endswith(" (min)"):
        name = name[:-6]
    print("@@BENCH %%s|%%r|%%s|%%s" %% (name, value, unit, note))
m = __import__(%(mod)r)
for _k in ("REPEAT", "REPEATS"):
    if hasattr(m, _k):
        setattr(m, _k, 1)
getattr(m, %(fn)r)(emit)
print("@@DONE")
'''


def micropython_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


def _module_info(mod):
    with open(os.path.join(BDIR, mod + ".py")) as f:
        src = f.read()
    info = {"groups": ["bench"], "heap": None, "default": True,
            "runtimes": ("micropython", "cpython") if mod.startswith("kb_")
            else ("cpython",)}
    m = re.search(r"^GROUPS = \(([^)]*)\)", src, re.M)
    if m:
        info["groups"] = re.findall(r'"(\w+)"', m.group(1))
    m = re.search(r'^HEAP = "(\w+)"', src, re.M)
    if m:
        info["heap"] = m.group(1)
    if re.search(r"^DEFAULT = False", src, re.M):
        info["default"] = False
    m = re.search(r"^RUNTIMES = \(([^)]*)\)", src, re.M)
    if m:
        info["runtimes"] = tuple(re.findall(r'"(\w+)"', m.group(1)))
    return info


def plan(only=None):
    """[(module, group, runtime, heap)] in run order."""
    mods = sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(BDIR, "[kh]b_*.py")))
    out = []
    for mod in mods:
        info = _module_info(mod)
        for g in info["groups"]:
            if only:
                if not (mod in only or g in only or "%s.%s" % (mod, g) in only):
                    continue
            elif not info["default"]:
                continue
            for rt in info["runtimes"]:
                out.append((mod, g, rt, info["heap"]))
    return out


def run_group(mod, group, runtime, heap, quick, rnd, timeout=1800):
    fn = "bench" if group == "bench" else "bench_" + group
    code = RUNNER % {"root": ROOT, "bdir": BDIR, "mod": mod, "fn": fn,
                     "quick": bool(quick), "round": rnd}
    if runtime == "micropython":
        cmd = [micropython_cmd(), "-X", "heapsize=" + (heap or "1M"), "-c", code]
    else:
        cmd = [sys.executable, "-c", code]
    env = dict(os.environ, RVM_REPO=ROOT)
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        sys.stderr.write("bench %s.%s on %s: timed out after %d s\n"
                         % (mod, group, runtime, timeout))
        return [], False
    rows = []
    for line in p.stdout.splitlines():
        i = line.find("@@BENCH ")   # (a console prompt may precede it)
        if i >= 0:
            name, value, unit, note = line[i + 8:].split("|", 3)
            try:
                v = float(value)
            except ValueError:
                continue   # None: a figure this runtime does not have
            rows.append((name, v, unit, note))
    ok = "@@DONE" in p.stdout
    if not ok:
        sys.stderr.write("bench %s.%s on %s failed (exit %d):\n%s\n%s\n"
                         % (mod, group, runtime, p.returncode, p.stdout[-2000:],
                            p.stderr[-2000:]))
    return rows, ok


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mp = ""
    try:
        mp = subprocess.run([micropython_cmd(), "-c",
                             "import sys; print(sys.version)"],
                            capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "micropython": mp}


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (-1.0, -1.0, -1.0)


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def fmt(v):
    if v == 0 or abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def high_load(loads, cores):
    return max(loads) > 0.5 * (cores or 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description="RVM-MP benches (docs/performance.md)")
    ap.add_argument("--only", nargs="*", help="module, group or module.group")
    ap.add_argument("--quick", action="store_true",
                    help="development: 3 repeats and smaller sizes")
    ap.add_argument("--repeats", type=int, help="repeats per figure (default 5)")
    ap.add_argument("--list", action="store_true", help="list the groups")
    ap.add_argument("--json", help="also write all rows to this file")
    ap.add_argument("--markdown", help="also write the figures as a markdown table")
    args = ap.parse_args(argv)
    todo = plan(args.only)
    if args.list:
        for mod, g, rt, heap in todo:
            print("%s.%s on %s" % (mod, g, rt))
        return 0
    if not todo:
        print("bench: nothing matches %s (--list shows the groups)" % args.only)
        return 2
    reps = args.repeats or (3 if args.quick else 5)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mach = machine()
    load0 = loadavg()
    print("RVM-MP bench %s; %s, %s cores; %s; micropython: %s; Python %s"
          % (date, mach["cpu"], mach["cores"], mach["os"],
             mach["micropython"], mach["python"]))
    print("method: min / median of %d interleaved repeats (one process per "
          "group per repeat)%s; load average at start %.2f %.2f %.2f"
          % (reps, ", --quick sizes" if args.quick else "", *load0))
    if high_load(load0, mach["cores"]):
        print("WARNING: load average %.2f on %s cores at the start: other jobs "
              "share this machine, figures are noisy" % (load0[0], mach["cores"]))
    sys.stdout.flush()
    samples = {}    # (mod, group, runtime, name) -> [values]
    meta = {}       # same key -> (unit, note)
    order = []
    failed = set()
    t_start = time.time()
    for rnd in range(reps):
        for mod, g, rt, heap in todo:
            if (mod, g, rt) in failed:
                continue
            rows, ok = run_group(mod, g, rt, heap, args.quick, rnd)
            if not ok:
                failed.add((mod, g, rt))
            for name, v, unit, note in rows:
                key = (mod, g, rt, name)
                if key not in samples:
                    samples[key] = []
                    order.append(key)
                samples[key].append(v)
                meta[key] = (unit, note)
        sys.stderr.write("bench: repeat %d/%d done (%.0f s)\n"
                         % (rnd + 1, reps, time.time() - t_start))
    load1 = loadavg()
    out_rows = []
    last = None
    for key in order:
        mod, g, rt, name = key
        v = samples[key]
        unit, note = meta[key]
        if (mod, g, rt) != last:
            last = (mod, g, rt)
            print("\n== %s.%s on %s ==  %-30s %10s %10s  n" % (mod, g, rt, "", "min", "median"))
        mn, md = min(v), median(v)
        flag = "" if len(v) >= 5 else " (n<5)"
        print("  %-56s %10s %10s %-9s %d%s %s" % (name, fmt(mn), fmt(md), unit,
                                                 len(v), flag, note))
        out_rows.append({"module": mod, "group": g, "runtime": rt, "name": name,
                         "unit": unit, "note": note, "values": v,
                         "min": mn, "median": md})
    print("\nload average at the end %.2f %.2f %.2f; %.0f s" % (load1 + (time.time() - t_start,)))
    if high_load(load1, mach["cores"]) or high_load(load0, mach["cores"]):
        print("WARNING: the load average reached %.2f on %s cores during the "
              "run: other jobs shared the CPU; compare ratios, not absolute times"
              % (max(load0[0], load1[0]), mach["cores"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": date, "machine": mach, "load_start": load0,
                       "load_end": load1, "repeats": reps, "quick": args.quick,
                       "rows": out_rows}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("Measured %s on %s (%s cores), load average %.2f at the "
                    "start and %.2f at the end; min / median of %d repeats.\n\n"
                    % (date, mach["cpu"], mach["cores"], load0[0], load1[0], reps))
            last = None
            for r in out_rows:
                k = (r["module"], r["group"], r["runtime"])
                if k != last:
                    last = k
                    f.write("\n%s.%s on %s\n\n| figure | min | median | unit | note |\n"
                            "|---|---|---|---|---|\n" % k)
                f.write("| %s | %s | %s | %s | %s |\n" % (
                    r["name"], fmt(r["min"]), fmt(r["median"]), r["unit"],
                    r["note"].replace("|", "/")))
    if failed:
        print("\nbench groups that failed: " + ", ".join(
            "%s.%s/%s" % f for f in sorted(failed)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
