# The verifier's verdict is part of the signature: the kernel refuses a
# bundle without one, with an older policy than the board requires, with a
# tampered verdict, or (source bundles) whose code is not the verified
# source; unverified code loads only where the board allows it and is
# recorded (BUNDLE_LOAD d = 0).
import hashlib

import kt
import agentkit as K
from rvm_mp import bundle, errors, kinds

HEAP = "512K"

SRC = b"async def main(rvm):\n    await rvm.yield_()\n"


def _hex(b):
    return "".join("%02x" % x for x in b)


def _verified(src=SRC, policy=1):
    # what host_tools/rvm/agentcheck.verify returns for accepted source
    return {"policy": policy, "src": _hex(hashlib.sha256(src).digest())}


def _load(rt, data, name="a"):
    return rt.load(data, {}, 0, 0, name)


def _reject_code(log):
    r = K.recs(log, kinds.BUNDLE_REJECT)
    return r[-1][8] if r else None


def test_verified_bundle_loads_and_records_policy():
    pf, k, rt = K.make()
    try:
        pid = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY,
                                    verdict=_verified()))
        assert not errors.is_err(pid), pid
        ld = K.recs(rt.log, kinds.BUNDLE_LOAD)
        assert ld[-1][10] == 1      # d: the verdict's policy
    finally:
        K.done(rt)


def test_bundle_without_verdict_refused_and_witnessed():
    pf, k, rt = K.make()
    try:
        r = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY))
        assert r is errors.EPROOF
        assert _reject_code(rt.log) == errors.EPROOF.code
        assert not K.recs(rt.log, kinds.PART_CREATE)
    finally:
        K.done(rt)


def test_older_policy_than_the_board_requires_refused():
    prof = K.profile(verifier={"policy": 2})
    pf, k, rt = K.make(prof)
    try:
        r = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY,
                                  verdict=_verified(policy=1)))
        assert r is errors.ESTALE
        assert _reject_code(rt.log) == errors.ESTALE.code
        ok = _load(rt, bundle.pack(SRC, {"name": "b"}, kt.KEY,
                                   verdict=_verified(policy=2)), "b")
        assert not errors.is_err(ok)
    finally:
        K.done(rt)


def test_malformed_verdicts_refused():
    pf, k, rt = K.make()
    try:
        for v in ({}, {"policy": 1}, {"policy": "1", "src": "x"},
                  {"policy": 1 << 40, "src": _verified()["src"]},
                  {"policy": 0, "src": _verified()["src"]},
                  {"src": _verified()["src"]}):
            r = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY, verdict=v))
            assert r is errors.EPROOF, v
        r = _load(rt, bundle.pack(SRC, {"name": "a", "verdict": "ok"},
                                  kt.KEY))
        assert r is errors.EPROOF
    finally:
        K.done(rt)


def test_source_must_be_the_verified_source():
    pf, k, rt = K.make()
    try:
        other = _verified(b"async def main(rvm):\n    pass\n")
        r = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY, verdict=other))
        assert r is errors.EPROOF
    finally:
        K.done(rt)


def test_tampered_verdict_refused():
    pf, k, rt = K.make()
    try:
        good = bundle.pack(SRC, {"name": "a"}, kt.KEY, verdict=_verified())
        i = good.find(b'"policy": 1')
        assert i > 0
        for forged in (good[:i + 10] + b"9" + good[i + 11:],
                       good.replace(b'"policy": 1', b'"unverified": 1')
                       [:len(good)]):
            r = _load(rt, forged)
            assert errors.is_err(r)
        # a policy raised in place keeps the length: the signature fails
        assert _load(rt, good[:i + 10] + b"9" + good[i + 11:]) is errors.ESIG
    finally:
        K.done(rt)


def test_unverified_recorded_or_refused_per_board():
    pf, k, rt = K.make()
    try:
        pid = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY,
                                    verdict=bundle.unverified(SRC)))
        assert not errors.is_err(pid)
        assert K.recs(rt.log, kinds.BUNDLE_LOAD)[-1][10] == 0  # unverified
    finally:
        K.done(rt)
    pf, k, rt = K.make(K.profile(verifier={"unverified": False}))
    try:
        r = _load(rt, bundle.pack(SRC, {"name": "a"}, kt.KEY,
                                  verdict=bundle.unverified(SRC)))
        assert r is errors.ERIGHTS
        assert _reject_code(rt.log) == errors.ERIGHTS.code
    finally:
        K.done(rt)


def test_mpy_verdict_names_the_source_not_the_code():
    p = bundle.parse(bundle.pack(b"M\x06\x00\x1f" + bytes(20), {"name": "m"},
                                 kt.KEY, verdict=_verified()))
    assert bundle.check_verdict(p) is None
    p = bundle.parse(bundle.pack(b"M\x06\x00\x1f" + bytes(20), {"name": "m"},
                                 kt.KEY))
    assert bundle.check_verdict(p) is errors.EPROOF


def test_f2_rebuild_checks_the_fs_copy_again():
    from rvm_mp import faults as F
    import os
    pf, k, rt = K.make(policy=F.FaultPolicy(max_restarts=0, max_rebuilds=2,
                                            restart_delay_ms=1))
    try:
        src = b"async def main(rvm):\n    await rvm.yield_()\n" \
              b"    raise ValueError('x')\n"
        os.mkdir(rt.fs + "/agents")
        path = rt.fs + "/agents/x.rvmb"
        with open(path, "wb") as f:
            f.write(bundle.pack(src, {"name": "x"}, kt.KEY,
                                verdict=_verified(src)))
        pid = rt.spawn("x")
        assert not errors.is_err(pid), pid
        # the board's copy is replaced by code without a verdict
        with open(path, "wb") as f:
            f.write(bundle.pack(src, {"name": "x"}, kt.KEY))
        rt.run(max_steps=50)
        esc = [r for r in K.recs(rt.log, kinds.FAULT_ESCALATE)
               if r[6] == pid and r[8] == F.STOP]
        assert esc and esc[-1][9] == errors.EPROOF.code, esc
        assert rt.sched.task(pid) is None or rt.sched.task(pid).coro is None
    finally:
        K.done(rt)
