# Ed25519 signature verification for P3 (signatures made on the host).
# Decision (docs/capabilities.md): verified with the `cryptography` package
# where it exists (CPython, the Appliance profile). MicroPython has no
# SHA-512 in hashlib and a big-int curve in pure Python costs seconds per
# verify on a microcontroller, so on MicroPython `available()` is False and
# the gate refuses Ed25519 proofs with ENOTSUP; boards check bundle and
# lease signatures with HMAC-SHA256 under the device key instead.
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.exceptions import InvalidSignature
except ImportError:
    Ed25519PublicKey = None
    InvalidSignature = None


def available():
    return Ed25519PublicKey is not None


def verify(pubkey, msg, sig):
    """True/False for a valid/invalid signature; None when this runtime
    cannot verify Ed25519. Never raises."""
    if Ed25519PublicKey is None:
        return None
    if len(pubkey) != 32 or len(sig) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(pubkey)).verify(
            bytes(sig), bytes(msg))
        return True
    except InvalidSignature:
        return False
    except ValueError:
        return False
