# Console frame codec, shared by the device (control.py) and the host tools.
# Frames share the serial line with human text, so they are delimited and
# escaped; every frame carries a CRC-32 and a bad frame is reported, never
# fatal. Format (docs/console-protocol.md):
#
#   SOF 0x1E | escaped( type u8 | seq u16 | len u16 | payload | crc32 u32 ) | EOF 0x1F
#
#   crc32 = CRC-32 (IEEE, as binascii.crc32) over type..payload, little-endian.
#   Escaping: ESC 0x1D then (byte ^ 0x20) for 0x01..0x05, 0x1D, 0x1E, 0x1F.
#   0x01..0x05 are the REPL keys (Ctrl-A..Ctrl-E): a board's UART turns a raw
#   0x03 into KeyboardInterrupt and a REPL soft-resets on 0x04, so they never
#   appear raw inside a frame.
import struct

from .compat import const
from . import impls

SOF = const(0x1E)
EOF = const(0x1F)
ESC = const(0x1D)
HDR = const(5)      # type, seq, len
TRAILER = const(4)  # crc32
MAX_PAYLOAD = const(512)

# frame types
T_REQ = const(0x51)   # 'Q' host -> device: a command line (utf-8)
T_ANS = const(0x41)   # 'A' device -> host: the reply (JSON)
T_DATA = const(0x44)  # 'D' device -> host: u32 first seq + whole records
T_END = const(0x45)   # 'E' device -> host: end of a data stream (JSON)
T_ERR = const(0x58)   # 'X' device -> host: error (JSON {"err","msg"})
T_MORE = const(0x43)  # 'C' device -> host: a chunk of a long reply; T_ANS ends it

# decoder results (Decoder.feed)
R_NONE = const(0)     # byte consumed, nothing to report
R_TEXT = const(1)     # byte is human text outside any frame
R_FRAME = const(2)    # a good frame: .ftype .seq .payload
# errors (negative; -code is the frame error number in OP_BAD_FRAME b)
FE_CRC = const(1)     # CRC mismatch
FE_SHORT = const(2)   # truncated: shorter than header + crc, or length mismatch
FE_TOOBIG = const(3)  # longer than MAX_PAYLOAD
FE_ESCAPE = const(4)  # ESC followed by a byte that is not an escaped byte
FE_ABORT = const(5)   # a new SOF or a timeout cut the frame short
FE_NAMES = ("", "ECRC", "ESHORT", "ETOOBIG", "EESCAPE", "EABORT")

_CRC_T = (0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190,
          0x6B6B51F4, 0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344,
          0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278,
          0xBDBDF21C)


def crc32_py(data, crc=0):
    """CRC-32 (IEEE 802.3), nibble table: the portable reference."""
    crc ^= 0xFFFFFFFF
    t = _CRC_T
    for b in data:
        crc = t[(crc ^ b) & 15] ^ (crc >> 4)
        crc = t[(crc ^ (b >> 4)) & 15] ^ (crc >> 4)
    return crc ^ 0xFFFFFFFF


# binascii.crc32 (C in the firmware) -> natmod rvmn_crc (for ports built
# without binascii.crc32) -> the portable nibble table above (impls.py).
try:
    from binascii import crc32 as _bcrc

    def crc32(data, crc=0):
        return _bcrc(data, crc) & 0xFFFFFFFF
    impls.chose("crc", "binascii")
except ImportError:  # ports built without binascii.crc32
    _NCRC = impls.natmod("rvmn_crc")
    crc32 = _NCRC.crc32 if _NCRC else crc32_py
    impls.chose("crc", "natmod" if _NCRC else "portable")


def _needs_esc(b):
    return (1 <= b <= 5) or b == ESC or b == SOF or b == EOF


def encode(ftype, seq, payload=b""):
    """The wire bytes of one frame (SOF .. EOF)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("frame payload too long")
    body = bytearray(HDR + n + TRAILER)
    struct.pack_into("<BHH", body, 0, ftype & 0xFF, seq & 0xFFFF, n)
    body[HDR:HDR + n] = payload
    struct.pack_into("<I", body, HDR + n, crc32(memoryview(body)[0:HDR + n]))
    out = bytearray()
    out.append(SOF)
    for b in body:
        if _needs_esc(b):
            out.append(ESC)
            out.append(b ^ 0x20)
        else:
            out.append(b)
    out.append(EOF)
    return bytes(out)


class Decoder:
    """Incremental frame decoder over a byte stream that mixes human text and
    frames. feed(b) takes one byte and returns R_NONE, R_TEXT (b is text),
    R_FRAME (ftype/seq/payload are set) or -FE_* for a bad frame (seq is the
    frame's seq when the header was readable, else -1). The buffer is
    preallocated; a frame never grows it."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max = max_payload
        self._buf = bytearray(HDR + max_payload + TRAILER)
        self._mv = memoryview(self._buf)
        self._n = 0
        self._in = False      # inside a frame
        self._esc = False
        self._over = False    # frame exceeded the buffer; skip to EOF
        self._escerr = False  # an ESC was followed by a byte never escaped
        self.ftype = 0
        self.seq = -1
        self.payload = b""
        self.length = 0       # raw length of the last frame (bytes, unescaped)

    @property
    def in_frame(self):
        return self._in

    def abort(self):
        """Drop a partial frame (timeout). Returns -FE_ABORT if one was
        pending, else R_NONE."""
        if not self._in:
            return R_NONE
        self._in = False
        self._set_seq()
        self.length = self._n
        return -FE_ABORT

    def _set_seq(self):
        if self._n >= 3 and not self._over:
            self.seq = self._buf[1] | (self._buf[2] << 8)
        else:
            self.seq = -1

    def feed(self, b):
        if not self._in:
            if b == SOF:
                self._in = True
                self._n = 0
                self._esc = False
                self._over = False
                self._escerr = False
                return R_NONE
            return R_TEXT
        if b == SOF:  # a new frame starts: the old one was cut short
            self._set_seq()
            self.length = self._n
            self._n = 0
            self._esc = False
            self._over = False
            self._escerr = False
            return -FE_ABORT
        if b == EOF:
            self._in = False
            return self._finish()
        if self._esc:
            self._esc = False
            b ^= 0x20
            if not _needs_esc(b):
                self._escerr = True
        elif b == ESC:
            self._esc = True
            return R_NONE
        return self._store(b)

    def _store(self, b):
        if self._n < len(self._buf):
            self._buf[self._n] = b
            self._n += 1
        else:
            self._over = True
            self._n += 1
        return R_NONE

    def _finish(self):
        n = self._n
        self.length = n
        bad_esc = self._escerr
        self._escerr = False
        if self._over:
            self.seq = -1
            if n >= 3:
                self.seq = self._buf[1] | (self._buf[2] << 8)
            return -FE_TOOBIG
        if n < HDR + TRAILER:
            self._set_seq()
            return -FE_SHORT
        buf = self._buf
        self.seq = buf[1] | (buf[2] << 8)
        if bad_esc:
            return -FE_ESCAPE
        plen = buf[3] | (buf[4] << 8)
        if plen > self.max:
            return -FE_TOOBIG
        if plen != n - HDR - TRAILER:
            return -FE_SHORT
        want = buf[n - 4] | (buf[n - 3] << 8) | (buf[n - 2] << 16) | (buf[n - 1] << 24)
        if crc32(self._mv[0:n - TRAILER]) != want:
            return -FE_CRC
        self.ftype = buf[0]
        self.payload = bytes(self._mv[HDR:HDR + plen])
        return R_FRAME


def decode(data, max_payload=MAX_PAYLOAD):
    """Decode a whole byte string: list of (result, ftype, seq, payload_or_text).
    Consecutive text bytes are merged into one (R_TEXT, 0, -1, bytes) item."""
    d = Decoder(max_payload)
    out = []
    text = bytearray()
    for b in data:
        r = d.feed(b)
        if r == R_TEXT:
            text.append(b)
            continue
        if r == R_NONE:
            continue
        if text:
            out.append((R_TEXT, 0, -1, bytes(text)))
            text = bytearray()
        if r == R_FRAME:
            out.append((R_FRAME, d.ftype, d.seq, d.payload))
        else:
            out.append((r, 0, d.seq, b""))
    if text:
        out.append((R_TEXT, 0, -1, bytes(text)))
    return out
