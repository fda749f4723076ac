"""Device keys: 32 random bytes (the witness seal and bundle HMAC key), and
Ed25519 seal keys (a 32-byte seed; its public key is what an auditor holds)."""
import os

from .errors import RvmToolError

KEY_LEN = 32


def gen():
    return os.urandom(KEY_LEN)


def parse_hex(text):
    """32-byte key from hex; RvmToolError with one line otherwise."""
    t = (text or "").strip().lower()
    if t.startswith("0x"):
        t = t[2:]
    try:
        k = bytes.fromhex(t)
    except ValueError:
        raise RvmToolError("bad key: not hex")
    if len(k) != KEY_LEN:
        raise RvmToolError("bad key: %d bytes, expected %d" % (len(k), KEY_LEN))
    return k


def load(path=None, hex_text=None):
    if hex_text:
        return parse_hex(hex_text)
    if not path:
        raise RvmToolError("no key given (use --key FILE or --key-hex HEX; "
                           "`rvm keys gen -o FILE` makes one)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RvmToolError("cannot read key file %s: %s" % (path, e.strerror))
    if len(data) == KEY_LEN:
        return data
    try:
        return parse_hex(data.decode())
    except (UnicodeDecodeError, RvmToolError):
        raise RvmToolError("bad key file %s: %d bytes, expected %d raw bytes or hex"
                           % (path, len(data), KEY_LEN))


def write(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)


def ed25519_public(seed):
    """The Ed25519 public key of a 32-byte seed (cryptography)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key().public_bytes(
        s.Encoding.Raw, s.PublicFormat.Raw)
