# A WebAssembly partition's linear memory is a kernel region (both
# runtimes; rvm_mp/wasm/memory.py): owned by the partition and counted in
# its quota, captured by checkpoints, brought back by an F2 rebuild (an F1
# restart starts fresh), moved across the tiers while the module runs on,
# and never freed, shared or reassigned by anyone but the kernel.
import struct

import agentkit as K
import kt
import wasmkit
from rvm_mp import bundle, errors, faults as F, kinds, tiers

HEAP = "1M"

SENSOR = """
import struct
async def main(rvm):
    h = await rvm.handle("raw")
    for i, v in enumerate([700] * 5 + [100] * 5 + [900] * 3):
        await rvm.send(h, struct.pack("<HH", i, v))
        await rvm.sleep_ms(10)
"""
ACTUATOR = """
OUT = []
async def main(rvm):
    h = await rvm.handle("cmd")
    while True:
        src, msg = await rvm.recv(h)
        OUT.append(msg)
"""


def _wasm(name):
    return wasmkit.read(wasmkit.index()["agents"][name])


def _load(rt, name, code, man=None, spec=None):
    m = {"name": name}
    if man:
        m.update(man)
    return rt.load(bundle.pack(code, m, kt.KEY, verdict=bundle.unverified(code)),
                   spec or {}, 0, 0, name)


def _mine(log, kind, pid):
    return [r for r in K.recs(log, kind) if r[6] == pid]


def test_memory_is_a_region_of_the_partition_in_its_quota():
    pf, k, rt = K.make(mem=True)
    try:
        rm = k.mem
        f = _load(rt, "filter", _wasm("filter"), spec={"quota": {"mem": 200}})
        assert type(f) is int, f
        c = rt.sched.task(f).coro
        rid = c.rid
        assert rm.regions_of(f) == [rid] and rid in rm.live
        assert rm.regions[rid].size == 128 and rm.regions[rid].owner == f
        s = c.stat()
        assert rt.task_info(f)["wasm"] == "fuel=%d mem=128/128 %s region=%d" % (
            s["fuel"], s["impl"], rid)
        # the rest of the quota is what the partition can still allocate
        assert rm.alloc(f, 80) is errors.EQUOTA
        r2 = rm.alloc(f, 72)
        assert type(r2) is int
        # a module whose memory is over the quota is capped to it
        g = _load(rt, "filter2", _wasm("filter"), spec={"quota": {"mem": 100}})
        assert rm.regions[rt.sched.task(g).coro.rid].size == 100
        # the memory the module writes is the region's bytes: handle names
        # from the data segments at 0, 4, 8
        assert rm.read(0, rid, 0, 3) == b"raw"
        assert rm.read(0, rid, 8, 6) == b"report"
        # nobody else reads it
        assert rm.read(g, rid, 0, 3) is errors.ERIGHTS
        # killed: the kernel frees it with the partition
        k.part_terminate(0, f, 0, 0)
        assert rid not in rm.regions and rid not in rm.live
    finally:
        K.done(rt)


def _filter_run(code, mid):
    """sensor -> filter -> actuator, with mid(rt, filter pid) called after
    the first readings; the actuator's messages."""
    pf, k, rt = K.make(mem=True)
    try:
        f = _load(rt, "filter", code)
        s = K.load(rt, "sensor", SENSOR)
        a = K.load(rt, "act", ACTUATOR)
        sup = K.load(rt, "sup", "async def main(rvm):\n    await rvm.sleep_ms(100000)\n")
        assert rt.connect("raw", s, f, 4) == 0
        assert rt.connect("cmd", f, a, 4) == 0
        assert rt.connect("report", f, sup, 4) == 0
        rt.run(max_steps=60)
        mid(rt, f)
        rt.run(max_steps=340)
        return rt.sched.task(a).globals["OUT"]
    finally:
        K.done(rt)


def test_tier_moves_keep_the_running_modules_memory():
    with open(kt.repo_root() + "/agents/filter.py") as fh:
        py = fh.read()
    moved = []

    def none(rt, f):
        pass

    def away(rt, f):
        rm = rt.k.mem
        rid = rt.sched.task(f).coro.rid
        ring = rm.read(0, rid, 64, 16)
        assert ring != bytes(16)            # readings are in the ring already
        assert rm.move(rid, tiers.DORMANT) == 0 and rm.regions[rid].off < 0
        assert rm.read(0, rid, 64, 16) == ring   # faulted back in, same bytes
        assert rm.move(rid, tiers.COLD) == 0 and rm.tier_of(rid) == tiers.COLD
        moved.append(rid)

    want = _filter_run(_wasm("filter"), none)
    got = _filter_run(_wasm("filter"), away)
    assert moved and len(want) == 3
    assert got == want, (got, want)


def test_checkpoint_captures_memory_and_f2_brings_it_back():
    # no F1: the first fault rebuilds from the checkpoint
    pol = F.FaultPolicy(max_restarts=0, max_rebuilds=2)
    pf, k, rt = K.make(mem=True, policy=pol)
    try:
        rm = k.mem
        w = _load(rt, "memck", _wasm("memck"))
        assert type(w) is int, w
        rid = rt.sched.task(w).coro.rid
        rt.run(max_ms=2000)
        ck = _mine(rt.log, kinds.CHECKPOINT, w)
        # one checkpoint (at 3) holding the region: after each rebuild the
        # counter went on from the restored 3 (4, then the trap at 5)
        assert len(ck) == 1 and ck[0][8] == 1, ck
        data = rm.ckpts.latest(w)["regions"]
        assert [(x[0], bytes(x[5])) for x in data] == \
            [(rid, struct.pack("<II", 3, 0) + b"wasm" + bytes(4))]
        f2 = _mine(rt.log, kinds.FAULT_F2_REBUILD, w)
        assert len(f2) == 2 and all(r[8] == 0 and r[9] == 1 for r in f2), f2
        rec = _mine(rt.log, kinds.RECONSTRUCT, w)
        assert [r[7] for r in rec] == [rid, rid]
        assert len(K.recs(rt.log, kinds.AGENT_FAULT)) == 3
        # the module's in-place writes are witnessed as the partition
        wr = [r for r in K.recs(rt.log, kinds.REGION_WRITE) if r[7] == rid]
        assert wr and all(r[5] == w for r in wr)
    finally:
        K.done(rt)


def test_f1_restart_gives_a_fresh_memory():
    pol = F.FaultPolicy(max_restarts=2, max_rebuilds=0, restart_delay_ms=10)
    pf, k, rt = K.make(mem=True, policy=pol)
    try:
        w = _load(rt, "memck", _wasm("memck"))
        rid = rt.sched.task(w).coro.rid
        rt.run(max_ms=2000)
        # every incarnation counted from 0 again: a checkpoint at 3 each
        assert len(_mine(rt.log, kinds.CHECKPOINT, w)) == 3
        assert len(_mine(rt.log, kinds.FAULT_F1_RESTART, w)) == 2
        # the same region all along (zeroed, data segments again)
        allocs = [r for r in K.recs(rt.log, kinds.REGION_ALLOC) if r[6] == w]
        assert [r[7] for r in allocs] == [rid]
    finally:
        K.done(rt)


def test_history_of_the_memory_is_reconstructed():
    pol = F.FaultPolicy(max_restarts=0, max_rebuilds=1)
    pf, k, rt = K.make(mem=True, policy=pol)
    try:
        rm = k.mem
        w = _load(rt, "memck", _wasm("memck"))
        rid = rt.sched.task(w).coro.rid
        rt.run(max_ms=2000)
        ck = _mine(rt.log, kinds.CHECKPOINT, w)[0]
        at = rm.region_at(rid, ck[0])
        assert at[:4] == struct.pack("<I", 3) and at[8:12] == b"wasm"
    finally:
        K.done(rt)


def test_agent_cannot_free_its_memory_and_refusal_is_witnessed():
    pf, k, rt = K.make(mem=True)
    try:
        rm = k.mem
        w = _load(rt, "memfree", _wasm("memfree"), man={"wasm": {"mem": 64}})
        assert type(w) is int, w
        rid = rt.sched.task(w).coro.rid
        rt.run(max_steps=30)
        # a region id is no handle: the syscall table refuses all four
        want = bytes([errors.EBADHANDLE.code] * 4)
        assert rt.outlog.get(w, b"")[:5] == want + b"!", rt.outlog.get(w)
        assert rid in rm.regions and rid in rm.live
        # the region manager refuses its owner too (only the kernel frees it)
        assert rm.free(w, rid) is errors.EBUSY
        den = [r for r in K.recs(rt.log, kinds.REGION_DENIED) if r[5] == w and r[7] == rid]
        assert den and den[-1][8] == errors.EBUSY.code
        # the kernel does not share or reassign it either
        other = K.load(rt, "o", "async def main(rvm):\n    await rvm.sleep_ms(100000)\n")
        assert rm.share(w, rid, other) is errors.ESTATE
        assert rm.reassign(rid, other) is errors.ESTATE
        assert rm.regions[rid].owner == w
        rt.run(max_steps=10)   # and the module runs on
        assert rt.sched.task(w).coro is not None
    finally:
        K.done(rt)


def test_memory_over_the_arena_faults_the_partition_not_the_kernel():
    pf, k, rt = K.make(mem=True)
    try:
        # 4096 bytes of linear memory, the test board's arena is 1024
        w = _load(rt, "memfree", _wasm("memfree"))
        p = K.load(rt, "py", "OUT = []\nasync def main(rvm):\n    OUT.append(1)\n")
        rt.run(max_steps=60)
        assert _mine(rt.log, kinds.AGENT_FAULT, w)
        assert rt.sched.task(p).globals["OUT"] == [1]
        assert k.mem.regions_of(w) == []
    finally:
        K.done(rt)
