// rvmn_crc: CRC-32 (IEEE 802.3, as binascii.crc32) for the console frames,
// for ports built without binascii.crc32. Nibble table (64 bytes of rodata)
// like the portable reference crc32_py in rvm_mp/frame.py.
//
//   crc32(data, crc=0) -> int
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif

static const uint32_t rvmn_crc_t[16] = {
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

static mp_obj_t rvmn_crc32(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(args[0], &bi, MP_BUFFER_READ);
    uint32_t crc = n_args > 1 ? (uint32_t)mp_obj_get_int_truncated(args[1]) : 0;
    const uint8_t *p = bi.buf;
    crc = ~crc;
    for (size_t i = 0; i < bi.len; i++) {
        uint32_t b = p[i];
        crc = rvmn_crc_t[(crc ^ b) & 15] ^ (crc >> 4);
        crc = rvmn_crc_t[(crc ^ (b >> 4)) & 15] ^ (crc >> 4);
    }
    return mp_obj_new_int_from_uint(~crc);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(rvmn_crc32_obj, 1, 2, rvmn_crc32);

#if MICROPY_ENABLE_DYNRUNTIME
mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_crc32, MP_OBJ_FROM_PTR(&rvmn_crc32_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
#else
static const mp_rom_map_elem_t rvmn_crc_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_rvmn_crc) },
    { MP_ROM_QSTR(MP_QSTR_crc32), MP_ROM_PTR(&rvmn_crc32_obj) },
};
static MP_DEFINE_CONST_DICT(rvmn_crc_globals, rvmn_crc_globals_table);
const mp_obj_module_t rvmn_crc_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&rvmn_crc_globals,
};
MP_REGISTER_MODULE(MP_QSTR_rvmn_crc, rvmn_crc_module);
#endif
