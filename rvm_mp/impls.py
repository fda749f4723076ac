# Which implementation each hot path runs, chosen once at import
# (DESIGN.md section 4): a C natmod from native/ (an .mpy on sys.path),
# else a viper/native-emitter module, else the portable Python body.
#
#   hot path   natmod      viper / native          portable
#   link       rvmn_link   sha256_viper            hashlib (witness.py)
#   verify     rvmn_link   -                       witness.verify_window
#   p1         rvmn_p1     gate_native (native)    ProofGate.p1
#   pick       rvmn_pick   switch_native (native)  Scheduler.pick_py
#   mincut     rvmn_cut    mincut_viper            mincut.ma_step_py
#   crc        binascii.crc32 (firmware C) -> rvmn_crc -> frame.crc32_py
#
# A natmod that is missing or refused (wrong arch, wrong mpy version) is
# skipped with one log line and the next implementation runs. CPython never
# tries them (an .mpy is MicroPython's format). which() is what `rvm stat`
# shows.
import sys

MP = sys.implementation.name == "micropython"
_CHOSEN = {}


_TRIED = {}


def natmod(name):
    """The natmod `name`, or None (one log line when it cannot be loaded)."""
    if not MP:
        return None
    if name in _TRIED:
        return _TRIED[name]
    try:
        m = __import__(name)
    except (ImportError, ValueError, OSError, MemoryError) as e:
        # ImportError: not on the board; ValueError: incompatible .mpy
        # (arch or mpy sub-version); MemoryError: no room for its code
        print("rvm-mp: natmod %s not loaded (%s); next implementation" % (name, e))
        m = None
    _TRIED[name] = m
    # the loader's buffers (or the refusal) are garbage now: collect them
    # before the kernel's long-lived objects are allocated around them
    import gc
    gc.collect()
    return m


def link_impl():
    """witness.py's link path: (natmod, viper Sha256Into, viper copy_into),
    the unused ones None. Here, not in witness.py, to keep that module's
    compile small."""
    nl = natmod("rvmn_link")
    if nl is not None:
        chose("link", "natmod")
        return nl, None, None
    try:
        from .sha256_viper import Sha256Into, copy_into
    except (ImportError, SyntaxError):  # no native emitter on this port
        chose("link", "portable")
        return None, None, None
    chose("link", "viper")
    return None, Sha256Into, copy_into




def chose(path, impl):
    """Record the implementation of a hot path: a name, or a function that
    returns it (for paths a profile can switch later, like the pick)."""
    _CHOSEN[path] = impl


def which():
    """{hot path: "natmod" | "viper" | "native" | "binascii" | "portable"} for the
    hot paths whose modules are loaded."""
    out = {}
    for k, v in _CHOSEN.items():
        out[k] = v if isinstance(v, str) else v()
    return out
