# Ed25519 witness seals on the board side: the portable SHA-512 and Ed25519
# code against FIPS 180-4 / RFC 8032 vectors, signed seal records, key
# rotation, the device key made at first boot, and the lazy import that
# keeps HMAC-only boards free of the curve code. Both runtimes.
import sys

import kt
from rvm_mp import kinds, sha512, ed25519_portable as E
from rvm_mp.witness import WitnessLog, genesis_link, chain_link
from rvm_mp.eseal import SignedWitnessLog

HEAP = "512K"


def _h(s):
    return bytes.fromhex(s)


def _hex(b):
    return "".join("%02x" % x for x in b)


def _pattern(n):
    return bytes([(7 * i + 3) & 255 for i in range(n)])


# SHA-512 of _pattern(n): lengths around the one/two-block padding
# boundaries (111/112, 127/128/129, 239/240)
SHA512 = (
    (0, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    (1, "e45bf5817ddf94aa2f7a407071f0eedc6beb98f768b4cd33d1176d44d1563a45a5d7212290eb7670c6786b13591aedac86478993895e8b24e612014abaa6ba04"),
    (111, "68cffa6d0d76f309c9ce0d35280939f8e25990c43b7b086ccdf709be35b07d4ddba599541ff2b1c19d34ea49aeafb9659adb7ac3c0b078bb30a22d57fc6687ef"),
    (112, "d0865c524d1dddf7c23b799c413f5adcd7caefd3f66a9b49750ec81066012c25a8bcf94ddea6dc525691673097ca40e0101e897fc97218cfdb0704084e2bef4b"),
    (127, "e0b6a20f1c0c88970a9340152cd5a1c1ecf3d3b8de55102741879438079473540133b812706e5dbec322c8c9523b6fc8c6d16ee626e87ad5fe3d2916afedc369"),
    (128, "99b16f17aa0b969a5b8f08f367719d516e330ccd2660b6f0688ec031dbc783de50a1cd185a2568dba75070a2403d17d4741d163578515dfd2ff756ddfe4d47b1"),
    (129, "a1556e29185778aa5991e34b8884c840d589f0fbb4b8ed590e51e9ac4eb03a008125000db2671f8fe7f485b59a77b518670078ecb41a54b4cd02a7f1d2ca4c6d"),
    (239, "18ee83f30261c3c645d52aee6a209105b25bba39d33845ef48984cc238e4f21661fb7bd7dd4336f71c40fe87d95e5115d6c7be52e0d3e7e7877d24500b5b58df"),
    (240, "9d60ee60d29ec4fa0b9690c04c1c29413bbe3ed345639182d9d53dcc05926b77b04f4fec1562fb85182954c96b7cbb5d5e4410251ff4f352d09a2da90419fb13"),
    (300, "46e56ad30db9ef50f8b6762ba55839737f3fba34ab47863c9daff7b3f58f97fe3465a52dd364560db47f802909ced49093322621ea0aebf8e0696b85ca8f81f0"),
)

# RFC 8032 section 7.1, TEST 1, 2, 3 (secret key, public key, message, signature)
RFC8032 = (
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
)

SEED = bytes(range(100, 132))
SEED2 = bytes(range(200, 232))


def _clock():
    return 4242


def test_sha512_portable_vectors():
    for n, want in SHA512:
        assert _hex(sha512.Sha512(_pattern(n)).digest()) == want, n
        assert _hex(sha512.sha512(_pattern(n))) == want, n
    # split updates at awkward offsets give the same digest
    m = _pattern(300)
    h = sha512.Sha512()
    for a, b in ((0, 1), (1, 111), (111, 129), (129, 300)):
        h.update(m[a:b])
    assert _hex(h.digest()) == SHA512[-1][1]
    assert _hex(sha512.Sha512(b"abc").digest()).startswith("ddaf35a193617aba")


def test_rfc8032_vectors_sign_and_verify():
    for sk, pk, msg, sig in RFC8032:
        assert _hex(E.public_key(_h(sk))) == pk
        s = E.sign(_h(sk), _h(msg))
        assert _hex(s) == sig
        assert E.verify(_h(pk), _h(msg), s)
        assert not E.verify(_h(pk), _h(msg) + b"x", s)
        bad = bytearray(s)
        bad[40] ^= 1
        assert not E.verify(_h(pk), _h(msg), bytes(bad))


def test_verify_refuses_malformed_inputs():
    sk, pk, msg, sig = RFC8032[0]
    s = _h(sig)
    assert not E.verify(_h(pk)[:31], b"", s)
    assert not E.verify(_h(pk), b"", s[:63])
    # S >= L is refused (malleability)
    S = int.from_bytes(s[32:], "little") + E.L
    assert not E.verify(_h(pk), b"", s[:32] + S.to_bytes(32, "little"))
    # y >= p is not a valid encoding
    assert E.decode((E.P + 1).to_bytes(32, "little")) is None


def test_signer_matches_rfc_and_picks_one_implementation():
    from rvm_mp import ed25519_sign
    assert ed25519_sign.IMPL in ("natmod", "cryptography", "portable")
    if kt.IS_MP:
        assert ed25519_sign.IMPL in ("natmod", "portable")
    for sk, pk, msg, sig in RFC8032:
        s = ed25519_sign.Signer(_h(sk))
        assert _hex(s.pub) == pk
        assert _hex(s.sign(_h(msg))) == sig
    kt.raises(ValueError, ed25519_sign.Signer, bytes(31))


def _signed_log(n=30, seal_every=10, ring=128):
    log = SignedWitnessLog(kt.DEVICE_ID, boot=3, ring=ring, seal_every=seal_every,
                     clock=_clock, signer=SEED)
    for i in range(n):
        log.emit(kinds.IPC_SEND, 2, 3, i, i * 7)
        log.service()
    return log


def _check_seal(log, seq, pub):
    from rvm_mp import eseal
    recs = [log.record(seq + p) for p in range(4)]
    r0 = recs[0]
    assert r0[10] == kinds.SEAL_ED25519
    assert r0[12] | (r0[13] << 8) == 0
    kid_ok = r0[14] | (r0[15] << 8) == eseal.key_id(pub)
    for p in (1, 2, 3):
        r = recs[p]
        assert r[10] == kinds.SEAL_PART
        assert r[14] | (r[15] << 8) == p
        assert r[4:10] == r0[4:10] and r[11] == r0[11]
    prev = log.anchor_for(seq)
    msg = eseal.message(log.device_id, prev, r0[0:16])
    ok = E.verify(pub, msg, eseal.unpack_sig(recs))
    assert ok == kid_ok
    return ok


def test_signed_seals_in_the_chain():
    log = _signed_log()
    pub = E.public_key(SEED)
    seals = [r for r in log.query(kind=kinds.SEAL_ED25519)]
    assert len(seals) >= 2
    for r in seals:
        seq = r[0] | (r[1] << 8) | (r[2] << 16) | (r[3] << 24)
        assert _check_seal(log, seq, pub)
    # the chain holds: every link recomputes
    prev = genesis_link(kt.DEVICE_ID)
    for rec in log.iter_range(0):
        assert chain_link(prev, rec) == rec[32:64]
        prev = rec[32:64]
    # an explicit seal authenticates through its last part
    s = log.seal()
    assert log.last_seal_seq == s + 3 and log.next_seq == s + 4
    assert _check_seal(log, s, pub)
    # a seal checked with another key fails
    assert not _check_seal(log, s, E.public_key(SEED2))


def test_key_rotation_records_and_new_key_signs_after():
    from rvm_mp import eseal
    log = _signed_log(12, 0)
    j = eseal.rotate(log, SEED2, actor=1)
    r = log.record(j)
    assert r[10] == kinds.KEY_ROTATE and r[12] == 1
    new_pub = E.public_key(SEED2)
    assert bytes(r[16:32]) + bytes(log.record(j + 1)[16:32]) == new_pub
    assert r[14] | (r[15] << 8) == eseal.key_id(new_pub)
    # the rotation is sealed by the OLD key right after it
    assert _check_seal(log, j + 2, E.public_key(SEED))
    log.emit(kinds.IPC_SEND, 2, 3)
    s = log.seal()
    assert _check_seal(log, s, new_pub)
    assert not _check_seal(log, s, E.public_key(SEED))


def test_device_key_generated_once_at_first_boot():
    from rvm_mp.hal import Platform
    from rvm_mp import eseal
    d = kt.tmpdir("eseal")
    try:
        pf = Platform(d, device_id=kt.DEVICE_ID)
        assert eseal.load_seed(pf) == (None, False)
        sg, new = eseal.load_seed(pf, generate=True)
        assert new
        seed = pf.read_file(eseal.SEED_FILE)
        assert len(seed) == 32
        assert pf.read_file(eseal.PUB_FILE) == sg.pub == E.public_key(seed)
        again, new2 = eseal.load_seed(pf, generate=True)
        assert not new2 and again == seed
    finally:
        kt.rmtree(d)


def test_console_keyrotate_witnessed_and_key_files_replaced():
    from rvm_mp.hal import Platform
    from rvm_mp import eseal
    d = kt.tmpdir("rot")
    try:
        pf = Platform(d, device_id=kt.DEVICE_ID)
        sg, _ = eseal.load_seed(pf, generate=True)
        log = SignedWitnessLog(kt.DEVICE_ID, ring=64, clock=_clock, signer=sg)
        log.emit(kinds.BOOT_BEGIN)
        rep = eseal.rotate_device(pf, log, actor=1)
        seed = pf.read_file(eseal.SEED_FILE)
        pub = pf.read_file(eseal.PUB_FILE)
        assert pub == E.public_key(seed) and pub != sg.pub
        assert rep["pubkey"] == _hex(pub) and rep["key_id"] == eseal.key_id(pub)
        assert log.record(rep["rotate_seq"])[10] == kinds.KEY_ROTATE
        assert log.signer.pub == pub
    finally:
        kt.rmtree(d)


def test_hmac_seals_do_not_load_the_curve_code():
    for m in ("rvm_mp.ed25519_portable", "rvm_mp.ed25519_sign", "rvm_mp.eseal"):
        if m in sys.modules:
            del sys.modules[m]
    log = WitnessLog(kt.DEVICE_ID, key=kt.KEY, ring=32, seal_every=8, clock=_clock)
    for i in range(20):
        log.emit(kinds.IPC_SEND, 2, 3, i)
        log.service()
    assert log.seal() >= 0
    assert "rvm_mp.ed25519_sign" not in sys.modules
    assert "rvm_mp.eseal" not in sys.modules
    # witness.py itself knows nothing of Ed25519
    import rvm_mp.witness as W
    assert not hasattr(W.WitnessLog, "signer")
    # a signing log loads the curve code only at its first seal
    from rvm_mp.eseal import SignedWitnessLog
    log2 = SignedWitnessLog(kt.DEVICE_ID, ring=32, clock=_clock, signer=SEED)
    log2.emit(kinds.BOOT_BEGIN)
    assert "rvm_mp.ed25519_sign" not in sys.modules
    log2.seal()
    assert "rvm_mp.ed25519_sign" in sys.modules


def test_cpython_portable_agrees_with_cryptography():
    if kt.IS_MP:
        kt.skip("cryptography is CPython only")
    import os
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    for n in range(12):
        seed = os.urandom(32)
        msg = os.urandom(n * 13)
        k = Ed25519PrivateKey.from_private_bytes(seed)
        assert E.sign(seed, msg) == k.sign(msg)
        k.public_key().verify(E.sign(seed, msg), msg)


def test_board_with_ed25519_profile_signs_its_shutdown_seal():
    import agentkit as AK
    from rvm_mp import main, eseal
    from rvm_mp.witness_store import WitnessStore
    root = kt.tmpdir("edboot")
    try:
        pf = AK.FakePlatform(root)
        prof = AK.profile(agents=[])
        prof["witness"]["seal"] = "ed25519"
        main.run(fs=root, platform=pf, profile=prof, bundles={}, max_ms=60)
        pub = pf.read_file(eseal.PUB_FILE)
        assert pub == E.public_key(pf.read_file(eseal.SEED_FILE))
        st = WitnessStore(root + "/witness", 64, genesis_link(kt.DEVICE_ID))
        nxt, link = st.head()
        s = nxt - 4
        recs = [st.read(s + p) for p in range(4)]
        assert recs[0][10] == kinds.SEAL_ED25519
        assert [r[10] for r in recs[1:]] == [kinds.SEAL_PART] * 3
        assert st.read(s - 1)[10] == kinds.SHUTDOWN
        prev = st.read(s - 1)[32:64]
        msg = eseal.message(kt.DEVICE_ID, prev, recs[0][0:16])
        assert E.verify(pub, msg, eseal.unpack_sig(recs))
        # the HMAC key is still there (bundles), but no seal uses it
        assert pf.device_key()
        assert not [r for r in st.iter_range(0, nxt) if r[10] == kinds.SEAL]
        st.close()
    finally:
        kt.rmtree(root)


class _NoRam:
    """A signer that runs out of memory while signing."""

    def __init__(self):
        from rvm_mp.ed25519_sign import key_id
        self.pub = E.public_key(SEED)
        self.kid = key_id(self.pub)

    def sign(self, msg):
        raise MemoryError("no RAM")


def test_seal_without_ram_is_a_witnessed_refusal():
    log = SignedWitnessLog(kt.DEVICE_ID, ring=64, seal_every=8, clock=_clock,
                     signer=_NoRam())
    for i in range(10):
        log.emit(kinds.IPC_SEND, 2, 3, i)
    s = log.next_seq
    assert log.seal() == -1
    r = log.record(s)
    assert r[10] == kinds.SEAL_ED25519 and r[11] & 1
    assert r[20] == 19 and log.next_seq == s + 1  # ENOMEM in b, no parts
    assert log.last_seal_seq == -1
    # the kernel keeps going; with RAM back the next seal is a real one
    log.signer = SEED
    log.emit(kinds.IPC_SEND, 2, 3)
    s2 = log.seal()
    assert s2 > s and _check_seal(log, s2, E.public_key(SEED))
