#!/usr/bin/env python3
"""`make run`: the whole RVM-MP story on a simulated board, with the real tools.

  1. rvm keys gen                       a device key
  2. rvm sim --board B                  MicroPython unix port on a pty, heap = B's RAM
  3. rvm deploy --board B --port PTY    mpremote copies kernel, profile, key, agents, main.py
  4. rvm ps / rvm console               ps, a device lease, a kill, a checkpoint
  5. rvm pull                           seal, pull the witness log
  6. rvm verify                         chain + seals, off the device
  7. rvm audit                          SQLite store, a forensic query, the timeline PNG

Every step runs the `rvm` command in a subprocess, as a user would. The
simulator is stopped on the way out, also on failure or Ctrl-C.

If the kernel cannot boot on the requested board (its RAM is too small for
the kernel and the demo agents), the script says so with the board's own
error, and then runs the same steps on --fallback (default seed-512k) so the
rest of the pipeline is still shown. The exit status is 0 only if the
requested board ran the demo, 3 if only the fallback did, 1 on any failure.

usage: tools/run_demo.py [--board seed-64k] [--fallback seed-512k] [--out build/demo]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RVM = [sys.executable, "-m", "host_tools.rvm.cli"]


class DemoError(Exception):
    pass


class NoBoot(DemoError):
    pass


def say(msg):
    print("[run] " + msg, flush=True)


def rvm(*args, check=True, timeout=180):
    cmd = RVM + [str(a) for a in args]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise DemoError("`rvm %s` failed (exit %d): %s" % (
            " ".join(str(a) for a in args), p.returncode,
            (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:]))
    return p


class SimProc:
    """`rvm sim` as a subprocess; the port is the first line it prints."""

    def __init__(self, board, fs, link):
        self.link = link
        self.p = subprocess.Popen(RVM + ["sim", "--board", board, "--fs", fs,
                                         "--link", link, "--quiet"],
                                  cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        if not line:
            err = self.p.stderr.read()
            raise DemoError("rvm sim did not start: %s" % err.strip()[-300:])
        self.port = line

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def demo(board, out, key_hex, key_file):
    say("board %s: starting the simulator" % board)
    fs = os.path.join(out, "fs-" + board)
    shutil.rmtree(fs, ignore_errors=True)
    link = os.path.join(out, "port-" + board)
    sim = SimProc(board, fs, link)
    rep = {"board": board, "port": sim.port}
    try:
        say("board %s on %s (link %s)" % (board, sim.port, link))
        t0 = time.monotonic()
        p = rvm("deploy", "--board", board, "--port", link, "--key", key_file,
                "-o", os.path.join(out, "dist"), "--wait", "20", check=False, timeout=300)
        if p.returncode != 0:
            msg = (p.stderr.strip().splitlines() or ["?"])[-1]
            if "did not start" in msg:
                raise NoBoot(msg.replace("rvm: ", "", 1))
            raise DemoError("deploy failed: " + msg)
        rep["deploy_s"] = round(time.monotonic() - t0, 1)
        say("deployed with mpremote in %.1f s; kernel up" % rep["deploy_s"])
        time.sleep(2.0)  # let the agents run a little
        ps = json.loads(rvm("ps", "--port", link, "--json").stdout)
        rep["partitions"] = len(ps)
        print(rvm("ps", "--port", link).stdout.rstrip())
        pids = {r["name"]: r["pid"] for r in ps}
        victim = pids.get("flooder") or pids.get("crasher") or max(pids.values())
        keep = pids.get("supervisor") or pids.get("filter") or victim
        cmds = ["lease led 1500", "kill %d" % victim, "checkpoint %d" % keep, "stat"]
        say("console: " + "; ".join(cmds))
        p = rvm("console", "--port", link, *sum((["-c", c] for c in cmds), []), check=False)
        print(p.stdout.rstrip())
        rep["console_rc"] = p.returncode
        time.sleep(3.0)  # the crasher faults meanwhile (F1 restarts)
        log = os.path.join(out, "witness-%s.rvmw" % board)
        say("pull (seal first)")
        print(rvm("pull", "--port", link, "-o", log, "--quiet").stdout.rstrip())
        say("verify")
        v = rvm("verify", log, "--key-hex", key_hex, "--json", check=False)
        vr = json.loads(v.stdout)
        rep["verify"] = vr
        print(rvm("verify", log, "--key-hex", key_hex, check=False).stdout.rstrip())
        if v.returncode != 0:
            raise DemoError("the pulled log did not verify: %s" % vr.get("reason"))
        db = os.path.join(out, "audit-%s.sqlite" % board)
        if os.path.exists(db):
            os.remove(db)
        say("audit")
        print(rvm("audit", log, "--db", db, "--key-hex", key_hex).stdout.rstrip())
        ops = json.loads(rvm("audit", "--db", db, "query", "--kind", "operator",
                             "--json").stdout)
        den = json.loads(rvm("audit", "--db", db, "query", "--denied", "--json").stdout)
        faults = json.loads(rvm("audit", "--db", db, "query", "--kind", "fault",
                                "--json").stdout)
        png = os.path.join(out, "timeline-%s.png" % board)
        rvm("audit", "--db", db, "timeline", "-o", png)
        rep.update(log=log, db=db, timeline=png, operator_records=len(ops),
                   denied=len(den), fault_records=len(faults))
        return rep
    finally:
        sim.stop()
        say("simulator for %s stopped" % board)


def report(rep, requested, nobooted):
    v = rep["verify"]
    print()
    print("=" * 72)
    print("RVM-MP demo report")
    if nobooted:
        print("  requested board : %s -- DID NOT BOOT: %s" % (requested, nobooted))
        print("  demo ran on     : %s (fallback)" % rep["board"])
    else:
        print("  board           : %s" % rep["board"])
    print("  deploy          : %.1f s with mpremote" % rep["deploy_s"])
    print("  partitions      : %d (control partition + agents)" % rep["partitions"])
    print("  witness log     : %d records, seq %s..%s, sealed through %s -> %s"
          % (v["records"], v["first_seq"], v["last_seq"], v["sealed_through"], rep["log"]))
    print("  verify          : %s" % v["verdict"])
    print("  operator records: %d   refusals: %d   fault records: %d"
          % (rep["operator_records"], rep["denied"], rep["fault_records"]))
    print("  audit database  : %s" % rep["db"])
    print("  timeline        : %s" % rep["timeline"])
    print("=" * 72)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="seed-64k")
    ap.add_argument("--fallback", default="seed-512k",
                    help="board to run the demo on if --board cannot boot it ('' for none)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "demo"))
    args = ap.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    key_file = os.path.join(out, "device.key")
    key_hex = rvm("keys", "gen", "-o", key_file).stdout.strip()
    say("device key -> %s" % key_file)
    nobooted = None
    try:
        try:
            rep = demo(args.board, out, key_hex, key_file)
        except NoBoot as e:
            nobooted = str(e)
            say("!! " + nobooted)
            if not args.fallback:
                raise
            say("running the same steps on %s" % args.fallback)
            rep = demo(args.fallback, out, key_hex, key_file)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except DemoError as e:
        say("FAILED: %s" % e)
        return 1
    report(rep, args.board, nobooted)
    say("done in %.0f s" % (time.monotonic() - t0))
    return 3 if nobooted else 0


if __name__ == "__main__":
    sys.exit(main())
