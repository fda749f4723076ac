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
    import ed25519_c as _c  # natmod: sign(seed64, pub, msg) -> sig
    IMPL = "natmod"
except ImportError:
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
        else:
            # the expanded key (scalar, prefix) is kept: no SHA-512 of the
            # seed and no [a]B per signature
            from . import ed25519_portable as p
            self._a, self._prefix, self.pub = p.expand(seed)
            if _c is not None:
                self._exp = self._a.to_bytes(32, "little") + self._prefix
        self.kid = key_id(self.pub)

    def sign(self, msg):
        if IMPL == "cryptography":
            return self._k.sign(bytes(msg))
        if _c is not None:
            return _c.sign(self._exp, self.pub, bytes(msg))
        return _p.sign_expanded(self._a, self._prefix, self.pub, msg)
