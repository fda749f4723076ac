// rvmn_pick: the scheduler's pick in C. Same contract and same code as
// Scheduler.pick_py (rvm_mp/scheduler.py, the portable reference) and
// switch_native.pick; installed as the method Scheduler.pick by
// rvm_mp/impls.py, so `self` is the scheduler:
//
//   pick(self, now) -> task | None
//
// Reads the top of the ready heap (self.rq[0], kept in pick order by the
// scheduler on wake and block): a top that is no longer ready is dropped
// (self._rq_del(0)); where the heap's order is not the priority order
// (Recovery mode, the top more than a horizon late, a deadline pushed
// beyond the horizon: far_until, a Reflex overrun) it returns self.pick_scan(now).
// Then the mode decides. Attribute reads and small-int stores only: no
// heap.
//
//   sift(self, t, i)
//
// Scheduler._rq_sift_py in C: place t at slot i of the ready heap
// (self.rq, self.nrq entries; a hole or t's own slot) and sift it up or
// down in pick order (hard first, then boost + wboost - deadline * PRIO_Q,
// then the smaller `last`), storing each moved task's hidx. init(ticks_max) hands over the port's tick period
// (ticks_add(0, -1)) so ticks_diff here wraps exactly like time.ticks_diff.
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#define rvmn_call_method(n, kw, a) (mp_fun_table.call_method_n_kw((n), (kw), (a)))
#else
#define rvmn_call_method mp_call_method_n_kw
#include "py/runtime.h"
#endif

#define MODE_FLOW (0)
#define MODE_REFLEX (1)
#define MODE_RECOVERY (2)
#define F_HARD (1)
#define PRIO_Q (16)

mp_int_t rvmn_pick_tmax;   // bss: not static, see mpy_ld

static mp_int_t rvmn_pick_int(mp_obj_t o) {
    return mp_obj_is_small_int(o) ? MP_OBJ_SMALL_INT_VALUE(o) : mp_obj_get_int(o);
}

static mp_int_t rvmn_tdiff(mp_int_t a, mp_int_t b) {
    mp_int_t half = (rvmn_pick_tmax >> 1) + 1;
    return ((a - b + half) & rvmn_pick_tmax) - half;
}

#define ATTR(o, q) rvmn_pick_int(mp_load_attr((o), (q)))
#define SET(o, q, v) mp_store_attr((o), (q), MP_OBJ_NEW_SMALL_INT(v))

static mp_obj_t rvmn_pick_init(mp_obj_t tmax) {
    rvmn_pick_tmax = mp_obj_get_int(tmax);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(rvmn_pick_init_obj, rvmn_pick_init);

static mp_obj_t rvmn_pick_call1(mp_obj_t self, qstr name, mp_obj_t arg) {
    mp_obj_t dest[3];
    mp_load_method(self, name, dest);
    dest[2] = arg;
    return rvmn_call_method(1, 0, dest);
}

static mp_obj_t rvmn_pick(mp_obj_t self, mp_obj_t now_in) {
    if (rvmn_pick_tmax == 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rvmn_pick.init() not called"));
    }
    mp_int_t now = rvmn_pick_int(now_in);
    mp_obj_t t = MP_OBJ_NULL;
    while (ATTR(self, MP_QSTR_nrq) > 0) {
        size_t len;
        mp_obj_t *items;
        mp_obj_get_array(mp_load_attr(self, MP_QSTR_rq), &len, &items);
        if (len == 0) {
            break;
        }
        t = items[0];
        if (!mp_obj_is_true(mp_load_attr(t, MP_QSTR_state))) {
            break;   // T_READY
        }
        t = MP_OBJ_NULL;   // left the ready state behind the heap's back
        rvmn_pick_call1(self, MP_QSTR__rq_del, MP_OBJ_NEW_SMALL_INT(0));
    }
    mp_int_t mode = ATTR(self, MP_QSTR_mode);
    if (t == MP_OBJ_NULL) {
        if (mode != MODE_RECOVERY) {
            SET(self, MP_QSTR_mode, MODE_FLOW);
        }
        return mp_const_none;
    }
    // the heap's order is the priority order only within the clamp
    mp_int_t horizon = ATTR(self, MP_QSTR_horizon);
    if (mode == MODE_RECOVERY || rvmn_tdiff(ATTR(t, MP_QSTR_deadline), now) < -horizon) {
        return rvmn_pick_call1(self, MP_QSTR_pick_scan, now_in);
    }
    mp_obj_t far = mp_load_attr(self, MP_QSTR_far_until);
    if (far != mp_const_none) {
        if (rvmn_tdiff(rvmn_pick_int(far), now) > 0) {
            return rvmn_pick_call1(self, MP_QSTR_pick_scan, now_in);
        }
        mp_store_attr(self, MP_QSTR_far_until, mp_const_none);
    }
    if (!(ATTR(t, MP_QSTR_fl) & F_HARD)) {   // hard tasks sort first
        if (mode != MODE_FLOW) {
            SET(self, MP_QSTR_mode, MODE_FLOW);
        }
        return t;
    }
    mp_obj_t dest[2];
    mp_load_method(self, MP_QSTR_clock_us, dest);
    mp_int_t us = rvmn_pick_int(rvmn_call_method(0, 0, dest));
    if (mode != MODE_REFLEX) {
        SET(self, MP_QSTR_mode, MODE_REFLEX);
        SET(self, MP_QSTR_e_reflex, ATTR(self, MP_QSTR_e_reflex) + 1);
        SET(self, MP_QSTR_reflex_start, us);
        return t;
    }
    if (rvmn_tdiff(us, ATTR(self, MP_QSTR_reflex_start)) > ATTR(self, MP_QSTR_reflex_budget_us)) {
        // an overrun needs the best Flow task
        return rvmn_pick_call1(self, MP_QSTR_pick_scan, now_in);
    }
    return t;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rvmn_pick_obj, rvmn_pick);

typedef struct {
    mp_int_t hard, key, dl, last;
} rvmn_ord_t;

static void rvmn_ord(mp_obj_t t, rvmn_ord_t *o) {
    o->hard = ATTR(t, MP_QSTR_fl) & F_HARD;
    o->key = ATTR(t, MP_QSTR_boost) + ATTR(t, MP_QSTR_wboost);
    o->dl = ATTR(t, MP_QSTR_deadline);
    o->last = ATTR(t, MP_QSTR_last);
}

// a comes before b in the ready heap
static int rvmn_before(const rvmn_ord_t *a, const rvmn_ord_t *b) {
    if (a->hard != b->hard) {
        return a->hard != 0;
    }
    mp_int_t x = a->key - b->key + PRIO_Q * rvmn_tdiff(b->dl, a->dl);
    if (x) {
        return x > 0;
    }
    return a->last < b->last;
}

static mp_obj_t rvmn_sift(mp_obj_t self, mp_obj_t t, mp_obj_t i_in) {
    size_t len;
    mp_obj_t *rq;
    mp_obj_get_array(mp_load_attr(self, MP_QSTR_rq), &len, &rq);
    mp_int_t n = ATTR(self, MP_QSTR_nrq);
    mp_int_t i = mp_obj_get_int(i_in);
    if (n < 0 || (size_t)n > len || i < 0 || i >= n) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad heap slot"));
    }
    rvmn_ord_t ot, op, oc;
    rvmn_ord(t, &ot);
    int up = 0;
    while (i > 0) {
        mp_int_t j = (i - 1) >> 1;
        mp_obj_t p = rq[j];
        rvmn_ord(p, &op);
        if (!rvmn_before(&ot, &op)) {
            break;
        }
        rq[i] = p;
        SET(p, MP_QSTR_hidx, i);
        i = j;
        up = 1;
    }
    while (!up) {
        mp_int_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        mp_obj_t a = rq[c];
        rvmn_ord_t *oa = &oc;   // (no struct copy: armv6m has no memcpy)
        rvmn_ord(a, &oc);
        if (c + 1 < n) {   // the child that comes first
            rvmn_ord(rq[c + 1], &op);
            if (rvmn_before(&op, &oc)) {
                c += 1;
                a = rq[c];
                oa = &op;
            }
        }
        if (!rvmn_before(oa, &ot)) {
            break;
        }
        rq[i] = a;
        SET(a, MP_QSTR_hidx, i);
        i = c;
    }
    rq[i] = t;
    SET(t, MP_QSTR_hidx, i);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(rvmn_sift_obj, rvmn_sift);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_init, MP_OBJ_FROM_PTR(&rvmn_pick_init_obj));
    mp_store_global(MP_QSTR_pick, MP_OBJ_FROM_PTR(&rvmn_pick_obj));
    mp_store_global(MP_QSTR_sift, MP_OBJ_FROM_PTR(&rvmn_sift_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_pick_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_pick) },
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&rvmn_pick_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_pick), MP_ROM_PTR(&rvmn_pick_obj) },
    { MP_ROM_QSTR(MP_QSTR_sift), MP_ROM_PTR(&rvmn_sift_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_pick_globals, rvmn_pick_globals_table);
const mp_obj_module_t rvmn_pick_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_pick_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_pick, rvmn_pick_module);
#endif
