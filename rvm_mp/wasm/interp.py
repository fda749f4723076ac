# A WebAssembly instance and its resumable executor: run(fuel) runs the
# word code of module.py until the fuel is spent, a host call, a trap or
# the end. The C natmod rvmn_wasm runs the same state when it is loaded;
# portable.py run_py is the portable executor (same results, slower).
#
#   state (all plain buffers, so the C code and a checkpoint can use them)
#     stack  value stack: locals of each frame, then its operands
#            (list of unsigned ints here, array('Q') for the natmod)
#     frames 3 ints per call frame: return pc, fp, function index
#     regs   R_PC R_SP R_FP R_NF R_MEMB R_PAGES R_MAXP R_LOG2 R_ARG R_FUNC
#            R_CAP R_NSTACK R_NFRAMES R_TABLEN (int32 each, see below)
#     mem    bytearray of R_CAP bytes (the profile's cap), R_MEMB of them
#            accessible (memory.size pages times page size, at most R_CAP)
#     glob   global values
# run(fuel) -> status: DONE (results at stack[0:nres]), FUEL, HOST
# (regs[R_ARG] = import index, its args on the stack top), TRAP
# (regs[R_ARG] = trap code, module.TRAPS). Fuel: one unit per word-code op.
from array import array
from .module import TRAPS

DONE = 0
FUEL = 1
HOST = 2
TRAP = 3

R_PC = 0
R_SP = 1
R_FP = 2
R_NF = 3
R_MEMB = 4
R_PAGES = 5
R_MAXP = 6
R_LOG2 = 7
R_ARG = 8
R_FUNC = 9
R_CAP = 10
R_NSTACK = 11
R_NFRAMES = 12
R_TABLEN = 13
R_LEFT = 14       # fuel left when run() returned
NREGS = 15

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

_native = None
_tried = False
_portable = None


def native():
    """The rvmn_wasm natmod, or None (impls.py logs why)."""
    global _native, _tried
    if not _tried:
        _tried = True
        from .. import impls
        _native = impls.natmod("rvmn_wasm")
        impls.chose("wasm", "natmod" if _native is not None else "portable")
    return _native


def portable_run():
    """The portable executor's run function (wasm/portable.py), imported on
    first use: exec_wasm's trial instance makes that happen in kernel
    context, before an agent's instance (under its import gate) needs it."""
    global _portable
    if _portable is None:
        from .portable import run_py
        _portable = run_py
    return _portable


class LinkError(Exception):
    pass


def mem_bytes(m, mem_cap):
    """Bytes of linear memory an instance of m holds under the profile's
    cap (its declared maximum when smaller; 0 without a memory)."""
    if m.mem is None:
        return 0
    mn, mx, log2 = m.mem
    if mx is not None and (mx << log2) < mem_cap:
        return mx << log2
    return mem_cap


class Instance:
    """One instantiated module. impl: "natmod" | "portable" | None (best).
    mem: a writable buffer of mem_bytes() bytes to run in (a kernel region,
    wasm/memory.py) instead of a new bytearray; init False: its bytes are
    restored ones, the data segments are not applied."""

    def __init__(self, m, mem_cap=65536, nstack=512, nframes=64, impl=None,
                 max_table=1024, mem=None, init=True):
        self.m = m
        if m.table_min > max_table:
            raise LinkError("table of %d entries over this profile's %d"
                            % (m.table_min, max_table))
        nat = native() if impl != "portable" else None
        if impl == "natmod" and nat is None:
            raise LinkError("natmod rvmn_wasm not loaded")
        self.nat = nat
        self.impl = "natmod" if nat is not None else "portable"
        self.prun = portable_run() if nat is None else None
        self.meta = m.meta()
        self.code = m.code
        self.regs = array("i", [0] * NREGS)
        rg = self.regs
        if nat is not None:
            self.stack = array("Q", bytes(8 * nstack))
            self.glob = array("Q", [g[2] for g in m.globs])
        else:
            self.stack = [0] * nstack
            self.glob = [g[2] for g in m.globs]
        self.frames = array("i", [0] * (3 * nframes))
        rg[R_NSTACK] = nstack
        rg[R_NFRAMES] = nframes
        rg[R_MAXP] = -1
        if m.mem is not None:
            mn, mx, log2 = m.mem
            want = mn << log2
            cap = mem_bytes(m, mem_cap)   # the profile's cap (docs/wasm.md)
            if mem is not None and len(mem) != cap:
                raise LinkError("linear memory of %d bytes, not %d" % (len(mem), cap))
            self.mem = mem if mem is not None else bytearray(cap)
            rg[R_CAP] = cap
            rg[R_MEMB] = want if want < cap else cap
            rg[R_PAGES] = mn
            rg[R_MAXP] = -1 if mx is None else mx
            rg[R_LOG2] = log2
        else:
            self.mem = bytearray(0)
        tab = array("i", [-1] * m.table_min)
        for off, fl in m.elems:
            if off + len(fl) > len(tab):
                raise LinkError("out of bounds table access (element segment)")
            for i, fi in enumerate(fl):
                tab[off + i] = fi
        self.table = tab
        rg[R_TABLEN] = len(tab)
        for off, bs in m.data:
            if off + len(bs) > rg[R_MEMB]:
                raise LinkError("out of bounds memory access (data segment)")
            if init:
                self.mem[off:off + len(bs)] = bs
        self.fuel_used = 0
        self.func = None

    def mem_size(self):
        """Bytes the module may touch now."""
        return self.regs[R_MEMB]

    def call(self, fidx, args=()):
        """Prepare a call of function fidx (no run yet)."""
        rg = self.regs
        md = self.meta
        f = fidx * 6
        np = md[f + 1]
        if len(args) != np:
            raise ValueError("wrong number of arguments")
        if md[f] < 0:
            raise ValueError("cannot call an import")
        st = self.stack
        nl = md[f + 2]
        if nl + md[f + 4] > rg[R_NSTACK]:
            raise ValueError("value stack too small")
        for i in range(nl):
            st[i] = args[i] if i < np else 0
        rg[R_FP] = 0
        rg[R_SP] = nl
        rg[R_NF] = 1
        fr = self.frames
        fr[0] = -1
        fr[1] = 0
        fr[2] = fidx
        rg[R_FUNC] = fidx
        rg[R_PC] = md[f]
        self.func = fidx

    def run(self, fuel):
        if self.nat is not None:
            st = self.nat.run(self.code, self.meta, self.table, self.mem,
                              self.glob, self.stack, self.frames, self.regs, fuel)
        else:
            st = self.prun(self, fuel)
        self.fuel_used += fuel - self.regs[R_LEFT]
        return st

    def results(self):
        md = self.meta
        n = md[self.func * 6 + 3]
        return [self.stack[i] for i in range(n)]

    def host_args(self):
        """The pending host call's (import index, [args]); pops the args."""
        rg = self.regs
        fi = rg[R_ARG]
        np = self.meta[fi * 6 + 1]
        sp = rg[R_SP] - np
        args = [self.stack[sp + i] for i in range(np)]
        rg[R_SP] = sp
        return fi, args

    def host_return(self, vals):
        rg = self.regs
        sp = rg[R_SP]
        for v in vals:
            self.stack[sp] = v
            sp += 1
        rg[R_SP] = sp

    def trap_name(self):
        c = self.regs[R_ARG]
        return TRAPS[c] if 0 <= c < len(TRAPS) else "trap %d" % c
