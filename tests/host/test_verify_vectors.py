"""`rvm verify` on the golden vectors written by the MicroPython kernel
(tests/vectors/witness/, see tools/make_vectors.py)."""
import json
import os

import pytest

from host_tools.rvm import cli
from host_tools.rvm import verify as V

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VDIR = os.path.join(ROOT, "tests", "vectors", "witness")
with open(os.path.join(VDIR, "index.json")) as _f:
    INDEX = json.load(_f)
EXIT = {"verified": 0, "tampered": 1, "unsealed": 3}


@pytest.mark.parametrize("vec", INDEX["vectors"], ids=lambda v: v["file"])
def test_rvm_verify_gives_expected_verdict(vec, capsys):
    path = os.path.join(VDIR, vec["file"])
    rc = cli.main(["verify", path, "--key-hex", vec["key_hex"], "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == EXIT[vec["verdict"]]
    for k in ("verdict", "records", "first_seq", "last_seq", "sealed_through",
              "unsealed_tail", "bad_seq", "device_id"):
        want = vec["device_id_hex"] if k == "device_id" else vec[k]
        assert rep[k] == want, (vec["file"], k, rep[k], want)


def test_vectors_were_written_on_micropython():
    assert INDEX["runtime"].startswith("micropython ")


def test_file_hashes_match_index():
    import hashlib
    for vec in INDEX["vectors"]:
        with open(os.path.join(VDIR, vec["file"]), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == vec["sha256"], vec["file"]


def test_other_key_vector_verifies_with_its_own_key():
    vec = [v for v in INDEX["vectors"] if v["file"] == "other_key.rvmw"][0]
    with open(os.path.join(VDIR, vec["file"]), "rb") as f:
        data = f.read()
    rep = V.verify_bytes(data, bytes.fromhex(vec["seal_key_hex"]))
    assert rep["verdict"] == "verified" and rep["sealed_through"] == vec["last_seq"]
    rep = V.verify_bytes(data, bytes.fromhex(vec["key_hex"]))
    assert "another key" in rep["reason"]


def test_relinked_vector_is_caught_by_the_next_seal():
    vec = [v for v in INDEX["vectors"] if v["file"] == "relinked.rvmw"][0]
    with open(os.path.join(VDIR, vec["file"]), "rb") as f:
        rep = V.verify_bytes(f.read(), bytes.fromhex(vec["key_hex"]))
    assert rep["bad_seq"] == vec["bad_seq"]
    assert "seal MAC" in rep["reason"]
