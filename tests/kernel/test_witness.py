# Witness log: format, chain, seals, ring, persistence, query, export.
# Runs on CPython and on the MicroPython unix port.
import hashlib
import struct

import kt
from rvm_mp import kinds
from rvm_mp.witness import (WitnessLog, genesis_link, chain_link, unpack,
                            file_header, REC_SIZE)
from rvm_mp.witness_store import WitnessStore
from rvm_mp.hmac256 import Hmac256, hmac_sha256, key_id


def _log(**kw):
    return WitnessLog(kt.DEVICE_ID, boot=kw.pop("boot", 1), key=kt.KEY, **kw)


def test_record_layout_and_genesis():
    log = _log(ring=8)
    seq = log.emit(kinds.PART_CREATE, 3, 7, 1, 2, 3, 0xFFFFFFFF + 5, 0)
    assert seq == 0
    rec = log.record(0)
    assert len(rec) == REC_SIZE
    f = unpack(rec)
    assert f[0] == 0 and f[2] == 1 and f[3] == kinds.PART_CREATE
    assert f[5] == 3 and f[6] == 7
    assert f[7:11] == (1, 2, 3, 4)  # masked to 32 bits
    g = hashlib.sha256(b"RVMW-genesis" + kt.DEVICE_ID).digest()
    assert genesis_link(kt.DEVICE_ID) == g
    assert rec[32:64] == hashlib.sha256(b"RVMW" + g + rec[0:32]).digest()


def test_chain_binds_every_field():
    log = _log(ring=16)
    for i in range(10):
        log.emit(kinds.IPC_SEND, i, i + 1, i, i * 2, i * 3, i * 4)
    prev = genesis_link(kt.DEVICE_ID)
    for s in range(10):
        rec = log.record(s)
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
    # a different field gives a different link
    rec = bytearray(log.record(5))
    rec[20] ^= 1
    assert chain_link(log.record(4)[32:64], rec) != log.record(5)[32:64]


def test_hmac_matches_rfc4231_case2():
    mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac == bytes.fromhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    long_key = b"\xaa" * 131
    mac = hmac_sha256(long_key, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert mac == bytes.fromhex(
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_seal_every_n_and_mac():
    log = _log(ring=64, seal_every=10)
    for i in range(25):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        log.service()
    seals = log.query(kind=kinds.SEAL)
    assert len(seals) == 2
    hm = Hmac256(kt.KEY)
    for rec in seals:
        f = unpack(rec)
        assert f[5] == 0 and f[6] == key_id(kt.KEY)
        prev = log.record(f[0] - 1)[32:64]
        assert rec[16:32] == hm.mac(b"RVMS" + prev + rec[0:16])[0:16]
    s = log.seal()
    assert log.record(s)[10] == kinds.SEAL and log.last_seal_seq == s


def test_emit_does_not_allocate():
    from rvm_mp.compat import micropython
    log = _log(ring=64)
    log.emit(kinds.BOOT_BEGIN)  # warm up
    micropython.heap_lock()
    try:
        for i in range(40):
            log.emit(kinds.IPC_SEND, 1, 2, i, i, i, i)
    finally:
        micropython.heap_unlock()
    assert log.next_seq == 41


def test_ring_overflow_links_inline_without_heap():
    from rvm_mp.compat import micropython
    log = _log(ring=8)
    micropython.heap_lock()
    try:
        for i in range(30):  # wraps the ring; nothing pending is lost
            log.emit(kinds.IPC_SEND, 1, 2, i)
    finally:
        micropython.heap_unlock()
    # the chain across the overwritten records is still continuous
    seq, link = log.head_link()
    assert seq == 29
    prev = log.record(22)[32:64]
    for s in range(23, 30):
        rec = log.record(s)
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
    assert log.record(3) is None  # gone from RAM, no store


def test_persistence_continues_chain_across_reboot():
    d = kt.tmpdir("wit")
    st = WitnessStore(d, seg_records=16, genesis=genesis_link(kt.DEVICE_ID))
    log = _log(ring=8, store=st, seal_every=20)
    for i in range(50):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        if i % 3 == 0:
            log.service()
    log.seal()
    last, link = log.head_link()
    log.flush()
    st.close()
    # "reboot": a new store and log on the same directory
    st2 = WitnessStore(d, seg_records=16, genesis=genesis_link(kt.DEVICE_ID))
    assert st2.head() == (last + 1, link)
    log2 = _log(ring=8, store=st2, boot=2)
    s = log2.emit(kinds.BOOT_BEGIN, 0, 0, 2)
    assert s == last + 1
    rec = log2.record(s)
    assert rec[32:64] == chain_link(link, rec)
    # every stored record chains from genesis
    prev = genesis_link(kt.DEVICE_ID)
    n = 0
    for rec in log2.iter_range(0):
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
        n += 1
    assert n == s + 1
    st2.close()
    kt.rmtree(d)


def test_torn_tail_is_discarded():
    d = kt.tmpdir("torn")
    g = genesis_link(kt.DEVICE_ID)
    st = WitnessStore(d, seg_records=16, genesis=g)
    log = _log(ring=8, store=st)
    for i in range(20):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    log.flush()
    st.close()
    # append half a record, as a power cut mid-write would
    path = d + "/00000010.seg"
    with open(path, "ab") as f:
        f.write(b"\x14\x00\x00\x00garbage-half-record")
    st2 = WitnessStore(d, seg_records=16, genesis=g)
    assert st2.head()[0] == 20 and st2.torn == 1
    # a whole record with a wrong link is discarded too
    with open(path, "ab") as f:
        f.write(struct.pack("<I", 20) + bytes(60))
    st2.close()
    st3 = WitnessStore(d, seg_records=16, genesis=g)
    assert st3.head()[0] == 20 and st3.torn == 1
    st3.close()
    kt.rmtree(d)


def test_query_by_kind_actor_target_range():
    log = _log(ring=64)
    for i in range(30):
        log.emit(kinds.IPC_SEND if i % 2 else kinds.PART_STATE, i % 3, i % 5, i)
    assert len(log.query(kind=kinds.IPC_SEND)) == 15
    assert all(r[12] == 1 for r in log.query(actor=1))
    assert len(log.query(target=4)) == 6
    got = log.query(lo=10, hi=20)
    assert [unpack(r)[0] for r in got] == list(range(10, 20))
    got = log.query(kind=kinds.PART_STATE, actor=0, lo=5)
    assert [unpack(r)[0] for r in got] == [6, 12, 18, 24]


class _Buf:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)


def test_export_rvmw_range():
    log = _log(ring=64)
    for i in range(20):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    log.seal()
    out = _Buf()
    n = log.export(out, 5, 15)
    assert n == 10
    h = out.data[0:64]
    assert h[0:4] == b"RVMW" and struct.unpack_from("<HH", h, 4) == (1, 64)
    assert h[8:24] == kt.DEVICE_ID
    assert h[24:56] == log.record(4)[32:64]
    assert struct.unpack_from("<I", h, 56)[0] == 5
    assert out.data[64:128] == log.record(5)
    assert len(out.data) == 64 + 10 * 64
    assert bytes(file_header(kt.DEVICE_ID, genesis_link(kt.DEVICE_ID), 0))[24:56] \
        == genesis_link(kt.DEVICE_ID)


def test_degraded_flag_and_deny():
    log = _log(ring=8)
    s = log.deny(kinds.CAP_DENIED, 5, 6, 3, tier=2)
    f = unpack(log.record(s))
    assert f[4] == (1 | (2 << 2)) and f[8] == 3
    log.degraded = True
    s = log.emit(kinds.EPOCH_SUMMARY)
    assert unpack(log.record(s))[4] & kinds.F_DEGRADED


def test_export_after_ring_wrap_without_store():
    # without a store, the oldest ring record's anchor is gone once the ring
    # wrapped: export starts one record later and its anchor is a real link
    log = _log(ring=8)
    for i in range(20):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    out = _Buf()
    n = log.export(out)
    first = struct.unpack_from("<I", out.data, 56)[0]
    assert first == log.ring_low() + 1 and n == 20 - first
    assert out.data[24:56] == log.record(first - 1)[32:64]
    prev = out.data[24:56]
    for i in range(n):
        rec = out.data[64 + 64 * i:128 + 64 * i]
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]


def test_seal_cadence_counts_records_since_last_seal():
    log = _log(ring=64, seal_every=5)
    log.emit(kinds.IPC_SEND)
    log.seal()  # an explicit seal restarts the count
    for i in range(4):
        log.emit(kinds.IPC_SEND, 1, 2, i)
        log.service()
    assert len(log.query(kind=kinds.SEAL)) == 1
    log.emit(kinds.IPC_SEND)
    log.service()
    assert len(log.query(kind=kinds.SEAL)) == 2
    assert log.last_seal_seq == log.next_seq - 1
