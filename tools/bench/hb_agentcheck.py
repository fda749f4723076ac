# Agent-code verifier throughput (host): lines of agent source per second
# through host_tools/rvm/agentcheck.check, over the demo agents, against
# ast.parse alone on the same text (the floor: parsing is the part any
# verifier pays).
import ast
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def bench(emit):
    from host_tools.rvm import agentcheck as C
    srcs = []
    for p in sorted(glob.glob(os.path.join(ROOT, "agents", "*.py"))):
        with open(p) as f:
            srcs.append(f.read())
    text = "\n".join(srcs)
    lines = len(text.splitlines()) * 1
    allow = C.allowed_imports(None, {"devices": ["temp"], "imports": ["machine"]})

    def run(fn, n=20):
        t = time.perf_counter()
        for _ in range(n):
            for s in srcs:
                fn(s)
        return (time.perf_counter() - t) / n

    import benchutil
    ver, par = [], []
    for _ in range(benchutil.INNER):   # 1 under tools/bench.py: its repeats
        ver.append(run(lambda s: C.check(s, allow)))
        par.append(run(ast.parse))
    ver.sort()
    par.sort()
    emit("verifier throughput (demo agents)", lines / ver[0], "lines/s",
         "%d lines, %d agents" % (lines, len(srcs)))
    emit("ast.parse alone (floor)", lines / par[0], "lines/s", "same text")
    emit("verifier time / parse time", ver[0] / par[0], "x", "same repeat")
