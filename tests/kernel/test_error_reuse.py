# Errors thrown into agents again and again (a refusal loop) leave nothing
# behind: each is a fresh builtin OSError the agent drops, never a shared
# preallocated object whose traceback MicroPython would grow by ~48 bytes
# per raise. Both runtimes (the heap figure on MicroPython).
import gc

import kt
import agentkit as K

HEAP = "512K"

LOOP = """
N = [0]
async def main(rvm):
    while True:
        try:
            await rvm.handle("nope")
        except OSError:
            N[0] += 1
"""


def test_refusals_thrown_into_an_agent_do_not_grow_the_heap():
    prof = K.profile()
    prof["limits"]["refusals_per_epoch"] = 1 << 20   # no flood fault here
    pf, k, rt = K.make(prof)
    try:
        pid = K.load(rt, "loop", LOOP)
        g = rt.sched.task(pid).globals
        rt.run(max_steps=300)
        gc.collect()
        a = gc.mem_alloc() if kt.IS_MP else 0
        n0 = g["N"][0]
        rt.run(max_steps=2000)
        gc.collect()
        assert g["N"][0] - n0 >= 1000
        if kt.IS_MP:
            assert gc.mem_alloc() - a < 1024   # a reused error: ~96 KB
    finally:
        K.done(rt)
