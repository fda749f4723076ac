// ed25519_c: Ed25519 signing (RFC 8032) as a MicroPython natmod, the fast
// path behind rvm_mp/ed25519_sign.py (natmod > cryptography > portable).
//
//   sign(expanded, pub, msg) -> 64-byte signature
//     expanded = clamped secret scalar a (32 bytes, little-endian) + prefix
//                (32 bytes): the SHA-512 of the seed, expanded once on the
//                Python side (Signer), so a seal costs two SHA-512 and one
//                fixed-base scalar multiplication here.
//   sha512(data) -> 64 bytes (exported for the tests)
//
// Field arithmetic after TweetNaCl (public domain): 16 limbs of 16 bits in
// int64, a constant-time Montgomery-style ladder with conditional swaps (no
// secret-dependent branches or table lookups, unlike the portable Python
// code), scalar reduction mod L by the TweetNaCl modL. SHA-512 is FIPS 180-4,
// streaming, so the message is never copied. No libc, no heap except the
// result bytes object.
#include "py/dynruntime.h"

typedef unsigned char u8;
typedef unsigned long long u64;
typedef long long i64;
typedef i64 gf[16];

#define FOR(i, n) for (i = 0; i < n; ++i)

// ---- SHA-512 ---------------------------------------------------------------
static const u64 K512[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

typedef struct {
    u64 h[8];
    u8 buf[128];
    size_t nbuf;
    u64 total;
} sha512_t;

static u64 rotr(u64 x, int n) {
    return (x >> n) | (x << (64 - n));
}

static void sha512_block(sha512_t *s, const u8 *p) {
    u64 w[80], a, b, c, d, e, f, g, h, t1, t2;
    int i;
    FOR(i, 16) {
        int j;
        w[i] = 0;
        FOR(j, 8) w[i] = (w[i] << 8) | p[8 * i + j];
    }
    for (i = 16; i < 80; ++i) {
        u64 s0 = rotr(w[i - 15], 1) ^ rotr(w[i - 15], 8) ^ (w[i - 15] >> 7);
        u64 s1 = rotr(w[i - 2], 19) ^ rotr(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
    e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
    FOR(i, 80) {
        t1 = h + (rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41)) + ((e & f) ^ (~e & g)) + K512[i] + w[i];
        t2 = (rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha512_init(sha512_t *s) {
    s->h[0] = 0x6a09e667f3bcc908ULL; s->h[1] = 0xbb67ae8584caa73bULL;
    s->h[2] = 0x3c6ef372fe94f82bULL; s->h[3] = 0xa54ff53a5f1d36f1ULL;
    s->h[4] = 0x510e527fade682d1ULL; s->h[5] = 0x9b05688c2b3e6c1fULL;
    s->h[6] = 0x1f83d9abfb41bd6bULL; s->h[7] = 0x5be0cd19137e2179ULL;
    s->nbuf = 0;
    s->total = 0;
}

static void sha512_update(sha512_t *s, const u8 *p, size_t n) {
    s->total += n;
    while (n) {
        size_t k = 128 - s->nbuf;
        if (k > n) {
            k = n;
        }
        size_t i;
        FOR(i, k) s->buf[s->nbuf + i] = p[i];
        s->nbuf += k;
        p += k;
        n -= k;
        if (s->nbuf == 128) {
            sha512_block(s, s->buf);
            s->nbuf = 0;
        }
    }
}

static void sha512_final(sha512_t *s, u8 *out) {
    u64 bits = s->total * 8;
    size_t i;
    s->buf[s->nbuf++] = 0x80;
    if (s->nbuf > 112) {
        while (s->nbuf < 128) {
            s->buf[s->nbuf++] = 0;
        }
        sha512_block(s, s->buf);
        s->nbuf = 0;
    }
    while (s->nbuf < 120) {
        s->buf[s->nbuf++] = 0;
    }
    FOR(i, 8) s->buf[120 + i] = (u8)(bits >> (56 - 8 * i));
    sha512_block(s, s->buf);
    FOR(i, 64) out[i] = (u8)(s->h[i / 8] >> (56 - 8 * (i % 8)));
}

// ---- GF(2^255 - 19) and the curve (TweetNaCl) ------------------------------
static const gf gf0 = {0};
static const gf gf1 = {1};
static const gf D2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
                      0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const gf X = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
                     0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const gf Y = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666,
                     0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};

static void set25519(gf r, const gf a) {
    int i;
    FOR(i, 16) r[i] = a[i];
}

static void car25519(gf o) {
    int i;
    i64 c;
    FOR(i, 16) {
        o[i] += (1LL << 16);
        c = o[i] >> 16;
        o[(i + 1) * (i < 15)] += c - 1 + 37 * (c - 1) * (i == 15);
        o[i] -= (i64)((u64)c << 16);
    }
}

static void sel25519(gf p, gf q, int b) {
    i64 t, c = ~(b - 1);
    int i;
    FOR(i, 16) {
        t = c & (p[i] ^ q[i]);
        p[i] ^= t;
        q[i] ^= t;
    }
}

static void pack25519(u8 *o, const gf n) {
    int i, j, b;
    gf m, t;
    FOR(i, 16) t[i] = n[i];
    car25519(t);
    car25519(t);
    car25519(t);
    FOR(j, 2) {
        m[0] = t[0] - 0xffed;
        for (i = 1; i < 15; i++) {
            m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
            m[i - 1] &= 0xffff;
        }
        m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
        b = (m[15] >> 16) & 1;
        m[14] &= 0xffff;
        sel25519(t, m, 1 - b);
    }
    FOR(i, 16) {
        o[2 * i] = t[i] & 0xff;
        o[2 * i + 1] = t[i] >> 8;
    }
}

static u8 par25519(const gf a) {
    u8 d[32];
    pack25519(d, a);
    return d[0] & 1;
}

static void A(gf o, const gf a, const gf b) {
    int i;
    FOR(i, 16) o[i] = a[i] + b[i];
}

static void Z(gf o, const gf a, const gf b) {
    int i;
    FOR(i, 16) o[i] = a[i] - b[i];
}

static void M(gf o, const gf a, const gf b) {
    i64 t[31];
    int i, j;
    FOR(i, 31) t[i] = 0;
    FOR(i, 16) FOR(j, 16) t[i + j] += a[i] * b[j];
    FOR(i, 15) t[i] += 38 * t[i + 16];
    FOR(i, 16) o[i] = t[i];
    car25519(o);
    car25519(o);
}

static void S(gf o, const gf a) {
    M(o, a, a);
}

static void inv25519(gf o, const gf i) {
    gf c;
    int a;
    FOR(a, 16) c[a] = i[a];
    for (a = 253; a >= 0; a--) {
        S(c, c);
        if (a != 2 && a != 4) {
            M(c, c, i);
        }
    }
    FOR(a, 16) o[a] = c[a];
}

static void add(gf p[4], gf q[4]) {
    gf a, b, c, d, t, e, f, g, h;
    Z(a, p[1], p[0]);
    Z(t, q[1], q[0]);
    M(a, a, t);
    A(b, p[0], p[1]);
    A(t, q[0], q[1]);
    M(b, b, t);
    M(c, p[3], q[3]);
    M(c, c, D2);
    M(d, p[2], q[2]);
    A(d, d, d);
    Z(e, b, a);
    Z(f, d, c);
    A(g, d, c);
    A(h, b, a);
    M(p[0], e, f);
    M(p[1], h, g);
    M(p[2], g, f);
    M(p[3], e, h);
}

static void cswap(gf p[4], gf q[4], u8 b) {
    int i;
    FOR(i, 4) sel25519(p[i], q[i], b);
}

static void pack(u8 *r, gf p[4]) {
    gf tx, ty, zi;
    inv25519(zi, p[2]);
    M(tx, p[0], zi);
    M(ty, p[1], zi);
    pack25519(r, ty);
    r[31] ^= par25519(tx) << 7;
}

static void scalarmult(gf p[4], gf q[4], const u8 *s) {
    int i;
    set25519(p[0], gf0);
    set25519(p[1], gf1);
    set25519(p[2], gf1);
    set25519(p[3], gf0);
    for (i = 255; i >= 0; --i) {
        u8 b = (s[i / 8] >> (i & 7)) & 1;
        cswap(p, q, b);
        add(q, p);
        add(p, p);
        cswap(p, q, b);
    }
}

static void scalarbase(gf p[4], const u8 *s) {
    gf q[4];
    set25519(q[0], X);
    set25519(q[1], Y);
    set25519(q[2], gf1);
    M(q[3], X, Y);
    scalarmult(p, q, s);
}

static const i64 L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
                          0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};

static void modL(u8 *r, i64 x[64]) {
    i64 carry;
    int i, j;
    for (i = 63; i >= 32; --i) {
        carry = 0;
        for (j = i - 32; j < i - 12; ++j) {
            x[j] += carry - 16 * x[i] * L[j - (i - 32)];
            carry = (x[j] + 128) >> 8;
            x[j] -= (i64)((u64)carry << 8);
        }
        x[j] += carry;
        x[i] = 0;
    }
    carry = 0;
    FOR(j, 32) {
        x[j] += carry - (x[31] >> 4) * L[j];
        carry = x[j] >> 8;
        x[j] &= 255;
    }
    FOR(j, 32) x[j] -= carry * L[j];
    FOR(i, 32) {
        x[i + 1] += x[i] >> 8;
        r[i] = x[i] & 255;
    }
}

static void reduce(u8 *r) {
    i64 x[64];
    int i;
    FOR(i, 64) x[i] = (u64)r[i];
    FOR(i, 64) r[i] = 0;
    modL(r, x);
}

// ---- Python API ------------------------------------------------------------
static mp_obj_t ed_sign(mp_obj_t exp_in, mp_obj_t pub_in, mp_obj_t msg_in) {
    mp_buffer_info_t e, p, m;
    mp_get_buffer_raise(exp_in, &e, MP_BUFFER_READ);
    mp_get_buffer_raise(pub_in, &p, MP_BUFFER_READ);
    mp_get_buffer_raise(msg_in, &m, MP_BUFFER_READ);
    if (e.len != 64 || p.len != 32) {
        mp_raise_ValueError(MP_ERROR_TEXT("expanded key 64 bytes, public key 32"));
    }
    const u8 *a = (const u8 *)e.buf;
    u8 r[64], h[64], sig[64];
    i64 x[64];
    gf pt[4];
    sha512_t s;
    int i, j;
    sha512_init(&s);
    sha512_update(&s, a + 32, 32);
    sha512_update(&s, (const u8 *)m.buf, m.len);
    sha512_final(&s, r);
    reduce(r);
    scalarbase(pt, r);
    pack(sig, pt);
    sha512_init(&s);
    sha512_update(&s, sig, 32);
    sha512_update(&s, (const u8 *)p.buf, 32);
    sha512_update(&s, (const u8 *)m.buf, m.len);
    sha512_final(&s, h);
    reduce(h);
    FOR(i, 64) x[i] = 0;
    FOR(i, 32) x[i] = (u64)r[i];
    FOR(i, 32) FOR(j, 32) x[i + j] += h[i] * (u64)a[j];
    modL(sig + 32, x);
    return mp_obj_new_bytes(sig, 64);
}
static MP_DEFINE_CONST_FUN_OBJ_3(ed_sign_obj, ed_sign);

static mp_obj_t ed_sha512(mp_obj_t data_in) {
    mp_buffer_info_t d;
    u8 out[64];
    sha512_t s;
    mp_get_buffer_raise(data_in, &d, MP_BUFFER_READ);
    sha512_init(&s);
    sha512_update(&s, (const u8 *)d.buf, d.len);
    sha512_final(&s, out);
    return mp_obj_new_bytes(out, 64);
}
static MP_DEFINE_CONST_FUN_OBJ_1(ed_sha512_obj, ed_sha512);

static mp_obj_t ed_public(mp_obj_t a_in) {
    mp_buffer_info_t a;
    u8 out[32];
    gf pt[4];
    mp_get_buffer_raise(a_in, &a, MP_BUFFER_READ);
    if (a.len != 32) {
        mp_raise_ValueError(MP_ERROR_TEXT("scalar 32 bytes"));
    }
    scalarbase(pt, (const u8 *)a.buf);
    pack(out, pt);
    return mp_obj_new_bytes(out, 32);
}
static MP_DEFINE_CONST_FUN_OBJ_1(ed_public_obj, ed_public);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_sign, MP_OBJ_FROM_PTR(&ed_sign_obj));
    mp_store_global(MP_QSTR_sha512, MP_OBJ_FROM_PTR(&ed_sha512_obj));
    mp_store_global(MP_QSTR_public, MP_OBJ_FROM_PTR(&ed_public_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
