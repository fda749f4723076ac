"""The Ed25519 natmod (native/ed25519): built with MicroPython's
dynruntime.mk for the unix port (x64), it must sign exactly what the
portable code and RFC 8032 say, be chosen by rvm_mp.ed25519_sign when
present, and its seals must verify with `cryptography` on the host. Without
it, the signer falls back to the portable code with one log line."""
import os
import shutil
import subprocess
import sys

import pytest

from host_tools.rvm import verify as V

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NDIR = os.path.join(ROOT, "native", "ed25519")
MPY = os.path.join(NDIR, "ed25519_c.mpy")
MP = os.path.join(os.path.dirname(sys.executable), "micropython")


@pytest.fixture(scope="module")
def natmod():
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler: the natmod cannot be built here")
    p = subprocess.run(["make", "-C", NDIR, "PY=" + sys.executable],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and os.path.exists(MPY), p.stdout[-2000:] + p.stderr[-2000:]
    return MPY


SCRIPT = r'''
import sys, os
%(natpath)s
sys.path.insert(0, %(root)r)
sys.path.insert(0, %(root)r + "/tests/kernel")
from rvm_mp import ed25519_sign, ed25519_portable as E, sha512, kinds
from rvm_mp.eseal import SignedWitnessLog
import test_eseal as T
print("IMPL", ed25519_sign.IMPL)
for sk, pk, msg, sig in T.RFC8032:
    s = ed25519_sign.Signer(bytes.fromhex(sk))
    assert s.pub == bytes.fromhex(pk), sk
    assert s.sign(bytes.fromhex(msg)) == bytes.fromhex(sig), sk
if ed25519_sign.IMPL == "natmod":
    import ed25519_c
    for n, want in T.SHA512:
        assert ed25519_c.sha512(T._pattern(n)) == bytes.fromhex(want), n
    for i in range(12):
        seed = os.urandom(32)
        msg = os.urandom(i * 11)
        s = ed25519_sign.Signer(seed)
        assert s.pub == E.public_key(seed)
        assert s.sign(msg) == E.sign(seed, msg)
log = SignedWitnessLog(bytes(range(16)), boot=1, ring=256, seal_every=16,
                 signer=bytes(range(100, 132)))
for i in range(50):
    log.emit(kinds.IPC_SEND, 2, 3, i)
    log.service()
log.seal()
with open(%(out)r, "wb") as f:
    log.export(f)
print("OK")
'''


def _run(tmp_path, natpath):
    out = str(tmp_path / "log.rvmw")
    code = SCRIPT % {"root": ROOT, "out": out,
                     "natpath": "sys.path.insert(0, %r)" % NDIR if natpath else ""}
    p = subprocess.run([MP, "-X", "heapsize=512K", "-c", code], capture_output=True,
                       text=True, timeout=300, cwd=str(tmp_path))
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr
    return p.stdout, out


def test_natmod_signs_rfc_vectors_and_matches_portable(natmod, tmp_path):
    out, log = _run(tmp_path, True)
    assert "IMPL natmod" in out
    assert "no natmod" not in out
    from rvm_mp.ed25519_sign import Signer
    rep = V.verify_bytes(open(log, "rb").read(), pubkey=Signer(bytes(range(100, 132))).pub)
    assert rep["verdict"] == "verified" and rep["seals"] >= 3, rep


def test_without_natmod_portable_with_one_log_line(tmp_path):
    out, log = _run(tmp_path, False)
    assert "IMPL portable" in out
    assert out.count("ed25519: no natmod") == 1
    from rvm_mp.ed25519_sign import Signer
    rep = V.verify_bytes(open(log, "rb").read(), pubkey=Signer(bytes(range(100, 132))).pub)
    assert rep["verdict"] == "verified", rep
