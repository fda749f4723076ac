// rvmn_cut: the Stoer-Wagner maximum-adjacency work of MinCut
// (rvm_mp/coherence/mincut.py) in C. The portable reference is
// mincut.ma_step_py and MinCut._end_phase's merge loop; the viper one is
// mincut_viper.ma_step. Buffers: w array('i') n*n (row-major, symmetric),
// act array('H') of the mm active super-vertices, added bytearray(n),
// key array('i') n. Nothing is allocated.
//
//   ma_step(w, n, act, m, added, key) -> vertex | -1    one step
//   ma_phase(w, n, act, m, added, key, left, reset) -> (prev << 16) | last
//        `left` steps in one call (a whole phase when left == m), after
//        clearing added/key of the active vertices when reset is true (the
//        start of a phase); prev is 0xFFFF when fewer than two steps were
//        taken
//   copy_row(w, n, gw, gn, slot_of, m, a)
//        row a of the graph's weights gw (array('i') gn*gn) into w, upper
//        triangle mirrored: w[a][b] = w[b][a] = gw[slot_of[a]][slot_of[b]]
//        for b > a, w[a][a] = 0
//   merge(w, n, act, m, prev, last) -> m - 1
//        add row `last` into row `prev` (both triangles) and drop `last`
//        from act (the last entry moves into its place)
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

typedef struct {
    int32_t *w;
    mp_int_t n;
    uint16_t *act;
    mp_int_t m;
    uint8_t *added;
    int32_t *key;
} rvmn_cut_t;

static void rvmn_cut_args(const mp_obj_t *args, rvmn_cut_t *c, int with_added) {
    mp_buffer_info_t bw, ba, bd, bk;
    mp_get_buffer_raise(args[0], &bw, MP_BUFFER_RW);
    c->n = mp_obj_get_int(args[1]);
    mp_get_buffer_raise(args[2], &ba, MP_BUFFER_READ);
    c->m = mp_obj_get_int(args[3]);
    if (c->n < 0 || c->m < 0 || c->m > c->n || (size_t)(c->n * c->n) * 4 > bw.len
        || (size_t)c->m * 2 > ba.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("mincut buffers too small"));
    }
    c->w = bw.buf;
    c->act = ba.buf;
    for (mp_int_t i = 0; i < c->m; i++) {
        if (c->act[i] >= c->n) {
            mp_raise_ValueError(MP_ERROR_TEXT("vertex out of range"));
        }
    }
    if (with_added) {
        mp_get_buffer_raise(args[4], &bd, MP_BUFFER_RW);
        mp_get_buffer_raise(args[5], &bk, MP_BUFFER_RW);
        if ((size_t)c->n > bd.len || (size_t)c->n * 4 > bk.len) {
            mp_raise_ValueError(MP_ERROR_TEXT("mincut buffers too small"));
        }
        c->added = bd.buf;
        c->key = bk.buf;
    }
}

static mp_int_t rvmn_cut_step(rvmn_cut_t *c) {
    mp_int_t best = -1, bk = -1;
    for (mp_int_t i = 0; i < c->m; i++) {
        mp_int_t v = c->act[i];
        if (!c->added[v] && c->key[v] > bk) {
            bk = c->key[v];
            best = v;
        }
    }
    if (best < 0) {
        return -1;
    }
    c->added[best] = 1;
    const int32_t *row = c->w + best * c->n;
    for (mp_int_t i = 0; i < c->m; i++) {
        mp_int_t v = c->act[i];
        if (!c->added[v]) {
            c->key[v] += row[v];
        }
    }
    return best;
}

static mp_obj_t rvmn_ma_step(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    rvmn_cut_t c;
    rvmn_cut_args(args, &c, 1);
    return MP_OBJ_NEW_SMALL_INT(rvmn_cut_step(&c));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_ma_step_obj, 6, 6, rvmn_ma_step);

static mp_obj_t rvmn_ma_phase(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    rvmn_cut_t c;
    rvmn_cut_args(args, &c, 1);
    mp_int_t left = mp_obj_get_int(args[6]);
    mp_int_t prev = 0xFFFF, last = 0xFFFF;
    if (mp_obj_is_true(args[7])) {
        for (mp_int_t i = 0; i < c.m; i++) {
            c.added[c.act[i]] = 0;
            c.key[c.act[i]] = 0;
        }
    }
    while (left-- > 0) {
        mp_int_t v = rvmn_cut_step(&c);
        prev = last;
        last = v < 0 ? 0xFFFF : v;
    }
    return MP_OBJ_NEW_SMALL_INT((prev << 16) | last);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_ma_phase_obj, 8, 8, rvmn_ma_phase);

static mp_obj_t rvmn_copy_row(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t bw, bg, bs;
    mp_get_buffer_raise(args[0], &bw, MP_BUFFER_RW);
    mp_int_t n = mp_obj_get_int(args[1]);
    mp_get_buffer_raise(args[2], &bg, MP_BUFFER_READ);
    mp_int_t gn = mp_obj_get_int(args[3]);
    mp_get_buffer_raise(args[4], &bs, MP_BUFFER_READ);
    mp_int_t m = mp_obj_get_int(args[5]);
    mp_int_t a = mp_obj_get_int(args[6]);
    if (n < 0 || gn < 0 || m < 0 || m > n || a < 0 || a >= m
        || (size_t)(n * n) * 4 > bw.len || (size_t)(gn * gn) * 4 > bg.len
        || (size_t)m * 2 > bs.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("mincut buffers too small"));
    }
    int32_t *w = bw.buf;
    const int32_t *gw = bg.buf;
    const uint16_t *so = bs.buf;
    for (mp_int_t i = 0; i < m; i++) {
        if (so[i] >= gn) {
            mp_raise_ValueError(MP_ERROR_TEXT("vertex out of range"));
        }
    }
    const int32_t *ra = gw + so[a] * gn;
    w[a * n + a] = 0;
    for (mp_int_t b = a + 1; b < m; b++) {
        int32_t v = ra[so[b]];
        w[a * n + b] = v;
        w[b * n + a] = v;
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_copy_row_obj, 7, 7, rvmn_copy_row);

static mp_obj_t rvmn_merge(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    rvmn_cut_t c;
    rvmn_cut_args(args, &c, 0);
    mp_int_t prev = mp_obj_get_int(args[4]);
    mp_int_t last = mp_obj_get_int(args[5]);
    if (prev < 0 || prev >= c.n || last < 0 || last >= c.n || c.m < 1) {
        mp_raise_ValueError(MP_ERROR_TEXT("vertex out of range"));
    }
    int32_t *w = c.w;
    mp_int_t n = c.n, rp = prev * n, rl = last * n, at = -1;
    for (mp_int_t i = 0; i < c.m; i++) {
        mp_int_t x = c.act[i];
        if (x == last) {
            at = i;
        } else if (x != prev) {
            int32_t v = w[rp + x] + w[rl + x];
            w[rp + x] = v;
            w[x * n + prev] = v;
        }
    }
    if (at < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("vertex not active"));
    }
    c.act[at] = c.act[c.m - 1];
    return MP_OBJ_NEW_SMALL_INT(c.m - 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_merge_obj, 6, 6, rvmn_merge);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_ma_step, MP_OBJ_FROM_PTR(&rvmn_ma_step_obj));
    mp_store_global(MP_QSTR_ma_phase, MP_OBJ_FROM_PTR(&rvmn_ma_phase_obj));
    mp_store_global(MP_QSTR_merge, MP_OBJ_FROM_PTR(&rvmn_merge_obj));
    mp_store_global(MP_QSTR_copy_row, MP_OBJ_FROM_PTR(&rvmn_copy_row_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_cut_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_cut) },
    { MP_ROM_QSTR(MP_QSTR_ma_step), MP_ROM_PTR(&rvmn_ma_step_obj) },
    { MP_ROM_QSTR(MP_QSTR_ma_phase), MP_ROM_PTR(&rvmn_ma_phase_obj) },
    { MP_ROM_QSTR(MP_QSTR_merge), MP_ROM_PTR(&rvmn_merge_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy_row), MP_ROM_PTR(&rvmn_copy_row_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_cut_globals, rvmn_cut_globals_table);
const mp_obj_module_t rvmn_cut_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_cut_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_cut, rvmn_cut_module);
#endif
