# Coherence in the real runtime: p99 IPC latency and cross-slot traffic with
# the engine on (the profile's coherence settings) against naive (no engine:
# NullSignal, static slots), on the bench workloads (tools/bench/
# coh_workload.py) and a pipeline shaped like the demo's channel graph.
#
# What is real: Kernel, Runtime, Scheduler, the agents' send/recv path, the
# coherence engine, its wake/pressure signal and the runtime's placement
# (coherence/runplace.py). What is modelled: time. The platform's clock is
# virtual; it moves by SWITCH_US + the agent's quantum each time the
# scheduler picks an agent (heavy partitions 1000 us, light ones 100 us,
# load classes from coh_workload.load_classes) and by the timeout when the
# kernel idles. Latency = virtual time from the send syscall to the recv that
# returns the message, so every figure is a deterministic function of the
# schedule (no wall clock), identical on CPython and MicroPython except where
# the mincut's wall-clock budget ends a run in a different epoch.
#
# Each agent owns one inbox (every peer may write it) and plays its part of
# the workload: at the planned times it sends a request to a peer (weighted by
# the workload's pair traffic of that epoch) and it answers every request
# with a reply. "busy": agents poll their inbox (always ready: every
# partition computes); "event": they block in recv until the next planned
# request.
#
# The engine runs with the settings the coherence boards ship (wake weight
# 10 ms, wake floor 7000 bp, per-epoch weight 0, 4 slots); naive is the same
# runtime without the engine. p99 is over every message delivered after a
# warm-up of WARMUP epochs (about 190 messages in 30 epochs, 330 in 50).
#
# usage: coherence_eval.py [--quick] [--seeds 1,2,3] [--kinds clustered,...]
#                          [--modes busy,event] [--epochs N] [--n 16] [--json]
#   .venv/bin/python tools/coherence_eval.py --quick
#   .venv/bin/micropython -X heapsize=64M tools/coherence_eval.py --quick
import sys
import os

try:
    _HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
except NameError:
    _HERE = "tools"
_ROOT = _HERE + "/.." if _HERE else ".."
for _p in (_ROOT, _HERE + "/bench"):
    if _p not in sys.path:
        sys.path.insert(0, _p)
sys.path.append(_ROOT + "/build/natmods/x64")   # the C natmods where built

from coh_workload import Rng, gen, load_classes  # noqa: E402
from rvm_mp import board, bundle, hal, errors  # noqa: E402
from rvm_mp import scheduler as S  # noqa: E402
from rvm_mp.witness import WitnessLog  # noqa: E402

DEVICE_ID = bytes(range(16))
KEY = bytes(range(32, 64))
QH = 1000          # heavy quantum, us
QL = 100           # light quantum, us
SWITCH_US = 20
EPOCH_MS = 20      # scheduler epoch = workload epoch
PINGS = 4          # requests per epoch over the whole system (~40 % busy)
WARMUP = 6         # epochs not counted (the engine has seen nothing yet)
KINDS = ("clustered", "shifting", "clustered-ordered", "churn", "uniform",
         "pipeline")
STRUCTURED = ("clustered", "shifting", "clustered-ordered", "pipeline")


class VPlatform(hal.Platform):
    """Hosted platform on a virtual microsecond clock."""

    def __init__(self, root):
        hal.Platform.__init__(self, root, DEVICE_ID, KEY)
        self.us = 1000000

    def ticks_ms(self):
        return (self.us // 1000) & 0x3FFFFFFF

    def ticks_us(self):
        return self.us & 0x3FFFFFFF

    def sleep_ms(self, ms):
        self.us += ms * 1000

    def wait_io(self, timeout_ms):
        self.us += (timeout_ms if timeout_ms > 0 else 1) * 1000
        return False


def _tmpdir():
    base = os.getenv("RVM_TEST_TMP") or "/tmp"
    rnd = "".join("%02x" % b for b in os.urandom(4))
    p = "%s/rvm-coh-%s" % (base, rnd)
    os.mkdir(p)
    return p


def _rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


AGENT = """
PLAN = %r
PEERS = %r
BUSY = %d
T0 = %d
async def main(rvm):
    inbox = await rvm.handle("in")
    out = {}
    for j in PEERS:
        out[j] = await rvm.handle("o%%d" %% j)
    me = await rvm.my_id()
    k = 0
    n = 0
    while True:
        now = (await rvm.now()) - T0
        while k < len(PLAN) and PLAN[k][0] <= now:
            n += 1
            try:
                await rvm.send(out[PLAN[k][1]], b"q" + str(me * 1000000 + n).encode())
            except OSError:
                pass
            k += 1
        if BUSY:
            tmo = 0
        elif k < len(PLAN):
            tmo = PLAN[k][0] - now
            if tmo < 1:
                tmo = 1
        else:
            tmo = 1000
        try:
            m = await rvm.recv(inbox, tmo)
        except OSError:
            continue
        d = m[1]
        if d[0] == 113:
            try:
                await rvm.send(out[m[0]], b"r" + d[1:])
            except OSError:
                pass
"""


def pipeline_gen(n, epochs, seed):
    """A graph shaped like the demo's (sensor -> filter -> actuator,
    filter -> supervisor, a flooder -> supervisor), replicated n // 4 times
    with shuffled ids, plus a little traffic between the replicas."""
    rng = Rng(seed * 131 + n)
    ids = list(range(1, n + 1))
    rng.shuffle(ids)
    groups = [ids[i:i + 4] for i in range(0, n - n % 4, 4)]
    for e in range(epochs):
        out = []
        for g in groups:
            s, f, a, sv = g
            out.append((s, f, 20 + rng.below(8)))
            out.append((f, a, 10 + rng.below(6)))
            out.append((f, sv, 6 + rng.below(4)))
        for _ in range(2):
            a = 1 + rng.below(n)
            b = 1 + rng.below(n)
            if a != b:
                out.append((min(a, b), max(a, b), 1))
        yield out


def plans(kind, n, epochs, seed):
    """Per partition index (1..n): [(ms from start, peer index)], and the
    peer sets, drawn from the workload's pair traffic of each epoch."""
    g = pipeline_gen(n, epochs, seed) if kind == "pipeline" else \
        gen(kind, n=n, epochs=epochs, seed=seed)
    rng = Rng(seed * 977 + 3)
    plan = [[] for _ in range(n + 1)]
    peers = [set() for _ in range(n + 1)]
    e = 0
    for pairs in g:
        cum = []
        tot = 0
        for a, b, m in pairs:
            tot += m
            cum.append(tot)
        for i in range(PINGS if tot else 0):
            r = rng.below(tot)
            x = 0
            while cum[x] <= r:
                x += 1
            a, b, _ = pairs[x]
            if rng.below(2):
                a, b = b, a
            t = e * EPOCH_MS + (i * EPOCH_MS) // PINGS
            plan[a].append((t, b))
            peers[a].add(b)
            peers[b].add(a)
        e += 1
    return plan, peers


def profile(n, engine, slots):
    p = {"name": "coh-eval", "ram": 1 << 24,
         "witness": {"ring": 256, "seal_every": 0, "segment_records": 256},
         "limits": {"partitions": n + 2, "caps_per_partition": 2 * n + 4,
                    "queue_depth": 8, "payload_max": 16, "arena": 1024,
                    "graph_nodes": n + 2, "refusals_per_epoch": 1 << 20},
         "scheduler": {"epoch_ms": EPOCH_MS, "native": False, "slice_ms": 0}}
    if engine:
        p["coherence"] = True
        # the Appliance/Seed defaults (boards/*.json): slots for placement
        p["scheduler"]["coherence"] = {"slots": slots}
    else:
        p["scheduler"]["signal"] = "none"
    return board.from_dict(p)


def run(kind, seed, mode, engine, n=16, epochs=40, slots=4, signal=None,
        sched_opts=None, copts=None, detail=None):
    """One run of the real Runtime. Returns a dict of counts: p99/p50/max
    latency (us), messages, cross-slot messages under the runtime's
    placement (engine) and under round robin and contiguous blocks, drops."""
    from rvm_mp.kernel import Kernel
    from rvm_mp.runtime import Runtime
    root = _tmpdir()
    pf = VPlatform(root)
    prof = profile(n, engine, slots)
    if sched_opts:
        for k in sched_opts:
            prof["scheduler"][k] = sched_opts[k]
    if copts and engine:
        for k in copts:
            prof["scheduler"]["coherence"][k] = copts[k]
    log = WitnessLog(DEVICE_ID, key=KEY, ring=prof["witness"]["ring"],
                     clock=pf.ticks_ms)
    k = Kernel(pf, prof, log=log)
    rt = Runtime(k, pf, prof, signal=signal)
    cls = load_classes(n, seed)
    plan, peers = plans(kind, n, epochs, seed)
    t0 = pf.ticks_ms()
    # busy: every agent polls (always ready); event: the heavy ones compute
    # (poll), the light ones block in recv until their next request is due
    pids = [0]
    try:
        for i in range(1, n + 1):
            busy = 1 if mode == "busy" or cls[i] else 0
            src = AGENT % (plan[i], sorted(peers[i]), busy, t0)
            b = bundle.pack(src.encode(), {"name": "a%d" % i}, KEY,
                            verdict=bundle.unverified(src.encode()))
            pids.append(rt.load(b, {}, 0, 0, "a%d" % i))
        for i in range(1, n + 1):       # one inbox per agent, peers write it
            dst = pids[i]
            h = k.chan_create(dst, 0)
            rt.set_handle(dst, "in", h)
            for j in peers[i]:
                rt.set_handle(pids[j], "o%d" % i,
                              k.cap_grant(dst, h, pids[j], 2))
        idx = {}
        for i in range(1, n + 1):
            idx[pids[i]] = i
        q = [0] * (n + 3)
        for i in range(1, n + 1):
            q[pids[i]] = QH if cls[i] else QL
        s = rt.sched
        pick = s.pick

        def charged(now):
            t = pick(now)
            if t is not None:
                pf.us += SWITCH_US + q[t.pid]
            return t
        s.pick = charged
        sent = {}
        lat = []
        msgs = [0, 0, 0, 0]    # delivered, cross engine, cross RR, cross blocks
        ksend = k.send
        krecv = k.recv
        start_ms = t0 + WARMUP * EPOCH_MS
        blk = (n + slots - 1) // slots
        place = getattr(k.coherence, "placer", None) if engine else None

        def send(caller, h, payload):
            r = ksend(caller, h, payload)
            if r == 0:
                sent[bytes(payload)] = pf.us
            return r

        def recv(caller, h):
            r = krecv(caller, h)
            if type(r) is tuple:
                t = sent.pop(r[1], None)
                if t is not None and \
                        pf.ticks_ms() - start_ms >= 0:
                    lat.append(pf.us - t)
                    a = idx.get(r[0], 0)
                    b = idx.get(caller, 0)
                    if detail is not None:
                        detail.append((pf.us - t, a, b, cls[a], cls[b],
                                       r[1][0]))
                    msgs[0] += 1
                    if place is not None and \
                            place.slot_of(r[0]) != place.slot_of(caller):
                        msgs[1] += 1
                    elif place is None and a % slots != b % slots:
                        msgs[1] += 1
                    if a % slots != b % slots:
                        msgs[2] += 1
                    if (a - 1) // blk != (b - 1) // blk:
                        msgs[3] += 1
            return r
        k.send = send
        k.recv = recv
        s.start(pf.ticks_ms())
        rt.run(max_ms=epochs * EPOCH_MS)
        lat.sort()
        m = len(lat)
        res = {"kind": kind, "seed": seed, "mode": mode, "engine": engine,
               "heavy": sum(cls), "msgs": m,
               "p99": lat[(m * 99) // 100] if m else 0,
               "p50": lat[m // 2] if m else 0,
               "max": lat[-1] if m else 0,
               "cross": msgs[1], "cross_rr": msgs[2], "cross_blocks": msgs[3],
               "lost": len(sent), "switches": s.total_switches}
        if place is not None:
            res["replans"] = place.replans
            res["moves"] = place.moves
        return res
    finally:
        try:
            rt.shutdown()
        except Exception:
            pass
        try:
            _rmtree(root)
        except OSError:
            pass


def demo_run(engine, seconds=60, slots=4):
    """The demo (boards/seed-64k.json agents and channels, agents/*.py, the
    filter as WebAssembly) booted on the virtual clock for `seconds`, without
    and with the engine (the profile's coherence settings). Every resume
    costs 100 us, the flooder's 1000 us. Latency is matched per
    (sender, receiver) in FIFO order (each pair has one channel)."""
    import json
    from rvm_mp.boot import Boot
    with open(_ROOT + "/boards/seed-64k.json") as f:
        prof = json.load(f)
    prof["console"] = False
    sc = prof["scheduler"]
    if engine:
        prof["coherence"] = True
        sc["signal"] = "coherence"
        sc["boost_weight_ms"] = 0
        sc["wake_weight_ms"] = 10
        sc["coherence"] = {"slots": slots}
    bundles = {}
    for a in prof["agents"]:
        with open(_ROOT + "/agents/%s.py" % a["name"], "rb") as f:
            src = f.read()
        bundles[a["name"]] = bundle.pack(src, {"name": a["name"]}, KEY,
                                         verdict=bundle.unverified(src))
    root = _tmpdir()
    pf = VPlatform(root)
    b = Boot(fs=root, platform=pf, profile=prof, bundles=bundles)
    rt = b.run()
    try:
        k = rt.k
        s = rt.sched
        pick = s.pick
        fl = b.pids.get("flooder", -1)

        def charged(now):
            t = pick(now)
            if t is not None:
                pf.us += SWITCH_US + (QH if t.pid == fl else QL)
            return t
        s.pick = charged
        fifo = {}
        lat = []
        ksend = k.send
        krecv = k.recv
        t0 = pf.ticks_ms() + 5000        # warm-up: the first 5 s

        def send(caller, h, payload):
            r = ksend(caller, h, payload)
            if r == 0:
                key = (caller, k.last_dst)
                q = fifo.get(key)
                if q is None:
                    q = fifo[key] = []
                q.append(pf.us)
            return r

        def recv(caller, h):
            r = krecv(caller, h)
            if type(r) is tuple:
                q = fifo.get((r[0], caller))
                if q:
                    t = q.pop(0)
                    if pf.ticks_ms() - t0 >= 0:
                        lat.append(pf.us - t)
            return r
        k.send = send
        k.recv = recv
        rt.run(max_ms=seconds * 1000)
        lat.sort()
        m = len(lat)
        return {"kind": "demo", "engine": engine, "msgs": m,
                "p99": lat[(m * 99) // 100] if m else 0,
                "p50": lat[m // 2] if m else 0,
                "max": lat[-1] if m else 0,
                "switches": s.total_switches,
                "degraded": s.degraded}
    finally:
        try:
            rt.shutdown()
        except Exception:
            pass
        try:
            _rmtree(root)
        except OSError:
            pass


def compare(kind, seed, mode, n=16, epochs=40, slots=4):
    """Naive and engine runs of one seed; the ratios the criteria name."""
    a = run(kind, seed, mode, False, n, epochs, slots)
    b = run(kind, seed, mode, True, n, epochs, slots)
    naive_cross = min(a["cross_rr"], a["cross_blocks"])
    return {"kind": kind, "seed": seed, "mode": mode, "heavy": a["heavy"],
            "p99_naive": a["p99"], "p99_engine": b["p99"],
            "p99_ratio": b["p99"] / a["p99"] if a["p99"] else 1.0,
            "p50_ratio": b["p50"] / a["p50"] if a["p50"] else 1.0,
            "msgs_naive": a["msgs"], "msgs_engine": b["msgs"],
            "cross_engine": b["cross"],
            # the best naive placement of the engine run's own traffic
            "cross_naive": min(b["cross_rr"], b["cross_blocks"]),
            "cross_ratio": (b["cross"] / min(b["cross_rr"], b["cross_blocks"])
                            if min(b["cross_rr"], b["cross_blocks"]) else 1.0),
            "cross_naive_run": naive_cross,
            "replans": b.get("replans", 0), "lost": (a["lost"], b["lost"])}


def _arg(argv, name, default):
    for i in range(len(argv) - 1):
        if argv[i] == name:
            return argv[i + 1]
    return default


def main(argv):
    quick = "--quick" in argv
    seeds = [int(x) for x in _arg(argv, "--seeds",
                                   "1,2,3" if quick else
                                   "1,2,3,4,5,6,7,8,9,10").split(",")]
    kinds = _arg(argv, "--kinds", "clustered,churn,pipeline" if quick else
                 ",".join(KINDS) + ",demo").split(",")
    modes = _arg(argv, "--modes", "event" if quick else "busy,event").split(",")
    epochs = int(_arg(argv, "--epochs", "30" if quick else "50"))
    n = int(_arg(argv, "--n", "16"))
    rows = []
    print("kind mode seed heavy | p99 naive us, engine/naive | p50 e/n | "
          "cross-slot msgs engine/best naive = ratio | replans")
    for kind in kinds:
        if kind == "demo":
            a = demo_run(False, 30 if quick else 60)
            b = demo_run(True, 30 if quick else 60)
            r = {"kind": "demo", "mode": "-", "seed": 0,
                 "p99_naive": a["p99"], "p99_engine": b["p99"],
                 "p99_ratio": b["p99"] / a["p99"] if a["p99"] else 1.0,
                 "p50_ratio": b["p50"] / a["p50"] if a["p50"] else 1.0,
                 "msgs_naive": a["msgs"], "msgs_engine": b["msgs"]}
            rows.append(r)
            print("demo - - - | %d %.2f | %.2f | (one run queue, no slots) "
                  "| msgs %d/%d" % (a["p99"], r["p99_ratio"], r["p50_ratio"],
                                    b["msgs"], a["msgs"]))
            continue
        for mode in modes:
            for seed in seeds:
                r = compare(kind, seed, mode, n, epochs)
                rows.append(r)
                print("%s %s %d %d | %d %.2f | %.2f | %d/%d = %.2f | %d" % (
                    kind, mode, seed, r["heavy"], r["p99_naive"],
                    r["p99_ratio"], r["p50_ratio"], r["cross_engine"],
                    r["cross_naive"], r["cross_ratio"], r["replans"]))
    print("summary per workload: runs with p99 cut >= 20 %; p99 ratio "
          "min/median/max; cross-slot ratio min/median/max")
    for kind in kinds:
        rs = [r for r in rows if r["kind"] == kind]
        p = sorted([r["p99_ratio"] for r in rs])
        met = len([x for x in p if x <= 0.8])
        line = "  %s: p99 met %d/%d, %.2f/%.2f/%.2f" % (
            kind, met, len(rs), p[0], p[len(p) // 2], p[-1])
        cr = sorted([r["cross_ratio"] for r in rs if "cross_ratio" in r])
        if cr:
            line += "; cross %.2f/%.2f/%.2f" % (cr[0], cr[len(cr) // 2],
                                                cr[-1])
        print(line)
    st = [r for r in rows if r["kind"] in STRUCTURED]
    if st:
        met = len([r for r in st if r["p99_ratio"] <= 0.8])
        print("criteria: structured p99 cut >= 20 %% in %d/%d runs (goal "
              ">= 90 %%); worst p99 ratio of any run %.2f (goal <= 1.05)" % (
                  met, len(st), max([r["p99_ratio"] for r in rows])))
    if "--json" in argv:
        import json
        print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main(sys.argv)
