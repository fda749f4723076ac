# Console frame codec: round trips, CRC implementations, bad input.
# Runs on CPython and on the MicroPython unix port.
import os

import kt
from rvm_mp import frame as F

BOARD = "seed-64k"


def test_crc32_vectors_both_implementations():
    assert F.crc32_py(b"123456789") == 0xCBF43926
    assert F.crc32(b"123456789") == 0xCBF43926
    assert F.crc32_py(b"") == 0 and F.crc32(b"") == 0
    for n in (1, 7, 64, 300):
        data = os.urandom(n)
        assert F.crc32_py(data) == F.crc32(data)


def test_roundtrip_and_escaping():
    payload = bytes(range(256))
    wire = F.encode(F.T_DATA, 0x1234, payload)
    assert wire[0] == F.SOF and wire[-1] == F.EOF
    inner = wire[1:-1]
    for b in (1, 2, 3, 4, 5, F.SOF, F.EOF):
        assert b not in inner
    items = F.decode(b"hi" + wire + b"\r\n")
    assert items[0] == (F.R_TEXT, 0, -1, b"hi")
    assert items[1] == (F.R_FRAME, F.T_DATA, 0x1234, payload)
    assert items[2] == (F.R_TEXT, 0, -1, b"\r\n")


def test_bad_crc_is_reported_with_seq():
    wire = F.encode(F.T_REQ, 7, b"ps")
    i = wire.find(b"ps")
    wire = wire[:i] + b"0" + wire[i + 1:]  # flip a payload bit ('p' -> '0')
    items = F.decode(wire)
    assert items[0][0] == -F.FE_CRC and items[0][2] == 7


def test_truncated_and_cut_frames():
    wire = F.encode(F.T_REQ, 9, b"stat")
    # cut short by a new frame: the first reports EABORT, the second is good
    items = F.decode(wire[:5] + wire)
    assert items[0][0] == -F.FE_ABORT
    assert items[1][0] == F.R_FRAME and items[1][3] == b"stat"
    # too short to hold a header and a crc
    items = F.decode(bytes([F.SOF, 0x51, 1, F.EOF]))
    assert items[0][0] == -F.FE_SHORT
    # length field disagrees with the bytes received
    i = wire.find(b"stat")
    items = F.decode(wire[:i] + wire[i + 1:])
    assert items[0][0] in (-F.FE_SHORT, -F.FE_CRC)
    # timeout abort
    d = F.Decoder()
    for b in wire[:6]:
        assert d.feed(b) == F.R_NONE
    assert d.in_frame and d.abort() == -F.FE_ABORT and d.seq == 9
    assert d.abort() == F.R_NONE


def test_oversize_frame_is_refused_without_growing():
    d = F.Decoder(max_payload=32)
    n0 = len(d._buf)
    big = F.encode(F.T_REQ, 3, b"x" * 200)
    res = [d.feed(b) for b in big]
    assert res[-1] == -F.FE_TOOBIG
    assert len(d._buf) == n0
    # the decoder is usable afterwards
    ok = [d.feed(b) for b in F.encode(F.T_REQ, 4, b"ps")]
    assert ok[-1] == F.R_FRAME and d.payload == b"ps" and d.seq == 4
    kt.raises(ValueError, F.encode, F.T_REQ, 1, b"y" * (F.MAX_PAYLOAD + 1))


def test_bad_escape_and_random_bytes_never_crash():
    items = F.decode(bytes([F.SOF, F.ESC, 0x41]) + F.encode(F.T_REQ, 1, b"x")[1:])
    assert items[0][0] == -F.FE_ESCAPE
    d = F.Decoder(max_payload=64)
    seen_frame = 0
    for _ in range(20):
        for b in os.urandom(200):
            r = d.feed(b)
            assert r in (F.R_NONE, F.R_TEXT, F.R_FRAME) or -5 <= r <= -1
            if r == F.R_FRAME:
                seen_frame += 1
    d.abort()
    good = F.encode(F.T_REQ, 42, b"help")
    res = [d.feed(b) for b in good]
    assert res[-1] == F.R_FRAME and d.seq == 42 and d.payload == b"help"
