# WebAssembly binary decoding, validation and translation (load time only).
# Written from the WebAssembly core specification (binary format, sect. 5;
# validation algorithm, appendix "Algorithm"); docs/wasm.md says what is in.
#
# A module is decoded and fully validated once, and each function body is
# translated on the way into a word code that both executors (the C natmod
# rvmn_wasm and the portable interp.py) run. Validation knows the operand
# stack height at every branch, so the translation resolves every branch to
# (target, height, arity): the executors keep no control stack at all.
#
#   word code (array of int32), one op = opcode word + operands
#     wasm opcode for every numeric / memory / variable op (same number)
#     0x0C BR     tgt h n        jump to tgt, keep top n values at fp+h
#     0x0D BR_IF  tgt h n        pop i32; branch when non-zero
#     0x0E BR_TAB k (tgt h n)*(k+1)
#     0x04 IF     tgt            pop i32; jump to tgt when zero
#     0x05 JMP    tgt            (the `else` of a taken then-branch)
#     0x0F RET                   results to fp, pop the frame
#     0x10 CALL f   0x11 CALL_IND canonical-type   0x41 v   0x42 lo hi
#     0xD0 x c op   push op(local x, c)      (superinstructions: i32 ops
#     0xD1 x y op   push op(local x, local y) that cannot trap, _FUSE;
#     0xD4 c op     top = op(top, c)          never across a branch target)
#     0xD2 x c op y local y = op(local x, c)        (D0 + local.set y)
#     0xD3 x z op y local y = op(local x, local z)  (D1 + local.set y)
#     0xD5 op y     local y = op(pop2)               (op + local.set y)
#     0xDB c op y   local y = op(pop, c)             (D4 + local.set y)
#     0xD6 x tgt h n          branch when local x != 0   (local.get + br_if)
#     0xD7 x z op tgt h n     branch when op(local x, local z) != 0
#     0xD8 x c op tgt h n     branch when op(local x, c) != 0
#     0xD9 a b      push a, push b                   (two i32.const)
#     0xDA x c op op2         top = op2(top, op(local x, c))  (D0 + op2)
#     loads/stores: op offset    local/global ops: op index
#   h counts from the frame pointer fp (locals first, then operands).
#
# Values: i32 and i64. f32/f64 are refused at validation (docs/wasm.md: no
# FPU on the Cortex-M0/M3 boards, and soft-float would need libgcc in a
# natmod that links no library).
from array import array

I32 = 0x7F
I64 = 0x7E
_ANY = 0         # a value of unknown type, below an unreachable point
PAGE_LOG2_DEFAULT = 16
MAX_FUNCS = 4096
MAX_LOCALS = 1024
MAX_PAGES_BYTES = 1 << 32

# trap codes (the executors return them)
TRAPS = ("", "unreachable", "out of bounds memory access", "integer divide by zero",
         "integer overflow", "undefined element", "uninitialized element",
         "indirect call type mismatch", "call stack exhausted",
         "value stack exhausted")


class WasmError(Exception):
    """A module that does not decode or validate (one line)."""


def _fail(msg):
    raise WasmError(msg)


class Reader:
    def __init__(self, b, pos=0, end=None):
        self.b = b
        self.p = pos
        self.end = len(b) if end is None else end

    def byte(self):
        p = self.p
        if p >= self.end:
            _fail("unexpected end")
        self.p = p + 1
        return self.b[p]

    def u32(self):
        r = 0
        s = 0
        while True:
            c = self.byte()
            if s == 28 and c & 0x70:
                _fail("integer too large")
            r |= (c & 0x7F) << s
            if not c & 0x80:
                return r
            s += 7
            if s > 28:
                _fail("integer representation too long")

    def sleb(self, bits):
        r = 0
        s = 0
        n = 0
        most = (bits + 6) // 7
        while True:
            c = self.byte()
            n += 1
            r |= (c & 0x7F) << s
            s += 7
            if not c & 0x80:
                break
            if n >= most:
                _fail("integer representation too long")
        if s > bits:
            # the unused bits of the last byte must copy its sign bit
            keep = bits - (s - 7)
            top = (c & 0x7F) >> (keep - 1)
            if top != 0 and top != (0x7F >> (keep - 1)):
                _fail("integer too large")
        if c & 0x40:
            r -= 1 << s
        return r & ((1 << bits) - 1)   # two's complement, unsigned

    def bytes_(self, n):
        p = self.p
        if n > self.end - p:
            _fail("unexpected end")
        self.p = p + n
        return self.b[p:p + n]

    def name(self):
        n = self.u32()
        raw = bytes(self.bytes_(n))
        try:
            return raw.decode()
        except Exception:
            _fail("malformed UTF-8 encoding")


class Func:
    __slots__ = ("tidx", "nparams", "nlocals", "nres", "start", "ptypes",
                 "ltypes", "rtypes", "imp", "maxh")


class Module:
    """A validated, translated module. code: array('i') word code of all
    functions; funcs[i]: Func; table: array('i') of function indices (-1:
    empty); glob_init: initial global values; data: [(offset, bytes)]."""

    def __init__(self):
        self.types = []
        self.imports = []      # (module, name) of each imported function
        self.funcs = []
        self.table_min = 0
        self.table_max = None
        self.has_table = False
        self.mem = None        # (min pages, max pages or None, page log2)
        self.globs = []        # (type, mutable, init value)
        self.exports = {}      # name -> (kind, index)
        self.start = None
        self.elems = []        # (offset, [func idx])
        self.data = []         # (offset, bytes)
        self.code = None
        self.canon = []        # canonical type id per type index

    def export_func(self, name):
        e = self.exports.get(name)
        if e is None or e[0] != 0:
            return None
        return e[1]

    def meta(self):
        """array('i'), 6 words per function for the executors: code start
        (-1: an import), nparams, nlocals (params included), nresults, the
        most operand values it holds, its canonical type id."""
        m = array("i")
        for f in self.funcs:
            m.extend(array("i", (-1 if f.imp else f.start, f.nparams, f.nlocals,
                                 f.nres, f.maxh, self.canon[f.tidx])))
        return m


def _valtype(r):
    t = r.byte()
    if t == I32 or t == I64:
        return t
    if t == 0x7D or t == 0x7C:
        _fail("unsupported: floating point (f32/f64)")
    _fail("malformed value type")


def _limits(r, page_bits):
    flags = r.byte()
    if page_bits:
        if flags not in (0, 1, 8, 9):
            _fail("malformed limits flags")
    elif flags not in (0, 1):
        _fail("malformed limits flags")
    mn = r.u32()
    mx = r.u32() if flags & 1 else None
    log2 = PAGE_LOG2_DEFAULT
    if flags & 8:
        log2 = r.u32()
        if log2 != 0 and log2 != 16:
            _fail("invalid custom page size")
    if mx is not None and mx < mn:
        _fail("size minimum must not be greater than maximum")
    return mn, mx, log2


def _const_expr(r, m, want):
    op = r.byte()
    if op == 0x41:
        v = r.sleb(32)
        t = I32
    elif op == 0x42:
        v = r.sleb(64)
        t = I64
    elif op == 0x23:
        gi = r.u32()
        # MVP: only imported globals may appear, and there are none here
        _fail("unknown global %d in constant expression" % gi)
    elif op == 0x43 or op == 0x44:
        _fail("unsupported: floating point (f32/f64)")
    else:
        _fail("constant expression required")
    if r.byte() != 0x0B:
        _fail("constant expression required")
    if t != want:
        _fail("type mismatch in constant expression")
    return v


# numeric opcodes: (pops, push) by opcode
def _numsig(op):
    if op == 0x45:
        return (I32,), I32
    if 0x46 <= op <= 0x4F:
        return (I32, I32), I32
    if op == 0x50:
        return (I64,), I32
    if 0x51 <= op <= 0x5A:
        return (I64, I64), I32
    if 0x67 <= op <= 0x69:
        return (I32,), I32
    if 0x6A <= op <= 0x78:
        return (I32, I32), I32
    if 0x79 <= op <= 0x7B:
        return (I64,), I64
    if 0x7C <= op <= 0x8A:
        return (I64, I64), I64
    if op == 0xA7:
        return (I64,), I32
    if op == 0xAC or op == 0xAD:
        return (I32,), I64
    if op == 0xC0 or op == 0xC1:
        return (I32,), I32
    if 0xC2 <= op <= 0xC4:
        return (I64,), I64
    return None


# i32 ops that never trap, fused with their operands (0xD0 local.get X,
# i32.const C, op; 0xD1 local.get X, local.get Y, op; 0xD4 i32.const C, op)
_FUSE = (0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x6A, 0x6B,
         0x6C, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76)

# loads/stores: opcode -> (value type, access bytes)
_MEMOPS = {0x28: (I32, 4), 0x29: (I64, 8), 0x2C: (I32, 1), 0x2D: (I32, 1),
           0x2E: (I32, 2), 0x2F: (I32, 2), 0x30: (I64, 1), 0x31: (I64, 1),
           0x32: (I64, 2), 0x33: (I64, 2), 0x34: (I64, 4), 0x35: (I64, 4),
           0x36: (I32, 4), 0x37: (I64, 8), 0x3A: (I32, 1), 0x3B: (I32, 2),
           0x3C: (I64, 1), 0x3D: (I64, 2), 0x3E: (I64, 4)}


class _Ctl:
    __slots__ = ("op", "res", "h", "unreach", "fix", "start", "iffix")

    def __init__(self, op, res, h, start):
        self.op = op          # 0x02 block, 0x03 loop, 0x04 if, 0x05 else, 0 function
        self.res = res        # result types (0 or 1)
        self.h = h            # operand stack height at entry
        self.unreach = False
        self.fix = []         # word positions waiting for this label's end pc
        self.start = start    # loop: its first word
        self.iffix = -1       # if: the IF operand to point at else/end


def _translate(m, f, r, end, out):
    """Validate one function body (r at its first instruction) and append
    its word code to out."""
    types = f.ltypes
    nloc = len(types)
    vals = []
    ctls = [_Ctl(0, f.rtypes, 0, len(out))]
    emit = out.append
    nfunc = len(m.funcs)
    mem = m.mem

    def pop(want=_ANY):
        c = ctls[-1]
        if len(vals) == c.h:
            if c.unreach:
                return want
            _fail("type mismatch: value stack underflow")
        t = vals.pop()
        if want != _ANY and t != _ANY and t != want:
            _fail("type mismatch")
        return t if t != _ANY else want

    def label(depth):
        if depth >= len(ctls):
            _fail("unknown label")
        return ctls[-1 - depth]

    def label_types(c):
        return () if c.op == 0x03 else c.res

    def branch(c):
        """Emit (tgt h n) for a branch to c."""
        lt = label_types(c)
        if c.op == 0x03:
            emit(c.start)
        else:
            c.fix.append(len(out))
            emit(0)
        emit(nloc + c.h)
        emit(len(lt))

    def blocktype():
        t = r.byte()
        if t == 0x40:
            return ()
        if t == I32 or t == I64:
            return (t,)
        if t == 0x7D or t == 0x7C:
            _fail("unsupported: floating point (f32/f64)")
        _fail("unsupported: multi-value block type")

    def unreachable():
        c = ctls[-1]
        del vals[c.h:]
        c.unreach = True

    hi = 0
    s1 = s2 = -1     # where the last two emitted instructions start
    bar = 0          # no fusion across this word: a branch target may be here
    mark = 0
    fused = False
    lastop = 0
    while True:
        if len(vals) > hi:
            hi = len(vals)
        n = len(out)
        if n != mark and not fused:
            s2 = s1
            s1 = mark
        fused = False
        mark = n
        if lastop == 0x0B or lastop == 0x02 or lastop == 0x03 or lastop == 0x05:
            bar = n
        lastop = r.b[r.p] if r.p < end else 0
        if r.p >= end:
            _fail("unexpected end of function body")
        op = r.byte()
        if op == 0x0B:   # end
            c = ctls[-1]
            for t in reversed(c.res):
                pop(t)
            if len(vals) != c.h:
                _fail("type mismatch: values remain at end of block")
            if c.op == 0x04 and c.res:
                _fail("type mismatch: if without else must not yield a value")
            ctls.pop()
            here = len(out)
            if c.op == 0:
                for p in c.fix:
                    out[p] = here
                emit(0x0F)
                f.maxh = hi + 1
                if r.p != end:
                    _fail("section size mismatch: code after function end")
                return
            if c.iffix >= 0:
                out[c.iffix] = here
            for p in c.fix:
                out[p] = here
            vals.extend(c.res)
            continue
        if op == 0x02 or op == 0x03:
            bt = blocktype()
            ctls.append(_Ctl(op, bt, len(vals), len(out)))
        elif op == 0x04:
            bt = blocktype()
            pop(I32)
            c = _Ctl(0x04, bt, len(vals), len(out))
            emit(0x04)
            c.iffix = len(out)
            emit(0)
            ctls.append(c)
        elif op == 0x05:
            c = ctls[-1]
            if c.op != 0x04:
                _fail("else without if")
            for t in reversed(c.res):
                pop(t)
            if len(vals) != c.h:
                _fail("type mismatch: values remain at else")
            emit(0x05)
            c.fix.append(len(out))
            emit(0)
            out[c.iffix] = len(out)
            c.iffix = -1
            c.op = 0x05
            c.unreach = False
        elif op == 0x00:
            emit(0x00)
            unreachable()
        elif op == 0x01:
            pass
        elif op == 0x0C or op == 0x0D:
            c = label(r.u32())
            if op == 0x0D:
                pop(I32)
            lt = label_types(c)
            for t in reversed(lt):
                pop(t)
            k = out[s1] if op == 0x0D and s1 >= bar else -1
            ln = len(out) - s1
            if k == 0x20 and ln == 2:
                # the condition straight from a local or an i32 op of
                # locals/constants: one dispatch
                out[s1] = 0xD6
                fused = True
            elif (k == 0xD0 or k == 0xD1) and ln == 4:
                out[s1] = 0xD8 if k == 0xD0 else 0xD7
                fused = True
            else:
                emit(op)
            if fused:
                s2 = -1
            branch(c)
            if op == 0x0C:
                unreachable()
            else:
                vals.extend(lt)
        elif op == 0x0E:
            n = r.u32()
            if n > 0xFFFF:
                _fail("br_table too long")
            depths = [r.u32() for _ in range(n + 1)]
            pop(I32)
            arity = None
            emit(0x0E)
            emit(n)
            for d in depths:
                c = label(d)
                lt = label_types(c)
                if arity is None:
                    arity = lt
                elif len(lt) != len(arity):
                    _fail("type mismatch: br_table arity")
                # every target's types must match the operands
                save = list(vals)
                for t in reversed(lt):
                    pop(t)
                vals[:] = save
                branch(c)
            for t in reversed(arity):
                pop(t)
            unreachable()
        elif op == 0x0F:
            for t in reversed(f.rtypes):
                pop(t)
            emit(0x0F)
            unreachable()
        elif op == 0x10:
            fi = r.u32()
            if fi >= nfunc:
                _fail("unknown function %d" % fi)
            ty = m.types[m.funcs[fi].tidx]
            for t in reversed(ty[0]):
                pop(t)
            vals.extend(ty[1])
            emit(0x10)
            emit(fi)
        elif op == 0x11:
            ti = r.u32()
            if r.byte() != 0:
                _fail("zero byte expected")
            if not m.has_table:
                _fail("unknown table 0")
            if ti >= len(m.types):
                _fail("unknown type %d" % ti)
            pop(I32)
            ty = m.types[ti]
            for t in reversed(ty[0]):
                pop(t)
            vals.extend(ty[1])
            emit(0x11)
            emit(m.canon[ti])
        elif op == 0x1A:
            pop()
            emit(0x1A)
        elif op == 0x1B:
            pop(I32)
            t1 = pop()
            t2 = pop(t1)
            vals.append(t2 if t2 != _ANY else t1)
            emit(0x1B)
        elif 0x20 <= op <= 0x22:
            i = r.u32()
            if i >= nloc:
                _fail("unknown local %d" % i)
            t = types[i]
            if op == 0x20:
                vals.append(t)
            else:
                pop(t)
                if op == 0x22:
                    vals.append(t)
            if op == 0x21 and s1 >= bar:
                # an i32 superinstruction or op whose result goes to a local
                k = out[s1]
                ln = len(out) - s1
                if (k == 0xD0 or k == 0xD1) and ln == 4:
                    out[s1] = 0xD2 if k == 0xD0 else 0xD3
                    emit(i)
                elif k == 0xD4 and ln == 3:
                    out[s1] = 0xDB
                    emit(i)
                elif ln == 1 and k in _FUSE:
                    out[s1] = 0xD5
                    emit(k)
                    emit(i)
                else:
                    k = -1
                if k >= 0:
                    s2 = -1
                    fused = True
                    continue
            emit(op)
            emit(i)
        elif op == 0x23 or op == 0x24:
            i = r.u32()
            if i >= len(m.globs):
                _fail("unknown global %d" % i)
            g = m.globs[i]
            if op == 0x23:
                vals.append(g[0])
            else:
                if not g[1]:
                    _fail("global is immutable")
                pop(g[0])
            emit(op)
            emit(i)
        elif op in _MEMOPS:
            t, size = _MEMOPS[op]
            a = r.u32()
            off = r.u32()
            if mem is None:
                _fail("unknown memory 0")
            if (1 << a) > size:
                _fail("alignment must not be larger than natural")
            if op >= 0x36:
                pop(t)
                pop(I32)
            else:
                pop(I32)
                vals.append(t)
            emit(op)
            emit(off - (1 << 32) if off >= 1 << 31 else off)
        elif op == 0x3F or op == 0x40:
            if r.byte() != 0:
                _fail("zero byte expected")
            if mem is None:
                _fail("unknown memory 0")
            if op == 0x40:
                pop(I32)
            vals.append(I32)
            emit(op)
        elif op == 0x41:
            v = r.sleb(32)
            vals.append(I32)
            if s1 >= bar and len(out) == s1 + 2 and out[s1] == 0x41:
                out[s1] = 0xD9     # two constants: one dispatch
                s2 = -1
                fused = True
            else:
                emit(0x41)
            emit(v - (1 << 32) if v >= 1 << 31 else v)
        elif op == 0x42:
            v = r.sleb(64)
            vals.append(I64)
            emit(0x42)
            lo = v & 0xFFFFFFFF
            up = v >> 32
            emit(lo - (1 << 32) if lo >= 1 << 31 else lo)
            emit(up - (1 << 32) if up >= 1 << 31 else up)
        else:
            sig = _numsig(op)
            if sig is None:
                if op in (0x2A, 0x2B, 0x38, 0x39, 0x43, 0x44) or 0x5B <= op <= 0xBF:
                    _fail("unsupported: floating point (f32/f64)")
                _fail("illegal opcode 0x%02x" % op)
            for t in reversed(sig[0]):
                pop(t)
            vals.append(sig[1])
            if op in _FUSE and s1 >= bar and len(out) == s1 + 2:
                # superinstructions: local.get/i32.const operands folded
                # into the op (one dispatch and one fuel unit instead of 3)
                k = out[s1]
                p = -1
                if k == 0x41 and s2 >= bar and s2 == s1 - 2 and out[s2] == 0x20:
                    x = out[s2 + 1]
                    cst = out[s1 + 1]
                    del out[s2:]
                    out.extend((0xD0, x, cst, op))
                    p = s2
                elif k == 0x41:
                    cst = out[s1 + 1]
                    del out[s1:]
                    out.extend((0xD4, cst, op))
                    p = s1
                elif k == 0x20 and s2 >= bar and s2 == s1 - 2 and out[s2] == 0x20:
                    x = out[s2 + 1]
                    y = out[s1 + 1]
                    del out[s2:]
                    out.extend((0xD1, x, y, op))
                    p = s2
                if p >= 0:
                    s1 = p
                    s2 = -1
                    fused = True
                    continue
            if op in _FUSE and s1 >= bar and len(out) == s1 + 4 and out[s1] == 0xD0:
                # an op of the value below and a D0: one dispatch
                out[s1] = 0xDA
                emit(op)
                s2 = -1
                fused = True
                continue
            emit(op)


def _canon(types):
    out = []
    for i, t in enumerate(types):
        c = i
        for j in range(i):
            if types[j] == t:
                c = out[j]
                break
        out.append(c)
    return out


# section id -> its place in the order the binary format requires
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11,
          11: 12}


def load(data, page_bits=True):
    """Decode, validate and translate a module. Module, or WasmError."""
    b = bytes(data)
    if len(b) < 8 or b[:4] != b"\x00asm":
        _fail("magic header not detected")
    if b[4:8] != b"\x01\x00\x00\x00":
        _fail("unknown binary version")
    m = Module()
    r = Reader(b, 8)
    last = 0
    nfuncdecl = None
    bodies = None
    datacount = None
    out = []         # a list while translating (fusion deletes), then array
    while r.p < r.end:
        sid = r.byte()
        size = r.u32()
        if size > r.end - r.p:
            _fail("section size out of bounds")
        s = Reader(b, r.p, r.p + size)
        r.p += size
        if sid == 0:
            s.name()
            continue
        pos = _ORDER.get(sid)
        if pos is None:
            _fail("malformed section id %d" % sid)
        if pos <= last:
            _fail("unexpected section %d (order or duplicate)" % sid)
        last = pos
        if sid == 1:
            for _ in range(s.u32()):
                if s.byte() != 0x60:
                    _fail("malformed function type")
                ps = tuple(_valtype(s) for _ in range(s.u32()))
                rs = tuple(_valtype(s) for _ in range(s.u32()))
                if len(rs) > 1:
                    _fail("unsupported: multiple results")
                m.types.append((ps, rs))
            m.canon = _canon(m.types)
        elif sid == 2:
            for _ in range(s.u32()):
                mod = s.name()
                nm = s.name()
                kind = s.byte()
                if kind != 0:
                    _fail("unsupported import kind %d (%s.%s): only functions"
                          % (kind, mod, nm))
                ti = s.u32()
                if ti >= len(m.types):
                    _fail("unknown type %d" % ti)
                m.imports.append((mod, nm))
                m.funcs.append(_func(m, ti, True))
        elif sid == 3:
            nfuncdecl = []
            n = s.u32()
            if n + len(m.funcs) > MAX_FUNCS:
                _fail("too many functions")
            for _ in range(n):
                ti = s.u32()
                if ti >= len(m.types):
                    _fail("unknown type %d" % ti)
                nfuncdecl.append(ti)
                m.funcs.append(_func(m, ti, False))
        elif sid == 4:
            n = s.u32()
            if n > 1:
                _fail("multiple tables")
            if n:
                if s.byte() != 0x70:
                    _fail("malformed reference type")
                mn, mx, _ = _limits(s, False)
                if mn > 0x10000:
                    _fail("table size too large")
                m.has_table = True
                m.table_min = mn
                m.table_max = mx
        elif sid == 5:
            n = s.u32()
            if n > 1:
                _fail("multiple memories")
            if n:
                mn, mx, log2 = _limits(s, page_bits)
                lim = MAX_PAGES_BYTES >> log2
                if mn > lim or (mx is not None and mx > lim):
                    _fail("memory size must be at most 4 GiB")
                if mn > 0x7FFFFFFF or (mx is not None and mx > 0x7FFFFFFF):
                    _fail("unsupported: memory of 2**31 pages or more")
                m.mem = (mn, mx, log2)
        elif sid == 6:
            for _ in range(s.u32()):
                t = _valtype(s)
                mut = s.byte()
                if mut > 1:
                    _fail("malformed mutability")
                m.globs.append((t, mut, _const_expr(s, m, t)))
        elif sid == 7:
            for _ in range(s.u32()):
                nm = s.name()
                kind = s.byte()
                idx = s.u32()
                if nm in m.exports:
                    _fail("duplicate export name")
                lim = (len(m.funcs), 1 if m.has_table else 0,
                       1 if m.mem else 0, len(m.globs))
                if kind > 3 or idx >= lim[kind]:
                    _fail("unknown export index")
                m.exports[nm] = (kind, idx)
        elif sid == 8:
            fi = s.u32()
            if fi >= len(m.funcs):
                _fail("unknown function")
            t = m.types[m.funcs[fi].tidx]
            if t[0] or t[1]:
                _fail("start function must be [] -> []")
            m.start = fi
        elif sid == 9:
            for _ in range(s.u32()):
                if s.u32() != 0:
                    _fail("unsupported element segment kind")
                if not m.has_table:
                    _fail("unknown table 0")
                off = _const_expr(s, m, I32)
                fl = []
                for _ in range(s.u32()):
                    fi = s.u32()
                    if fi >= len(m.funcs):
                        _fail("unknown function")
                    fl.append(fi)
                m.elems.append((off, fl))
        elif sid == 12:
            datacount = s.u32()
        elif sid == 10:
            n = s.u32()
            if n != len(nfuncdecl or ()):
                _fail("function and code section have inconsistent lengths")
            nimp = len(m.imports)
            for i in range(n):
                sz = s.u32()
                if sz > s.end - s.p:
                    _fail("unexpected end")
                fend = s.p + sz
                body = Reader(b, s.p, fend)
                s.p = fend
                f = m.funcs[nimp + i]
                lt = list(f.ptypes)
                for _ in range(body.u32()):
                    k = body.u32()
                    t = _valtype(body)
                    if k + len(lt) > MAX_LOCALS:
                        _fail("too many locals")
                    lt.extend([t] * k)
                f.ltypes = tuple(lt)
                f.nlocals = len(lt)
                f.start = len(out)
                _translate(m, f, body, fend, out)
            bodies = n
        elif sid == 11:
            n = s.u32()
            if datacount is not None and n != datacount:
                _fail("data count and data section have inconsistent lengths")
            for _ in range(n):
                if s.u32() != 0:
                    _fail("unsupported data segment kind")
                if m.mem is None:
                    _fail("unknown memory 0")
                off = _const_expr(s, m, I32)
                m.data.append((off, bytes(s.bytes_(s.u32()))))
        if s.p != s.end:
            _fail("section size mismatch")
    if nfuncdecl and bodies is None:
        _fail("function and code section have inconsistent lengths")
    m.code = array("i", out)
    return m


def _func(m, ti, imp):
    f = Func()
    ty = m.types[ti]
    f.tidx = ti
    f.ptypes = ty[0]
    f.rtypes = ty[1]
    f.nparams = len(ty[0])
    f.nres = len(ty[1])
    f.nlocals = len(ty[0])
    f.ltypes = ty[0]
    f.start = -1
    f.maxh = 0
    f.imp = imp
    return f


def set_page_size(data, log2, limits=None):
    """Host tool: rewrite a module's memory limits to the custom-page-sizes
    encoding (flags | 8, then the page size's log2), for toolchains that
    cannot write it yet (wabt 1.0.32, clang 14). `limits`: (min, max) pages
    to write instead of the module's own. Returns new bytes."""
    b = bytes(data)
    r = Reader(b, 8)
    out = bytearray(b[:8])
    while r.p < r.end:
        s0 = r.p
        sid = r.byte()
        size = r.u32()
        body = b[r.p:r.p + size]
        r.p += size
        if sid != 5:
            out += b[s0:r.p]
            continue
        s = Reader(body)
        n = s.u32()
        nb = bytearray(_uleb(n))
        for _ in range(n):
            fl = s.byte() & 1
            mn = s.u32()
            mx = s.u32() if fl else None
            if limits is not None:
                mn, mx = limits
                fl = 1
            nb.append(fl | 8)
            nb += _uleb(mn)
            if mx is not None:
                nb += _uleb(mx)
            nb += _uleb(log2)
        out.append(5)
        out += _uleb(len(nb))
        out += nb
    return bytes(out)


def _uleb(v):
    o = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            o.append(c | 0x80)
        else:
            o.append(c)
            return bytes(o)
