# Console protocol costs on the device side (runs on MicroPython and CPython):
# frame decode per byte, CRC-32 builtin vs the portable nibble table, and a
# framed `stat` request end to end through Control on a MemConsole.
import os

from benchutil import per_op_us


def bench(emit):
    from rvm_mp import frame as F
    payload = bytes(range(256)) * 2
    wire = F.encode(F.T_DATA, 1, payload)
    d = F.Decoder()

    def decode(n):
        for _ in range(n):
            for b in wire:
                d.feed(b)
    us = per_op_us(decode, 20)
    emit("frame decode, 512-byte payload", us, "us", "one frame, byte by byte")
    emit("frame decode per byte", us / len(wire), "us/byte", "")

    def enc(n):
        for _ in range(n):
            F.encode(F.T_DATA, 1, payload)
    emit("frame encode, 512-byte payload", per_op_us(enc, 20), "us", "")

    data = os.urandom(512)

    def c_fast(n):
        for _ in range(n):
            F.crc32(data)

    def c_py(n):
        for _ in range(n):
            F.crc32_py(data)
    fast = per_op_us(c_fast, 50)
    slow = per_op_us(c_py, 5)
    emit("crc32 512 B, binascii", fast, "us", "")
    emit("crc32 512 B, portable nibble table", slow, "us", "fallback for ports without binascii.crc32")
    emit("crc32 portable / binascii", slow / fast if fast else 0, "x", "")

    # a framed request through the real Kernel + Control
    import sys
    from rvm_mp import board, control
    from rvm_mp.hal import Platform, MemConsole
    from rvm_mp.kernel import Kernel
    root = os.getenv("RVM_REPO") or "."
    prof = board.load("seed-64k", dirs=(root + "/boards", "boards"))
    pf = Platform("/tmp", device_id=bytes(16), key=bytes(range(32)))
    con = pf.attach_console(MemConsole())
    k = Kernel(pf, prof)
    c = control.Control(k, pf, board="seed-64k", banner=False)
    req = F.encode(F.T_REQ, 5, b"stat")

    def ask(n):
        for _ in range(n):
            con.feed(req)
            c.poll()
            con.take()
    emit("framed `stat` request -> reply (device side)", per_op_us(ask, 20) / 1000.0, "ms", "")
