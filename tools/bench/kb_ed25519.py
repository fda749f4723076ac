# Ed25519 seal bench (kernel: runs on MicroPython and CPython).
#
# Rows (min and median of interleaved repeats; ms per seal unless noted):
#   sign, portable        ed25519_portable.sign_expanded of one seal message
#                         (84 bytes): what a board without the natmod pays
#   sign, chosen impl     ed25519_sign.Signer.sign (natmod where deployed,
#                         cryptography on CPython, else the portable code);
#                         on MicroPython the natmod is used when
#                         native/ed25519/ed25519_c.mpy was built
#                         (make -C native/ed25519), else a row says so
#   portable / chosen     how much the natmod (or cryptography) saves
#   signed seal           SignedWitnessLog.seal(): SHA-512 x2, one
#                         fixed-base scalar multiplication, 4 records, links
#   HMAC seal (peer)      WitnessLog.seal() with an HMAC key, same run
#   signed / HMAC seal    the ratio a profile pays to drop the shared secret
#   verify, portable      ed25519_portable.verify (boards do not need it; the
#                         host verifies with cryptography, hb_eseal.py)
#   sha512 portable       one 128-byte block of the portable SHA-512 (us)
from benchutil import ticks_us, ticks_diff
from rvm_mp import kinds, ed25519_portable as E, sha512
from rvm_mp.compat import collect
from rvm_mp.witness import WitnessLog
from rvm_mp.eseal import SignedWitnessLog

_DEV = bytes(range(16))
_KEY = bytes(range(32, 64))
_SEED = bytes(range(100, 132))
_MSG = bytes(range(84))
REPEAT = 7


def _clock():
    return 12345


def _time(fn, n):
    collect()
    t = ticks_us()
    for _ in range(n):
        fn()
    return ticks_diff(ticks_us(), t) / n


def _stats(xs):
    xs = sorted(xs)
    return xs[0], xs[len(xs) // 2]


def _natmod_path():
    import sys
    try:
        import os
        root = os.getcwd()
        os.stat(root + "/native/ed25519/ed25519_c.mpy")
    except (OSError, ImportError):
        return False
    sys.path.insert(0, root + "/native/ed25519")
    return True


def bench(emit):
    import sys
    if sys.implementation.name == "micropython" and not _natmod_path():
        emit("natmod ed25519_c", 0, "-", "not built: make -C native/ed25519")
    from rvm_mp import ed25519_sign
    a, prefix, pub = E.expand(_SEED)
    sg = ed25519_sign.Signer(_SEED)
    elog = SignedWitnessLog(_DEV, boot=1, ring=256, clock=_clock, signer=sg)
    hlog = WitnessLog(_DEV, boot=1, key=_KEY, ring=256, clock=_clock)
    sig = E.sign_expanded(a, prefix, pub, _MSG)
    blk = bytes(100)

    def eseal():
        elog.emit(kinds.IPC_SEND, 1, 2)
        elog.seal()

    def hseal():
        hlog.emit(kinds.IPC_SEND, 1, 2)
        hlog.seal()

    rows = {"port": [], "impl": [], "eseal": [], "hseal": [], "ver": [], "sha": []}
    for _ in range(REPEAT):  # interleaved: every candidate once per round
        rows["port"].append(_time(lambda: E.sign_expanded(a, prefix, pub, _MSG), 2))
        rows["impl"].append(_time(lambda: sg.sign(_MSG), 2))
        rows["eseal"].append(_time(eseal, 2))
        rows["hseal"].append(_time(hseal, 20))
        rows["ver"].append(_time(lambda: E.verify(pub, _MSG, sig), 1))
        rows["sha"].append(_time(lambda: sha512.Sha512(blk).digest(), 5))
    for key, name, unit, div, note in (
            ("port", "ed25519 sign, portable", "ms/op", 1000, "84-byte seal message"),
            ("impl", "ed25519 sign, chosen impl (%s)" % ed25519_sign.IMPL, "ms/op",
             1000, "natmod > cryptography > portable"),
            ("eseal", "signed seal (SignedWitnessLog.seal)", "ms/op", 1000,
             "sign + 4 records + links"),
            ("hseal", "HMAC seal (peer)", "us/op", 1, "same run"),
            ("ver", "ed25519 verify, portable", "ms/op", 1000, "host uses cryptography"),
            ("sha", "sha512 portable, one block", "us/op", 1, "")):
        lo, med = _stats(rows[key])
        emit(name + " (min)", lo / div, unit, note)
        emit(name + " (median)", med / div, unit)
    emit("portable / chosen impl sign", _stats(rows["port"])[0] / _stats(rows["impl"])[0],
         "x", "same repeat")
    e = _stats(rows["eseal"])[0]
    h = _stats(rows["hseal"])[0]
    emit("signed / HMAC seal", e / h, "x", "same repeat")
    # what a seal every N records adds per record, with the profile default N=64
    emit("signed seal amortised over 64 records", e / 64, "us/record", "seal_every 64")
