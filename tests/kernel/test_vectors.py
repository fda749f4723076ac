# Golden witness vectors (tests/vectors/witness/, written on MicroPython by
# tools/make_vectors.py): the device code re-reads each file, recomputes the
# chain and the seals with rvm_mp.witness / rvm_mp.hmac256 and checks the
# index's expectations; then every vector is rebuilt from its recipe
# (tests/kernel/wvectors.py, fixed clock) and must match the committed bytes.
import json
import struct

import kt
import wvectors
from rvm_mp import kinds
from rvm_mp.witness import genesis_link, chain_link, seal_mac, HDR_SIZE, REC_SIZE
from rvm_mp.hmac256 import Hmac256, key_id

HEAP = "256K"


def _vdir():
    return kt.repo_root() + "/tests/vectors/witness"


def _index():
    with open(_vdir() + "/index.json") as f:
        return json.loads(f.read())


def _read(name):
    with open(_vdir() + "/" + name, "rb") as f:
        return f.read()


def _device_verify(data, key):
    """The chain and seal check written with the kernel's own functions.
    Returns (verdict, first_seq, records, sealed_through, bad_seq)."""
    assert data[0:4] == b"RVMW"
    version, recsize = struct.unpack_from("<HH", data, 4)
    assert version == 1 and recsize == REC_SIZE
    device_id = data[8:24]
    anchor = data[24:56]
    first = struct.unpack_from("<I", data, 56)[0]
    if first == 0:
        assert anchor == genesis_link(device_id)
    n = (len(data) - HDR_SIZE) // REC_SIZE
    hm = Hmac256(key)
    kid = key_id(key)
    prev = anchor
    sealed = None
    for i in range(n):
        o = HDR_SIZE + i * REC_SIZE
        rec = data[o:o + REC_SIZE]
        seq = struct.unpack_from("<I", rec, 0)[0]
        if seq != first + i or chain_link(prev, rec) != rec[32:64]:
            return "tampered", first, n, sealed, first + i
        if rec[10] == kinds.SEAL:
            tgt = rec[14] | (rec[15] << 8)
            if tgt != kid or seal_mac(hm, prev, rec) != rec[16:32]:
                return "tampered", first, n, sealed, first + i
            sealed = seq
        prev = rec[32:64]
    if sealed is None:
        return "unsealed", first, n, None, None
    return "verified", first, n, sealed, None


def test_index_lists_every_vector():
    idx = _index()
    names = [v["file"] for v in idx["vectors"]]
    for name in wvectors.NAMES:
        assert name + ".rvmw" in names
    assert idx["runtime"].startswith("micropython")  # written by the MP kernel
    verdicts = [v["verdict"] for v in idx["vectors"]]
    for want in ("verified", "unsealed", "tampered"):
        assert want in verdicts


def test_device_code_agrees_with_index():
    for v in _index()["vectors"]:
        data = _read(v["file"])
        key = bytes.fromhex(v["key_hex"])
        assert data[8:24] == bytes.fromhex(v["device_id_hex"])
        got = _device_verify(data, key)
        want = (v["verdict"], v["first_seq"], v["records"], v["sealed_through"],
                v["bad_seq"])
        assert got == want, (v["file"], got, want)


def test_seal_key_of_other_key_vector_verifies_it():
    # other_key.rvmw is refused with KEY but is a sound log under its own key
    for v in _index()["vectors"]:
        if v["file"] == "other_key.rvmw":
            data = _read(v["file"])
            got = _device_verify(data, bytes.fromhex(v["seal_key_hex"]))
            assert got[0] == "verified" and got[3] == v["last_seq"]
            return
    assert False, "other_key.rvmw missing from the index"


def test_reboot_vector_spans_two_boots():
    data = _read("reboot.rvmw")
    n = (len(data) - HDR_SIZE) // REC_SIZE
    boots = []
    restored = None
    for i in range(n):
        o = HDR_SIZE + i * REC_SIZE
        boot = struct.unpack_from("<H", data, o + 8)[0]
        if not boots or boots[-1] != boot:
            boots.append(boot)
        if data[o + 10] == kinds.CHAIN_RESTORED:
            restored = (i, struct.unpack_from("<I", data, o + 16)[0])
    assert boots == [1, 2]
    # CHAIN_RESTORED's a = the next seq the store restored = the record
    # before it (BOOT_BEGIN of boot 2)
    assert restored is not None and restored[1] == restored[0] - 1


def test_tampered_vector_is_the_documented_mutation():
    sealed = _read("sealed.rvmw")
    bad = _read("tampered.rvmw")
    diff = [i for i in range(len(sealed)) if sealed[i] != bad[i]]
    assert diff == [HDR_SIZE + wvectors.TAMPER_SEQ * REC_SIZE + 16]
    assert sealed[diff[0]] ^ bad[diff[0]] == 0x01


def test_regenerating_reproduces_committed_bytes():
    d = kt.tmpdir("vec")
    try:
        for v in _index()["vectors"]:
            name = v["file"][:-5]
            data, exp = wvectors.build(name, d + "/" + name)
            assert data == _read(v["file"]), "%s differs when rebuilt" % name
            assert exp["verdict"] == v["verdict"] and exp["bad_seq"] == v["bad_seq"]
    finally:
        kt.rmtree(d)
