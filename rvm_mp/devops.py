# Device operations behind a lease: what a partition may ask of a leased
# device, by device kind, and the one function that performs it.
#
#   OPS[op] = rights the lease must carry (R_READ / R_WRITE bits)
#   call(dev, kind, op, args) -> int | bytes | bool | list of ints,
#                                or an RvmError (never raises)
#
# The kernel checks the lease (holder, expiry, capability, rights >= OPS[op])
# and hands over `args`, a tuple it already copied out of the agent. Every
# argument is checked here by EXACT type (an int subclass or a bytes-like
# object with methods of its own is refused) and range; no method of an
# argument is ever called. Results are builtin values only (a device's
# bytearray comes back as bytes). A device error (OSError from `machine`, a
# NACK on the bus) is returned as an RvmError, so the caller keeps running.
#
#   kind       ops (args)
#   pin, led   on() off() toggle() set(v) write(v) read() -> 0/1
#   adc        read() -> int
#   i2c        scan() -> [addr]  readfrom(addr, n) -> bytes  writeto(addr, buf) -> int
#              readfrom_mem(addr, mem, n) -> bytes  writeto_mem(addr, mem, buf) -> int
#   spi        read(n[, byte]) -> bytes  write(buf) -> int
#              write_readinto(buf) -> bytes (what was clocked in)
#   uart       read([n]) -> bytes  write(buf) -> int  any() -> int
#
# Devices are `machine` objects on a board or the simulated ones of hal.py
# (SimDevice, SimI2C, SimSPI, SimUART), which share the `machine` API except
# SimDevice's pin/adc methods (on/off/toggle/set/read).
from .compat import const
from . import errors
from .captable import R_READ, R_WRITE

MAX_BYTES = const(256)   # largest transfer in one call
_MEM_MAX = const(0xFFFF)

OPS = {
    "on": R_WRITE, "off": R_WRITE, "toggle": R_WRITE, "set": R_WRITE,
    "read": R_READ, "write": R_WRITE,
    "scan": R_READ, "readfrom": R_READ, "writeto": R_WRITE,
    "readfrom_mem": R_READ, "writeto_mem": R_WRITE,
    "write_readinto": R_READ | R_WRITE, "any": R_READ,
}

_KIND_OPS = {
    "pin": ("on", "off", "toggle", "set", "write", "read"),
    "led": ("on", "off", "toggle", "set", "write", "read"),
    "adc": ("read",),
    "i2c": ("scan", "readfrom", "writeto", "readfrom_mem", "writeto_mem"),
    "spi": ("read", "write", "write_readinto"),
    "uart": ("read", "write", "any"),
}


def allowed(kind, op):
    """True when `op` is an operation of devices of `kind`."""
    ops = _KIND_OPS.get(kind)
    return ops is not None and op in ops


def _int(x, lo, hi):
    return type(x) is int and lo <= x <= hi


def _buf(x):
    return type(x) is bytes and len(x) <= MAX_BYTES


def _shape(args, *checks):
    """args matches checks exactly: each check is (lo, hi) for an int or
    None for a bytes buffer."""
    if type(args) is not tuple or len(args) != len(checks):
        return False
    for i in range(len(checks)):
        c = checks[i]
        if c is None:
            if not _buf(args[i]):
                return False
        elif not _int(args[i], c[0], c[1]):
            return False
    return True


_ADDR = (0, 127)
_SIZE = (0, MAX_BYTES)
_BIT = (0, 1)
_BYTE = (0, 255)
_MEM = (0, _MEM_MAX)


def _out(r):
    """A device result as a builtin value."""
    if r is None:
        return 0
    t = type(r)
    if t is int or t is bool or t is bytes:
        return r
    if t is bytearray or t is memoryview:
        return bytes(r)
    if t is list or t is tuple:
        return [int(x) for x in r]
    return errors.EINVAL


def _pin(dev, op, args):
    sim = hasattr(dev, "set")  # SimDevice; else machine.Pin
    if op in ("set", "write"):
        if not _shape(args, _BIT):
            return errors.EINVAL
        if sim:
            dev.set(args[0])
        else:
            dev.value(args[0])
        return 0
    if len(args):
        return errors.EINVAL
    if op == "read":
        return dev.read() if sim else dev.value()
    if sim:
        getattr(dev, op)()
    elif op == "toggle":
        dev.value(1 - dev.value())
    else:
        dev.value(1 if op == "on" else 0)
    return 0


def _adc(dev, args):
    if len(args):
        return errors.EINVAL
    return dev.read() if hasattr(dev, "set") else dev.read_u16()


def _i2c(dev, op, args):
    if op == "scan":
        return dev.scan() if not len(args) else errors.EINVAL
    if op == "readfrom":
        return dev.readfrom(args[0], args[1]) if _shape(args, _ADDR, _SIZE) else errors.EINVAL
    if op == "writeto":
        return dev.writeto(args[0], args[1]) if _shape(args, _ADDR, None) else errors.EINVAL
    if op == "readfrom_mem":
        if not _shape(args, _ADDR, _MEM, _SIZE):
            return errors.EINVAL
        return dev.readfrom_mem(args[0], args[1], args[2])
    if not _shape(args, _ADDR, _MEM, None):
        return errors.EINVAL
    dev.writeto_mem(args[0], args[1], args[2])
    return len(args[2])


def _spi(dev, op, args):
    if op == "read":
        if _shape(args, _SIZE):
            return dev.read(args[0])
        if _shape(args, _SIZE, _BYTE):
            return dev.read(args[0], args[1])
        return errors.EINVAL
    if not _shape(args, None):
        return errors.EINVAL
    if op == "write":
        dev.write(args[0])
        return len(args[0])
    rbuf = bytearray(len(args[0]))
    dev.write_readinto(args[0], rbuf)
    return bytes(rbuf)


def _uart(dev, op, args):
    if op == "any":
        return dev.any() if not len(args) else errors.EINVAL
    if op == "write":
        return dev.write(args[0]) if _shape(args, None) else errors.EINVAL
    if not len(args):
        r = dev.read()
    elif _shape(args, _SIZE):
        r = dev.read(args[0])
    else:
        return errors.EINVAL
    return b"" if r is None else r


def call(dev, kind, op, args):
    """Perform `op` on the leased device `dev` of profile type `kind` with
    the copied argument tuple `args`. Returns a builtin result or an
    RvmError: EINVAL for an op the kind lacks or a bad argument, ENOENT when
    a bus target does not answer (ENODEV), ETIMEOUT on a bus timeout, EIO
    for any other device error. Never raises."""
    if type(op) is not str or not allowed(kind, op) or type(args) is not tuple:
        return errors.EINVAL
    if dev is None:
        return errors.ENOTSUP
    try:
        if kind == "i2c":
            r = _i2c(dev, op, args)
        elif kind == "spi":
            r = _spi(dev, op, args)
        elif kind == "uart":
            r = _uart(dev, op, args)
        elif kind == "adc":
            r = _adc(dev, args)
        else:
            r = _pin(dev, op, args)
    except OSError as e:
        n = e.args[0] if e.args and type(e.args[0]) is int else 0
        if n == 19:   # ENODEV: nobody answered at that address
            return errors.ENOENT
        if n in (110, 116):  # ETIMEDOUT (newlib / Linux numbering)
            return errors.ETIMEOUT
        return errors.EIO
    except (ValueError, TypeError, AttributeError):
        return errors.EINVAL  # the device refused the arguments / lacks the op
    except MemoryError:
        return errors.ENOMEM
    if errors.is_err(r):
        return r
    return _out(r)
