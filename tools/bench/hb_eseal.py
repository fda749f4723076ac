# Host bench for Ed25519 seals (CPython): what public-key verification costs
# the auditor, against HMAC seals verified in the same run.
#
# Rows (min and median of interleaved repeats):
#   cryptography verify, one seal   Ed25519PublicKey.verify of one seal message
#   HMAC seal check (peer)          verify.seal_mac of one seal, same run
#   verify_bytes, Ed25519 seals     records/s over a 200,000-record log sealed
#                                   every 1,000 records (4 records per seal)
#   verify_bytes, HMAC seals        the same workload sealed with HMAC
#   ratios                          Ed25519 / HMAC per seal and per log
#   consistency (--since)           records/s of consistency() over the same
#                                   log against its first half (both verified)
import io
import time

from rvm_mp import eseal, kinds
from rvm_mp.ed25519_sign import Signer
from rvm_mp.witness import WitnessLog
from rvm_mp.eseal import SignedWitnessLog
from host_tools.rvm import consistency as C, verify as V

N = 200000
KEY = bytes(range(32, 64))
SEED = bytes(range(100, 132))
REPEAT = 5


def _log(**kw):
    cls = SignedWitnessLog if "signer" in kw else WitnessLog
    log = cls(bytes(range(16)), boot=1, ring=N + 8, seal_every=1000,
              clock=lambda: 777, **kw)
    k = kinds.IPC_SEND
    i = 0
    half = None
    while log.next_seq < N - 4:
        log.emit(k, 1 + i % 7, 2, i, i >> 3, 5, 9)
        i += 1
        if i % 500 == 0:
            log.service()
        if half is None and log.next_seq >= N // 2:
            log.seal()
            b = io.BytesIO()
            log.export(b)
            half = b.getvalue()
    log.seal()
    b = io.BytesIO()
    log.export(b)
    return b.getvalue(), half


def _t(fn, n=1):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def _mm(xs):
    xs = sorted(xs)
    return xs[0], xs[len(xs) // 2]


def bench(emit):
    sg = Signer(SEED)
    edata, ehalf = _log(signer=sg)
    hdata, _ = _log(key=KEY)
    msg = eseal.message(bytes(16), bytes(32), bytes(16))
    sig = sg.sign(msg)
    assert V.verify_bytes(edata, pubkey=sg.pub)["verdict"] == "verified"
    assert V.verify_bytes(hdata, key=KEY)["verdict"] == "verified"
    r = {"cv": [], "hm": [], "ve": [], "vh": [], "cons": []}
    for _ in range(REPEAT):
        r["cv"].append(_t(lambda: V.ed_verify(sg.pub, msg, sig), 200))
        r["hm"].append(_t(lambda: V.seal_mac(KEY, bytes(32), bytes(16)), 200))
        r["ve"].append(_t(lambda: V.verify_bytes(edata, pubkey=sg.pub)))
        r["vh"].append(_t(lambda: V.verify_bytes(hdata, key=KEY)))
        r["cons"].append(_t(lambda: C.consistency(ehalf, edata, pubkey=sg.pub)))
    cv, cvm = _mm(r["cv"])
    hm, hmm = _mm(r["hm"])
    emit("cryptography Ed25519 verify, one seal (min)", cv * 1e6, "us/op", "84-byte message")
    emit("cryptography Ed25519 verify, one seal (median)", cvm * 1e6, "us/op")
    emit("HMAC seal check, peer (min)", hm * 1e6, "us/op", "same run")
    emit("HMAC seal check, peer (median)", hmm * 1e6, "us/op")
    emit("Ed25519 / HMAC per seal", cv / hm, "x", "same repeat")
    ve, vem = _mm(r["ve"])
    vh, vhm = _mm(r["vh"])
    nrec = (len(edata) - 64) // 64
    emit("verify_bytes, Ed25519 seals every 1000 (min)", nrec / ve, "records/s",
         "%d records" % nrec)
    emit("verify_bytes, Ed25519 seals (median)", nrec / vem, "records/s")
    emit("verify_bytes, HMAC seals every 1000 (min)", nrec / vh, "records/s", "peer")
    emit("verify_bytes, HMAC seals (median)", nrec / vhm, "records/s")
    emit("Ed25519 / HMAC log verify time", ve / vh, "x", "same repeat")
    c, cm = _mm(r["cons"])
    emit("consistency NEW vs OLD half (min)", (nrec + len(ehalf) // 64) / c, "records/s",
         "verifies both, compares the head")
    emit("consistency (median)", (nrec + len(ehalf) // 64) / cm, "records/s")
