#!/usr/bin/env python3
"""`make bench`: figures and ratios measured in one run. Never a test.

Bench modules live in tools/bench/:
  kb_<area>.py  kernel benches, run under MicroPython (the unix port, a
                subprocess) and under CPython (a subprocess too)
  hb_<area>.py  host-tool benches, CPython only
Each defines `bench(emit)` and calls `emit(name, value, unit, note="")` for
every figure; ratios against a floor or peer measured in the same run are
emitted as their own rows (unit "x").

usage: tools/bench.py [--only NAME ...] [--json FILE]
"""
import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BDIR = os.path.join(ROOT, "tools", "bench")

RUNNER = r'''
import sys
sys.path.insert(0, %(root)r)
sys.path.insert(0, %(bdir)r)
def emit(name, value, unit, note=""):
    print("@@BENCH %%s|%%s|%%s|%%s" %% (name, value, unit, note))
m = __import__(%(mod)r)
m.bench(emit)
print("@@DONE")
'''


def micropython_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


def run_module(mod, runtime, heap=None, timeout=900):
    code = RUNNER % {"root": ROOT, "bdir": BDIR, "mod": mod}
    if runtime == "micropython":
        cmd = [micropython_cmd()]
        if heap:
            cmd += ["-X", "heapsize=" + heap]
        cmd += ["-c", code]
    else:
        cmd = [sys.executable, "-c", code]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    rows = []
    for line in p.stdout.splitlines():
        if line.startswith("@@BENCH "):
            name, value, unit, note = line[8:].split("|", 3)
            rows.append({"module": mod, "runtime": runtime, "name": name,
                         "value": float(value), "unit": unit, "note": note})
    ok = "@@DONE" in p.stdout
    if not ok:
        sys.stderr.write("bench %s on %s failed (exit %d):\n%s\n%s\n"
                         % (mod, runtime, p.returncode, p.stdout[-2000:],
                            p.stderr[-2000:]))
    return rows, ok


def fmt(v):
    if v == 0 or abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="module names (kb_x, hb_y)")
    ap.add_argument("--json", help="also write all rows to this file")
    ap.add_argument("--heap", default="1M", help="MicroPython heap for kernel benches")
    args = ap.parse_args(argv)
    mods = sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(BDIR, "[kh]b_*.py")))
    if args.only:
        mods = [m for m in mods if m in args.only]
    all_rows = []
    failed = []
    for mod in mods:
        runtimes = ("micropython", "cpython") if mod.startswith("kb_") else ("cpython",)
        for rt in runtimes:
            rows, ok = run_module(mod, rt, args.heap if rt == "micropython" else None)
            all_rows += rows
            if not ok:
                failed.append("%s/%s" % (mod, rt))
            print("\n== %s on %s ==" % (mod, rt))
            for r in rows:
                print("  %-52s %14s %-8s %s" % (r["name"], fmt(r["value"]), r["unit"], r["note"]))
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_rows, f, indent=1)
    if failed:
        print("\nbench modules that failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
