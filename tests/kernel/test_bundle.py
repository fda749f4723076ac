# Agent bundles: pack/verify round trip, and every tampering refused before
# any code runs.
import kt
from rvm_mp import bundle, errors

HEAP = "256K"

SRC = b"RAN = []\nasync def main(rvm):\n    RAN.append(1)\n"
MAN = {"name": "demo", "entry": "main"}


def test_round_trip_and_layout():
    b = bundle.pack(SRC, MAN, kt.KEY)
    assert b[0:4] == b"RVMB" and b[4] == 1 and b[5] == bundle.ALG_HMAC
    assert b[6] == bundle.CODE_SOURCE
    man, code = bundle.check(b, kt.KEY)
    assert code == SRC and man["name"] == "demo" and man["type"] == "py"
    assert len(man["sha256"]) == 64
    man2, code2 = bundle.load(b, kt.KEY)
    assert man2 == man and code2 == SRC
    p = bundle.parse(b)
    assert p.sig_off + 32 == len(b) and bytes(p.code()) == SRC


def test_bad_signature_refused():
    b = bundle.pack(SRC, MAN, kt.KEY)
    wrong = bytes(32)
    assert bundle.check(b, wrong) is errors.ESIG
    assert bundle.check(b, None) is errors.ESIG
    e = kt.raises(ValueError, bundle.load, b, wrong)
    assert "signature" in str(e)


def test_every_byte_flip_refused():
    b = bundle.pack(SRC, MAN, kt.KEY)
    for i in range(len(b)):
        t = bytearray(b)
        t[i] ^= 0x01
        r = bundle.check(bytes(t), kt.KEY)
        assert errors.is_err(r), i


def test_truncated_and_extended_refused():
    b = bundle.pack(SRC, MAN, kt.KEY)
    for n in (0, 3, 15, 16, len(b) - 1):
        assert bundle.check(b[0:n], kt.KEY) is errors.EINVAL
    assert bundle.check(b + b"\x00", kt.KEY) is errors.EINVAL


def test_code_swapped_with_valid_signature_of_other_bundle():
    a = bundle.pack(SRC, MAN, kt.KEY)
    other = bundle.pack(b"async def main(rvm):\n    pass\n", {"name": "x"},
                        kt.KEY)
    # splice a's header+manifest with other's signature: refused
    spliced = a[:-32] + other[-32:]
    assert bundle.check(spliced, kt.KEY) is errors.ESIG


def test_manifest_digest_must_match_code():
    # a correctly signed bundle whose manifest digest lies (a signer bug)
    b = bytearray(bundle.pack(SRC, MAN, kt.KEY))
    p = bundle.parse(bytes(b))
    i = bytes(b).find(b'"sha256": "') + 11
    b[i] = ord("0") if b[i] != ord("0") else ord("1")
    body = bytes(b[0:p.sig_off])
    sig = bundle._hmac(kt.KEY, bundle.SIG_DOMAIN, body)
    forged = body + sig
    assert bundle.check(forged, kt.KEY) is errors.EPROOF


def test_pack_refuses_bad_input():
    kt.raises(ValueError, bundle.pack, SRC, {}, kt.KEY)
    kt.raises(ValueError, bundle.pack, SRC, MAN, b"short")


def test_mpy_detected():
    mpy = b"M\x06\x00\x1f" + bytes(20)
    b = bundle.pack(mpy, MAN, kt.KEY)
    assert b[6] == bundle.CODE_MPY
    man, code = bundle.check(b, kt.KEY)
    assert man["type"] == "mpy" and code == mpy


def test_ed25519_where_available():
    from rvm_mp import ed25519
    if not ed25519.available():
        # MicroPython: no SHA-512; Ed25519 bundles are refused clearly
        fake = bytearray(bundle.pack(SRC, MAN, kt.KEY))
        fake[5] = bundle.ALG_ED25519
        fake = bytes(fake) + bytes(32)  # 64-byte signature slot
        assert bundle.check(fake, kt.KEY) is errors.ENOTSUP
        return
    seed = bytes(range(32))
    b = bundle.pack(SRC, MAN, seed, alg=bundle.ALG_ED25519)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import \
        Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    man, code = bundle.load(b, None, ed_keys=[pk])
    assert code == SRC
    kt.raises(ValueError, bundle.load, b, None, [bytes(32)])
