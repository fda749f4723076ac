# Kernel error codes. Kernel calls never raise inside the kernel loop: they
# return one of these preallocated RvmError values, and the agent runtime
# throws a fresh builtin OSError(code, "ENAME") into the calling agent (so
# no agent ever holds one of these shared objects). Codes are small ints so
# they fit in witness fields (a denied record carries the code in `b`).
# RvmError is a plain class, not an exception: nothing raises it, and a
# plain object is a third the heap of an exception instance.


class RvmError:
    """A refusal from the kernel. `code` is the E_* number below."""

    def __init__(self, code, name):
        self.code = code
        self.name = name

    def __repr__(self):
        return "RvmError(%d, %s)" % (self.code, self.name)


E_OK = 0
# code -> name; every instance is built once at import (no allocation on
# the refusal path, like asyncio's preallocated exceptions).
_TABLE = (
    (1, "EBADHANDLE"),    # handle does not name a live slot in the caller's table
    (2, "ESTALE"),        # handle generation is older than the slot's
    (3, "ERIGHTS"),       # capability lacks the required rights / escalation
    (4, "EDEPTH"),        # delegation depth would exceed the bound
    (5, "ENONCE"),        # nonce replayed or outside the freshness window
    (6, "EEXPIRED"),      # lease or time window expired
    (7, "EQUOTA"),        # quota exceeded (cpu, messages, memory)
    (8, "ESTATE"),        # partition state does not allow this operation
    (9, "EBOUNDS"),       # offset/length outside the region
    (10, "EFULL"),        # queue full (back-pressure)
    (11, "EEMPTY"),       # queue empty
    (12, "ETOOBIG"),      # payload exceeds the profile's size limit
    (13, "EBADID"),       # partition/object id out of range
    (14, "EPROOF"),       # P3 proof failed (preimage, linkage, inclusion)
    (15, "ESIG"),         # signature check failed
    (16, "EBUSY"),        # object held exclusively by someone else
    (17, "ENOENT"),       # no such object
    (18, "EINVAL"),       # malformed argument
    (19, "ENOMEM"),       # out of memory / arena exhausted
    (20, "ETIMEOUT"),     # operation exceeded its time budget
    (21, "EOWNER"),       # ownership chain does not reach the kernel
    (22, "EWRONGOBJ"),    # capability names another object or type
    (23, "EDOUBLEFREE"),  # region freed twice
    (24, "EIMPORT"),      # import refused by the agent import gate
    (25, "ECORRUPT"),     # stored data failed its checksum
    (26, "EDEGRADED"),    # refused because the kernel is in degraded mode
    (27, "EMODE"),        # refused by the scheduler mode (e.g. IPC in Reflex)
    (28, "ENOTSUP"),      # not available on this runtime (e.g. Ed25519 on MicroPython)
)

ERRORS = {}
for _code, _name in _TABLE:
    _e = RvmError(_code, _name)
    ERRORS[_code] = _e
    globals()[_name] = _e
del _code, _name, _e, _TABLE


def err(code):
    """The preallocated RvmError for `code` (EINVAL for unknown codes)."""
    return ERRORS.get(code, ERRORS[18])


def is_err(x):
    return type(x) is RvmError
