# Helpers for runtime/agent/fault/boot tests (both runtimes): a platform
# with a fake clock that records idle waits, a small board profile, and a
# kernel + runtime built around them.
import kt
from rvm_mp import hal, board, bundle
from rvm_mp.compat import ticks_add
from rvm_mp.witness import WitnessLog, unpack


class FakePlatform(hal.Platform):
    """Hosted platform with a fake clock. Time moves only when the kernel
    waits (wait_io/sleep_ms) or by `step_us` per ticks_us() call."""

    def __init__(self, root, t0_ms=5000, step_us=0):
        hal.Platform.__init__(self, root, kt.DEVICE_ID, kt.KEY)
        self.us = (t0_ms * 1000) & 0x3FFFFFFF
        self.step_us = step_us
        self.waits = []
        self.resets = []
        self.input_after = None  # wait_io reports input after this many calls

    def ticks_ms(self):
        return (self.us // 1000) & 0x3FFFFFFF

    def ticks_us(self):
        self.us = (self.us + self.step_us) & 0x3FFFFFFF
        return self.us

    def adv(self, ms):
        self.us = (self.us + ms * 1000) & 0x3FFFFFFF

    def sleep_ms(self, ms):
        self.adv(ms)

    def wait_io(self, timeout_ms):
        self.waits.append(timeout_ms)
        if self.input_after is not None:
            self.input_after -= 1
            if self.input_after <= 0:
                self.input_after = None
                return True
        if timeout_ms > 0:
            self.adv(timeout_ms)
        return False

    def reset(self, code=hal.EXIT_F4):
        self.resets.append(code)


DEVICES = {"temp": {"type": "adc", "pin": 34},
           "relay": {"type": "pin", "pin": 5}}


def profile(**kw):
    p = {"name": "test-board", "ram": 65536, "devices": DEVICES,
         "witness": {"ring": 64, "seal_every": 0, "segment_records": 64},
         "limits": {"partitions": 8, "caps_per_partition": 16,
                    "queue_depth": 4, "payload_max": 32, "arena": 1024,
                    "graph_nodes": 8},
         "scheduler": {"epoch_ms": 100}}
    for k in kw:
        p[k] = kw[k]
    return board.from_dict(p)


def make(prof=None, mem=False, step_us=0, policy=None, signal=None):
    """(platform, kernel, runtime) on a fake clock."""
    from rvm_mp.kernel import Kernel
    from rvm_mp.runtime import Runtime
    root = kt.tmpdir("rt")
    pf = FakePlatform(root, step_us=step_us)
    prof = prof or profile()
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=prof["witness"]["ring"],
                     clock=pf.ticks_ms)
    k = Kernel(pf, prof, log=log)
    if mem:
        from rvm_mp.region import RegionManager
        k.mem = RegionManager(log, prof["limits"]["arena"], root=root + "/mem",
                              clock=pf.ticks_ms)
    rt = Runtime(k, pf, prof, signal=signal, policy=policy, fs=root)
    return pf, k, rt


def pack(name, src, key=None):
    if isinstance(src, str):
        src = src.encode()
    # the `--unverified` path: kernel tests load hostile code on purpose
    return bundle.pack(src, {"name": name}, key or kt.KEY,
                       verdict=bundle.unverified(src))


def load(rt, name, src, spec=None):
    return rt.load(pack(name, src), spec or {}, 0, 0, name)


def recs(log, kind):
    return [unpack(r) for r in log.query(kind=kind)]


def done(rt):
    rt.shutdown()  # closes agent coroutines, seals, uninstalls the gate
