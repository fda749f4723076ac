# The portable WebAssembly executor: the same contract, word code and state
# as the C natmod rvmn_wasm (interp.py), in the Python subset both runtimes
# share. Its own module, so a board that runs the natmod never loads it
# (interp.portable_run() imports it once, in kernel context).
from .interp import (DONE, FUEL, HOST, TRAP, R_PC, R_SP, R_FP, R_NF, R_MEMB,
                     R_PAGES, R_MAXP, R_LOG2, R_ARG, R_CAP, R_NSTACK, R_NFRAMES,
                     R_TABLEN, R_LEFT, M32, M64)


def _s32(v):
    return v - 0x100000000 if v & 0x80000000 else v


def _s64(v):
    return v - 0x10000000000000000 if v & 0x8000000000000000 else v


def _clz(v, w):
    n = 0
    b = 1 << (w - 1)
    while n < w and not v & b:
        n += 1
        b >>= 1
    return n


def _ctz(v, w):
    n = 0
    while n < w and not v & 1:
        n += 1
        v >>= 1
    return n


def _popcnt(v):
    n = 0
    while v:
        v &= v - 1
        n += 1
    return n


def _divrem(op, a, b, w):
    """div_s div_u rem_s rem_u for width w; (value, trap code)."""
    if b == 0:
        return 0, 3
    if op == 0 or op == 2:     # signed
        sa = a - (1 << w) if a >> (w - 1) else a
        sb = b - (1 << w) if b >> (w - 1) else b
        q = abs(sa) // abs(sb)
        if (sa < 0) != (sb < 0):
            q = -q
        if op == 0:
            if q == 1 << (w - 1):
                return 0, 4
            return q & ((1 << w) - 1), 0
        return (sa - q * sb) & ((1 << w) - 1), 0
    if op == 1:
        return a // b, 0
    return a % b, 0


def _binop(op, a, b):
    """Integer binary ops 0x6A..0x78 (i32) and 0x7C..0x8A (i64); (v, trap)."""
    if op <= 0x78:
        w = 32
        k = op - 0x6A
        m = M32
    else:
        w = 64
        k = op - 0x7C
        m = M64
    if k == 0:
        return (a + b) & m, 0
    if k == 1:
        return (a - b) & m, 0
    if k == 2:
        return (a * b) & m, 0
    if k <= 6:
        return _divrem(k - 3, a, b, w)
    if k == 7:
        return a & b, 0
    if k == 8:
        return a | b, 0
    if k == 9:
        return a ^ b, 0
    s = b & (w - 1)
    if k == 10:
        return (a << s) & m, 0
    if k == 11:
        if a >> (w - 1):
            return ((a - (1 << w)) >> s) & m, 0
        return a >> s, 0
    if k == 12:
        return a >> s, 0
    if k == 13:
        return ((a << s) | (a >> (w - s))) & m, 0
    return ((a >> s) | (a << (w - s))) & m, 0


def _cmp(k, a, b, w):
    """eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u."""
    if k == 0:
        return 1 if a == b else 0
    if k == 1:
        return 1 if a != b else 0
    if k & 1 == 0:   # signed
        h = 1 << (w - 1)
        a ^= h
        b ^= h
    k >>= 1
    if k == 1:
        return 1 if a < b else 0
    if k == 2:
        return 1 if a > b else 0
    if k == 3:
        return 1 if a <= b else 0
    return 1 if a >= b else 0


def _unop(op, a):
    if op == 0x45 or op == 0x50:
        return 1 if a == 0 else 0
    if op == 0x67:
        return _clz(a, 32)
    if op == 0x68:
        return _ctz(a, 32)
    if op == 0x69 or op == 0x7B:
        return _popcnt(a)
    if op == 0x79:
        return _clz(a, 64)
    if op == 0x7A:
        return _ctz(a, 64)
    if op == 0xA7:
        return a & M32
    if op == 0xAC:
        return _s32(a) & M64
    if op == 0xAD:
        return a
    if op == 0xC0:
        return (a & 0xFF) - (0x100 if a & 0x80 else 0) & M32
    if op == 0xC1:
        return (a & 0xFFFF) - (0x10000 if a & 0x8000 else 0) & M32
    if op == 0xC2:
        return (a & 0xFF) - (0x100 if a & 0x80 else 0) & M64
    if op == 0xC3:
        return (a & 0xFFFF) - (0x10000 if a & 0x8000 else 0) & M64
    return (a & M32) - (0x100000000 if a & 0x80000000 else 0) & M64


def _fop(f, a, b):
    """The i32 op of a superinstruction (module._FUSE: none traps)."""
    return _cmp(f - 0x46, a, b, 32) if f < 0x6A else _binop(f, a, b)[0]


# loads: op -> (bytes, signed, result mask)
_LD = {0x28: (4, 0, M32), 0x29: (8, 0, M64), 0x2C: (1, 1, M32), 0x2D: (1, 0, M32),
       0x2E: (2, 1, M32), 0x2F: (2, 0, M32), 0x30: (1, 1, M64), 0x31: (1, 0, M64),
       0x32: (2, 1, M64), 0x33: (2, 0, M64), 0x34: (4, 1, M64), 0x35: (4, 0, M64)}
_ST = {0x36: 4, 0x37: 8, 0x3A: 1, 0x3B: 2, 0x3C: 1, 0x3D: 2, 0x3E: 4}


def run_py(inst, fuel):
    """The portable executor: same contract as rvmn_wasm.run."""
    rg = inst.regs
    code = inst.code
    md = inst.meta
    st = inst.stack
    fr = inst.frames
    mem = inst.mem
    gl = inst.glob
    pc = rg[R_PC]
    sp = rg[R_SP]
    fp = rg[R_FP]
    left = fuel
    status = FUEL
    while True:
        if left <= 0:
            break
        left -= 1
        op = code[pc]
        if op == 0x20:
            st[sp] = st[fp + code[pc + 1]]
            sp += 1
            pc += 2
        elif op == 0x41:
            st[sp] = code[pc + 1] & M32
            sp += 1
            pc += 2
        elif op == 0x21:
            sp -= 1
            st[fp + code[pc + 1]] = st[sp]
            pc += 2
        elif op == 0x22:
            st[fp + code[pc + 1]] = st[sp - 1]
            pc += 2
        elif op == 0x6A:
            sp -= 1
            st[sp - 1] = (st[sp - 1] + st[sp]) & M32
            pc += 1
        elif op == 0xD0 or op == 0xD1 or op == 0xD4:
            if op == 0xD4:
                a = st[sp - 1]
                b = code[pc + 1] & M32
                f = code[pc + 2]
                pc += 3
                sp -= 1
            else:
                a = st[fp + code[pc + 1]]
                b = code[pc + 2] & M32 if op == 0xD0 else st[fp + code[pc + 2]]
                f = code[pc + 3]
                pc += 4
            st[sp] = _cmp(f - 0x46, a, b, 32) if f < 0x6A else _binop(f, a, b)[0]
            sp += 1
        elif op == 0xD2 or op == 0xD3 or op == 0xD5 or op == 0xDB:
            # an i32 op into a local (module.py header)
            if op == 0xD5:
                sp -= 2
                a = st[sp]
                b = st[sp + 1]
                f = code[pc + 1]
                y = code[pc + 2]
                pc += 3
            elif op == 0xDB:
                sp -= 1
                a = st[sp]
                b = code[pc + 1] & M32
                f = code[pc + 2]
                y = code[pc + 3]
                pc += 4
            else:
                a = st[fp + code[pc + 1]]
                b = code[pc + 2] & M32 if op == 0xD2 else st[fp + code[pc + 2]]
                f = code[pc + 3]
                y = code[pc + 4]
                pc += 5
            st[fp + y] = _fop(f, a, b)
        elif op == 0xD6 or op == 0xD7 or op == 0xD8:
            # br_if on a local or an i32 op of locals/constants
            if op == 0xD6:
                c = st[fp + code[pc + 1]]
                e = pc + 2
            else:
                b = code[pc + 2] & M32 if op == 0xD8 else st[fp + code[pc + 2]]
                c = _fop(code[pc + 3], st[fp + code[pc + 1]], b)
                e = pc + 4
            if c:
                n = code[e + 2]
                h = fp + code[e + 1]
                if n:
                    st[h] = st[sp - 1]
                sp = h + n
                pc = code[e]
            else:
                pc = e + 3
        elif op == 0xD9:
            st[sp] = code[pc + 1] & M32
            st[sp + 1] = code[pc + 2] & M32
            sp += 2
            pc += 3
        elif op == 0xDA:
            st[sp - 1] = _fop(code[pc + 4], st[sp - 1],
                              _fop(code[pc + 3], st[fp + code[pc + 1]], code[pc + 2] & M32))
            pc += 5
        elif op == 0x0D:
            sp -= 1
            if st[sp]:
                n = code[pc + 3]
                h = fp + code[pc + 2]
                if n:
                    st[h] = st[sp - 1]
                sp = h + n
                pc = code[pc + 1]
            else:
                pc += 4
        elif op == 0x0C:
            n = code[pc + 3]
            h = fp + code[pc + 2]
            if n:
                st[h] = st[sp - 1]
            sp = h + n
            pc = code[pc + 1]
        elif op == 0x04:
            sp -= 1
            pc = pc + 2 if st[sp] else code[pc + 1]
        elif op == 0x05:
            pc = code[pc + 1]
        elif 0x46 <= op <= 0x4F:
            sp -= 1
            st[sp - 1] = _cmp(op - 0x46, st[sp - 1], st[sp], 32)
            pc += 1
        elif 0x51 <= op <= 0x5A:
            sp -= 1
            st[sp - 1] = _cmp(op - 0x51, st[sp - 1], st[sp], 64)
            pc += 1
        elif 0x6A <= op <= 0x8A and not (0x79 <= op <= 0x7B):
            sp -= 1
            v, t = _binop(op, st[sp - 1], st[sp])
            if t:
                rg[R_ARG] = t
                status = TRAP
                break
            st[sp - 1] = v
            pc += 1
        elif op in _LD:
            n, sg, m = _LD[op]
            a = st[sp - 1] + (code[pc + 1] & M32)
            if a + n > rg[R_MEMB]:
                rg[R_ARG] = 2
                status = TRAP
                break
            v = int.from_bytes(mem[a:a + n], "little")
            if sg and v >> (8 * n - 1):
                v -= 1 << (8 * n)
            st[sp - 1] = v & m
            pc += 2
        elif op in _ST:
            n = _ST[op]
            sp -= 2
            a = st[sp] + (code[pc + 1] & M32)
            if a + n > rg[R_MEMB]:
                rg[R_ARG] = 2
                status = TRAP
                break
            mem[a:a + n] = (st[sp + 1] & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
            pc += 2
        elif op == 0x42:
            st[sp] = (code[pc + 1] & M32) | ((code[pc + 2] & M32) << 32)
            sp += 1
            pc += 3
        elif op == 0x23:
            st[sp] = gl[code[pc + 1]]
            sp += 1
            pc += 2
        elif op == 0x24:
            sp -= 1
            gl[code[pc + 1]] = st[sp]
            pc += 2
        elif op == 0x1A:
            sp -= 1
            pc += 1
        elif op == 0x1B:
            sp -= 2
            if not st[sp + 1]:
                st[sp - 1] = st[sp]
            pc += 1
        elif op == 0x10 or op == 0x11:
            if op == 0x10:
                f = code[pc + 1]
            else:
                sp -= 1
                i = st[sp]
                if i >= rg[R_TABLEN]:
                    rg[R_ARG] = 5
                    status = TRAP
                    break
                f = inst.table[i]
                if f < 0:
                    rg[R_ARG] = 6
                    status = TRAP
                    break
                if md[f * 6 + 5] != code[pc + 1]:
                    rg[R_ARG] = 7
                    status = TRAP
                    break
            pc += 2
            b = f * 6
            if md[b] < 0:
                rg[R_ARG] = f
                status = HOST
                break
            nf = rg[R_NF]
            nfp = sp - md[b + 1]
            nl = md[b + 2]
            if nf >= rg[R_NFRAMES]:
                rg[R_ARG] = 8
                status = TRAP
                break
            if nfp + nl + md[b + 4] > rg[R_NSTACK]:
                rg[R_ARG] = 9
                status = TRAP
                break
            fr[3 * nf] = pc
            fr[3 * nf + 1] = fp
            fr[3 * nf + 2] = f
            rg[R_NF] = nf + 1
            for i in range(sp, nfp + nl):
                st[i] = 0
            fp = nfp
            sp = nfp + nl
            pc = md[b]
        elif op == 0x0F:
            nf = rg[R_NF] - 1
            f = fr[3 * nf + 2]
            n = md[f * 6 + 3]
            if n:
                st[fp] = st[sp - 1]
            sp = fp + n
            pc = fr[3 * nf]
            fp = fr[3 * nf + 1]
            rg[R_NF] = nf
            if nf == 0:
                status = DONE
                break
        elif op == 0x0E:
            sp -= 1
            i = st[sp]
            k = code[pc + 1]
            if i > k:
                i = k
            e = pc + 2 + 3 * i
            n = code[e + 2]
            h = fp + code[e + 1]
            if n:
                st[h] = st[sp - 1]
            sp = h + n
            pc = code[e]
        elif op == 0x3F:
            st[sp] = rg[R_PAGES]
            sp += 1
            pc += 1
        elif op == 0x40:
            d = st[sp - 1]
            old = rg[R_PAGES]
            new = old + d
            mx = rg[R_MAXP]
            lg = rg[R_LOG2]
            if (mx >= 0 and new > mx) or (new << lg) > rg[R_CAP]:
                st[sp - 1] = M32
            else:
                rg[R_PAGES] = new
                rg[R_MEMB] = new << lg
                st[sp - 1] = old
            pc += 1
        elif op == 0x00:
            rg[R_ARG] = 1
            status = TRAP
            break
        else:
            st[sp - 1] = _unop(op, st[sp - 1])
            pc += 1
    rg[R_PC] = pc
    rg[R_SP] = sp
    rg[R_FP] = fp
    rg[R_LEFT] = left
    return status
