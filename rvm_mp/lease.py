# Device leases: time-bounded, exclusive, revocable use of a board device.
#
#   profile["devices"] (sorted names) -> device id 1..n (0 = none)
#   per device: holder pid, lease id, expiry (ticks_ms), rights, the pool
#   entry + serial of the capability the lease was granted under
#
#   partition --(DeviceProxy.read/on/...)--> check lease --> platform device
#
# The partition never gets the device object: it gets a DeviceProxy whose
# every call re-checks the lease (same holder, same lease id, not expired,
# capability still live, holder Running). Expiry is noticed lazily on use and
# by Kernel.expire_leases() from the scheduler loop; both witness
# LEASE_EXPIRE once. Devices come from platform.open_device (SimDevice on
# hosted runtimes, `machine` objects on a board), opened on first lease.
from array import array

from .compat import const, ticks_add, ticks_diff
from . import errors
from . import kinds
from .captable import R_READ, R_WRITE

REASON_RELEASED = const(0)
REASON_KERNEL = const(1)
REASON_TERMINATED = const(2)
REASON_CAP_REVOKED = const(3)
LEASE_MAX_MS = const(0x0FFFFFFF)
_OP_DEVICE = const(13)


class LeaseTable:
    def __init__(self, kernel, devices):
        self.k = kernel
        self.specs = devices
        self.names = sorted(devices)
        n = len(self.names)
        self.n = n
        self.holder = array("H", [0] * n)     # 0 = free
        self.lid = array("i", [0] * n)
        self.expiry = [0] * n                 # ticks_ms (62-bit on the unix port)
        self.rights = bytearray(n)
        self.cap = array("h", [-1] * n)       # pool index of the granting cap
        self.cap_ser = array("i", [0] * n)
        self.ended_lid = array("i", [0] * n)  # last lease that ended ...
        self.ended_why = bytearray(n)         # ... and why (errors code)
        self.devs = [None] * n
        self._next = 0

    def index(self, name):
        try:
            return self.names.index(name)
        except ValueError:
            return -1

    def _live(self, di, now):
        """Holder of device di if its lease is live now, else 0 (an expired
        lease is ended and witnessed here)."""
        h = self.holder[di]
        if h and ticks_diff(self.expiry[di], now) <= 0:
            self.k.log.emit(kinds.LEASE_EXPIRE, 0, h, di + 1, self.lid[di],
                            -ticks_diff(self.expiry[di], now), 0)
            self._end(di, errors.EEXPIRED.code)
            return 0
        return h

    def _end(self, di, why):
        self.ended_lid[di] = self.lid[di]
        self.ended_why[di] = why
        self.holder[di] = 0
        self.cap[di] = -1

    def grant(self, di, pid, duration_ms, rights, ci, ser):
        now = self.k.clock()
        self._next = (self._next + 1) & 0x3FFFFFFF
        self.holder[di] = pid
        self.lid[di] = self._next
        self.expiry[di] = ticks_add(now, duration_ms)
        self.rights[di] = rights
        self.cap[di] = ci
        self.cap_ser[di] = ser
        if self.devs[di] is None:
            self.open(di)
        return self._next

    def open(self, di):
        """Open device di on first use; False when the port lacks it (the
        platform returns None or raises), so the lease is refused."""
        if self.devs[di] is None:
            name = self.names[di]
            try:
                self.devs[di] = self.k.platform.open_device(name, self.specs[name])
            except Exception:  # a port's device constructor failing
                self.devs[di] = None
        return self.devs[di] is not None

    def revoke(self, di, actor, reason):
        h = self.holder[di]
        self.k.log.emit(kinds.LEASE_REVOKE, actor, h, di + 1, self.lid[di],
                        reason, 0)
        self._end(di, errors.ESTALE.code)

    def expire(self):
        now = self.k.clock()
        n = 0
        for di in range(self.n):
            if self.holder[di] and not self._live(di, now):
                n += 1
        return n

    def drop_partition(self, pid, actor):
        n = 0
        for di in range(self.n):
            if self.holder[di] == pid:
                self.revoke(di, actor, REASON_TERMINATED)
                n += 1
        return n

    def check(self, di, lid, pid, need):
        """0 when lease `lid` on device di still lets pid do an op needing
        rights `need`; else an RvmError (witnessed LEASE_DENIED)."""
        k = self.k
        now = k.clock()
        h = self._live(di, now)
        if h != pid or self.lid[di] != lid:
            if self.ended_lid[di] == lid:
                e = errors.err(self.ended_why[di])
            else:
                e = errors.ESTALE
        else:
            caps = k.caps
            ci = self.cap[di]
            p = k.parts.get(pid)
            if ci < 0 or caps.serial[ci] != self.cap_ser[di] or not caps.otype[ci]:
                self.revoke(di, 0, REASON_CAP_REVOKED)
                e = errors.ESTALE
            elif p is None or p.state != 1:
                e = errors.ESTATE
            elif need & ~self.rights[di]:
                e = errors.ERIGHTS
            else:
                return 0
        k.log.deny(kinds.LEASE_DENIED, pid, self.holder[di], e.code, 2,
                   di + 1, 0, _OP_DEVICE)
        return e

    def of(self, pid):
        now = self.k.clock()
        out = []
        for di in range(self.n):
            if self.holder[di] == pid and self._live(di, now) == pid:
                out.append((self.names[di], self.lid[di],
                            ticks_diff(self.expiry[di], now)))
        return out


class DeviceProxy:
    """What a partition holds instead of a device. Every call checks the
    lease first and returns an RvmError instead of touching the device when
    the lease has expired or been revoked."""

    def __init__(self, table, di, lid, pid):
        self._t = table
        self._di = di
        self.lease_id = lid
        self.pid = pid
        self.name = table.names[di]

    def _dev(self, need):
        r = self._t.check(self._di, self.lease_id, self.pid, need)
        if r:
            return None, r
        return self._t.devs[self._di], 0

    def alive(self):
        """True while the lease is live (no witness when it is not)."""
        t = self._t
        return (t.holder[self._di] == self.pid and t.lid[self._di] == self.lease_id
                and ticks_diff(t.expiry[self._di], t.k.clock()) > 0)

    def on(self):
        d, r = self._dev(R_WRITE)
        if r:
            return r
        d.on()
        return 0

    def off(self):
        d, r = self._dev(R_WRITE)
        if r:
            return r
        d.off()
        return 0

    def toggle(self):
        d, r = self._dev(R_WRITE)
        if r:
            return r
        if hasattr(d, "toggle"):
            d.toggle()
        else:
            d.value(1 - d.value())
        return 0

    def set(self, v):
        d, r = self._dev(R_WRITE)
        if r:
            return r
        if hasattr(d, "set"):
            d.set(v)
        else:
            d.value(v)
        return 0

    def read(self):
        d, r = self._dev(R_READ)
        if r:
            return r
        if hasattr(d, "read_u16"):   # machine.ADC
            return d.read_u16()
        if hasattr(d, "read"):       # SimDevice, machine.UART
            return d.read()
        return d.value()             # machine.Pin

    def write(self, data):
        d, r = self._dev(R_WRITE)
        if r:
            return r
        return d.write(data)
