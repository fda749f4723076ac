"""Tamper corpus for the host verifier (host_tools/rvm/verify.py).

Logs are built by the kernel code (rvm_mp.witness under CPython). Every
mutated log must be refused with the right first bad seq:

* a change inside record r (any bit of its 64 bytes)  -> bad_seq = r
  (bytes 0-3 are the seq field: reason "seq ... found"; bytes 4-63 are bound
  by the link of r: reason "link mismatch");
* a change in the header of a log that starts at seq 0 -> "bad header", no
  bad_seq (magic, version, record size, reserved, and device id / anchor,
  because the anchor of such a log must be the device's genesis link),
  except the first-seq field: a flip makes the header promise seq F != 0 for
  the first record, which still says 0 -> bad_seq = F (header and record
  disagree; the verifier names the position, it cannot know which was altered);
* for a log exported from seq F > 0: a change of the anchor -> bad_seq = F
  (the first record does not link from it); a change of the device id is
  NOT detected (the device id enters the chain only through the genesis
  link; such a file is authenticated by the key that sealed it, see
  docs/witness-format.md) -- tested so the property stays visible.

Efficiency of the every-bit test on the 1,000-record log (64*8*1000 body
flips + 512 header flips): the verifier checks record i against the link
STORED in record i-1, so whether record i passes depends only on records i-1
and i. With the unmodified log passing, a flip inside record r can only make
records r and r+1 fail, and r fails first. So for body flips the test calls
verify.scan() -- the same function verify_bytes() runs over the whole log --
on the window [r, r+2) of the flipped image: O(1) per flip. The locality
argument itself is checked by running the full verify_bytes() on a random
sample of 3,000 flips of the same log and on EVERY bit of two smaller logs
(one from seq 0, one exported from seq 10), and on all 512 header flips.
"""
import random

import pytest

import wvectors
from rvm_mp import kinds
from rvm_mp.witness import WitnessLog, chain_link, genesis_link
from host_tools.rvm import verify as V

KEY = wvectors.KEY
DEV = wvectors.DEVICE_ID
HDR = 64


class _Buf:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b


def make_log(n, key=KEY, device_id=DEV, seal_every=100, seed=11, final_seal=True,
             boot=1):
    """A log of exactly n records (the last one a seal when final_seal)."""
    log = WitnessLog(device_id, boot=boot, key=key, ring=n + 8,
                     seal_every=seal_every, clock=wvectors.FixedClock())
    x = seed
    stop = n - 1 if final_seal else n
    while log.next_seq < stop:
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        if x % 5 == 0:
            log.deny(kinds.CAP_DENIED, 1 + x % 7, 2 + x % 3, 3, 1, x, x >> 3, 7)
        else:
            log.emit(kinds.IPC_SEND + (x % 2), 1 + x % 7, 2 + x % 3, x, x >> 1, 5, 9)
        if log.next_seq < stop and log.next_seq % 16 == 0:
            log.service()
    if final_seal:
        log.seal()
    assert log.next_seq == n
    return log


def export(log, lo=0, hi=None):
    b = _Buf()
    log.export(b, lo, hi)
    return bytes(b.data)


def seal_seqs(data):
    first = int.from_bytes(data[56:60], "little")
    out = []
    for i in range((len(data) - HDR) // 64):
        if data[HDR + i * 64 + 10] == kinds.SEAL:
            out.append(first + i)
    return out


def records(data):
    return [data[o:o + 64] for o in range(HDR, len(data), 64)]


def with_records(data, recs):
    return bytes(data[0:HDR]) + b"".join(recs)


def relink(data, frm):
    """Recompute the links of records frm.. (an attacker without the key)."""
    d = bytearray(data)
    o = HDR + frm * 64
    prev = bytes(d[24:56]) if frm == 0 else bytes(d[o - 32:o])
    while o < len(d):
        link = chain_link(prev, d[o:o + 32])
        d[o + 32:o + 64] = link
        prev = link
        o += 64
    return bytes(d)


@pytest.fixture(scope="module")
def log1000():
    data = export(make_log(1000))
    rep = V.verify_bytes(data, KEY)
    assert rep["verdict"] == "verified" and rep["records"] == 1000
    assert rep["sealed_through"] == 999 and rep["unsealed_tail"] == 0
    assert rep["seals"] >= 9
    return data


def expected_flip(pos, bit, first, seals):
    """(verdict, bad_seq, reason fragment, sealed_through) of the log with
    bit `bit` of byte `pos` flipped (see the module docstring)."""
    if pos >= HDR:
        r = (pos - HDR) // 64
        frag = "seq" if (pos - HDR) % 64 < 4 else "link mismatch"
        before = [s for s in seals if s < first + r]
        return "tampered", first + r, frag, (before[-1] if before else None)
    if pos < 8 or pos >= 60:
        return "tampered", None, "bad header", None
    if 56 <= pos < 60:
        f2 = first ^ (1 << (8 * (pos - 56) + bit))
        if f2 == 0:
            return "tampered", None, "bad header", None
        return "tampered", f2, "header says the file starts at seq %d" % f2, None
    if first == 0:
        return "tampered", None, "bad header", None
    if pos < 24:
        return "verified", None, None, seals[-1]
    return "tampered", first, "link mismatch", None


def check_full(data, pos, bit, first, seals):
    d = bytearray(data)
    d[pos] ^= 1 << bit
    rep = V.verify_bytes(d, KEY)
    verdict, bad, frag, st = expected_flip(pos, bit, first, seals)
    assert (rep["verdict"], rep["bad_seq"]) == (verdict, bad), (pos, bit, rep)
    if frag:
        assert frag in rep["reason"], (pos, bit, rep["reason"])
    assert rep["sealed_through"] == st, (pos, bit, rep)
    return rep


# --- single-bit flips ------------------------------------------------------

def test_every_body_bit_flip_of_1000_records(log1000):
    d = bytearray(log1000)
    anchor = bytes(d[24:56])
    n = 1000
    scan = V.scan
    counts = {"seq": 0, "link": 0}
    for r in range(n):
        hi = r + 2 if r + 2 <= n else n
        base = HDR + r * 64
        for b in range(64):
            pos = base + b
            orig = d[pos]
            link = b >= 4
            for bit in range(8):
                d[pos] = orig ^ (1 << bit)
                bad, reason, _ = scan(d, KEY, 0, anchor, r, hi)
                if bad != r or reason.startswith("link mismatch") != link \
                        or (not link and "seq" not in reason):
                    raise AssertionError("flip of byte %d bit %d (record %d): got %r %r"
                                         % (pos, bit, r, bad, reason))
                counts["seq" if b < 4 else "link"] += 1
            d[pos] = orig
    assert counts == {"seq": 1000 * 4 * 8, "link": 1000 * 60 * 8}
    assert bytes(d) == log1000


def test_every_header_bit_flip_of_1000_records(log1000):
    seals = seal_seqs(log1000)
    for pos in range(HDR):
        for bit in range(8):
            check_full(log1000, pos, bit, 0, seals)


def test_random_sample_of_flips_full_verifier(log1000):
    # the full verify_bytes() agrees with the windowed check on a sample
    seals = seal_seqs(log1000)
    rnd = random.Random(20261122)
    for _ in range(3000):
        pos = rnd.randrange(HDR, len(log1000))
        check_full(log1000, pos, rnd.randrange(8), 0, seals)


@pytest.mark.parametrize("lo", [0, 10])
def test_every_bit_flip_small_log_full_verifier(lo):
    log = make_log(48, seal_every=12)
    data = export(log, lo)
    rep = V.verify_bytes(data, KEY)
    assert rep["verdict"] == "verified" and rep["first_seq"] == lo
    seals = seal_seqs(data)
    for pos in range(len(data)):
        for bit in range(8):
            check_full(data, pos, bit, lo, seals)


# --- truncation ------------------------------------------------------------

def test_truncation_at_every_length_small_log():
    data = export(make_log(30, seal_every=10))
    seals = seal_seqs(data)
    for cut in range(len(data)):
        rep = V.verify_bytes(data[:cut], KEY)
        if cut < HDR:
            assert rep["verdict"] == "tampered" and "bad header" in rep["reason"]
            continue
        nrec, extra = divmod(cut - HDR, 64)
        if extra:
            assert rep["verdict"] == "tampered" and rep["bad_seq"] == nrec, cut
            assert rep["reason"].startswith("truncated: %d trailing bytes" % extra)
            continue
        # a cut on a record boundary is a shorter log: only the seals say how
        # much of it is authenticated
        held = [s for s in seals if s < nrec]
        if held:
            assert rep["verdict"] == "verified" and rep["sealed_through"] == held[-1]
            assert rep["unsealed_tail"] == nrec - 1 - held[-1]
        else:
            assert rep["verdict"] == "unsealed" and V.exit_code(rep) == 3


def test_truncation_mid_record_1000(log1000):
    for r, keep in ((0, 1), (500, 33), (999, 63)):
        rep = V.verify_bytes(log1000[:HDR + r * 64 + keep], KEY)
        assert rep["verdict"] == "tampered" and rep["bad_seq"] == r
        assert "truncated" in rep["reason"] and V.exit_code(rep) == 1


# --- dropped, duplicated, reordered, spliced ----------------------------------

@pytest.mark.parametrize("k", [0, 1, 417, 998])
def test_dropped_record(log1000, k):
    recs = records(log1000)
    del recs[k]
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == k
    if k:
        assert "seq %d found where %d was expected" % (k + 1, k) in rep["reason"]
    else:
        assert "first record has seq 1 but the header says the file starts at " \
            "seq 0" in rep["reason"]


def test_dropped_last_record_is_a_shorter_log(log1000):
    # dropping the newest records cannot be told from an earlier pull: the
    # log verifies only through the previous seal and the tail is reported
    recs = records(log1000)[:-1]
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    seals = seal_seqs(log1000)
    assert rep["verdict"] == "verified" and rep["sealed_through"] == seals[-2]
    assert rep["unsealed_tail"] == 998 - seals[-2]


@pytest.mark.parametrize("k", [0, 250, 999])
def test_duplicated_record(log1000, k):
    recs = records(log1000)
    recs.insert(k + 1, recs[k])
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == k + 1
    assert "seq %d found" % k in rep["reason"]


@pytest.mark.parametrize("k", [0, 600, 998])
def test_reordered_records(log1000, k):
    recs = records(log1000)
    recs[k], recs[k + 1] = recs[k + 1], recs[k]
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == k


def test_reordered_and_renumbered_is_still_refused(log1000):
    # swap two records and rewrite their seq fields: the links give it away
    recs = [bytearray(r) for r in records(log1000)]
    k = 300
    recs[k], recs[k + 1] = recs[k + 1], recs[k]
    recs[k][0:4] = k.to_bytes(4, "little")
    recs[k + 1][0:4] = (k + 1).to_bytes(4, "little")
    rep = V.verify_bytes(with_records(log1000, [bytes(r) for r in recs]), KEY)
    assert rep["bad_seq"] == k and "link mismatch" in rep["reason"]


@pytest.mark.parametrize("source", ["same-device", "other-device"])
@pytest.mark.parametrize("k", [0, 321, 999])
def test_spliced_single_record(log1000, source, k):
    other = export(make_log(1000, seed=99, device_id=DEV if source == "same-device"
                            else wvectors.DEVICE_ID2))
    recs = records(log1000)
    recs[k] = records(other)[k]  # same seq number, another log's record
    assert recs[k][0:4] == records(log1000)[k][0:4]
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    # another log's record 0 of the SAME device links from the same genesis,
    # so it is a sound first record: the break shows at record 1, which does
    # not link from it. Everywhere else the spliced record itself fails.
    want = k + 1 if (k == 0 and source == "same-device") else k
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == want
    assert "link mismatch" in rep["reason"]


@pytest.mark.parametrize("source", ["same-device", "other-device"])
def test_spliced_tail_from_another_log(log1000, source):
    other = export(make_log(1000, seed=5, device_id=DEV if source == "same-device"
                            else wvectors.DEVICE_ID2))
    k = 700
    recs = records(log1000)[:k] + records(other)[k:]
    rep = V.verify_bytes(with_records(log1000, recs), KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == k


def test_other_device_log_under_this_header(log1000):
    other = export(make_log(1000, device_id=wvectors.DEVICE_ID2))
    rep = V.verify_bytes(log1000[:HDR] + other[HDR:], KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == 0


def test_consistent_ranges_reassemble(log1000):
    # not an attack: two exports of adjacent ranges of one log concatenate
    # into a file that verifies
    log = make_log(1000)
    a = export(log, 0, 400)
    b = export(log, 400, 1000)
    assert b[24:56] == a[-32:]  # b's anchor is a's last link
    rep = V.verify_bytes(a + b[HDR:], KEY)
    assert rep["verdict"] == "verified" and rep["records"] == 1000


# --- seals -------------------------------------------------------------------

def test_seal_made_with_another_key():
    other_key = bytes(range(100, 132))
    data = export(make_log(200, key=other_key, seal_every=50))
    assert V.verify_bytes(data, other_key)["verdict"] == "verified"
    rep = V.verify_bytes(data, KEY)
    first = seal_seqs(data)[0]
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == first
    assert "another key" in rep["reason"] and rep["sealed_through"] is None


def test_seal_with_forged_key_id_fails_mac():
    other_key = bytes(range(100, 132))
    log = WitnessLog(DEV, boot=1, key=other_key, ring=64, clock=wvectors.FixedClock())
    log.key_id = WitnessLog(DEV, key=KEY).key_id  # claim KEY's id
    for i in range(20):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    s = log.seal()
    rep = V.verify_bytes(export(log), KEY)
    assert rep["bad_seq"] == s and "seal MAC does not verify" in rep["reason"]


def test_seal_with_non_kernel_actor():
    data = bytearray(export(make_log(100, seal_every=40)))
    s = seal_seqs(bytes(data))[0]
    data[HDR + s * 64 + 12] = 5  # actor 5, chain recomputed by the forger
    rep = V.verify_bytes(relink(bytes(data), s), KEY)
    assert rep["bad_seq"] == s and "non-kernel actor 5" in rep["reason"]


def test_relinked_change_is_caught_by_next_seal(log1000):
    seals = seal_seqs(log1000)
    r = seals[3] + 7
    d = bytearray(log1000)
    d[HDR + r * 64 + 20] ^= 0x40
    rep = V.verify_bytes(relink(bytes(d), r), KEY)
    nxt = [s for s in seals if s > r][0]
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == nxt
    assert rep["sealed_through"] == seals[3]


def test_relinked_change_in_unsealed_tail_is_reported_as_tail():
    # after the last seal nothing is authenticated: a rewritten tail chains
    # fine, so the verdict stays "verified" but only through the last seal
    log = make_log(120, seal_every=50, final_seal=False)
    data = export(log)
    seals = seal_seqs(data)
    r = seals[-1] + 3
    d = bytearray(data)
    d[HDR + r * 64 + 16] ^= 1
    rep = V.verify_bytes(relink(bytes(d), r), KEY)
    assert rep["verdict"] == "verified" and rep["sealed_through"] == seals[-1] < r
    assert rep["unsealed_tail"] == 119 - seals[-1]


# --- header, empty, unsealed -----------------------------------------------

@pytest.mark.parametrize("what,off,value,frag", [
    ("magic", 0, b"RVMX", "magic"),
    ("version", 4, b"\x02\x00", "version 2"),
    ("record size", 6, b"\x40\x01", "record size 320"),
    ("reserved", 60, b"\x00\x00\x00\x01", "reserved"),
    ("anchor", 24, bytes(32), "genesis"),
    ("device id", 8, bytes(16), "genesis"),
])
def test_bad_header(log1000, what, off, value, frag):
    d = bytearray(log1000)
    d[off:off + len(value)] = value
    rep = V.verify_bytes(bytes(d), KEY)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] is None
    assert rep["reason"].startswith("bad header") and frag in rep["reason"], what


def test_short_and_empty_files():
    for data in (b"", b"RVMW", bytes(63)):
        rep = V.verify_bytes(data, KEY)
        assert rep["verdict"] == "tampered" and "shorter than" in rep["reason"]


def test_empty_log_is_unsealed():
    log = WitnessLog(DEV, key=KEY, ring=8)
    data = export(log)
    assert len(data) == HDR
    rep = V.verify_bytes(data, KEY)
    assert rep["verdict"] == "unsealed" and rep["records"] == 0
    assert V.exit_code(rep) == 3


def test_valid_chain_without_seal_is_unsealed():
    data = export(make_log(50, final_seal=False, seal_every=0))
    assert seal_seqs(data) == []
    rep = V.verify_bytes(data, KEY)
    assert rep["verdict"] == "unsealed" and rep["unsealed_tail"] == 50
    assert rep["sealed_through"] is None and V.exit_code(rep) == 3


def test_sealed_log_with_unsealed_tail_is_verified_with_tail():
    log = make_log(100, seal_every=0)
    for i in range(9):
        log.emit(kinds.IPC_SEND, 1, 2, i)
    rep = V.verify_bytes(export(log), KEY)
    assert rep["verdict"] == "verified" and rep["sealed_through"] == 99
    assert rep["unsealed_tail"] == 9 and V.exit_code(rep) == 0
    assert "unsealed tail of 9 records (seq 100..108)" in V.summary_line(rep)


def test_seq_wraps_at_32_bits():
    # a file whose seqs run across 2**32 - 1 -> 0 (a very long-lived device):
    # the verifier compares seqs modulo 2**32
    recs = []
    first = 0xFFFFFFFE
    anchor = bytes(range(32))
    prev = anchor
    for i in range(4):
        head = bytearray(32)
        head[0:4] = ((first + i) & 0xFFFFFFFF).to_bytes(4, "little")
        head[10] = kinds.IPC_SEND
        link = chain_link(prev, head)
        recs.append(bytes(head) + link)
        prev = link
    from rvm_mp.witness import file_header
    data = bytes(file_header(DEV, anchor, first)) + b"".join(recs)
    rep = V.verify_bytes(data, KEY)
    assert rep["verdict"] == "unsealed" and rep["last_seq"] == 1
    d = bytearray(data)
    d[HDR + 3 * 64 + 0] = 2  # seq 1 -> 2
    rep = V.verify_bytes(bytes(d), KEY)
    assert rep["bad_seq"] == 1 and "seq 2 found where 1" in rep["reason"]
    assert genesis_link(DEV) != anchor
