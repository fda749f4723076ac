# Device operations (rvm_mp/devops.py) on the simulated pin, ADC, I2C, SPI
# and UART devices of hal.py: every op of every kind, exact-type and range
# checks on arguments, device errors returned (never raised), builtin
# results; a device the port lacks is refused at lease time (ENOTSUP,
# witnessed). Both runtimes.
import kt
from rvm_mp import board, devops, errors, kinds
from rvm_mp.captable import R_READ, R_WRITE, OT_DEVICE
from rvm_mp.hal import Platform, SimDevice, sim_device
from rvm_mp.simdev import SimI2C, SimSPI, SimUART
from rvm_mp.kernel import Kernel
from rvm_mp.witness import unpack

HEAP = "256K"


class IntSub(int):
    pass


class BytesSub(bytes):
    pass


class Sneaky:
    """An argument whose methods must never run."""
    called = []

    def __index__(self):
        Sneaky.called.append("index")
        return 1

    def __len__(self):
        Sneaky.called.append("len")
        return 1

    def __eq__(self, other):
        Sneaky.called.append("eq")
        return True


def test_ops_table_and_kinds():
    assert devops.OPS["read"] == R_READ and devops.OPS["writeto_mem"] == R_WRITE
    assert devops.OPS["write_readinto"] == R_READ | R_WRITE
    assert devops.allowed("i2c", "scan") and not devops.allowed("i2c", "on")
    assert devops.allowed("uart", "any") and not devops.allowed("adc", "write")
    assert not devops.allowed("floppy", "read")
    assert devops.call(SimUART(), "uart", "scan", ()) is errors.EINVAL
    assert devops.call(SimUART(), "uart", 5, ()) is errors.EINVAL
    assert devops.call(None, "uart", "any", ()) is errors.ENOTSUP


def test_pin_and_adc():
    d = SimDevice("relay", {"type": "pin"})
    assert devops.call(d, "pin", "on", ()) == 0 and d.value == 1
    assert devops.call(d, "pin", "toggle", ()) == 0 and d.value == 0
    assert devops.call(d, "pin", "set", (1,)) == 0 and d.value == 1
    assert devops.call(d, "pin", "write", (0,)) == 0 and d.value == 0
    assert devops.call(d, "pin", "set", (2,)) is errors.EINVAL
    assert devops.call(d, "pin", "set", (True,)) is errors.EINVAL  # bool is not int
    assert devops.call(d, "pin", "on", (1,)) is errors.EINVAL
    a = SimDevice("temp", {"type": "adc"})
    v1 = devops.call(a, "adc", "read", ())
    v2 = devops.call(a, "adc", "read", ())
    assert type(v1) is int and v1 != v2


def test_i2c_ops():
    bus = SimI2C()
    assert devops.call(bus, "i2c", "scan", ()) == [0x48, 0x50]
    assert devops.call(bus, "i2c", "writeto_mem", (0x50, 3, b"xyz")) == 3
    r = devops.call(bus, "i2c", "readfrom_mem", (0x50, 3, 3))
    assert r == b"xyz" and type(r) is bytes
    assert devops.call(bus, "i2c", "writeto", (0x50, b"\x10ab")) == 1
    assert devops.call(bus, "i2c", "writeto", (0x50, b"\x10")) == 1
    assert devops.call(bus, "i2c", "readfrom", (0x50, 2)) == b"ab"
    s1 = devops.call(bus, "i2c", "readfrom_mem", (0x48, 0, 2))
    s2 = devops.call(bus, "i2c", "readfrom_mem", (0x48, 0, 2))
    assert len(s1) == 2 and s1 != s2
    # nobody at 0x33: the bus NACK comes back as an error, not an exception
    assert devops.call(bus, "i2c", "readfrom", (0x33, 1)) is errors.ENOENT
    assert devops.call(bus, "i2c", "writeto", (0x33, b"a")) is errors.ENOENT
    # ranges and exact types
    assert devops.call(bus, "i2c", "readfrom", (128, 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "readfrom", (-1, 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "readfrom", (0x50, devops.MAX_BYTES + 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "readfrom_mem", (0x50, 0x10000, 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "writeto", (0x50, bytearray(b"a"))) is errors.EINVAL
    assert devops.call(bus, "i2c", "writeto", (0x50, BytesSub(b"a"))) is errors.EINVAL
    assert devops.call(bus, "i2c", "readfrom", (IntSub(0x50), 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "writeto", (0x50, b"a" * (devops.MAX_BYTES + 1))) is errors.EINVAL
    assert devops.call(bus, "i2c", "readfrom", [0x50, 1]) is errors.EINVAL  # not a tuple
    assert devops.call(bus, "i2c", "readfrom", (0x50,)) is errors.EINVAL


def test_arguments_are_never_called():
    bus = SimI2C()
    Sneaky.called = []
    s = Sneaky()
    assert devops.call(bus, "i2c", "readfrom", (s, 1)) is errors.EINVAL
    assert devops.call(bus, "i2c", "writeto", (0x50, s)) is errors.EINVAL
    assert devops.call(bus, "i2c", "scan", (s,)) is errors.EINVAL
    assert devops.call(bus, "i2c", "scan", s) is errors.EINVAL
    assert devops.call(SimUART(), "uart", "read", (s,)) is errors.EINVAL
    assert devops.call(SimDevice("p", {}), "pin", "set", (s,)) is errors.EINVAL
    assert Sneaky.called == []


def test_spi_ops():
    spi = SimSPI()
    assert devops.call(spi, "spi", "write", (b"abc",)) == 3
    r = devops.call(spi, "spi", "write_readinto", (b"\x01\x02",))
    assert r == b"\x01\x02" and type(r) is bytes
    assert devops.call(spi, "spi", "read", (3,)) == b"\x00\x00\x00"
    assert devops.call(spi, "spi", "read", (2, 0xFF)) == b"\xff\xff"
    assert devops.call(spi, "spi", "read", (2, 256)) is errors.EINVAL
    assert devops.call(spi, "spi", "write", ("abc",)) is errors.EINVAL


def test_uart_ops():
    u = SimUART()
    assert devops.call(u, "uart", "any", ()) == 0
    assert devops.call(u, "uart", "read", ()) == b""
    assert devops.call(u, "uart", "write", (b"hello",)) == 5
    assert devops.call(u, "uart", "any", ()) == 5
    assert devops.call(u, "uart", "read", (2,)) == b"he"
    assert devops.call(u, "uart", "read", ()) == b"llo"
    assert devops.call(u, "uart", "write", (5,)) is errors.EINVAL


class Broken:
    """A device whose every call fails like a dead bus."""

    def scan(self):
        raise OSError(5)

    def readfrom(self, a, n):
        raise OSError(110)

    def any(self):
        raise OSError(5)


def test_device_errors_are_returned():
    b = Broken()
    assert devops.call(b, "i2c", "scan", ()) is errors.EIO
    assert devops.call(b, "i2c", "readfrom", (1, 1)) is errors.ETIMEOUT
    assert devops.call(b, "i2c", "writeto", (1, b"a")) is errors.EINVAL  # lacks the op
    assert devops.call(b, "uart", "any", ()) is errors.EIO


def test_sim_device_factory():
    assert type(sim_device("b", {"type": "i2c"})) is SimI2C
    assert type(sim_device("b", {"type": "spi"})) is SimSPI
    assert type(sim_device("b", {"type": "uart"})) is SimUART
    assert type(sim_device("b", {"type": "adc"})) is SimDevice


class NoDevices(Platform):
    """A port without `machine` devices: open_device has nothing to give."""

    def open_device(self, name, spec):
        if spec.get("type") == "i2c":
            raise OSError(19)
        return None


def test_lease_of_a_device_the_port_lacks_is_refused():
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = NoDevices(kt.tmpdir("nodev"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof)
    pid = k.part_create(0)
    k.part_start(0, pid)
    for name in ("relay", "i2c0"):
        h = k.cap_mint(pid, OT_DEVICE, k.device_id(name), R_READ | R_WRITE)
        assert k.lease(pid, h, name, 100) is errors.ENOTSUP
        f = unpack(k.log.record(k.log.next_seq - 1))
        assert f[3] == kinds.LEASE_DENIED and f[8] == errors.ENOTSUP.code
        assert f[7] == k.device_id(name)
    # nothing held: the device stays free
    assert k.leases_of(pid) == []


def test_bus_devices_through_a_lease():
    prof = board.load_file(kt.repo_root() + "/boards/seed-64k.json")
    pl = Platform(kt.tmpdir("busl"), device_id=kt.DEVICE_ID, key=kt.KEY)
    k = Kernel(pl, prof)
    pid = k.part_create(0)
    k.part_start(0, pid)
    h = k.cap_mint(pid, OT_DEVICE, k.device_id("i2c0"), R_READ | R_WRITE)
    px = k.lease(pid, h, "i2c0", 100)
    assert not errors.is_err(px)
    dev = pl.devices["i2c0"]
    assert devops.call(dev, "i2c", "scan", ()) == [0x48, 0x50]
