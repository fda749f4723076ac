// rvmn_link: the witness chain link and window verify in C, with its own
// SHA-256 (FIPS 180-4) so no call touches the heap.
//
//   link[i] = SHA-256(b"RVMW" + link[i-1] + rec[i][0:32])
//
// Functions (every buffer is the caller's; nothing is allocated):
//   digest3_into(p0, p1, p2, off2, n2, out)  SHA-256(p0 + p1 + p2[off2:off2+n2])
//   link_range(head, ring, slot, count, ring_n)
//                      link `count` records of a 64-byte-record ring starting
//                      at record slot `slot` (wrapping at ring_n): each link
//                      goes into its record's bytes 32..63 and into head
//   rec_link(head, ring, off, seq, t_ms, boot, kind, flags, actor, target,
//            a, b, c, d)
//                      pack a record header (witness format, little-endian,
//                      each field cut to its width) at ring[off:off+32] and
//                      link it: the link into ring[off+32:off+64] and head
//   verify(anchor, recs, n)   index of the first of the n 64-byte records in
//                      recs whose link does not follow from anchor and the
//                      records before it; n when the window verifies
//
// Reference body: rvm_mp/witness.py (chain_link, link_pending) and
// rvm_mp/sha256_viper.py; tests/kernel/test_natmods.py runs all of them on
// the same vectors. One C file for both builds: as a natmod (.mpy, dynruntime)
// and as a user C module linked into firmware (ports/).
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

#define RVMN_W32(p) (((uint32_t)(p)[0] << 24) | ((uint32_t)(p)[1] << 16) | ((uint32_t)(p)[2] << 8) | (uint32_t)(p)[3])
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static const uint32_t rvmn_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

typedef struct {
    uint32_t st[8];
    uint8_t blk[64];
    uint32_t nblk;   // bytes in blk
    uint32_t total;  // message bytes so far (messages here are far below 512 MB)
} rvmn_sha_t;

static void rvmn_compress(uint32_t *st, const uint8_t *blk) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = RVMN_W32(blk + 4 * i);
    }
    for (int i = 16; i < 64; i++) {
        uint32_t x = w[i - 15], y = w[i - 2];
        uint32_t s0 = ROR(x, 7) ^ ROR(x, 18) ^ (x >> 3);
        uint32_t s1 = ROR(y, 17) ^ ROR(y, 19) ^ (y >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + rvmn_k[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
    st[5] += f;
    st[6] += g;
    st[7] += h;
}

static void rvmn_init(rvmn_sha_t *s) {
    s->st[0] = 0x6a09e667;
    s->st[1] = 0xbb67ae85;
    s->st[2] = 0x3c6ef372;
    s->st[3] = 0xa54ff53a;
    s->st[4] = 0x510e527f;
    s->st[5] = 0x9b05688c;
    s->st[6] = 0x1f83d9ab;
    s->st[7] = 0x5be0cd19;
    s->nblk = 0;
    s->total = 0;
}

static void rvmn_update(rvmn_sha_t *s, const uint8_t *p, size_t n) {
    s->total += n;
    while (n) {
        size_t k = 64 - s->nblk;
        if (k > n) {
            k = n;
        }
        for (size_t i = 0; i < k; i++) {
            s->blk[s->nblk + i] = p[i];
        }
        s->nblk += k;
        p += k;
        n -= k;
        if (s->nblk == 64) {
            rvmn_compress(s->st, s->blk);
            s->nblk = 0;
        }
    }
}

static void rvmn_final(rvmn_sha_t *s, uint8_t *out) {
    uint32_t bits_hi = s->total >> 29, bits_lo = s->total << 3;
    uint32_t i = s->nblk;
    s->blk[i++] = 0x80;
    if (i > 56) {
        while (i < 64) {
            s->blk[i++] = 0;
        }
        rvmn_compress(s->st, s->blk);
        i = 0;
    }
    while (i < 56) {
        s->blk[i++] = 0;
    }
    for (int j = 0; j < 4; j++) {
        s->blk[56 + j] = bits_hi >> (24 - 8 * j);
        s->blk[60 + j] = bits_lo >> (24 - 8 * j);
    }
    rvmn_compress(s->st, s->blk);
    for (int j = 0; j < 8; j++) {
        out[4 * j] = s->st[j] >> 24;
        out[4 * j + 1] = s->st[j] >> 16;
        out[4 * j + 2] = s->st[j] >> 8;
        out[4 * j + 3] = s->st[j];
    }
}

static const uint8_t rvmn_domain[4] = {'R', 'V', 'M', 'W'};

// link = SHA-256("RVMW" + prev + hdr[0:32]) into out (out may alias prev)
static void rvmn_link1(const uint8_t *prev, const uint8_t *hdr, uint8_t *out) {
    rvmn_sha_t s;
    rvmn_init(&s);
    rvmn_update(&s, rvmn_domain, 4);
    rvmn_update(&s, prev, 32);
    rvmn_update(&s, hdr, 32);
    rvmn_final(&s, out);
}

static void rvmn_need(mp_buffer_info_t *bi, size_t n) {
    if (bi->len < n) {
        mp_raise_ValueError(MP_ERROR_TEXT("buffer too short"));
    }
}

// digest3_into(p0, p1, p2, off2, n2, out)
static mp_obj_t rvmn_digest3_into(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t b0, b1, b2, bo;
    mp_get_buffer_raise(args[0], &b0, MP_BUFFER_READ);
    mp_get_buffer_raise(args[1], &b1, MP_BUFFER_READ);
    mp_get_buffer_raise(args[2], &b2, MP_BUFFER_READ);
    mp_int_t off = mp_obj_get_int(args[3]);
    mp_int_t n2 = mp_obj_get_int(args[4]);
    mp_get_buffer_raise(args[5], &bo, MP_BUFFER_WRITE);
    if (off < 0 || n2 < 0 || (size_t)(off + n2) > b2.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("range outside p2"));
    }
    rvmn_need(&bo, 32);
    rvmn_sha_t s;
    rvmn_init(&s);
    rvmn_update(&s, b0.buf, b0.len);
    rvmn_update(&s, b1.buf, b1.len);
    rvmn_update(&s, (const uint8_t *)b2.buf + off, n2);
    rvmn_final(&s, bo.buf);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_digest3_into_obj, 6, 6, rvmn_digest3_into);

// link_range(head, ring, slot, count, ring_n)
static mp_obj_t rvmn_link_range(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t bh, br;
    mp_get_buffer_raise(args[0], &bh, MP_BUFFER_WRITE);
    mp_get_buffer_raise(args[1], &br, MP_BUFFER_WRITE);
    mp_int_t slot = mp_obj_get_int(args[2]);
    mp_int_t count = mp_obj_get_int(args[3]);
    mp_int_t ring_n = mp_obj_get_int(args[4]);
    rvmn_need(&bh, 32);
    if (ring_n <= 0 || slot < 0 || slot >= ring_n || count < 0 || (size_t)ring_n * 64 > br.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad ring range"));
    }
    uint8_t *head = bh.buf;
    uint8_t *ring = br.buf;
    while (count-- > 0) {
        uint8_t *rec = ring + 64 * slot;
        rvmn_link1(head, rec, head);
        for (int i = 0; i < 32; i++) {
            rec[32 + i] = head[i];
        }
        if (++slot == ring_n) {
            slot = 0;
        }
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_link_range_obj, 5, 5, rvmn_link_range);

// rec_link(head, ring, off, seq, t_ms, boot, kind, flags, actor, target, a, b, c, d)
static void rvmn_put32(uint8_t *p, mp_obj_t o) {
    uint32_t v = (uint32_t)(mp_obj_is_small_int(o) ? MP_OBJ_SMALL_INT_VALUE(o) : mp_obj_get_int_truncated(o));
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static mp_obj_t rvmn_rec_link(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t bh, br;
    mp_get_buffer_raise(args[0], &bh, MP_BUFFER_WRITE);
    mp_get_buffer_raise(args[1], &br, MP_BUFFER_WRITE);
    mp_int_t off = mp_obj_get_int(args[2]);
    rvmn_need(&bh, 32);
    if (off < 0 || (size_t)off + 64 > br.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad ring range"));
    }
    uint8_t *rec = (uint8_t *)br.buf + off;
    uint8_t tmp[4];
    rvmn_put32(rec, args[3]);          // seq
    rvmn_put32(rec + 4, args[4]);      // t_ms
    rvmn_put32(tmp, args[5]);          // boot: u16
    rec[8] = tmp[0];
    rec[9] = tmp[1];
    rvmn_put32(tmp, args[6]);          // kind: u8
    rec[10] = tmp[0];
    rvmn_put32(tmp, args[7]);          // flags: u8
    rec[11] = tmp[0];
    rvmn_put32(tmp, args[8]);          // actor: u16
    rec[12] = tmp[0];
    rec[13] = tmp[1];
    rvmn_put32(tmp, args[9]);          // target: u16
    rec[14] = tmp[0];
    rec[15] = tmp[1];
    for (int i = 0; i < 4; i++) {      // a, b, c, d
        rvmn_put32(rec + 16 + 4 * i, args[10 + i]);
    }
    uint8_t *head = bh.buf;
    rvmn_link1(head, rec, head);
    for (int i = 0; i < 32; i++) {
        rec[32 + i] = head[i];
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_rec_link_obj, 14, 14, rvmn_rec_link);

// verify(anchor, recs, n) -> index of the first bad record, or n
static mp_obj_t rvmn_verify(mp_obj_t anchor_in, mp_obj_t recs_in, mp_obj_t n_in) {
    mp_buffer_info_t ba, br;
    mp_get_buffer_raise(anchor_in, &ba, MP_BUFFER_READ);
    mp_get_buffer_raise(recs_in, &br, MP_BUFFER_READ);
    mp_int_t n = mp_obj_get_int(n_in);
    rvmn_need(&ba, 32);
    if (n < 0 || (size_t)n * 64 > br.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("window longer than buffer"));
    }
    const uint8_t *prev = ba.buf;
    const uint8_t *rec = br.buf;
    uint8_t h[32];
    for (mp_int_t i = 0; i < n; i++, rec += 64) {
        rvmn_link1(prev, rec, h);
        for (int j = 0; j < 32; j++) {
            if (h[j] != rec[32 + j]) {
                return MP_OBJ_NEW_SMALL_INT(i);
            }
        }
        prev = rec + 32;
    }
    return MP_OBJ_NEW_SMALL_INT(n);
}
static MP_DEFINE_CONST_FUN_OBJ_3(rvmn_verify_obj, rvmn_verify);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_digest3_into, MP_OBJ_FROM_PTR(&rvmn_digest3_into_obj));
    mp_store_global(MP_QSTR_link_range, MP_OBJ_FROM_PTR(&rvmn_link_range_obj));
    mp_store_global(MP_QSTR_verify, MP_OBJ_FROM_PTR(&rvmn_verify_obj));
    mp_store_global(MP_QSTR_rec_link, MP_OBJ_FROM_PTR(&rvmn_rec_link_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_link_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_link) },
    { MP_ROM_QSTR(MP_QSTR_digest3_into), MP_ROM_PTR(&rvmn_digest3_into_obj) },
    { MP_ROM_QSTR(MP_QSTR_link_range), MP_ROM_PTR(&rvmn_link_range_obj) },
    { MP_ROM_QSTR(MP_QSTR_verify), MP_ROM_PTR(&rvmn_verify_obj) },
    { MP_ROM_QSTR(MP_QSTR_rec_link), MP_ROM_PTR(&rvmn_rec_link_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_link_globals, rvmn_link_globals_table);
const mp_obj_module_t rvmn_link_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_link_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_link, rvmn_link_module);
#endif
