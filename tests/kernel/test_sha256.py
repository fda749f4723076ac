# SHA-256 paths of the witness chain: the viper no-alloc SHA-256
# (rvm_mp/sha256_viper.py, used when the ring overflows) against hashlib on
# shared vectors. The viper module exists only where the native emitter does
# (MicroPython); on CPython its import is refused and witness.py links with
# hashlib -- both runtimes check the same vectors and the same chain.
import hashlib

import kt
from rvm_mp import kinds
from rvm_mp import witness
from rvm_mp.witness import WitnessLog, chain_link, genesis_link

# NIST FIPS 180-2 examples
NIST = (
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
)
# m_n = bytes((7*i + 3) & 255 for i in range(n)): lengths around the one- and
# two-block padding boundaries (55/56, 63/64) and the link input (68)
PATTERN = (
    (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (1, "084fed08b978af4d7d196a7446a86b58009e636b611db16211b65a9aadff29c5"),
    (55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"),
    (56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"),
    (63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"),
    (64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"),
    (68, "c23b56ccb21ebf78c5401dc6257f22e536b6d9b36214a68c899706f7cfc14e83"),
    (100, "5a2cda2351d1cdd9dd7957e57c0b3c8522451f25b6494569b7e94388c46f0980"),
    (119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"),
)


def _pattern(n):
    return bytes([(7 * i + 3) & 255 for i in range(n)])


def _viper():
    try:
        from rvm_mp.sha256_viper import Sha256Into, copy_into
    except (ImportError, SyntaxError) as e:
        kt.skip("no viper emitter here (%s): the portable hashlib path runs" % e)
    return Sha256Into, copy_into


def _digest(sha, p0, p1, p2, off2, n2):
    out = bytearray(32)
    sha.digest3_into(p0, p1, p2, off2, n2, out)
    return bytes(out)


def test_hashlib_known_answers():
    for msg, hx in NIST:
        assert hashlib.sha256(msg).digest() == bytes.fromhex(hx)
    for n, hx in PATTERN:
        assert hashlib.sha256(_pattern(n)).digest() == bytes.fromhex(hx)


def test_viper_known_answers():
    Sha256Into, _ = _viper()
    sha = Sha256Into()
    for msg, hx in NIST:
        assert _digest(sha, b"", b"", msg, 0, len(msg)) == bytes.fromhex(hx), msg
    for n, hx in PATTERN:
        m = _pattern(n)
        assert _digest(sha, b"", b"", m, 0, n) == bytes.fromhex(hx), n


def test_viper_every_length_0_to_119_and_split():
    Sha256Into, _ = _viper()
    sha = Sha256Into()
    big = _pattern(200)
    for n in range(120):
        want = hashlib.sha256(big[0:n]).digest()
        # the whole message in the third part, at an offset
        assert _digest(sha, b"", b"", big, 0, n) == want, n
        # split over the three parts the way the chain uses them
        a = n // 3
        b = n // 2
        assert _digest(sha, big[0:a], big[a:b], big, b, n - b) == want, n
    # state is reset between calls: a long then a short message
    _digest(sha, b"", b"", big, 0, 119)
    assert _digest(sha, b"", b"", b"abc", 0, 3) == bytes.fromhex(NIST[1][1])


def test_viper_link_equals_chain_link():
    Sha256Into, copy_into = _viper()
    sha = Sha256Into()
    prev = genesis_link(kt.DEVICE_ID)
    ring = bytearray(_pattern(200))
    for off in (0, 64, 128):
        got = _digest(sha, b"RVMW", prev, ring, off, 32)
        assert got == chain_link(prev, ring[off:off + 64])
        prev = got
    dst = bytearray(8)
    copy_into(dst, 2, b"abcdef", 1, 4)
    assert bytes(dst) == b"\x00\x00bcde\x00\x00"


def test_viper_does_not_allocate():
    Sha256Into, _ = _viper()
    from rvm_mp.compat import micropython
    sha = Sha256Into()
    out = bytearray(32)
    prev = bytes(32)
    ring = bytearray(128)
    sha.digest3_into(b"RVMW", prev, ring, 0, 32, out)  # warm up
    micropython.heap_lock()
    try:
        for i in range(20):
            sha.digest3_into(b"RVMW", prev, ring, 64, 32, out)
    finally:
        micropython.heap_unlock()
    assert bytes(out) == chain_link(prev, ring[64:128])


def test_witness_picks_the_right_path():
    from rvm_mp import impls
    if kt.IS_MP:
        # the natmod when it loads (make test builds it), else the viper
        # SHA-256 (the unix port has the emitter)
        if witness._NL is not None:
            assert impls.which()["link"] == "natmod" and witness.Sha256Into is None
        else:
            assert impls.which()["link"] == "viper" and witness.Sha256Into is not None
    else:
        assert witness.Sha256Into is None and witness._NL is None
        assert impls.which()["link"] == "portable"
        kt.raises(ImportError, __import__, "rvm_mp.sha256_viper")


def _emit_wrapping(log):
    for i in range(50):  # ring of 8: inline linking on every wrap
        log.deny(kinds.CAP_DENIED, i, 2 * i, 3, 2, i, i * i, 0xFFFFFFFF - i) \
            if i % 3 == 0 else log.emit(kinds.IPC_SEND, 1, 2, i, 7 * i)


def test_inline_and_portable_links_agree():
    # the same records linked inline (viper where present) and by hashlib
    # give the same chain and head
    t = [0]

    def clock():
        t[0] += 1
        return t[0]

    a = WitnessLog(kt.DEVICE_ID, boot=3, key=kt.KEY, ring=8, clock=clock)
    _emit_wrapping(a)
    t[0] = 0
    b = WitnessLog(kt.DEVICE_ID, boot=3, key=kt.KEY, ring=8, clock=clock)
    b._vsha = None  # force the hashlib path for inline links
    b._nl = None
    _emit_wrapping(b)
    assert a.head_link() == b.head_link()
    for s in range(a.ring_low(), a.next_seq):
        assert a.record(s) == b.record(s)
    prev = a.record(a.ring_low())[32:64]
    for s in range(a.ring_low() + 1, a.next_seq):
        rec = a.record(s)
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
