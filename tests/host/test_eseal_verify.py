"""Ed25519 seals off the device: `rvm verify --pubkey` (cryptography, no
secret), every signature the board (MicroPython) makes, bit flips in every
record and signature, relinked forgeries, key rotation and revoked keys,
consistency between pulls (`--since`) and `rvm audit` refusing forks of a
sealed head."""
import io
import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rvm_mp import eseal, kinds as K
from rvm_mp.ed25519_sign import Signer
from rvm_mp.witness import WitnessLog, chain_link, genesis_link
from rvm_mp.eseal import SignedWitnessLog
from host_tools.rvm import audit as A, cli, consistency as C, verify as V

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEV = bytes(range(16))
SEED = bytes(range(100, 132))
SEED2 = bytes(range(200, 232))
PUB = Signer(SEED).pub
PUB2 = Signer(SEED2).pub
HDR = 64


def _clock():
    return 777


def make_log(n=40, seal_every=10, variant=0, rotate_at=None, ring=1024):
    log = SignedWitnessLog(DEV, boot=2, ring=ring, seal_every=seal_every, clock=_clock,
                     signer=SEED)
    for i in range(n):
        if rotate_at is not None and i == rotate_at:
            eseal.rotate(log, SEED2, actor=1)
        log.emit(K.IPC_SEND, 2, 3, i, variant if i == 25 else 0)
        log.service()
    log.seal()
    return log


def export(log, lo=0):
    b = io.BytesIO()
    log.export(b, lo)
    return b.getvalue()


def relink(data, start):
    """Recompute every link from record index `start` on (an attacker
    without the key rewriting history)."""
    d = bytearray(data)
    prev = bytes(d[24:56]) if start == 0 else bytes(d[HDR + (start - 1) * 64 + 32:HDR + start * 64])
    for o in range(HDR + start * 64, len(d), 64):
        prev = chain_link(prev, d[o:o + 32])
        d[o + 32:o + 64] = prev
    return bytes(d)


def variant_seq(data):
    """Seq of make_log's record i == 25 (IPC_SEND with b = variant)."""
    for i in range((len(data) - HDR) // 64):
        o = HDR + i * 64
        if data[o + 10] == K.IPC_SEND and data[o + 16] == 25:
            return i + int.from_bytes(data[56:60], "little")
    raise AssertionError("no record 25")


def kinds_at(data):
    return [data[HDR + i * 64 + 10] for i in range((len(data) - HDR) // 64)]


def test_signed_log_verifies_with_public_key_only():
    data = export(make_log())
    rep = V.verify_bytes(data, pubkey=PUB)
    assert rep["verdict"] == "verified", rep
    assert rep["sealed_through"] == rep["last_seq"] and rep["unsealed_tail"] == 0
    assert rep["seals"] == kinds_at(data).count(K.SEAL_ED25519) >= 4
    # another public key: refused at the first seal
    first = kinds_at(data).index(K.SEAL_ED25519)
    rep = V.verify_bytes(data, pubkey=PUB2)
    assert rep["verdict"] == "tampered" and rep["bad_seq"] == first
    assert "another key" in rep["reason"]
    # an HMAC key cannot check Ed25519 seals: unsealed, and it says why
    rep = V.verify_bytes(data, key=bytes(32))
    assert rep["verdict"] == "unsealed" and "--pubkey" in rep["reason"]


MP_SCRIPT = r'''
import sys
sys.path.insert(0, %(root)r)
from rvm_mp.eseal import SignedWitnessLog
from rvm_mp import kinds, eseal, ed25519_sign
assert ed25519_sign.IMPL in ("portable", "natmod"), ed25519_sign.IMPL
log = SignedWitnessLog(bytes(range(16)), boot=1, ring=256, seal_every=16,
                 signer=bytes(range(100, 132)))
for i in range(40):
    if i == 20:
        eseal.rotate(log, bytes(range(200, 232)), 1)
    log.emit(kinds.IPC_SEND, 2, 3, i)
    log.service()
log.seal()
with open(%(out)r, "wb") as f:
    log.export(f)
print("IMPL", ed25519_sign.IMPL)
'''


def test_every_signature_made_on_micropython_verifies_with_cryptography(tmp_path):
    out = str(tmp_path / "mp.rvmw")
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    p = subprocess.run([exe, "-X", "heapsize=512K", "-c",
                        MP_SCRIPT % {"root": ROOT, "out": out}],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    data = open(out, "rb").read()
    ks = kinds_at(data)
    # every seal, checked one by one with cryptography, against the key in
    # force (SEED until the rotation's own seal, SEED2 after)
    n = 0
    key = PUB
    rot = ks.index(K.KEY_ROTATE)
    for i, k in enumerate(ks):
        if k != K.SEAL_ED25519:
            continue
        o = HDR + i * 64
        prev = data[24:56] if i == 0 else data[o - 32:o]
        sig = b"".join(data[o + p * 64 + 16:o + p * 64 + 32] for p in range(4))
        use = PUB2 if i > rot + 2 else PUB
        Ed25519PublicKey.from_public_bytes(use).verify(
            sig, eseal.message(DEV, prev, data[o:o + 16]))
        n += 1
    assert n >= 4
    rep = V.verify_bytes(data, pubkey=PUB)
    assert rep["verdict"] == "verified", rep
    assert rep["key_rotations"][0]["new_pubkey"] == PUB2.hex()
    assert rep["pubkey_end"] == PUB2.hex()
    # the same log, verified from its first record with the new key only: the
    # seals before the rotation are another key's
    assert V.verify_bytes(data, pubkey=PUB2)["verdict"] == "tampered"


def test_bit_flips_in_every_byte_are_refused_at_their_own_seq():
    """Every byte of every record (seals, parts, the rotation included): one
    bit per byte by default, all 8 with RVM_TEST_FULL=1 (8x longer)."""
    data = export(make_log(n=18, seal_every=6, rotate_at=9))
    nrec = (len(data) - HDR) // 64
    assert K.KEY_ROTATE in kinds_at(data) and nrec >= 30
    assert V.verify_bytes(data, pubkey=PUB)["verdict"] == "verified"
    full = os.environ.get("RVM_TEST_FULL") == "1"
    d = bytearray(data)
    for r in range(nrec):
        for byte in range(64):
            o = HDR + r * 64 + byte
            for bit in (range(8) if full else ((r * 7 + byte) % 8,)):
                d[o] ^= 1 << bit
                rep = V.verify_bytes(bytes(d), pubkey=PUB)
                d[o] ^= 1 << bit
                assert rep["verdict"] == "tampered" and rep["bad_seq"] == r, (r, byte, bit, rep)


def test_relinked_forgeries_fail_at_the_seal():
    data = export(make_log())
    ks = kinds_at(data)
    s = ks.index(K.SEAL_ED25519, 12)
    # a flipped signature bit, links recomputed: the seal itself fails
    for part in range(4):
        d = bytearray(data)
        d[HDR + (s + part) * 64 + 16 + 5] ^= 0x10
        rep = V.verify_bytes(relink(bytes(d), s), pubkey=PUB)
        assert rep["bad_seq"] == s and "does not verify" in rep["reason"], (part, rep)
    # a rewritten record before the seal, relinked: that seal fails
    d = bytearray(data)
    d[HDR + (s - 2) * 64 + 20] ^= 1
    rep = V.verify_bytes(relink(bytes(d), s - 2), pubkey=PUB)
    assert rep["bad_seq"] == s and rep["sealed_through"] < s
    # a part's time stamp changed, relinked: the part is refused
    d = bytearray(data)
    d[HDR + (s + 2) * 64 + 4] ^= 1
    rep = V.verify_bytes(relink(bytes(d), s + 2), pubkey=PUB)
    assert rep["bad_seq"] == s + 2 and "SEAL_PART" in rep["reason"]
    # the device id enters the signature: a relabelled range file fails
    rng = bytearray(export(make_log(), lo=5))
    rng[8] ^= 1
    rep = V.verify_bytes(bytes(rng), pubkey=PUB)
    assert rep["verdict"] == "tampered" and "does not verify" in rep["reason"]


def test_rotation_followed_and_old_key_revoked():
    log = make_log(n=30, seal_every=8, rotate_at=15)
    data = export(log)
    rep = V.verify_bytes(data, pubkey=PUB)
    assert rep["verdict"] == "verified" and len(rep["key_rotations"]) == 1
    j = rep["key_rotations"][0]["seq"]
    assert kinds_at(data)[j] == K.KEY_ROTATE
    # a seal made with the old key after the rotation: revoked
    log.emit(K.IPC_SEND, 2, 3)
    log.signer = Signer(SEED)
    s = log.seal()
    rep = V.verify_bytes(export(log), pubkey=PUB)
    assert rep["bad_seq"] == s and "revoked" in rep["reason"]
    assert "seq %d" % j in rep["reason"]


def test_rotation_must_be_sealed_by_the_old_key_right_after():
    log = SignedWitnessLog(DEV, ring=256, clock=_clock, signer=SEED)
    log.emit(K.BOOT_BEGIN)
    log.seal()
    new = Signer(SEED2)
    j = log.emit(K.KEY_ROTATE, 1, new.kid)
    eseal._put(log, j, new.pub[0:16], None)
    p = log.emit(K.SEAL_PART, 0, 1)
    eseal._put(log, p, new.pub[16:32], j)
    log.emit(K.IPC_SEND, 2, 3)  # not a seal
    log.seal()
    rep = V.verify_bytes(export(log), pubkey=PUB)
    assert rep["bad_seq"] == j + 2 and "not sealed by the old key" in rep["reason"]
    # a rotation sealed by the NEW key instead of the old one
    log = SignedWitnessLog(DEV, ring=256, clock=_clock, signer=SEED)
    log.emit(K.BOOT_BEGIN)
    log.seal()
    j = log.emit(K.KEY_ROTATE, 1, new.kid)
    eseal._put(log, j, new.pub[0:16], None)
    p = log.emit(K.SEAL_PART, 0, 1)
    eseal._put(log, p, new.pub[16:32], j)
    log.signer = new
    log.seal()
    rep = V.verify_bytes(export(log), pubkey=PUB)
    assert rep["bad_seq"] == j + 2 and "another key" in rep["reason"]


def test_incomplete_seal_at_the_end_is_an_unsealed_tail():
    data = export(make_log())
    cut = data[:-2 * 64]  # the last seal lost two of its parts
    rep = V.verify_bytes(cut, pubkey=PUB)
    ks = kinds_at(cut)
    last = len(ks) - 2  # the incomplete seal's opening record
    assert ks[last] == K.SEAL_ED25519
    prev_end = max(i for i in range(last) if ks[i] == K.SEAL_ED25519) + 3
    assert rep["verdict"] == "verified", rep
    assert rep["sealed_through"] == prev_end
    assert rep["unsealed_tail"] == len(ks) - 1 - prev_end


# ---- CLI ------------------------------------------------------------------

def _run(capsys, *argv):
    rc = cli.main(list(argv))
    o = capsys.readouterr()
    return rc, o.out, o.err


def test_cli_pubkey_hex_and_files(tmp_path, capsys):
    f = str(tmp_path / "a.rvmw")
    with open(f, "wb") as fh:
        fh.write(export(make_log()))
    rc, out, _ = _run(capsys, "verify", f, "--pubkey", PUB.hex())
    assert rc == 0 and out.startswith("verified:")
    kf = str(tmp_path / "seal.key")
    rc, out, _ = _run(capsys, "keys", "gen", "--ed25519", "-o", kf)
    assert rc == 0 and open(kf + ".pub").read().strip() == out.strip()
    assert oct(os.stat(kf).st_mode & 0o777) == "0o600"
    rc, out2, _ = _run(capsys, "keys", "pub", kf)
    assert out2 == out
    raw = str(tmp_path / "raw.pub")
    with open(raw, "wb") as fh:
        fh.write(PUB)
    hexf = str(tmp_path / "hex.pub")
    with open(hexf, "w") as fh:
        fh.write(PUB.hex() + "\n")
    for p in (raw, hexf):
        rc, out, _ = _run(capsys, "verify", f, "--pubkey", p, "--json")
        assert rc == 0 and json.loads(out)["verdict"] == "verified"
    rc, out, _ = _run(capsys, "verify", f, "--pubkey", PUB2.hex())
    assert rc == 1 and "another key" in out


@pytest.mark.parametrize("bad", ["zz" * 32, "ab" * 31, "", "/nonexistent/x.pub"])
def test_cli_bad_pubkey_one_line_exit_2(capsys, tmp_path, bad):
    f = str(tmp_path / "a.rvmw")
    with open(f, "wb") as fh:
        fh.write(export(make_log(n=5)))
    rc, out, err = _run(capsys, "verify", f, "--pubkey", bad)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rvm: bad public key"), err


def test_cli_both_keys_check_a_log_that_changed_seal_kind(tmp_path, capsys):
    # HMAC seals first (boot 1), then the profile signs (boot 2, same store)
    from rvm_mp.witness_store import WitnessStore
    wd = str(tmp_path / "wit")
    st = WitnessStore(wd, 32, genesis_link(DEV))
    log = WitnessLog(DEV, boot=1, ring=64, key=bytes(range(32, 64)), store=st,
                     clock=_clock)
    log.emit(K.BOOT_BEGIN)
    log.seal()
    log.flush()
    st.close()
    st = WitnessStore(wd, 32, genesis_link(DEV))
    sl = SignedWitnessLog(DEV, boot=2, ring=64, store=st, clock=_clock, signer=SEED)
    sl.emit(K.BOOT_BEGIN)
    sl.seal()
    b = io.BytesIO()
    sl.export(b)
    data = b.getvalue()
    f = _files(tmp_path, mixed=data)["mixed"]
    rc, out, _ = _run(capsys, "verify", f, "--pubkey", PUB.hex(), "--key-hex",
                      bytes(range(32, 64)).hex(), "--json")
    rep = json.loads(out)
    assert rc == 0 and rep["seals"] == 2 and rep["unchecked_seals"] == 0, rep
    rc, out, _ = _run(capsys, "verify", f, "--pubkey", PUB.hex(), "--json")
    assert rc == 0 and json.loads(out)["unchecked_seals"] == 1
    with pytest.raises(SystemExit) as e:
        cli.main(["verify", f])
    assert e.value.code == 2


# ---- consistency -----------------------------------------------------------

def _files(tmp_path, **logs):
    out = {}
    for name, data in logs.items():
        p = str(tmp_path / (name + ".rvmw"))
        with open(p, "wb") as f:
            f.write(data)
        out[name] = p
    return out


def test_since_consistent_gap_truncated_forked(tmp_path, capsys):
    log = make_log(n=30)
    old = export(log)
    for i in range(30):
        log.emit(K.IPC_SEND, 2, 3, 100 + i)
        log.service()
    log.seal()
    new = export(log)
    old_head = V.verify_bytes(old, pubkey=PUB)["sealed_through"]
    rng = export(log, lo=old_head - 3)
    cont = export(log, lo=old_head + 1)
    gap = export(log, lo=old_head + 5)
    fork = export(make_log(n=60, variant=9))  # seq 25's record differs
    f = _files(tmp_path, old=old, new=new, rng=rng, cont=cont, gap=gap, fork=fork)
    for name in ("new", "rng", "cont"):
        rc, out, _ = _run(capsys, "verify", f[name], "--pubkey", PUB.hex(), "--since", f["old"])
        assert rc == 0 and out.startswith("consistent:"), (name, out)
    rc, out, _ = _run(capsys, "verify", f["gap"], "--pubkey", PUB.hex(), "--since", f["old"])
    assert rc == 3 and out.startswith("gap:")
    rc, out, _ = _run(capsys, "verify", f["old"], "--pubkey", PUB.hex(), "--since", f["new"])
    assert rc == 1 and out.startswith("truncated:")
    rc, out, _ = _run(capsys, "verify", f["fork"], "--pubkey", PUB.hex(), "--since", f["old"],
                      "--json")
    rep = json.loads(out)
    assert rc == 1 and rep["verdict"] == "forked" and rep["diverge_seq"] == variant_seq(old), rep
    # a fork that only continues from OLD's head: NEW's anchor differs
    fcont = export(make_log(n=60, variant=9), lo=old_head + 1)
    rep = C.consistency(old, fcont, pubkey=PUB)
    assert rep["verdict"] == "forked" and rep["diverge_seq"] == old_head + 1
    # a NEW that does not verify is refused with its own first bad seq
    bad = bytearray(new)
    bad[HDR + 40 * 64 + 3] ^= 1
    rep = C.consistency(old, bytes(bad), pubkey=PUB)
    assert rep["verdict"] == "tampered" and rep["diverge_seq"] == 40


def test_since_follows_a_rotation_in_old(tmp_path):
    log = make_log(n=30, seal_every=8, rotate_at=10)
    old = export(log)
    for i in range(10):
        log.emit(K.IPC_SEND, 2, 3, i)
        log.service()
    log.seal()
    head = V.verify_bytes(old, pubkey=PUB)["sealed_through"]
    rep = C.consistency(old, export(log, lo=head - 2), pubkey=PUB)
    assert rep["verdict"] == "consistent", rep


# ---- audit -------------------------------------------------------------------

def test_audit_with_pubkey_keeps_heads_and_refuses_a_fork(tmp_path, capsys):
    log = make_log(n=30)
    f = _files(tmp_path, a=export(log), fork=export(make_log(n=50, variant=9), lo=20))
    db = str(tmp_path / "a.sqlite")
    rc, out, _ = _run(capsys, "audit", f["a"], "--db", db, "--pubkey", PUB.hex())
    assert rc == 0 and "stored" in out
    con = A.open_db(db)
    heads = con.execute("SELECT seq FROM heads ORDER BY seq").fetchall()
    assert len(heads) == V.verify_bytes(export(log), pubkey=PUB)["seals"]
    rc, out, err = _run(capsys, "audit", f["fork"], "--db", db, "--pubkey", PUB.hex())
    assert rc == 1 and "sealed head" in err, err
    assert "first diverging seq %d" % variant_seq(export(log)) in err, err
    # nothing of the refused log was stored
    n = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert n == (len(export(log)) - HDR) // 64


# ---- end to end: a signing board behind the console -------------------------

class _SigningBoard:
    """boardkit's in-process board, but its log signs seals (witness.seal =
    ed25519) and its platform holds the seal key files."""

    def __init__(self, path):
        import boardkit
        from rvm_mp import board, control
        from rvm_mp.hal import Platform, MemConsole
        from rvm_mp.kernel import Kernel
        from rvm_mp.witness_store import WitnessStore
        from host_tools.rvm.transport import LoopbackTransport
        prof = board.load("seed-512k", dirs=(os.path.join(ROOT, "boards"),))
        pf = Platform(path, device_id=DEV, key=boardkit.KEY)
        pf.write_file(eseal.SEED_FILE, SEED)
        con = pf.attach_console(MemConsole())
        st = WitnessStore(os.path.join(path, "wit"), seg_records=32,
                          genesis=genesis_link(DEV))
        seed, _ = eseal.load_seed(pf)
        log = SignedWitnessLog(DEV, boot=1, ring=16, store=st, signer=seed)
        log.emit(K.BOOT_BEGIN, 0, 0, 1)
        self.kernel = Kernel(pf, prof, log=log)
        self.pf = pf
        self.control = control.Control(self.kernel, pf, board="seed-512k")
        self.t = LoopbackTransport(self.control, con)


def test_pull_from_a_signing_board_rotate_and_pull_again(tmp_path, capsys):
    from host_tools.rvm import console
    os.makedirs(str(tmp_path / "fs"))
    brd = _SigningBoard(str(tmp_path / "fs"))
    for i in range(70):
        brd.kernel.log.emit(K.IPC_SEND, 2, 3, i)
    brd.kernel.log.service()
    a = str(tmp_path / "a.rvmw")
    rep = console.pull(brd.t, a, window=32, timeout=0.5)
    v = V.verify_bytes(open(a, "rb").read(), pubkey=PUB)
    assert v["verdict"] == "verified" and v["unsealed_tail"] == 0, v
    assert rep["last_seq"] == rep["seal_seq"] == v["sealed_through"]
    # rotate on the board over the console; the new public key comes back
    out = console.run_command(brd.t, "keyrotate", timeout=2.0)
    new_pub = bytes.fromhex(out["pubkey"])
    assert brd.pf.read_file(eseal.PUB_FILE) == new_pub != PUB
    for i in range(40):
        brd.kernel.log.emit(K.IPC_SEND, 2, 3, i)
    b = str(tmp_path / "b.rvmw")
    console.pull(brd.t, b, window=32, timeout=0.5)
    v = V.verify_bytes(open(b, "rb").read(), pubkey=PUB)
    assert v["verdict"] == "verified" and v["pubkey_end"] == new_pub.hex(), v
    assert v["key_rotations"][0]["seq"] == out["rotate_seq"]
    rc = cli.main(["verify", b, "--pubkey", PUB.hex(), "--since", a])
    assert rc == 0 and capsys.readouterr().out.startswith("consistent:")
    db = str(tmp_path / "d.sqlite")
    assert cli.main(["audit", a, "--db", db, "--pubkey", PUB.hex()]) == 0
    assert cli.main(["audit", b, "--db", db, "--pubkey", PUB.hex()]) == 0


def test_refused_seal_is_skipped_by_the_verifier():
    import test_eseal as KT  # noqa: the kernel test's out-of-RAM signer
    log = SignedWitnessLog(DEV, ring=256, clock=_clock, signer=KT._NoRam())
    log.emit(K.IPC_SEND, 2, 3)
    assert log.seal() == -1
    log.signer = SEED
    log.emit(K.IPC_SEND, 2, 3)
    s = log.seal()
    rep = V.verify_bytes(export(log), pubkey=PUB)
    assert rep["verdict"] == "verified" and rep["seals"] == 1
    assert rep["sealed_through"] == s + 3


def test_build_ships_the_seal_code_only_to_signing_profiles():
    from host_tools.rvm import boards, build
    names = lambda prof: {os.path.basename(r) for r, _ in build.sources(prof)}
    hm = names(boards.load("seed-64k"))
    ed = names(boards.load("appliance"))
    for m in ("eseal.py", "ed25519_sign.py", "ed25519_portable.py", "sha512.py"):
        assert m not in hm and m in ed
    assert "witness.py" in hm and "ed25519.py" in hm  # P3 verify stays


def test_audit_follows_a_rotation_into_later_range_pulls(tmp_path, capsys):
    log = make_log(n=30, seal_every=8, rotate_at=10)
    for i in range(20):
        log.emit(K.IPC_SEND, 2, 3, i)
        log.service()
    log.seal()
    whole = export(log)
    rot = V.verify_bytes(whole, pubkey=PUB)["key_rotations"][0]["seq"]
    later = export(log, lo=rot + 12)  # starts after the rotation: new key
    assert V.verify_bytes(later, pubkey=PUB)["verdict"] == "tampered"
    f = _files(tmp_path, whole=whole, later=later)
    db = str(tmp_path / "k.sqlite")
    assert cli.main(["audit", f["whole"], "--db", db, "--pubkey", PUB.hex()]) == 0
    # the auditor keeps giving the first key; the database knows the rotation
    assert cli.main(["audit", f["later"], "--db", db, "--pubkey", PUB.hex()]) == 0
    # an unrelated key is used as given (and refused)
    other = Signer(bytes(32)).pub.hex()
    assert cli.main(["audit", f["later"], "--db", db, "--pubkey", other]) == 1
