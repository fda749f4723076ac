"""Device keys: 32 random bytes (the witness seal and bundle HMAC key)."""
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
