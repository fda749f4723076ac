// rvmn_wasm: the WebAssembly executor in C. It runs the word code that
// rvm_mp/wasm/module.py made from a validated module (branches resolved to
// target/height/arity, so no control stack here) on state held in plain
// Python buffers, so the kernel can checkpoint it and the portable executor
// (rvm_mp/wasm/interp.py run_py) runs the same state with the same results.
//
//   run(code, meta, table, mem, glob, stack, frames, regs, fuel) -> status
//     code   array('i') word code      meta  array('i') 6 words per function
//     table  array('i') function index or -1    mem  bytearray (R_CAP bytes)
//     glob   array('Q')  stack array('Q')  frames array('i') 3 per frame
//     regs   array('i') (R_* below, as interp.py)
//   status 0 done, 1 fuel spent, 2 host call (regs[R_ARG] = import index),
//   3 trap (regs[R_ARG] = trap code, module.TRAPS)
//
// No libc, no heap, no libgcc (the natmod links none): 64-bit division,
// and on Cortex-M0 also 32-bit division, 64-bit multiply and shifts, are
// done here in plain C.
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

// the natmod entry first: mpy_ld's Thumb-1 branch to it reaches +-2 KB
static const mp_obj_fun_builtin_var_t rvmn_wasm_run_obj;
#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_run, MP_OBJ_FROM_PTR(&rvmn_wasm_run_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#endif

enum { R_PC, R_SP, R_FP, R_NF, R_MEMB, R_PAGES, R_MAXP, R_LOG2, R_ARG, R_FUNC,
       R_CAP, R_NSTACK, R_NFRAMES, R_TABLEN, R_LEFT, NREGS };
enum { ST_DONE, ST_FUEL, ST_HOST, ST_TRAP };
enum { T_UNREACH = 1, T_OOB, T_DIV0, T_OVF, T_UNDEF, T_UNINIT, T_SIG, T_CALLS,
       T_STACK };

#if defined(__ARM_ARCH_6M__)
#define SOFT64 1
#endif

#ifdef SOFT64
// 32x32 -> 64 from 16-bit halves (no umull in Thumb-1)
static uint64_t w_mulu32(uint32_t x, uint32_t y) {
    uint32_t xl = x & 0xFFFF, xh = x >> 16, yl = y & 0xFFFF, yh = y >> 16;
    uint32_t p0 = xl * yl, p1 = xl * yh, p2 = xh * yl, p3 = xh * yh;
    uint32_t mid = (p0 >> 16) + (p1 & 0xFFFF) + (p2 & 0xFFFF);
    uint32_t lo = (p0 & 0xFFFF) | (mid << 16);
    uint32_t hi = p3 + (p1 >> 16) + (p2 >> 16) + (mid >> 16);
    union { uint64_t v; uint32_t w[2]; } u;
    u.w[0] = lo;
    u.w[1] = hi;
    return u.v;
}
static uint64_t w_mul64(uint64_t a, uint64_t b) {
    union { uint64_t v; uint32_t w[2]; } x, y, r;
    x.v = a;
    y.v = b;
    r.v = w_mulu32(x.w[0], y.w[0]);
    r.w[1] += x.w[0] * y.w[1] + x.w[1] * y.w[0];
    return r.v;
}
static uint64_t w_shl64(uint64_t a, unsigned s) {
    union { uint64_t v; uint32_t w[2]; } x;
    x.v = a;
    s &= 63;
    if (s >= 32) {
        x.w[1] = x.w[0] << (s - 32);
        x.w[0] = 0;
    } else if (s) {
        x.w[1] = (x.w[1] << s) | (x.w[0] >> (32 - s));
        x.w[0] <<= s;
    }
    return x.v;
}
static uint64_t w_shr64(uint64_t a, unsigned s, int arith) {
    union { uint64_t v; uint32_t w[2]; } x;
    x.v = a;
    s &= 63;
    uint32_t fill = (arith && (x.w[1] & 0x80000000u)) ? 0xFFFFFFFFu : 0;
    if (s >= 32) {
        x.w[0] = arith ? (uint32_t)((int32_t)x.w[1] >> (s - 32)) : x.w[1] >> (s - 32);
        x.w[1] = fill;
    } else if (s) {
        x.w[0] = (x.w[0] >> s) | (x.w[1] << (32 - s));
        x.w[1] = arith ? (uint32_t)((int32_t)x.w[1] >> s) : x.w[1] >> s;
    }
    return x.v;
}
static uint32_t w_udiv32(uint32_t n, uint32_t d, uint32_t *r) {
    uint32_t q = 0, rem = 0;
    for (int i = 31; i >= 0; i--) {
        rem = (rem << 1) | ((n >> i) & 1);
        if (rem >= d) {
            rem -= d;
            q |= 1u << i;
        }
    }
    *r = rem;
    return q;
}
#define MUL64(a, b) w_mul64((a), (b))
#define SHL64(a, s) w_shl64((a), (unsigned)(s))
#define SHRU64(a, s) w_shr64((a), (unsigned)(s), 0)
#define SHRS64(a, s) w_shr64((a), (unsigned)(s), 1)
#else
#define MUL64(a, b) ((a) * (b))
#define SHL64(a, s) ((a) << ((s) & 63))
#define SHRU64(a, s) ((a) >> ((s) & 63))
#define SHRS64(a, s) ((uint64_t)((int64_t)(a) >> ((s) & 63)))
static uint32_t w_udiv32(uint32_t n, uint32_t d, uint32_t *r) {
    *r = n % d;
    return n / d;
}
#endif

#if defined(__x86_64__)
static uint64_t w_udiv64(uint64_t n, uint64_t d, uint64_t *r) {
    *r = n % d;
    return n / d;
}
#else
// shift-subtract (no __aeabi_uldivmod without libgcc)
static uint64_t w_udiv64(uint64_t n, uint64_t d, uint64_t *r) {
    uint64_t q = 0, rem = 0;
    for (int i = 63; i >= 0; i--) {
        rem = SHL64(rem, 1) | (SHRU64(n, i) & 1);
        if (rem >= d) {
            rem -= d;
            q |= SHL64((uint64_t)1, i);
        }
    }
    *r = rem;
    return q;
}
#endif

static uint32_t w_clz(uint64_t v, int w) {
    uint32_t n = 0;
    uint64_t b = SHL64((uint64_t)1, w - 1);
    while (n < (uint32_t)w && !(v & b)) {
        n++;
        b = SHRU64(b, 1);
    }
    return n;
}
static uint32_t w_ctz(uint64_t v, int w) {
    uint32_t n = 0;
    while (n < (uint32_t)w && !(v & 1)) {
        n++;
        v = SHRU64(v, 1);
    }
    return n;
}
static uint32_t w_popcnt(uint64_t v) {
    uint32_t n = 0;
    while (v) {
        v &= v - 1;
        n++;
    }
    return n;
}

// the i32 ops of the superinstructions (module.py _FUSE): none traps.
// x64: inlined into each superinstruction, whose jump on the op is then
// its own (and predicted: a given instruction always has the same op)
#if defined(__x86_64__) && defined(__GNUC__)
#define W_FOP_INLINE inline __attribute__((always_inline))
#else
#define W_FOP_INLINE
#endif
static W_FOP_INLINE uint32_t w_fop(int32_t op, uint32_t x, uint32_t y) {
    switch (op) {
        case 0x46: return x == y;
        case 0x47: return x != y;
        case 0x48: return (int32_t)x < (int32_t)y;
        case 0x49: return x < y;
        case 0x4A: return (int32_t)x > (int32_t)y;
        case 0x4B: return x > y;
        case 0x4C: return (int32_t)x <= (int32_t)y;
        case 0x4D: return x <= y;
        case 0x4E: return (int32_t)x >= (int32_t)y;
        case 0x4F: return x >= y;
        case 0x6A: return x + y;
        case 0x6B: return x - y;
        case 0x6C: return x * y;
        case 0x71: return x & y;
        case 0x72: return x | y;
        case 0x73: return x ^ y;
        case 0x74: return x << (y & 31);
        case 0x75: return (uint32_t)((int32_t)x >> (y & 31));
        default: return x >> (y & 31);
    }
}

static uint64_t w_load(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = SHL64(v, 8) | p[i];
    }
    return v;
}
static void w_store(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)v;
        v = SHRU64(v, 8);
    }
}

static void *w_buf(mp_obj_t o, size_t *len, int shift) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(o, &bi, MP_BUFFER_RW);
    *len = bi.len >> shift;
    return bi.buf;
}

// loads: op 0x28..0x35 -> bytes | signed << 4 | is64 << 5 (0: not integer)
static const uint8_t w_ld[14] = {4, 8 | 32, 0, 0, 1 | 16, 1, 2 | 16, 2,
                                 1 | 16 | 32, 1 | 32, 2 | 16 | 32, 2 | 32,
                                 4 | 16 | 32, 4 | 32};
// stores: op 0x36..0x3E -> bytes
static const uint8_t w_st[9] = {4, 8, 0, 0, 1, 2, 1, 2, 4};

#define TRAP(c) do { regs[R_ARG] = (c); status = ST_TRAP; goto out; } while (0)

// Dispatch: a switch in a loop (small; the Cortex-M builds), or threaded
// code on x64 (the unix port: speed over size), from the same handlers.
#if defined(__x86_64__) && defined(__GNUC__)
#define W_THREADED 1
#define OP(x) L_##x:
#define DEFAULT L_def:
#define NEXT do { \
        if (fuel <= 0) { \
            goto out; \
        } \
        fuel--; \
        op = code[pc]; \
        goto *(&&L_def + w_jt[(uint32_t)op < 256 ? op : 0]); \
} while (0)
#else
#define W_THREADED 0
#define OP(x) case x:
#define DEFAULT default:
#define NEXT break
#endif

static mp_obj_t rvmn_wasm_run(size_t n_args, const mp_obj_t *args) {
    size_t ncode, nmeta, ntab, nmem, nglob, nstack, nfr, nregs;
    const int32_t *code = w_buf(args[0], &ncode, 2);
    const int32_t *meta = w_buf(args[1], &nmeta, 2);
    const int32_t *table = w_buf(args[2], &ntab, 2);
    uint8_t *mem = w_buf(args[3], &nmem, 0);
    uint64_t *gl = w_buf(args[4], &nglob, 3);
    uint64_t *st = w_buf(args[5], &nstack, 3);
    int32_t *fr = w_buf(args[6], &nfr, 2);
    int32_t *regs = w_buf(args[7], &nregs, 2);
    mp_int_t fuel = mp_obj_get_int(args[8]);
    (void)nglob;
    (void)nmeta;
    if (nregs < NREGS || (size_t)regs[R_NSTACK] > nstack
        || (size_t)regs[R_NFRAMES] * 3 > nfr || (size_t)regs[R_CAP] > nmem
        || (size_t)regs[R_TABLEN] > ntab || (size_t)regs[R_MEMB] > (size_t)regs[R_CAP]
        || (size_t)regs[R_PC] >= ncode) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad wasm state"));
    }
    uint32_t pc = regs[R_PC], sp = regs[R_SP], fp = regs[R_FP];
    uint32_t memb = regs[R_MEMB];
    uint32_t br;
    int status = ST_FUEL;
#if W_THREADED
    // threaded dispatch: each handler ends in its own indirect jump (the
    // same ops and fuel as the switch below, which the Cortex-M builds use)
    int32_t op;
    uint64_t a, b;
    static const int32_t w_jt[256] = {
        [0x20] = &&L_0x20 - &&L_def,
        [0x21] = &&L_0x21 - &&L_def,
        [0x22] = &&L_0x22 - &&L_def,
        [0x23] = &&L_0x23 - &&L_def,
        [0x24] = &&L_0x24 - &&L_def,
        [0x41] = &&L_0x41 - &&L_def,
        [0x42] = &&L_0x42 - &&L_def,
        [0xD0] = &&L_0xD0 - &&L_def,
        [0xD1] = &&L_0xD1 - &&L_def,
        [0xD4] = &&L_0xD4 - &&L_def,
        [0xD2] = &&L_0xD2 - &&L_def,
        [0xD3] = &&L_0xD3 - &&L_def,
        [0xD5] = &&L_0xD5 - &&L_def,
        [0xDB] = &&L_0xDB - &&L_def,
        [0xD9] = &&L_0xD9 - &&L_def,
        [0xDA] = &&L_0xDA - &&L_def,
        [0x6A] = &&L_0x6A - &&L_def,
        [0x6B] = &&L_0x6B - &&L_def,
        [0x71] = &&L_0x71 - &&L_def,
        [0x72] = &&L_0x72 - &&L_def,
        [0x73] = &&L_0x73 - &&L_def,
        [0x74] = &&L_0x74 - &&L_def,
        [0x76] = &&L_0x76 - &&L_def,
        [0x45] = &&L_0x45 - &&L_def,
        [0x46] = &&L_0x46 - &&L_def,
        [0x49] = &&L_0x49 - &&L_def,
        [0x4F] = &&L_0x4F - &&L_def,
        [0x2D] = &&L_0x2D - &&L_def,
        [0x00] = &&L_0x00 - &&L_def,
        [0x04] = &&L_0x04 - &&L_def,
        [0x05] = &&L_0x05 - &&L_def,
        [0x0D] = &&L_0x0D - &&L_def,
        [0x0C] = &&L_0x0C - &&L_def,
        [0xD6] = &&L_0xD6 - &&L_def,
        [0xD7] = &&L_0xD7 - &&L_def,
        [0xD8] = &&L_0xD8 - &&L_def,
        [0x0E] = &&L_0x0E - &&L_def,
        [0x0F] = &&L_0x0F - &&L_def,
        [0x10] = &&L_0x10 - &&L_def,
        [0x11] = &&L_0x11 - &&L_def,
        [0x1A] = &&L_0x1A - &&L_def,
        [0x1B] = &&L_0x1B - &&L_def,
        [0x3F] = &&L_0x3F - &&L_def,
        [0x40] = &&L_0x40 - &&L_def
    };
    NEXT;
    {
        {
#else
    while (fuel > 0) {
        fuel--;
        int32_t op = code[pc];
        uint64_t a, b;
        switch (op) {
#endif
            OP(0x20)
                st[sp++] = st[fp + code[pc + 1]];
                pc += 2;
                NEXT;
            OP(0x21)
                st[fp + code[pc + 1]] = st[--sp];
                pc += 2;
                NEXT;
            OP(0x22)
                st[fp + code[pc + 1]] = st[sp - 1];
                pc += 2;
                NEXT;
            OP(0x23)
                st[sp++] = gl[code[pc + 1]];
                pc += 2;
                NEXT;
            OP(0x24)
                gl[code[pc + 1]] = st[--sp];
                pc += 2;
                NEXT;
            OP(0x41)
                st[sp++] = (uint32_t)code[pc + 1];
                pc += 2;
                NEXT;
            OP(0x42)
                st[sp++] = (uint64_t)(uint32_t)code[pc + 1] | SHL64((uint64_t)(uint32_t)code[pc + 2], 32);
                pc += 3;
                NEXT;
            OP(0xD0)
                st[sp++] = w_fop(code[pc + 3], st[fp + code[pc + 1]], (uint32_t)code[pc + 2]);
                pc += 4;
                NEXT;
            OP(0xD1)
                st[sp++] = w_fop(code[pc + 3], st[fp + code[pc + 1]], st[fp + code[pc + 2]]);
                pc += 4;
                NEXT;
            OP(0xD4)
                st[sp - 1] = w_fop(code[pc + 2], st[sp - 1], (uint32_t)code[pc + 1]);
                pc += 3;
                NEXT;
            // superinstructions with local.set, two constants, a D0 and the
            // op of its result with the value below (module.py header)
            OP(0xD2)
                st[fp + code[pc + 4]] = w_fop(code[pc + 3], st[fp + code[pc + 1]],
                                              (uint32_t)code[pc + 2]);
                pc += 5;
                NEXT;
            OP(0xD3)
                st[fp + code[pc + 4]] = w_fop(code[pc + 3], st[fp + code[pc + 1]],
                                              st[fp + code[pc + 2]]);
                pc += 5;
                NEXT;
            OP(0xD5)
                sp -= 2;
                st[fp + code[pc + 2]] = w_fop(code[pc + 1], st[sp], st[sp + 1]);
                pc += 3;
                NEXT;
            OP(0xDB)
                sp--;
                st[fp + code[pc + 3]] = w_fop(code[pc + 2], st[sp], (uint32_t)code[pc + 1]);
                pc += 4;
                NEXT;
            OP(0xD9)
                st[sp] = (uint32_t)code[pc + 1];
                st[sp + 1] = (uint32_t)code[pc + 2];
                sp += 2;
                pc += 3;
                NEXT;
            OP(0xDA)
                st[sp - 1] = w_fop(code[pc + 4], st[sp - 1],
                                   w_fop(code[pc + 3], st[fp + code[pc + 1]],
                                         (uint32_t)code[pc + 2]));
                pc += 5;
                NEXT;
            // the hottest i32 ops get their own cases (a jump-table entry
            // instead of the range tests under default:)
            OP(0x6A)
                sp--;
                st[sp - 1] = (uint32_t)(st[sp - 1] + st[sp]);
                pc++;
                NEXT;
            OP(0x6B)
                sp--;
                st[sp - 1] = (uint32_t)(st[sp - 1] - st[sp]);
                pc++;
                NEXT;
            OP(0x71)
                sp--;
                st[sp - 1] &= st[sp];
                pc++;
                NEXT;
            OP(0x72)
                sp--;
                st[sp - 1] |= st[sp];
                pc++;
                NEXT;
            OP(0x73)
                sp--;
                st[sp - 1] ^= st[sp];
                pc++;
                NEXT;
            OP(0x74)
                sp--;
                st[sp - 1] = (uint32_t)((uint32_t)st[sp - 1] << (st[sp] & 31));
                pc++;
                NEXT;
            OP(0x76)
                sp--;
                st[sp - 1] = (uint32_t)st[sp - 1] >> (st[sp] & 31);
                pc++;
                NEXT;
            OP(0x45)
                st[sp - 1] = st[sp - 1] == 0;
                pc++;
                NEXT;
            OP(0x46)
                sp--;
                st[sp - 1] = st[sp - 1] == st[sp];
                pc++;
                NEXT;
            OP(0x49)
                sp--;
                st[sp - 1] = st[sp - 1] < st[sp];
                pc++;
                NEXT;
            OP(0x4F)
                sp--;
                st[sp - 1] = st[sp - 1] >= st[sp];
                pc++;
                NEXT;
            OP(0x2D) {
                uint64_t ea = st[sp - 1] + (uint32_t)code[pc + 1];
                if (ea >= memb) {
                    TRAP(T_OOB);
                }
                st[sp - 1] = mem[(uint32_t)ea];
                pc += 2;
                NEXT;
            }
            OP(0x00)
                TRAP(T_UNREACH);
            OP(0x04)
                pc = st[--sp] ? pc + 2 : (uint32_t)code[pc + 1];
                NEXT;
            OP(0x05)
                pc = code[pc + 1];
                NEXT;
            OP(0x0D)
                if (!st[--sp]) {
                    pc += 4;
                    NEXT;
                }
                // fall through: taken
            OP(0x0C)
                br = pc + 1;
            take: {
                // a taken branch: (tgt h n) at code[br]
                uint32_t h = fp + code[br + 1];
                if (code[br + 2]) {
                    st[h] = st[sp - 1];
                }
                sp = h + code[br + 2];
                pc = code[br];
                NEXT;
            }
            OP(0xD6)
                if (!st[fp + code[pc + 1]]) {
                    pc += 5;
                    NEXT;
                }
                br = pc + 2;
                goto take;
            OP(0xD7)
                if (!w_fop(code[pc + 3], st[fp + code[pc + 1]], st[fp + code[pc + 2]])) {
                    pc += 7;
                    NEXT;
                }
                br = pc + 4;
                goto take;
            OP(0xD8)
                if (!w_fop(code[pc + 3], st[fp + code[pc + 1]], (uint32_t)code[pc + 2])) {
                    pc += 7;
                    NEXT;
                }
                br = pc + 4;
                goto take;
            OP(0x0E) {
                uint64_t i = st[--sp];
                uint32_t k = code[pc + 1];
                if (i > k) {
                    i = k;
                }
                uint32_t e = pc + 2 + 3 * (uint32_t)i;
                uint32_t h = fp + code[e + 1];
                if (code[e + 2]) {
                    st[h] = st[sp - 1];
                }
                sp = h + code[e + 2];
                pc = code[e];
                NEXT;
            }
            OP(0x0F) {
                int32_t nf = regs[R_NF] - 1;
                int32_t n = meta[fr[3 * nf + 2] * 6 + 3];
                if (n) {
                    st[fp] = st[sp - 1];
                }
                sp = fp + n;
                pc = fr[3 * nf];
                fp = fr[3 * nf + 1];
                regs[R_NF] = nf;
                if (nf == 0) {
                    status = ST_DONE;
                    goto out;
                }
                NEXT;
            }
            OP(0x10)
            OP(0x11) {
                int32_t f;
                if (op == 0x10) {
                    f = code[pc + 1];
                } else {
                    uint64_t i = st[--sp];
                    if (i >= (uint64_t)(uint32_t)regs[R_TABLEN]) {
                        TRAP(T_UNDEF);
                    }
                    f = table[i];
                    if (f < 0) {
                        TRAP(T_UNINIT);
                    }
                    if (meta[f * 6 + 5] != code[pc + 1]) {
                        TRAP(T_SIG);
                    }
                }
                pc += 2;
                const int32_t *m = meta + f * 6;
                if (m[0] < 0) {
                    regs[R_ARG] = f;
                    status = ST_HOST;
                    goto out;
                }
                int32_t nf = regs[R_NF];
                uint32_t nfp = sp - m[1];
                if (nf >= regs[R_NFRAMES]) {
                    TRAP(T_CALLS);
                }
                if (nfp + m[2] + m[4] > (uint32_t)regs[R_NSTACK]) {
                    TRAP(T_STACK);
                }
                fr[3 * nf] = pc;
                fr[3 * nf + 1] = fp;
                fr[3 * nf + 2] = f;
                regs[R_NF] = nf + 1;
                for (uint32_t i = sp; i < nfp + m[2]; i++) {
                    st[i] = 0;
                }
                fp = nfp;
                sp = nfp + m[2];
                pc = m[0];
                NEXT;
            }
            OP(0x1A)
                sp--;
                pc++;
                NEXT;
            OP(0x1B)
                sp -= 2;
                if (!st[sp + 1]) {
                    st[sp - 1] = st[sp];
                }
                pc++;
                NEXT;
            OP(0x3F)
                st[sp++] = (uint32_t)regs[R_PAGES];
                pc++;
                NEXT;
            OP(0x40) {
                uint64_t d = st[sp - 1];
                uint64_t old = (uint32_t)regs[R_PAGES];
                uint64_t nw = old + d;
                int32_t mx = regs[R_MAXP];
                int lg = regs[R_LOG2];
                if ((mx >= 0 && nw > (uint64_t)mx) || nw > 0x7FFFFFFF
                    || SHL64(nw, lg) > (uint64_t)(uint32_t)regs[R_CAP]) {
                    st[sp - 1] = 0xFFFFFFFFu;
                } else {
                    regs[R_PAGES] = (int32_t)nw;
                    memb = (uint32_t)SHL64(nw, lg);
                    regs[R_MEMB] = memb;
                    st[sp - 1] = old;
                }
                pc++;
                NEXT;
            }
            DEFAULT
                if (op >= 0x28 && op <= 0x35) {
                    int k = w_ld[op - 0x28];
                    int n = k & 15;
                    uint64_t ea = (st[sp - 1] & 0xFFFFFFFFu) + (uint32_t)code[pc + 1];
                    if (ea + n > memb) {
                        TRAP(T_OOB);
                    }
                    uint64_t v = w_load(mem + (uint32_t)ea, n);
                    if ((k & 16) && (v & SHL64((uint64_t)1, 8 * n - 1))) {
                        v |= ~(SHL64((uint64_t)1, 8 * n) - 1);
                    }
                    st[sp - 1] = (k & 32) ? v : (v & 0xFFFFFFFFu);
                    pc += 2;
                    NEXT;
                }
                if (op >= 0x36 && op <= 0x3E) {
                    int n = w_st[op - 0x36];
                    sp -= 2;
                    uint64_t ea = (st[sp] & 0xFFFFFFFFu) + (uint32_t)code[pc + 1];
                    if (ea + n > memb) {
                        TRAP(T_OOB);
                    }
                    w_store(mem + (uint32_t)ea, st[sp + 1], n);
                    pc += 2;
                    NEXT;
                }
                if (op >= 0x46 && op <= 0x5A && op != 0x50) {
                    // compares: eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u
                    int k;
                    sp--;
                    a = st[sp - 1];
                    b = st[sp];
                    if (op <= 0x4F) {
                        k = op - 0x46;
                        if (k >= 2 && !(k & 1)) {
                            a ^= 0x80000000u;
                            b ^= 0x80000000u;
                        }
                    } else {
                        k = op - 0x51;
                        if (k >= 2 && !(k & 1)) {
                            a ^= SHL64((uint64_t)1, 63);
                            b ^= SHL64((uint64_t)1, 63);
                        }
                    }
                    int r;
                    switch (k) {
                        case 0: r = a == b; break;
                        case 1: r = a != b; break;
                        case 2: case 3: r = a < b; break;
                        case 4: case 5: r = a > b; break;
                        case 6: case 7: r = a <= b; break;
                        default: r = a >= b; break;
                    }
                    st[sp - 1] = r;
                    pc++;
                    NEXT;
                }
                if (op >= 0x6A && op <= 0x78) {
                    sp--;
                    uint32_t x = st[sp - 1], y = st[sp], r, rm;
                    switch (op) {
                        case 0x6A: r = x + y; break;
                        case 0x6B: r = x - y; break;
                        case 0x6C: r = x * y; break;
                        case 0x6D: case 0x6F: {
                            if (!y) {
                                TRAP(T_DIV0);
                            }
                            if (op == 0x6D && x == 0x80000000u && y == 0xFFFFFFFFu) {
                                TRAP(T_OVF);
                            }
                            uint32_t ax = (x & 0x80000000u) ? -x : x;
                            uint32_t ay = (y & 0x80000000u) ? -y : y;
                            uint32_t q = w_udiv32(ax, ay, &rm);
                            if (op == 0x6D) {
                                r = ((x ^ y) & 0x80000000u) ? -q : q;
                            } else {
                                r = (x & 0x80000000u) ? -rm : rm;
                            }
                            break;
                        }
                        case 0x6E: case 0x70:
                            if (!y) {
                                TRAP(T_DIV0);
                            }
                            r = w_udiv32(x, y, &rm);
                            if (op == 0x70) {
                                r = rm;
                            }
                            break;
                        case 0x71: r = x & y; break;
                        case 0x72: r = x | y; break;
                        case 0x73: r = x ^ y; break;
                        case 0x74: r = x << (y & 31); break;
                        case 0x75: r = (uint32_t)((int32_t)x >> (y & 31)); break;
                        case 0x76: r = x >> (y & 31); break;
                        case 0x77: y &= 31; r = y ? (x << y) | (x >> (32 - y)) : x; break;
                        default: y &= 31; r = y ? (x >> y) | (x << (32 - y)) : x; break;
                    }
                    st[sp - 1] = r;
                    pc++;
                    NEXT;
                }
                if (op >= 0x7C && op <= 0x8A) {
                    sp--;
                    uint64_t x = st[sp - 1], y = st[sp], r, rm;
                    const uint64_t H = SHL64((uint64_t)1, 63);
                    unsigned s = (unsigned)(y & 63);
                    switch (op) {
                        case 0x7C: r = x + y; break;
                        case 0x7D: r = x - y; break;
                        case 0x7E: r = MUL64(x, y); break;
                        case 0x7F: case 0x81: {
                            if (!y) {
                                TRAP(T_DIV0);
                            }
                            if (op == 0x7F && x == H && y == ~(uint64_t)0) {
                                TRAP(T_OVF);
                            }
                            uint64_t ax = (x & H) ? -x : x;
                            uint64_t ay = (y & H) ? -y : y;
                            uint64_t q = w_udiv64(ax, ay, &rm);
                            if (op == 0x7F) {
                                r = ((x ^ y) & H) ? -q : q;
                            } else {
                                r = (x & H) ? -rm : rm;
                            }
                            break;
                        }
                        case 0x80: case 0x82:
                            if (!y) {
                                TRAP(T_DIV0);
                            }
                            r = w_udiv64(x, y, &rm);
                            if (op == 0x82) {
                                r = rm;
                            }
                            break;
                        case 0x83: r = x & y; break;
                        case 0x84: r = x | y; break;
                        case 0x85: r = x ^ y; break;
                        case 0x86: r = SHL64(x, s); break;
                        case 0x87: r = SHRS64(x, s); break;
                        case 0x88: r = SHRU64(x, s); break;
                        case 0x89: r = s ? SHL64(x, s) | SHRU64(x, 64 - s) : x; break;
                        default: r = s ? SHRU64(x, s) | SHL64(x, 64 - s) : x; break;
                    }
                    st[sp - 1] = r;
                    pc++;
                    NEXT;
                }
                {
                    // unary ops and conversions
                    a = st[sp - 1];
                    switch (op) {
                        case 0x45: case 0x50: a = a == 0; break;
                        case 0x67: a = w_clz(a, 32); break;
                        case 0x68: a = w_ctz(a, 32); break;
                        case 0x69: case 0x7B: a = w_popcnt(a); break;
                        case 0x79: a = w_clz(a, 64); break;
                        case 0x7A: a = w_ctz(a, 64); break;
                        case 0xA7: case 0xAD: a &= 0xFFFFFFFFu; break;
                        case 0xAC: case 0xC4: a = (uint64_t)(int64_t)(int32_t)(uint32_t)a; break;
                        case 0xC0: a = (uint32_t)(int32_t)(int8_t)(uint8_t)a; break;
                        case 0xC1: a = (uint32_t)(int32_t)(int16_t)(uint16_t)a; break;
                        case 0xC2: a = (uint64_t)(int64_t)(int8_t)(uint8_t)a; break;
                        case 0xC3: a = (uint64_t)(int64_t)(int16_t)(uint16_t)a; break;
                        default:
                            // never made by module.py: refuse, do not guess
                            TRAP(T_UNREACH);
                    }
                    st[sp - 1] = a;
                    pc++;
                    NEXT;
                }
        }
    }
out:
    regs[R_PC] = pc;
    regs[R_SP] = sp;
    regs[R_FP] = fp;
    regs[R_LEFT] = (int32_t)fuel;
    return MP_OBJ_NEW_SMALL_INT(status);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_wasm_run_obj, 9, 9, rvmn_wasm_run);

#if !MICROPY_ENABLE_DYNRUNTIME
static const mp_rom_map_elem_t rvmn_wasm_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_wasm) },
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&rvmn_wasm_run_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_wasm_globals, rvmn_wasm_globals_table);
const mp_obj_module_t rvmn_wasm_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_wasm_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_wasm, rvmn_wasm_module);
#endif
