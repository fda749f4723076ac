# The proof gate's P1 check compiled with MicroPython's native emitter
# (about 1.5x faster than bytecode on the unix port). Imported by
# proofgate.py inside try/except: a port without the native emitter refuses
# this whole module at compile time and the portable ProofGate.p1 is used.
# Keep this body identical to ProofGate.p1 (test_proofgate runs both on the
# same vectors).
from .compat import micropython
from . import errors

_EBADHANDLE = errors.EBADHANDLE
_ESTALE = errors.ESTALE
_ERIGHTS = errors.ERIGHTS
_EWRONGOBJ = errors.EWRONGOBJ
_ESTATE = errors.ESTATE
_INT = int


@micropython.native
def p1(self, pid, handle, otype, oid, rights):
    if pid.__class__ is not _INT:
        return _ESTATE
    t = self._tables.get(pid)
    if t is None:
        return _ESTATE
    if handle.__class__ is not _INT or handle < 256 or handle > 0xFFFF:
        return _EBADHANDLE
    s = handle & 0xFF
    if s >= self._per:
        return _EBADHANDLE
    v = t[s]
    if v >> 16 != handle >> 8:
        return _ESTALE
    ci = (v & 0xFFFF) - 1
    if ci < 0:
        return _EBADHANDLE
    k = self._key[ci]
    if oid >= 0:
        if k != (otype << 16) | oid:
            return _EWRONGOBJ
    elif otype and k >> 16 != otype:
        return _EWRONGOBJ
    if rights & ~self._rights[ci]:
        return _ERIGHTS
    return ci
