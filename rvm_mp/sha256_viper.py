# SHA-256 compression in viper: hashes into preallocated buffers, so the
# witness chain can be extended with the heap locked. Imported inside
# try/except (ImportError, SyntaxError) because ports without the native
# emitter refuse the whole module at compile time. Tested against hashlib.
import array
import sys

if sys.implementation.name != "micropython":
    # CPython has no viper emitter; its `micropython` shim (compat.py) would
    # turn these functions into plain Python that cannot run (ptr8, uint).
    # Refuse the import so witness.py takes its portable hashlib path.
    raise ImportError("sha256_viper needs MicroPython's viper emitter")

import micropython  # noqa: E402

_K = array.array('I', (
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2))
_IV = array.array('I', (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19))


@micropython.viper
def _compress(st: ptr32, blk: ptr8, w: ptr32, k: ptr32):
    # uint is the machine word (64 bits on the unix port): mask to 32 bits.
    m = uint(0xFFFFFFFF)
    i = 0
    while i < 16:
        j = 4 * i
        w[i] = (blk[j] << 24) | (blk[j + 1] << 16) | (blk[j + 2] << 8) | blk[j + 3]
        i += 1
    # Bits above 31 (the unix port's uint is 64 bits) only ever flow upward
    # through +, ^, & and <<, so intermediate values need no mask: the ptr32
    # stores truncate, and every value that is shifted RIGHT (x, y, a, e) is
    # a zero-extended 32-bit load or masked first.
    while i < 64:
        x = uint(w[i - 15])
        y = uint(w[i - 2])
        s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
        s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
        w[i] = uint(w[i - 16]) + s0 + uint(w[i - 7]) + s1
        i += 1
    a = uint(st[0]) & m
    b = uint(st[1]) & m
    c = uint(st[2]) & m
    d = uint(st[3]) & m
    e = uint(st[4]) & m
    f = uint(st[5]) & m
    g = uint(st[6]) & m
    h = uint(st[7]) & m
    i = 0
    while i < 64:
        s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
        ch = (e & f) ^ ((e ^ m) & g)
        t1 = (h + s1 + ch + uint(k[i]) + uint(w[i])) & m
        s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
        mj = (a & b) ^ (a & c) ^ (b & c)
        h = g
        g = f
        f = e
        e = (d + t1) & m
        d = c
        c = b
        b = a
        a = (t1 + s0 + mj) & m
        i += 1
    st[0] = uint(st[0]) + a
    st[1] = uint(st[1]) + b
    st[2] = uint(st[2]) + c
    st[3] = uint(st[3]) + d
    st[4] = uint(st[4]) + e
    st[5] = uint(st[5]) + f
    st[6] = uint(st[6]) + g
    st[7] = uint(st[7]) + h


@micropython.viper
def _store_be(st: ptr32, out: ptr8):
    i = 0
    while i < 8:
        v = uint(st[i])
        out[4 * i] = (v >> 24) & 0xFF
        out[4 * i + 1] = (v >> 16) & 0xFF
        out[4 * i + 2] = (v >> 8) & 0xFF
        out[4 * i + 3] = v & 0xFF
        i += 1


@micropython.viper
def _copy(dst: ptr8, off: int, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[off + i] = src[i]
        i += 1


@micropython.viper
def copy_into(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    """dst[doff:doff+n] = src[soff:soff+n] without building a slice."""
    i = 0
    while i < n:
        dst[doff + i] = src[soff + i]
        i += 1


@micropython.viper
def _pad(blk: ptr8, total: int) -> int:
    """SHA-256 padding of a `total`-byte message (< 120) held in blk; returns
    the padded length (64 or 128)."""
    blk[total] = 0x80
    end = 64 if total < 56 else 128
    i = total + 1
    while i < end - 4:
        blk[i] = 0
        i += 1
    bits = total * 8
    blk[end - 4] = (bits >> 24) & 0xFF
    blk[end - 3] = (bits >> 16) & 0xFF
    blk[end - 2] = (bits >> 8) & 0xFF
    blk[end - 1] = bits & 0xFF
    return end


class Sha256Into:
    """SHA-256 of short messages (<= 119 bytes) into a caller's buffer,
    with no heap allocation per call: all scratch is preallocated here."""

    def __init__(self):
        self._st = array.array('I', _IV)
        self._w = array.array('I', bytes(256))
        self._blk = bytearray(128)
        self._hi = memoryview(self._blk)[64:]

    def digest3_into(self, p0, p1, p2, off2, n2, out):
        """SHA-256 of p0 + p1 + p2[off2:off2+n2] into `out` (32 bytes); the
        total must be <= 119 bytes. Builds no objects (no tuple, no slice)."""
        blk = self._blk
        n0 = len(p0)
        n1 = len(p1)
        _copy(blk, 0, p0, n0)
        _copy(blk, n0, p1, n1)
        copy_into(blk, n0 + n1, p2, off2, n2)
        end = _pad(blk, n0 + n1 + n2)
        st = self._st
        _copy(st, 0, _IV, 32)
        _compress(st, blk, self._w, _K)
        if end == 128:
            _compress(st, self._hi, self._w, _K)
        _store_be(st, out)
