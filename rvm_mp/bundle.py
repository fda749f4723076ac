# Agent bundles: code (source or .mpy) + a JSON manifest + a signature,
# checked before a single byte of the code runs (docs/agents.md).
#
#   off  size  field
#     0     4  magic b"RVMB"
#     4     1  format version (1)
#     5     1  signature algorithm: 1 HMAC-SHA256 (device key), 2 Ed25519
#     6     1  code type: 0 Python source (UTF-8), 1 .mpy, 2 WebAssembly
#     7     1  reserved, 0
#     8     2  manifest length M (u16 LE)
#    10     2  reserved, 0
#    12     4  code length C (u32 LE)
#    16     M  manifest: JSON object, UTF-8; "name" required, "sha256" is the
#               hex SHA-256 of the code (pack() fills it in)
#  16+M     C  code
#  16+M+C   S  signature over b"RVMB-sig" + bytes[0 : 16+M+C]
#               alg 1: S = 32, HMAC-SHA256(key, msg); alg 2: S = 64, Ed25519
#
# The verdict of the host's agent-code verifier (host_tools/rvm/agentcheck.py)
# sits in the manifest, so the signature covers it:
#   "verdict": {"policy": N, "src": hex SHA-256 of the verified source}
#   "verdict": {"unverified": 1, "src": ...}   (`rvm bundle --unverified`)
# The kernel refuses a bundle without a verdict, with a policy older than
# the board's "verifier": {"policy": N}, or (source bundles) whose code is
# not the verified source; unverified bundles load unless the board says
# "unverified": false, and BUNDLE_LOAD records them (d = 0).
#
# The same module serves the host (`rvm bundle AGENT.py --key-hex HEX`:
# pack()) and the kernel (check(): returns an RvmError instead of raising;
# the runtime then passes the signature and the code digest to the proof
# gate as P3 proofs before it executes anything).
import hashlib
import json
import struct

from .compat import const
from . import errors

MAGIC = b"RVMB"
VERSION = const(1)
ALG_HMAC = const(1)
ALG_ED25519 = const(2)
CODE_SOURCE = const(0)
CODE_MPY = const(1)
CODE_WASM = const(2)     # a WebAssembly module (docs/wasm.md)
HDR = const(16)
MIN_POLICY = const(1)   # verifier policy a board requires by default
SIG_DOMAIN = b"RVMB-sig"
_SIG_LEN = {ALG_HMAC: 32, ALG_ED25519: 64}


def _hmac(key, *parts):
    """HMAC-SHA256 over the concatenation of parts (buffers), no copy."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    k = bytearray(64)
    k[0:len(key)] = key
    ipad = bytearray(64)
    opad = bytearray(64)
    for i in range(64):
        ipad[i] = k[i] ^ 0x36
        opad[i] = k[i] ^ 0x5C
    h = hashlib.sha256(ipad)
    for p in parts:
        h.update(p)
    o = hashlib.sha256(opad)
    o.update(h.digest())
    return o.digest()


def _hex(b):
    return "".join("%02x" % x for x in b)


def is_mpy(code):
    return len(code) > 2 and code[0] == 0x4D and code[1] < 16  # b"M" + version


def unverified(src):
    """The verdict of code bundled with `--unverified` (trusted first-party
    code, tests of hostile agents): recorded, not checked."""
    if isinstance(src, str):
        src = src.encode()
    return {"unverified": 1, "src": _hex(hashlib.sha256(bytes(src)).digest())}


def pack(code_bytes, manifest_dict, key, alg=ALG_HMAC, verdict=None):
    """Build a signed bundle. `key`: the 32-byte device key (alg 1) or a
    32-byte Ed25519 private seed (alg 2, needs the `cryptography` package,
    host side). `verdict`: the verifier's ({"policy", "src"}, from
    host_tools/rvm/agentcheck.verify) or unverified(src); None packs a
    bundle without one, which a kernel refuses. Returns bytes."""
    if isinstance(code_bytes, str):
        code_bytes = code_bytes.encode()
    code = bytes(code_bytes)
    man = dict(manifest_dict)
    if verdict is not None:
        man["verdict"] = dict(verdict)
    if not man.get("name"):
        raise ValueError("bundle manifest needs a name")
    man["sha256"] = _hex(hashlib.sha256(code).digest())
    if code[:4] == b"\x00asm":
        ctype = CODE_WASM
        man.setdefault("type", "wasm")
    else:
        ctype = CODE_MPY if is_mpy(code) else CODE_SOURCE
        man.setdefault("type", "mpy" if ctype == CODE_MPY else "py")
    mj = json.dumps(man).encode()
    if len(mj) > 0xFFFF:
        raise ValueError("bundle manifest too large")
    hdr = bytearray(HDR)
    hdr[0:4] = MAGIC
    hdr[4] = VERSION
    hdr[5] = alg
    hdr[6] = ctype
    struct.pack_into("<HHI", hdr, 8, len(mj), 0, len(code))
    body = bytes(hdr) + mj + code
    if alg == ALG_HMAC:
        if not key or len(key) < 16:
            raise ValueError("HMAC bundle key must be at least 16 bytes")
        sig = _hmac(key, SIG_DOMAIN, body)
    elif alg == ALG_ED25519:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import \
            Ed25519PrivateKey
        sig = Ed25519PrivateKey.from_private_bytes(bytes(key)).sign(
            SIG_DOMAIN + body)
    else:
        raise ValueError("unknown signature algorithm %d" % alg)
    return body + sig


class Parsed:
    """A structurally valid bundle (signature not yet checked)."""

    def __init__(self, data, alg, ctype, manifest, code_off, code_len,
                 sig_off):
        self.data = data
        self.alg = alg
        self.ctype = ctype
        self.manifest = manifest
        self.code_off = code_off
        self.code_len = code_len
        self.sig_off = sig_off

    def code(self):
        return self.data[self.code_off:self.code_off + self.code_len]

    def signed(self):
        """The signed message (without the domain prefix) as a memoryview."""
        return memoryview(self.data)[0:self.sig_off]

    def sig(self):
        return self.data[self.sig_off:]

    def digest(self):
        """SHA-256 of the whole bundle (what measured boot extends)."""
        return hashlib.sha256(self.data).digest()


def parse(data):
    """Parsed or errors.EINVAL (bad magic, version, lengths, manifest)."""
    try:
        n = len(data)
        if n < HDR or bytes(data[0:4]) != MAGIC or data[4] != VERSION:
            return errors.EINVAL
        alg = data[5]
        ctype = data[6]
        if alg not in _SIG_LEN or ctype > CODE_WASM:
            return errors.EINVAL
        mlen, _r, clen = struct.unpack_from("<HHI", data, 8)
        sig_off = HDR + mlen + clen
        if sig_off + _SIG_LEN[alg] != n:
            return errors.EINVAL
        man = json.loads(bytes(data[HDR:HDR + mlen]))
        if not isinstance(man, dict) or not isinstance(man.get("name"), str):
            return errors.EINVAL
    except (ValueError, TypeError, KeyError, IndexError):
        return errors.EINVAL
    return Parsed(data, alg, ctype, man, HDR + mlen, clen, sig_off)


def check(data, key):
    """Kernel-side verification: (manifest, code) or an RvmError.
    EINVAL malformed, ESIG bad signature, EPROOF code digest mismatch,
    ENOTSUP Ed25519 where this runtime cannot verify it."""
    p = parse(data)
    if errors.is_err(p):
        return p
    e = verify(p, key)
    if e is not None:
        return e
    return p.manifest, p.code()


def verify(p, key, ed_keys=()):
    """None when the signature and code digest of Parsed p check out, else
    the RvmError."""
    if p.alg == ALG_HMAC:
        if not key:
            return errors.ESIG
        mac = _hmac(key, SIG_DOMAIN, p.signed())
        if not _ct_eq(mac, p.sig()):
            return errors.ESIG
    else:
        from . import ed25519
        if not ed25519.available():
            return errors.ENOTSUP
        msg = SIG_DOMAIN + bytes(p.signed())
        ok = False
        for pk in ed_keys:
            if ed25519.verify(pk, msg, p.sig()):
                ok = True
                break
        if not ok:
            return errors.ESIG
    want = p.manifest.get("sha256", "")
    got = _hex(hashlib.sha256(p.code()).digest())
    if want != got:
        return errors.EPROOF
    return None


def check_verdict(p, req=None):
    """None when Parsed p carries a verdict the board accepts, else the
    RvmError: EPROOF no verdict (or a source bundle whose code is not the
    verified source), ESTALE a policy older than `req`'s "policy",
    ERIGHTS unverified code on a board with "unverified": false."""
    v = p.manifest.get("verdict")
    req = req or {}
    if not isinstance(v, dict) or type(v.get("src")) is not str:
        return errors.EPROOF
    if p.ctype == CODE_SOURCE and v["src"] != p.manifest.get("sha256"):
        return errors.EPROOF
    if v.get("unverified"):
        return None if req.get("unverified", True) else errors.ERIGHTS
    pol = v.get("policy")
    if type(pol) is not int or pol < 1 or pol > 0xFFFF:
        return errors.EPROOF   # (it goes into a u32 witness field)
    if pol < req.get("policy", MIN_POLICY):
        return errors.ESTALE
    return None


def verdict_policy(man):
    """What BUNDLE_LOAD records in d: the verdict's policy, 0 unverified."""
    v = man.get("verdict")
    if isinstance(v, dict) and not v.get("unverified"):
        p = v.get("policy")
        return p if type(p) is int else 0
    return 0


def _ct_eq(a, b):
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def load(data, key, ed_keys=()):
    """Host-friendly verification: (manifest, code) or ValueError with a
    one-line reason."""
    p = parse(data)
    if errors.is_err(p):
        raise ValueError("not a valid RVM bundle (bad header or manifest)")
    e = verify(p, key, ed_keys)
    if e is errors.ESIG:
        raise ValueError("bundle signature does not verify")
    if e is errors.EPROOF:
        raise ValueError("bundle code does not match its manifest digest")
    if e is not None:
        raise ValueError("bundle refused: %s" % e.name)
    return p.manifest, p.code()


def key_id(key):
    from .hmac256 import key_id as _kid
    return _kid(key) if key else 0
