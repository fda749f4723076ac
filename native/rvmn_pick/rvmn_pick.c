// rvmn_pick: the scheduler's pick in C. Same contract and same code as
// Scheduler.pick_py (rvm_mp/scheduler.py, the portable reference) and
// switch_native.pick; installed as the method Scheduler.pick by
// rvm_mp/impls.py, so `self` is the scheduler:
//
//   pick(self, now) -> task | None
//
// One pass over self.tasks: the best ready hard (Reflex) task and the best
// other one by urgency * PRIO_Q + boost + wboost (older `last` wins ties);
// then the mode decides. Attribute reads and small-int stores only: no heap.
// init(ticks_max) hands over the port's tick period (ticks_add(0, -1)) so
// ticks_diff here wraps exactly like time.ticks_diff.
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
#define F_RECOVERY (2)
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

static mp_obj_t rvmn_pick(mp_obj_t self, mp_obj_t now_in) {
    if (rvmn_pick_tmax == 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("rvmn_pick.init() not called"));
    }
    mp_int_t now = rvmn_pick_int(now_in);
    mp_int_t mode = ATTR(self, MP_QSTR_mode);
    int rec = mode == MODE_RECOVERY;
    mp_int_t horizon = ATTR(self, MP_QSTR_horizon);
    mp_int_t hmax = horizon + horizon;
    mp_obj_t bh = MP_OBJ_NULL, bs = MP_OBJ_NULL;
    mp_int_t ph = 0, ps = 0, lh = 0, ls = 0;
    size_t len;
    mp_obj_t *items;
    mp_obj_get_array(mp_load_attr(self, MP_QSTR_tasks), &len, &items);
    for (size_t i = 0; i < len; i++) {
        mp_obj_t t = items[i];
        if (mp_obj_is_true(mp_load_attr(t, MP_QSTR_state))) {
            continue;
        }
        mp_int_t fl = ATTR(t, MP_QSTR_fl);
        if (rec && !(fl & F_RECOVERY)) {
            continue;
        }
        mp_int_t u = horizon - rvmn_tdiff(ATTR(t, MP_QSTR_deadline), now);
        if (u < 0) {
            u = 0;
        } else if (u > hmax) {
            u = hmax;
        }
        mp_int_t p = u * PRIO_Q + ATTR(t, MP_QSTR_boost) + ATTR(t, MP_QSTR_wboost);
        if (fl & F_HARD) {
            if (bh == MP_OBJ_NULL || p > ph || (p == ph && ATTR(t, MP_QSTR_last) < lh)) {
                bh = t;
                ph = p;
                lh = ATTR(t, MP_QSTR_last);
            }
        } else if (bs == MP_OBJ_NULL || p > ps || (p == ps && ATTR(t, MP_QSTR_last) < ls)) {
            bs = t;
            ps = p;
            ls = ATTR(t, MP_QSTR_last);
        }
    }
    mp_obj_t none = mp_const_none;
    if (rec) {
        return bh != MP_OBJ_NULL ? bh : (bs != MP_OBJ_NULL ? bs : none);
    }
    if (bh == MP_OBJ_NULL) {
        SET(self, MP_QSTR_mode, MODE_FLOW);
        return bs != MP_OBJ_NULL ? bs : none;
    }
    mp_obj_t dest[2];
    mp_load_method(self, MP_QSTR_clock_us, dest);
    mp_int_t us = rvmn_pick_int(rvmn_call_method(0, 0, dest));
    if (mode != MODE_REFLEX) {
        SET(self, MP_QSTR_mode, MODE_REFLEX);
        SET(self, MP_QSTR_e_reflex, ATTR(self, MP_QSTR_e_reflex) + 1);
        SET(self, MP_QSTR_reflex_start, us);
        return bh;
    }
    if (rvmn_tdiff(us, ATTR(self, MP_QSTR_reflex_start)) > ATTR(self, MP_QSTR_reflex_budget_us)) {
        // bounded: one Flow task runs, then Reflex may start again
        if (bs != MP_OBJ_NULL) {
            SET(self, MP_QSTR_reflex_overruns, ATTR(self, MP_QSTR_reflex_overruns) + 1);
            SET(self, MP_QSTR_mode, MODE_FLOW);
            return bs;
        }
        SET(self, MP_QSTR_reflex_start, us);
    }
    return bh;
}
static MP_DEFINE_CONST_FUN_OBJ_2(rvmn_pick_obj, rvmn_pick);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_init, MP_OBJ_FROM_PTR(&rvmn_pick_init_obj));
    mp_store_global(MP_QSTR_pick, MP_OBJ_FROM_PTR(&rvmn_pick_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_pick_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_pick) },
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&rvmn_pick_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_pick), MP_ROM_PTR(&rvmn_pick_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_pick_globals, rvmn_pick_globals_table);
const mp_obj_module_t rvmn_pick_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_pick_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_pick, rvmn_pick_module);
#endif
