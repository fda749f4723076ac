"""The streaming verifier (`verify.verify_file`, what `rvm verify FILE` runs).

verify_file() reads the file in chunks of `chunk` records, each checked on
its own (in forked workers when jobs > 1), and walks the seals in order in
the parent. These tests hold it to the in-memory verifier, verify_bytes()
(whose verdicts the tamper corpus, the vectors and the Ed25519 tests pin
down), on logs several chunks long: the same report for intact logs, and
the same first bad record and reason for a change in the middle of a chunk,
at either side of a chunk boundary, in the last record, in a seal or a
signature split across two chunks, with one process or several. They also
check that memory does not grow with the file, and that one core means no
worker process.
"""
import io
import json
import os
import resource
import subprocess
import sys
import tracemalloc

import pytest

import wvectors
from rvm_mp import eseal, kinds as K
from rvm_mp.ed25519_sign import Signer
from rvm_mp.eseal import SignedWitnessLog
from rvm_mp.witness import WitnessLog, chain_link
from host_tools.rvm import cli, verify as V

KEY = wvectors.KEY
KEYHEX = KEY.hex()
DEV = wvectors.DEVICE_ID
HDR = 64
SEED = bytes(range(100, 132))
SEED2 = bytes(range(200, 232))
PUB = Signer(SEED).pub


def hmac_log(n, seal_every=50, lo=0):
    """A log of n records from the kernel's WitnessLog (HMAC seals, the
    last record a seal), exported from index lo."""
    log = WitnessLog(DEV, boot=1, key=KEY, ring=n + 8, seal_every=seal_every,
                     clock=wvectors.FixedClock())
    x = 7
    while log.next_seq < n - 1:
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        if x % 5 == 0:
            log.deny(K.CAP_DENIED, 1 + x % 7, 2, 3, 1, x, 0, 7)
        else:
            log.emit(K.IPC_SEND, 1 + x % 7, 2, x, x >> 1)
        if log.next_seq % 16 == 0:
            log.service()
    log.seal()
    b = io.BytesIO()
    log.export(b, lo)
    return b.getvalue()


def signed_log(n=70, seal_every=9, rotate_at=None):
    log = SignedWitnessLog(DEV, boot=2, ring=1024, seal_every=seal_every,
                           clock=lambda: 777, signer=SEED)
    for i in range(n):
        if rotate_at is not None and i == rotate_at:
            eseal.rotate(log, SEED2, actor=1)
        log.emit(K.IPC_SEND, 2, 3, i)
        log.service()
    log.seal()
    b = io.BytesIO()
    log.export(b)
    return b.getvalue()


def relink(data, start):
    d = bytearray(data)
    prev = bytes(d[24:56]) if start == 0 else bytes(d[HDR + start * 64 - 32:HDR + start * 64])
    for o in range(HDR + start * 64, len(d), 64):
        prev = chain_link(prev, d[o:o + 32])
        d[o + 32:o + 64] = prev
    return bytes(d)


def flipped(data, pos, mask=0x04):
    d = bytearray(data)
    d[pos] ^= mask
    return bytes(d)


def streamed(tmp_path, data, key=KEY, pubkey=None, jobs=1, chunk=64, name="x.rvmw"):
    p = tmp_path / name
    p.write_bytes(data)
    return V.verify_file(str(p), key, pubkey, jobs=jobs, chunk=chunk)


def same(a, b):
    assert a == b, "\nstreamed  %r\nin memory %r" % (a, b)


@pytest.fixture(scope="module")
def log1000():
    data = hmac_log(1000)
    assert V.verify_bytes(data, KEY)["verdict"] == "verified"
    return data


@pytest.mark.parametrize("jobs,chunk", [(1, 64), (2, 64), (3, 100), (2, 999), (2, 1000),
                                        (2, 1), (4, 7)])
def test_intact_log_of_many_chunks_same_report(tmp_path, log1000, jobs, chunk):
    rep = streamed(tmp_path, log1000, jobs=jobs, chunk=chunk)
    same(rep, V.verify_bytes(log1000, KEY))
    assert rep["verdict"] == "verified" and rep["seals"] >= 15


def _positions(n, chunk):
    """Record indices around chunk boundaries and inside chunks."""
    out = {0, 1, n - 1, n - 2, chunk // 2, chunk + chunk // 3}
    for k in (1, 2, n // chunk - 1):
        out |= {k * chunk - 1, k * chunk, k * chunk + 1}
    return sorted(r for r in out if 0 <= r < n)


def _tamper_sweep(tmp_path, log1000, jobs, byts):
    chunk = 64
    for r in _positions(1000, chunk):
        for byte in byts:
            d = flipped(log1000, HDR + r * 64 + byte)
            rep = streamed(tmp_path, d, jobs=jobs, chunk=chunk)
            same(rep, V.verify_bytes(d, KEY))
            assert rep["verdict"] == "tampered" and rep["bad_seq"] == r, (r, byte, rep)


ALL_FIELDS = (0, 2, 10, 20, 33, 63)  # seq (0, 2), kind, payload, link (33, 63)


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_tamper_reported_exactly_at_and_inside_chunk_boundaries(tmp_path, log1000, jobs):
    # one process: every field; with workers (a fork per verify): the seq
    # and the link reasons
    _tamper_sweep(tmp_path, log1000, jobs, ALL_FIELDS if jobs == 1 else (1, 40))


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [2, 3])
def test_tamper_every_field_with_workers(tmp_path, log1000, jobs):
    _tamper_sweep(tmp_path, log1000, jobs, ALL_FIELDS)


def test_two_changes_the_first_is_reported_even_from_a_later_worker(tmp_path, log1000):
    # chunk 1 (worker 1) holds the first change, chunk 2 (this process) a later one
    d = flipped(flipped(log1000, HDR + 100 * 64 + 40), HDR + 130 * 64 + 40)
    rep = streamed(tmp_path, d, jobs=2, chunk=64)
    assert rep["bad_seq"] == 100 and rep == V.verify_bytes(d, KEY)
    d = flipped(flipped(log1000, HDR + 70 * 64 + 1), HDR + 10 * 64 + 50)
    rep = streamed(tmp_path, d, jobs=3, chunk=64)
    assert rep["bad_seq"] == 10 and rep == V.verify_bytes(d, KEY)


@pytest.mark.parametrize("start", [63, 64, 500, 998])
def test_relinked_forgery_fails_at_the_next_seal(tmp_path, log1000, start):
    d = bytearray(log1000)
    d[HDR + start * 64 + 20] ^= 1
    d = relink(bytes(d), start)
    want = V.verify_bytes(d, KEY)
    assert want["verdict"] == "tampered" and "seal MAC" in want["reason"]
    for jobs, chunk in ((1, 64), (2, 64), (2, 50), (3, 49)):
        same(streamed(tmp_path, d, jobs=jobs, chunk=chunk), want)


def test_truncated_short_and_empty_files(tmp_path, log1000):
    for d in (log1000[:-10], log1000[:HDR + 64 * 130 + 1], log1000[:HDR], log1000[:30], b"",
              log1000[:HDR + 64 * 128]):
        for jobs in (1, 2):
            same(streamed(tmp_path, d, jobs=jobs, chunk=64), V.verify_bytes(d, KEY))


def test_range_file_from_a_pruned_store_and_no_key(tmp_path):
    d = hmac_log(600, lo=137)  # anchor = stored link of seq 136, as after a prune
    rep = streamed(tmp_path, d, jobs=2, chunk=40)
    same(rep, V.verify_bytes(d, KEY))
    assert rep["verdict"] == "verified" and rep["first_seq"] == 137
    bad = flipped(d, 24)  # the anchor
    same(streamed(tmp_path, bad, jobs=2, chunk=40), V.verify_bytes(bad, KEY))
    # HMAC seals without the key: unsealed, the seals counted as unchecked
    rep = streamed(tmp_path, d, key=None, pubkey=PUB, jobs=2, chunk=40)
    same(rep, V.verify_bytes(d, None, PUB))
    assert rep["verdict"] == "unsealed" and rep["unchecked_seals"] > 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 10])
def test_ed25519_groups_split_across_chunks(tmp_path, chunk):
    data = signed_log()
    want = V.verify_bytes(data, pubkey=PUB)
    assert want["verdict"] == "verified" and want["seals"] >= 6
    for jobs in (1, 2):
        same(streamed(tmp_path, data, key=None, pubkey=PUB, jobs=jobs, chunk=chunk), want)
    # a flipped signature byte in each SEAL_PART and in the opening record
    ks = data[HDR + 10::64]
    i = ks.index(bytes([K.SEAL_ED25519]))
    for p in range(4):
        d = flipped(data, HDR + (i + p) * 64 + 17)
        d = relink(d, i + p)  # the chain stays intact: the signature must fail
        want = V.verify_bytes(d, pubkey=PUB)
        assert want["verdict"] == "tampered" and want["bad_seq"] == i, want
        same(streamed(tmp_path, d, key=None, pubkey=PUB, jobs=2, chunk=chunk), want)


def test_change_inside_a_seal_group_cut_by_a_chunk_boundary():
    """A record of a signed seal group changed after the group's first
    record: whatever the cut, the report is the in-memory one (the group is
    judged with the first bad record as its limit, as a whole-file scan
    does, not with what the next chunk would have said)."""
    data = signed_log(n=40, seal_every=9)
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "s.rvmw")
        n = (len(data) - HDR) // 64
        for r in range(n):
            for byte in (12, 40):  # actor (seal parts must be actor 0), link
                d = flipped(data, HDR + r * 64 + byte)
                want = V.verify_bytes(d, pubkey=PUB)
                with open(p, "wb") as f:
                    f.write(d)
                for chunk in (1, 2, 3, 5):
                    got = V.verify_file(p, None, PUB, jobs=1, chunk=chunk)
                    assert got == want, (r, byte, chunk, got, want)


def mixed_log(n=60):
    """HMAC and Ed25519 seals in one log (a profile that changed seal kind)."""
    log = SignedWitnessLog(DEV, boot=2, key=KEY, ring=1024, clock=lambda: 777,
                           signer=SEED)
    for i in range(n):
        log.emit(K.IPC_SEND, 2, 3, i)
        if i % 7 == 3:
            log.seal()
        elif i % 7 == 5:
            WitnessLog.seal(log)
    log.seal()
    b = io.BytesIO()
    log.export(b)
    return b.getvalue()


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 6])
def test_seals_of_both_kinds_are_judged_in_file_order(tmp_path, chunk):
    data = mixed_log()
    want = V.verify_bytes(data, KEY, PUB)
    assert want["verdict"] == "verified" and want["unchecked_seals"] == 0
    same(streamed(tmp_path, data, KEY, PUB, jobs=2, chunk=chunk), want)
    # forge each signature (chain relinked): the HMAC seals after it fail
    # too, but the signature comes first
    ks = data[HDR + 10::64]
    for i in [j for j in range(len(ks)) if ks[j] == K.SEAL_ED25519]:
        d = relink(flipped(data, HDR + (i + 1) * 64 + 20), i + 1)
        want = V.verify_bytes(d, KEY, PUB)
        assert want["bad_seq"] == i, want
        same(streamed(tmp_path, d, KEY, PUB, jobs=2, chunk=chunk), want)


def test_precomputed_signature_is_not_trusted_after_a_rotation():
    """Workers check signatures with the key given at the start; after a
    rotation the parent checks again with the key in force (two keys can
    share a 16-bit key id)."""
    data = signed_log(n=20, seal_every=9)
    ks = data[HDR + 10::64]
    i = ks.index(bytes([K.SEAL_ED25519]))
    st = V._SealState(None, PUB, DEV, {}, 0)
    st.pre[i] = False  # what a worker says with the first key
    r = st.check(data, i, len(ks), data[24:56])
    assert r is not None and "does not verify" in r[1]
    st = V._SealState(None, PUB, DEV, {}, 0)
    st.pub0 = Signer(SEED2).pub  # the key in force is not the one it used
    st.pre[i] = False
    assert st.check(data, i, len(ks), data[24:56]) is None and st.seals == [i + 3]


@pytest.mark.parametrize("chunk", [2, 3, 8])
def test_key_rotation_and_revoked_key_streamed(tmp_path, chunk):
    data = signed_log(n=50, seal_every=8, rotate_at=20)
    want = V.verify_bytes(data, pubkey=PUB)
    assert want["verdict"] == "verified" and len(want["key_rotations"]) == 1
    for jobs in (1, 3):
        same(streamed(tmp_path, data, key=None, pubkey=PUB, jobs=jobs, chunk=chunk), want)
    # seals made with the old key after the rotation are refused (revoked),
    # although the workers found their signatures good with the first key
    log = SignedWitnessLog(DEV, boot=2, ring=1024, seal_every=0, clock=lambda: 777,
                           signer=SEED)
    log.emit(K.IPC_SEND, 2, 3)
    log.seal()
    eseal.rotate(log, SEED2, actor=1)
    log.emit(K.IPC_SEND, 2, 3)
    log.signer = Signer(SEED)
    log.seal()
    b = io.BytesIO()
    log.export(b)
    want = V.verify_bytes(b.getvalue(), pubkey=PUB)
    assert want["verdict"] == "tampered" and "revoked" in want["reason"]
    same(streamed(tmp_path, b.getvalue(), key=None, pubkey=PUB, jobs=2, chunk=chunk), want)


def test_one_core_checks_in_this_process(tmp_path, log1000, monkeypatch):
    forks = []
    real_fork = os.fork

    def counting_fork():
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counting_fork)
    monkeypatch.setattr(V, "cpu_count", lambda: 1)
    p = tmp_path / "a.rvmw"
    p.write_bytes(log1000)
    rep = V.verify_file(str(p), KEY, chunk=64)  # jobs from the core count
    assert forks == [] and rep == V.verify_bytes(log1000, KEY)
    monkeypatch.setattr(V, "cpu_count", lambda: 2)
    rep = V.verify_file(str(p), KEY, chunk=64)
    assert len(forks) == 1 and rep == V.verify_bytes(log1000, KEY)
    rep = V.verify_file(str(p), KEY, chunk=64, jobs=4)
    assert len(forks) == 4 and rep == V.verify_bytes(log1000, KEY)
    rep = V.verify_file(str(p), KEY, chunk=5000, jobs=4)  # one chunk: no worker
    assert len(forks) == 4 and rep == V.verify_bytes(log1000, KEY)


def test_memory_does_not_grow_with_the_file(tmp_path):
    """Python heap peak of a verify (one process) for a log 1x and 8x the
    size: bounded by the chunk, not the file."""
    small = hmac_log(1200, seal_every=40)
    big = hmac_log(9600, seal_every=40)
    peaks = []
    for data in (small, big):
        p = tmp_path / ("m%d.rvmw" % len(data))
        p.write_bytes(data)
        tracemalloc.start()
        rep = V.verify_file(str(p), KEY, jobs=1, chunk=256)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert rep["verdict"] == "verified" and rep["seals"] >= len(data) // 64 // 50
    assert peaks[1] < 2 * peaks[0] + 64 * 1024, peaks
    assert peaks[1] < len(big) // 4, (peaks, len(big))


def _write_big(tmp_path, n, flip=None):
    data = hmac_log(n, seal_every=4096)
    if flip is not None:
        data = flipped(data, HDR + flip * 64 + 30)
    p = tmp_path / ("big%d.rvmw" % n)
    p.write_bytes(data)
    return str(p), data


def test_cli_jobs_option_on_a_log_of_two_default_chunks(tmp_path, capsys):
    n = V.CHUNK + 2000
    for flip in (V.CHUNK - 1, V.CHUNK, n - 1):
        p, data = _write_big(tmp_path, n, flip)
        for jobs in ("1", "2"):
            rc = cli.main(["verify", p, "--key-hex", KEYHEX, "--jobs", jobs])
            out = capsys.readouterr().out
            assert rc == 1
            assert out.strip() == ("tampered: %s: first bad record seq %d: link mismatch: "
                                   "record contents or chain altered" % (p, flip))
    p, data = _write_big(tmp_path, n)
    rc = cli.main(["verify", p, "--key-hex", KEYHEX, "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep == V.verify_bytes(data, KEY)
    for bad in ("0", "-1", "x"):
        with pytest.raises(SystemExit) as e:
            cli.main(["verify", p, "--key-hex", KEYHEX, "--jobs", bad])
        assert e.value.code == 2
        assert "--jobs" in capsys.readouterr().err


def _max_rss_kb(argv):
    """Peak RSS (KB) of the process `argv` and its workers (the largest)."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def _rvm():
    rvm = os.path.join(os.path.dirname(sys.executable), "rvm")
    if not os.path.exists(rvm):
        pytest.skip("rvm console script not installed (run make setup)")
    return rvm


def _chain_file(path, n):
    """An unsealed log of n records, chained with the kernel's chain_link."""
    import struct
    from rvm_mp.witness import genesis_link
    prev = genesis_link(DEV)
    out = bytearray(b"RVMW" + struct.pack("<HH", 1, 64) + DEV + prev + bytes(8))
    rec = struct.Struct("<IIHBBHH16x")
    for i in range(n):
        r = rec.pack(i, 0, 1, K.IPC_SEND, 0, 1, 2)
        prev = chain_link(prev, r)
        out += r + prev
    with open(path, "wb") as f:
        f.write(out)
    return str(path)


def test_process_peak_memory_sample(tmp_path):
    """`rvm verify` as a process (two jobs): verifying a log 8x larger
    (150,000 records, 9.6 MB) does not raise the peak RSS (the whole-file
    verifier needed about 3.4x the file more)."""
    rss = []
    for n in (V.CHUNK + 2000, 150000):
        p = _chain_file(tmp_path / ("c%d.rvmw" % n), n)
        rc, kb = _max_rss_kb([_rvm(), "verify", p, "--key-hex", KEYHEX, "--jobs", "2"])
        assert rc == 3, rc  # intact chain, no seal
        rss.append(kb)
    assert rss[1] - rss[0] < 6 * 1024 and rss[1] < 64 * 1024, rss


@pytest.mark.slow
def test_one_million_records_streamed_in_bounded_memory(tmp_path):
    """The 1M-record log (64 MB) of the goal: verified, peak RSS of every
    process under 64 MB, and a flip in its last record reported."""
    n = 1000000
    p, data = _write_big(tmp_path, n)
    rc, kb = _max_rss_kb([_rvm(), "verify", p, "--key-hex", KEYHEX])
    assert rc == 0 and kb < 64 * 1024, kb
    with open(p, "r+b") as f:
        f.seek(HDR + (n - 1) * 64 + 5)
        b = f.read(1)
        f.seek(HDR + (n - 1) * 64 + 5)
        f.write(bytes([b[0] ^ 1]))
    r = subprocess.run([_rvm(), "verify", p, "--key-hex", KEYHEX], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "first bad record seq %d:" % (n - 1) in r.stdout


def _two_pulls(variant=0):
    """(OLD, NEW, NEW from seq 250) of one HMAC-sealing device: OLD pulled
    after 300 records, NEW after 700; variant != 0 rewrites record 120."""
    log = WitnessLog(DEV, boot=1, key=KEY, ring=1024, seal_every=64,
                     clock=wvectors.FixedClock())
    out = []
    for i in range(700):
        log.emit(K.IPC_SEND, 2, 3, i, variant if i == 120 else 0)
        log.service()
        if i == 299:
            log.seal()
            b = io.BytesIO()
            log.export(b)
            out.append(b.getvalue())
    log.seal()
    for lo in (0, 250):
        b = io.BytesIO()
        log.export(b, lo)
        out.append(b.getvalue())
    return out


def test_since_streams_both_files_same_verdicts(tmp_path, monkeypatch):
    from host_tools.rvm import consistency as C
    old, new, rng = _two_pulls()
    _, forked, _ = _two_pulls(variant=9)
    cases = {"consistent": (new, old), "range": (rng, old), "forked": (forked, old),
             "truncated": (old[:HDR + 64 * 100], new), "gap": (new[:HDR], old),
             "tampered": (flipped(new, HDR + 500 * 64 + 40), old)}
    monkeypatch.setattr(V, "CHUNK", 64)  # many chunks per file
    seen = set()
    for name, (n_img, o_img) in cases.items():
        pn, po = tmp_path / (name + "_new.rvmw"), tmp_path / (name + "_old.rvmw")
        pn.write_bytes(n_img)
        po.write_bytes(o_img)
        want = C.consistency(o_img, n_img, KEY)
        got = C.consistency_files(str(pn), str(po), KEY, jobs=2)
        assert got == want, (name, got, want)
        seen.add(got["verdict"])
    assert {"consistent", "forked", "truncated", "tampered"} <= seen, seen


def test_a_dead_worker_or_a_shrinking_file_is_one_line_exit_2(tmp_path, log1000, monkeypatch,
                                                               capsys):
    p = tmp_path / "a.rvmw"
    p.write_bytes(log1000)
    real = V._chunk

    def dying(src, lo, hi, ctx):
        if lo == 64:  # chunk 1: a worker's, when jobs == 2
            os._exit(7)
        return real(src, lo, hi, ctx)

    monkeypatch.setattr(V, "_chunk", dying)
    monkeypatch.setattr(V, "CHUNK", 64)
    rc = cli.main(["verify", str(p), "--key-hex", KEYHEX, "--jobs", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == "rvm: cannot verify %s: a worker process died" % p
    monkeypatch.setattr(V, "_chunk", real)
    f = V._File(str(p))
    try:
        with open(p, "r+b") as g:
            g.truncate(HDR + 64 * 100)
        with pytest.raises(V.RvmToolError) as e:
            f.read(HDR + 64 * 64, 64 * 64)
        assert "shrank" in str(e.value) and e.value.code == 2
    finally:
        f.close()
