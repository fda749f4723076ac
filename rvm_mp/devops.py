# Device operations behind a lease: the op table (rights each op needs) and
# the one function that touches a platform device for an agent's call.
# Arguments arrive as a tuple the kernel already copied; each is checked
# here by exact type and range, no method of an argument is ever called,
# and results are builtin values only (int, bytes, bool) or an RvmError.
from . import errors
from .captable import R_READ, R_WRITE

OPS = {"on": R_WRITE, "off": R_WRITE, "toggle": R_WRITE, "set": R_WRITE,
       "read": R_READ, "write": R_WRITE}


def call(dev, kind, op, args):
    """Run `op` on device `dev` (of profile type `kind`); the result or an
    RvmError (never raises)."""
    n = len(args)
    try:
        if op == "on" and n == 0:
            dev.on()
            return 0
        if op == "off" and n == 0:
            dev.off()
            return 0
        if op == "toggle" and n == 0:
            if hasattr(dev, "toggle"):
                dev.toggle()
            else:
                dev.value(1 - dev.value())
            return 0
        if op == "set" and n == 1 and type(args[0]) in (int, bool):
            v = 1 if args[0] else 0
            if hasattr(dev, "set"):
                dev.set(v)
            else:
                dev.value(v)
            return 0
        if op == "read" and n == 0:
            if hasattr(dev, "read_u16"):   # machine.ADC
                v = dev.read_u16()
            elif hasattr(dev, "read"):     # SimDevice, machine.UART
                v = dev.read()
            else:
                v = dev.value()            # machine.Pin
            return _clean(v)
        if op == "write" and n == 1 and type(args[0]) is bytes:
            return _clean(dev.write(args[0]))
    except OSError:
        return errors.EBUSY
    except (ValueError, TypeError):
        return errors.EINVAL
    return errors.EINVAL


def _clean(v):
    """Only builtin values leave the device layer."""
    tv = type(v)
    if tv is int or tv is bool or tv is bytes or v is None:
        return v
    if tv is bytearray:
        return bytes(v)
    return errors.EINVAL
