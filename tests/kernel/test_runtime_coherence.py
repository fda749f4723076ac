# The runtime's coherence hooks (issue 7): the wake-time boost on the real
# send path (a request/reply pair runs back to back), and DC-7 migration of
# a running agent between partitions (Runtime.migrate).
import kt
import agentkit as K
from rvm_mp import kinds, errors
from rvm_mp import scheduler as S

HEAP = "512K"

SERVER = """
async def main(rvm):
    req = await rvm.handle("req")
    rep = await rvm.handle("rep")
    while True:
        m = await rvm.recv(req)
        await rvm.send(rep, m[1])
"""

CLIENT = """
N = [0]
async def main(rvm):
    req = await rvm.handle("req")
    rep = await rvm.handle("rep")
    while True:
        await rvm.send(req, b"p")
        await rvm.recv(rep)
        N[0] += 1
        await rvm.yield_()
"""

HOG = """
async def main(rvm):
    while True:
        await rvm.yield_()
"""


class _AllPairs:
    """A healthy signal: no per-epoch boost, every wake worth 10000 bp."""
    available = True

    def refresh(self, now):
        return True

    def boost(self, pid):
        return 0

    def wake(self, src, dst):
        return 10000


def _pingpong(signal):
    pf, k, rt = K.make(step_us=400, signal=signal)   # time moves per step
    try:
        srv = K.load(rt, "srv", SERVER)
        cli = K.load(rt, "cli", CLIENT)
        for i in range(3):
            K.load(rt, "hog%d" % i, HOG)
        assert rt.connect("req", cli, srv) == 0
        assert rt.connect("rep", srv, cli) == 0
        trace = []
        s = rt.sched
        s.start(pf.ticks_ms())       # boot phase 7: the first signal refresh
        pick = s.pick

        def traced(now):
            t = pick(now)
            if t is not None:
                trace.append(t.pid)
            return t
        s.pick = traced
        rt.run(max_steps=300)
        return trace, srv, cli, rt.sched.task(cli).globals["N"][0]
    finally:
        K.done(rt)


def _back_to_back(trace, srv, cli):
    """Round trips run as client (request) -> server -> client (reply)."""
    n = 0
    for i in range(1, len(trace) - 1):
        if trace[i - 1] == cli and trace[i] == srv and trace[i + 1] == cli:
            n += 1
    return n


def test_wake_boost_runs_request_and_reply_back_to_back():
    trace, srv, cli, n = _pingpong(_AllPairs())
    # the request wakes the server and it runs next; its reply wakes the
    # client and it runs next: every round trip (but the first, at start-up)
    # runs back to back although three hogs are always ready
    assert n > 20
    assert _back_to_back(trace, srv, cli) >= n - 1
    # without an engine (NullSignal: no wake boost) the hogs run in between
    trace0, srv0, cli0, n0 = _pingpong(None)
    assert _back_to_back(trace0, srv0, cli0) < n0 // 2
    assert n > n0 > 0      # more round trips in the same number of steps
