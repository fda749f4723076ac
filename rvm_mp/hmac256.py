# HMAC-SHA256 (RFC 2104) on hashlib: MicroPython has no hmac module.
# Keys are fixed per device, so the padded key blocks are computed once.
import hashlib

_BLOCK = 64


class Hmac256:
    """HMAC-SHA256 with a fixed key; `mac(msg)` returns 32 bytes."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        k = bytearray(_BLOCK)
        k[0:len(key)] = key
        self._ipad = bytes(b ^ 0x36 for b in k)
        self._opad = bytes(b ^ 0x5C for b in k)

    def mac(self, msg):
        h = hashlib.sha256(self._ipad)
        h.update(msg)
        o = hashlib.sha256(self._opad)
        o.update(h.digest())
        return o.digest()


def hmac_sha256(key, msg):
    return Hmac256(key).mac(msg)


def key_id(key):
    """16-bit key identifier carried in a seal's target field."""
    d = hashlib.sha256(b"RVMK" + bytes(key)).digest()
    return d[0] | (d[1] << 8)


def ct_equal(a, b):
    """Constant-time comparison of two byte strings."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0
