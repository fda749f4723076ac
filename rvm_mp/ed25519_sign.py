# Ed25519 signing for public-key witness seals, one name over up to three
# implementations chosen once at import (DESIGN.md section 4):
#   1. the natmod `ed25519_c` from native/ed25519/ when it was deployed;
#   2. the `cryptography` package (CPython, the Appliance profile);
#   3. rvm_mp/ed25519_portable.py (MicroPython big ints), with one log line.
# Imported only when a signed seal is made, so boards that keep HMAC seals
# never load the curve code (docs/witness-format.md, "Ed25519 seals").
import sys

IMPL = None
try:
    import ed25519_c as _c  # natmod (native/ed25519): sign, public, sha512
    IMPL = "natmod"
except (ImportError, ValueError):  # absent, or built for another arch/.mpy
    _c = None
if _c is None:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import \
            Ed25519PrivateKey as _Priv
        IMPL = "cryptography"
    except ImportError:
        _Priv = None
if IMPL is None:
    from . import ed25519_portable as _p
    IMPL = "portable"
    if sys.implementation.name == "micropython":
        print("ed25519: no natmod, signing with the portable big-int code")
else:
    _p = None


def key_id(pub):
    """16-bit id of an Ed25519 public key (a signed seal's target field):
    SHA-256(b"RVMK-ed" + pub)[0:2], little-endian."""
    import hashlib
    d = hashlib.sha256(b"RVMK-ed" + bytes(pub)).digest()
    return d[0] | (d[1] << 8)


class Signer:
    """An Ed25519 key made from a 32-byte seed. `pub` is the public key,
    `kid` its 16-bit id, `sign(msg)` the 64-byte signature."""

    def __init__(self, seed):
        seed = bytes(seed)
        if len(seed) != 32:
            raise ValueError("Ed25519 seed must be 32 bytes")
        if IMPL == "cryptography":
            from cryptography.hazmat.primitives import serialization as s
            self._k = _Priv.from_private_bytes(seed)
            self.pub = self._k.public_key().public_bytes(
                s.Encoding.Raw, s.PublicFormat.Raw)
        elif _c is not None:
            # the expanded key (clamped scalar, prefix) is kept: no SHA-512
            # of the seed per signature; no big ints on this path
            h = _c.sha512(seed)
            a = bytearray(h[0:32])
            a[0] &= 248
            a[31] = (a[31] & 127) | 64
            self._exp = bytes(a) + h[32:64]
            self.pub = _c.public(bytes(a))
        else:
            from . import ed25519_portable as p
            self._a, self._prefix, self.pub = p.expand(seed)
        self.kid = key_id(self.pub)

    def sign(self, msg):
        if IMPL == "cryptography":
            return self._k.sign(bytes(msg))
        if _c is not None:
            return _c.sign(self._exp, self.pub, bytes(msg))
        return _p.sign_expanded(self._a, self._prefix, self.pub, msg)
