// rvmn_p1: the proof gate's P1 capability lookup in C. Same contract and
// same code as ProofGate.p1 (rvm_mp/proofgate.py, the portable reference)
// and gate_native.p1; installed as the method ProofGate.p1 by
// rvm_mp/impls.py, so `self` is the gate:
//
//   p1(self, pid, handle, otype, oid, rights) -> pool index | RvmError
//
// It reads the gate's _tables (dict pid -> array('i') of slots), _per,
// _key (array('i')) and _rights (bytearray); allocates nothing. The five
// RvmError objects it returns are handed over once by init() (they live in
// rvm_mp.errors, which keeps them alive).
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

// ESTATE, EBADHANDLE, ESTALE, EWRONGOBJ, ERIGHTS (bss: not static, see mpy_ld)
mp_obj_t rvmn_p1_err[5];

static mp_int_t rvmn_p1_int(mp_obj_t o) {
    return mp_obj_is_small_int(o) ? MP_OBJ_SMALL_INT_VALUE(o) : mp_obj_get_int(o);
}

// otype/oid/rights beyond a small int (or of another type): the portable
// body compares them as Python ints; here a big int stands for "out of any
// key's range" with its sign, other types raise TypeError like it does.
#define RVMN_BIG (((mp_int_t)1) << (sizeof(mp_int_t) * 8 - 3))
static mp_int_t rvmn_p1_arg(mp_obj_t o) {
    if (mp_obj_is_small_int(o)) {
        return MP_OBJ_SMALL_INT_VALUE(o);
    }
    if (mp_obj_is_true(mp_binary_op(MP_BINARY_OP_LESS, o, MP_OBJ_NEW_SMALL_INT(0)))) {
        return -RVMN_BIG;
    }
    return RVMN_BIG;
}

static mp_obj_t rvmn_p1_init(size_t n_args, const mp_obj_t *args) {
    for (size_t i = 0; i < 5; i++) {
        rvmn_p1_err[i] = args[i];
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_p1_init_obj, 5, 5, rvmn_p1_init);

static mp_obj_t rvmn_p1(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_obj_t self = args[0], pid = args[1], handle = args[2];
    if (rvmn_p1_err[0] == MP_OBJ_NULL) {
        mp_raise_ValueError(MP_ERROR_TEXT("rvmn_p1.init() not called"));
    }
    if (!mp_obj_is_small_int(pid)) {
        return rvmn_p1_err[0];
    }
    mp_obj_t tables = mp_load_attr(self, MP_QSTR__tables);
    if (!mp_obj_is_true(mp_binary_op(MP_BINARY_OP_CONTAINS, tables, pid))) {
        return rvmn_p1_err[0];
    }
    mp_obj_t t = mp_obj_subscr(tables, pid, MP_OBJ_SENTINEL);
    if (!mp_obj_is_small_int(handle)) {
        return rvmn_p1_err[1];
    }
    mp_int_t h = MP_OBJ_SMALL_INT_VALUE(handle);
    if (h < 256 || h > 0xFFFF) {
        return rvmn_p1_err[1];
    }
    mp_int_t s = h & 0xFF;
    if (s >= rvmn_p1_int(mp_load_attr(self, MP_QSTR__per))) {
        return rvmn_p1_err[1];
    }
    mp_buffer_info_t bi;
    mp_get_buffer_raise(t, &bi, MP_BUFFER_READ);
    if ((size_t)(s + 1) * 4 > bi.len) {
        return rvmn_p1_err[1];
    }
    int32_t v = ((const int32_t *)bi.buf)[s];
    if ((v >> 16) != (h >> 8)) {
        return rvmn_p1_err[2];
    }
    mp_int_t ci = (v & 0xFFFF) - 1;
    if (ci < 0) {
        return rvmn_p1_err[1];
    }
    mp_get_buffer_raise(mp_load_attr(self, MP_QSTR__key), &bi, MP_BUFFER_READ);
    if ((size_t)(ci + 1) * 4 > bi.len) {
        return rvmn_p1_err[1];
    }
    mp_int_t k = ((const int32_t *)bi.buf)[ci];
    mp_int_t otype = rvmn_p1_arg(args[3]);
    mp_int_t oid = rvmn_p1_arg(args[4]);
    if (oid >= 0) {
        // k is an int32: otype << 16 | oid cannot equal it once otype is
        // beyond +-2^20 or oid a big int; else compared as Python does
        // (two's complement, 64 bits, so no overflow on 32-bit boards)
        if (otype < -(1 << 20) || otype > (1 << 20) || oid == RVMN_BIG
            || (int64_t)k != ((int64_t)((uint64_t)(int64_t)otype << 16) | (int64_t)oid)) {
            return rvmn_p1_err[3];
        }
    } else if (otype && (k >> 16) != otype) {
        return rvmn_p1_err[3];
    }
    mp_get_buffer_raise(mp_load_attr(self, MP_QSTR__rights), &bi, MP_BUFFER_READ);
    if ((size_t)ci >= bi.len) {
        return rvmn_p1_err[1];
    }
    if (rvmn_p1_arg(args[5]) & ~(mp_int_t)((const uint8_t *)bi.buf)[ci]) {
        return rvmn_p1_err[4];
    }
    return MP_OBJ_NEW_SMALL_INT(ci);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_p1_obj, 6, 6, rvmn_p1);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_init, MP_OBJ_FROM_PTR(&rvmn_p1_init_obj));
    mp_store_global(MP_QSTR_p1, MP_OBJ_FROM_PTR(&rvmn_p1_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_p1_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_p1) },
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&rvmn_p1_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_p1), MP_ROM_PTR(&rvmn_p1_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_p1_globals, rvmn_p1_globals_table);
const mp_obj_module_t rvmn_p1_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_p1_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_p1, rvmn_p1_module);
#endif
