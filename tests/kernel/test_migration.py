# Migration (DC-7): success moves everything and witnesses it; over budget it
# aborts cleanly (source Running, nothing in the destination), witnesses
# MIGRATION_TIMEOUT and the source is ineligible for a cooldown; the image
# format round-trips and refuses corruption.
import kt
from rvm_mp import kinds, errors, board
from rvm_mp.hal import Platform
from rvm_mp.kernel import Kernel
from rvm_mp.region import RegionManager
from rvm_mp.witness import unpack
from rvm_mp.captable import R_READ, R_WRITE, OT_CHANNEL, OT_DEVICE, OT_GRAPH
from rvm_mp.coherence.engine import CoherenceEngine
from rvm_mp.coherence import migration as mg

HEAP = "512K"  # kernel + memory manager + engine compiled from source


class Clock:
    def __init__(self, step=0):
        self.t = 1000
        self.step = step

    def __call__(self):
        self.t = (self.t + self.step) & 0x3FFFFFFF
        return self.t


def _setup(step=0, budget=100, cooldown=500):
    prof = board.from_dict({
        "name": "t", "devices": {"led": {"type": "led", "pin": 2}},
        "limits": {"partitions": 8, "caps_per_partition": 16}})
    k = Kernel(Platform(kt.tmpdir("mg"), kt.DEVICE_ID, kt.KEY), prof)
    k.mem = RegionManager(k.log, 8192)
    e = CoherenceEngine(k.log, max_nodes=8, budget_us=1 << 20)
    k.ipc_observer = e
    clk = Clock(step)
    m = mg.Migrator(k, e, budget_ms=budget, cooldown_ms=cooldown, chunk=256,
                    clock=clk)
    src = k.part_create(0, name="src")
    dst = k.part_create(0, name="dst")
    k.part_start(0, src)
    k.part_start(0, dst)
    for _ in range(3):
        e.on_message(src, dst, 4)
        e.epoch()
    h = k.chan_create(src)
    d = k.cap_mint(src, OT_DEVICE, k.device_id("led"), R_READ | R_WRITE)
    rids = []
    for i in range(4):
        rid = k.mem.alloc(src, 512)
        k.mem.write(src, rid, 0, bytes([i + 1]) * 512)
        rids.append(rid)
    return k, e, m, clk, src, dst, rids


def _recs(k, kind):
    return [unpack(r) for r in k.log.query(kind=kind)]


def test_image_round_trip_and_corruption_refused():
    img = mg.serialize(7, bytes(range(32)), "sensor",
                       [(2, 5, 3), (3, 1, 1)], [(9, b"abc"), (10, b"")], b"st")
    p = mg.parse(img)
    assert p["src"] == 7 and p["name"] == "sensor"
    assert p["code_hash"] == bytes(range(32))
    assert p["caps"] == [(2, 5, 3), (3, 1, 1)]
    assert p["regions"] == [(9, b"abc"), (10, b"")]
    assert p["state"] == b"st"
    assert img[0:4] == b"RVMG"
    for i in (5, 20, 45, len(img) - 40, len(img) - 1):
        bad = bytearray(img)
        bad[i] ^= 0x10
        assert errors.is_err(mg.parse(bytes(bad)))
    assert mg.parse(img[:-1]) is errors.ECORRUPT
    assert mg.parse(b"XXXX" + img[4:]) is errors.EINVAL
    assert mg.parse(b"") is errors.EINVAL


def test_migration_success_moves_everything():
    k, e, m, clk, src, dst, rids = _setup()
    hold = []
    m.on_commit = lambda s, d, img: hold.append((s, d, img["state"]))
    caps_before = [(c[1], c[2], c[3]) for c in k.cap_list(src)]
    n = m.migrate(src, dst, state=b"restart-point", name="agent")
    assert not errors.is_err(n) and n > 4 * 512
    assert k.part_state(src) == 5            # source retired
    assert k.part_state(dst) == 1
    assert sorted((c[1], c[2], c[3]) for c in k.cap_list(dst)) == sorted(caps_before)
    for i in range(4):
        assert k.mem.regions[rids[i]].owner == dst
        assert k.mem.read(dst, rids[i], 0, 512) == bytes([i + 1]) * 512
    # the moved channel still works (owner followed the capability)
    hc = [c[0] for c in k.cap_list(dst) if c[1] == OT_CHANNEL][0]
    assert k.send(dst, hc, b"x") == 0
    assert hold == [(src, dst, b"restart-point")]
    st = _recs(k, kinds.MIGRATION_START)[-1]
    dn = _recs(k, kinds.MIGRATION_DONE)[-1]
    assert st[6] == src and st[7] == dst and st[9] == 100
    assert dn[6] == src and dn[7] == dst and dn[9] == 4 and dn[10] == n
    assert e.graph.slot(src) == -1


def test_migration_timeout_aborts_and_rolls_back():
    k, e, m, clk, src, dst, rids = _setup(step=3, budget=10, cooldown=500)
    before = k.snapshot()
    caps_src = k.cap_list(src)
    r = m.migrate(src, dst)
    assert r is errors.ETIMEOUT
    assert k.part_state(src) == 1            # source keeps running
    assert k.cap_list(src) == caps_src       # same handles, same rights
    assert k.cap_list(dst) == []
    for i in range(4):
        assert k.mem.regions[rids[i]].owner == src
        assert k.mem.read(src, rids[i], 0, 512) == bytes([i + 1]) * 512
    to = _recs(k, kinds.MIGRATION_TIMEOUT)
    assert len(to) == 1
    assert to[0][6] == src and to[0][7] == dst and to[0][8] > 10
    assert to[0][9] == 10 and to[0][10] == 500
    assert m.timeouts == 1 and m.done == 0
    # the kernel's security state is what it was (partition states aside,
    # which went Running -> Suspended -> Running, witnessed)
    assert k.snapshot()[0] == before[0]
    # ineligible during the cooldown: refused and witnessed
    m.budget_ms = 1 << 20
    clk.step = 0
    assert m.migrate(src, dst) is errors.EBUSY
    d = _recs(k, kinds.MIGRATION_START)[-1]
    assert d[4] & kinds.F_DENIED and d[8] == errors.EBUSY.code
    clk.t += 600                             # cooldown over
    assert not errors.is_err(m.migrate(src, dst))
    assert k.part_state(src) == 5


def test_migration_refusals():
    k, e, m, clk, src, dst, rids = _setup()
    other = k.part_create(0, name="o")
    k.part_start(0, other)
    # no capability on (OT_GRAPH, src): the proof gate refuses
    assert errors.is_err(m.migrate(src, dst, caller=other, handle=0x101))
    # with the capability, migration is a P3 operation: proofs required
    h = k.cap_mint(other, OT_GRAPH, src, R_READ | R_WRITE)
    assert errors.is_err(m.migrate(src, dst, caller=other, handle=h))
    assert m.migrate(src, src) is errors.ESTATE
    k.part_suspend(0, src)
    assert m.migrate(src, dst) is errors.ESTATE
    k.part_resume(0, src)
    e.fail("injected")                       # DC-6: none while degraded
    assert m.migrate(src, dst) is errors.EDEGRADED
    assert k.part_state(src) == 1 and k.cap_list(dst) == []


def test_destination_without_room_aborts_before_commit():
    k, e, m, clk, src, dst, rids = _setup()
    led = k.device_id("led")
    while len(k.cap_list(dst)) < k.caps.per - 1:
        k.cap_mint(dst, OT_DEVICE, led, R_READ)
    r = m.migrate(src, dst)
    assert r is errors.EQUOTA
    assert k.part_state(src) == 1
    assert len(k.cap_list(src)) == 2
    rec = _recs(k, kinds.MIGRATION_TIMEOUT)[-1]
    assert rec[4] & kinds.F_DENIED and rec[8] == errors.EQUOTA.code
