# Ed25519 (RFC 8032) in portable Python big-integer arithmetic: the signer of
# last resort for boards without the C natmod (rvm_mp/ed25519_sign.py picks).
#
# The curve -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), p = 2^255 - 19, in
# extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z, with the
# addition and doubling formulas of RFC 8032 section 5.1.4. A signature is
#
#   h = SHA-512(seed); a = clamp(h[0:32]); prefix = h[32:64]; A = [a]B
#   r = SHA-512(prefix || M) mod L;  R = [r]B
#   k = SHA-512(R || A || M) mod L;  S = (r + k a) mod L;  sig = R || S
#
# so one fixed-base scalar multiplication and two SHA-512 per signature. The
# multiplication uses a 4-bit window over a 16-entry table of multiples of B
# (built once per process, about 2.5 KB): 252 doublings and at most 63
# additions. Every step is a Python big-int product reduced mod p, so the
# cost is dominated by the interpreter; tools/bench/kb_ed25519.py measures it.
#
# Not constant time: the window lookup and the skipped additions depend on
# the secret nonce. An attacker who can time the board's seals to the
# microsecond could learn about r; the natmod is the answer where that
# matters. Verification is here for tests and for boards that want it; the
# host verifies with the `cryptography` package.
from . import sha512 as _sha

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
_D2 = (2 * D) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
B = (_BX, _BY, 1, (_BX * _BY) % P)
_ZERO = (0, 1, 1, 0)
_table = []


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = ((y1 - x1) * (y2 - x2)) % P
    b = ((y1 + x1) * (y2 + x2)) % P
    c = (t1 * _D2 * t2) % P
    d = (2 * z1 * z2) % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return ((e * f) % P, (g * h) % P, (f * g) % P, (e * h) % P)


def _dbl(p1):
    x1, y1, z1, _ = p1
    a = (x1 * x1) % P
    b = (y1 * y1) % P
    c = (2 * z1 * z1) % P
    h = a + b
    s = x1 + y1
    e = h - (s * s) % P
    g = a - b
    f = c + g
    return ((e * f) % P, (g * h) % P, (f * g) % P, (e * h) % P)


def _mul(k, pt):
    """[k]pt by double-and-add (variable base: verification only)."""
    q = _ZERO
    while k:
        if k & 1:
            q = _add(q, pt)
        pt = _dbl(pt)
        k >>= 1
    return q


def mul_base(k):
    """[k]B, k < 2^256, by a 4-bit fixed window."""
    t = _table
    if not t:
        q = _ZERO
        for _ in range(16):
            t.append(q)
            q = _add(q, B)
    q = _ZERO
    for sh in range(252, -1, -4):
        q = _dbl(_dbl(_dbl(_dbl(q))))
        n = (k >> sh) & 15
        if n:
            q = _add(q, t[n])
    return q


def encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x = (x * zi) % P
    y = (y * zi) % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(s):
    """32 bytes -> point, or None when not a valid encoding (RFC 8032 5.1.3)."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    vx2 = (v * x * x) % P
    if vx2 == u:
        pass
    elif vx2 == (-u) % P:
        x = (x * _SQRT_M1) % P
    else:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, (x * y) % P)


def _h(*parts):
    h = _sha.new(parts[0])
    for p in parts[1:]:
        h.update(p)
    return int.from_bytes(h.digest(), "little")


def expand(seed):
    """seed (32 bytes) -> (secret scalar a, prefix, public key bytes)."""
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    h = _sha.new(bytes(seed)).digest()
    a = int.from_bytes(h[0:32], "little")
    a = (a & ((1 << 254) - 8)) | (1 << 254)
    return a, h[32:64], encode(mul_base(a))


def public_key(seed):
    return expand(seed)[2]


def sign_expanded(a, prefix, pub, msg):
    msg = bytes(msg)
    r = _h(prefix, msg) % L
    rb = encode(mul_base(r))
    k = _h(rb, pub, msg) % L
    return rb + ((r + k * a) % L).to_bytes(32, "little")


def sign(seed, msg):
    a, prefix, pub = expand(seed)
    return sign_expanded(a, prefix, pub, msg)


def verify(pub, msg, sig):
    """True when sig is a valid signature of msg under pub (cofactorless
    check [S]B == R + [k]A, S < L, canonical encodings). Never raises."""
    if len(pub) != 32 or len(sig) != 64:
        return False
    a = decode(bytes(pub))
    r = decode(bytes(sig[0:32]))
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:64], "little")
    if s >= L:
        return False
    k = _h(bytes(sig[0:32]), bytes(pub), bytes(msg)) % L
    lhs = mul_base(s)
    rhs = _add(r, _mul(k, a))
    # compare projectively: X1 Z2 == X2 Z1 and Y1 Z2 == Y2 Z1
    return (lhs[0] * rhs[2] - rhs[0] * lhs[2]) % P == 0 and \
        (lhs[1] * rhs[2] - rhs[1] * lhs[2]) % P == 0
