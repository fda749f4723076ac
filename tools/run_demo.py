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


class ApplianceProc:
    """The Appliance: the kernel under CPython (`python -m rvm_mp.main`),
    its console on a pseudo-terminal, the Seed demo's agents signed into
    its filesystem; with "isolation": "process" each agent partition is an
    OS process (docs/appliance.md)."""

    def __init__(self, board, fs, link, key_hex, key_file):
        os.makedirs(os.path.join(fs, "agents"))
        with open(os.path.join(ROOT, "boards", board + ".json")) as f:
            prof = json.load(f)
        with open(os.path.join(ROOT, "boards", "seed-64k.json")) as f:
            seed = json.load(f)
        prof["agents"] = seed["agents"]
        prof["channels"] = seed["channels"]
        with open(os.path.join(fs, "board.json"), "w") as f:
            json.dump(prof, f, indent=1)
        shutil.copy(key_file, os.path.join(fs, "rvm_key.bin"))
        for a in seed["agents"]:
            rvm("bundle", os.path.join("agents", a["name"] + ".py"), "--key-hex", key_hex,
                "-o", os.path.join(fs, "agents", a["name"] + ".rvmb"))
        import pty
        import termios
        import tty
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.port = os.ttyname(self.slave)
        if os.path.islink(link):
            os.remove(link)
        os.symlink(self.port, link)
        self.link = link
        self.p = subprocess.Popen([sys.executable, "-m", "rvm_mp.main", "--board", board,
                                   "--fs", fs, "--quiet"], cwd=ROOT, stdin=self.master,
                                  stdout=self.master, stderr=subprocess.PIPE,
                                  start_new_session=True)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _is_hosted(board):
    try:
        with open(os.path.join(ROOT, "boards", board + ".json")) as f:
            return json.load(f).get("runtime") == "cpython"
    except (OSError, ValueError):
        return False


def demo(board, out, key_hex, key_file):
    fs = os.path.join(out, "fs-" + board)
    shutil.rmtree(fs, ignore_errors=True)
    link = os.path.join(out, "port-" + board)
    hosted = _is_hosted(board)
    t0 = time.monotonic()
    if hosted:
        say("board %s: the kernel under CPython, console on a pty" % board)
        sim = ApplianceProc(board, fs, link, key_hex, key_file)
    else:
        say("board %s: starting the simulator" % board)
        sim = SimProc(board, fs, link)
    rep = {"board": board, "port": sim.port, "hosted": hosted}
    try:
        say("board %s on %s (link %s)" % (board, sim.port, link))
        if hosted:
            p = None
            for _ in range(60):   # the console answers once boot is done
                p = rvm("ps", "--port", link, "--json", check=False, timeout=30)
                if p.returncode == 0 or sim.p.poll() is not None:
                    break
                time.sleep(0.5)
            if p is None or p.returncode != 0:
                err = sim.p.stderr.read().decode(errors="replace") if sim.p.poll() is not None else ""
                raise DemoError("the appliance kernel did not answer: %s" % (
                    err.strip()[-300:] or (p.stderr.strip() if p else "?")))
            rep["deploy_s"] = round(time.monotonic() - t0, 1)
            say("kernel up in %.1f s (bundles signed into %s)" % (rep["deploy_s"], fs))
        else:
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
        # a profile that signs its seals with Ed25519 (the appliance) made its
        # key at first boot and left the public half for the auditor
        keys = ["--key-hex", key_hex]
        pub = os.path.join(fs, "rvm_ed25519.pub")
        if os.path.exists(pub):
            keys += ["--pubkey", pub]
        v = rvm("verify", log, *keys, "--json", check=False)
        vr = json.loads(v.stdout)
        rep["verify"] = vr
        print(rvm("verify", log, *keys, check=False).stdout.rstrip())
        if v.returncode != 0:
            raise DemoError("the pulled log did not verify: %s" % vr.get("reason"))
        db = os.path.join(out, "audit-%s.sqlite" % board)
        if os.path.exists(db):
            os.remove(db)
        say("audit")
        print(rvm("audit", log, "--db", db, *keys).stdout.rstrip())
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
        say("%s for %s stopped" % ("kernel" if hosted else "simulator", board))


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
    print("  deploy          : %.1f s%s" % (rep["deploy_s"], "" if rep.get("hosted")
                                            else " with mpremote"))
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
