# RFC 9162 / RFC 6962 Merkle hashes: fixed vectors from the Certificate
# Transparency reference test data, an independent recomputation with
# hashlib in this file, inclusion paths for every leaf of trees 1..17, and
# a strict verifier that refuses mutated proofs. Both runtimes.
import hashlib

from rvm_mp import merkle

BOARD = "seed-64k"

# the 8 leaves of the CT reference tests and the roots of their prefixes
LEAVES = (b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31",
          b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
          bytes(range(0x60, 0x70)))
ROOTS = (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)
# PATH(0, D[8]) of the CT reference tests
PATH0_8 = (
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
)


def _h(data):
    return hashlib.sha256(data).digest()


def _ref_root(leaves):
    """RFC 6962 section 2.1 written out with list slices (independent of
    rvm_mp.merkle's index recursion)."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + _ref_root(leaves[:k]) + _ref_root(leaves[k:]))


def _ref_path(m, leaves):
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return _ref_path(m, leaves[:k]) + [_ref_root(leaves[k:])]
    return _ref_path(m - k, leaves[k:]) + [_ref_root(leaves[:k])]


def test_domain_separated_hashes():
    assert merkle.leaf_hash(b"abc") == _h(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == _h(b"\x01" + b"L" * 32 + b"R" * 32)
    assert merkle.root_of([]) == _h(b"")


def test_ct_reference_roots_and_path():
    for n in range(1, 9):
        leaves = list(LEAVES[:n])
        assert merkle.root_of(leaves).hex() == ROOTS[n - 1], n
        assert _ref_root(leaves).hex() == ROOTS[n - 1], n
    path = merkle.inclusion_path(lambda i: LEAVES[i], 8, 0)
    assert [p.hex() for p in path] == list(PATH0_8)


def test_every_leaf_of_trees_1_to_17():
    leaves = [bytes([i, i * 7 & 255]) * (i % 5) for i in range(18)]
    for n in range(1, 18):
        sub = leaves[:n]
        root = merkle.root_of(sub)
        assert root == _ref_root(sub)
        for m in range(n):
            path = merkle.inclusion_path(lambda i: sub[i], n, m)
            assert path == _ref_path(m, sub), (n, m)
            assert merkle.verify_inclusion(sub[m], m, n, path, root)
            # wrong index or wrong leaf fail
            if n > 1:
                assert not merkle.verify_inclusion(sub[m], (m + 1) % n, n, path, root)
                assert not merkle.verify_inclusion(sub[m] + b"x", m, n, path, root)
            # the root of another tree size does not verify
            other = merkle.root_of(leaves[:n + 1])
            assert not merkle.verify_inclusion(sub[m], m, n + 1, path, other)


def test_mutated_proofs_refused():
    leaves = [b"rec%d" % i for i in range(11)]
    root = merkle.root_of(leaves)
    path = merkle.inclusion_path(lambda i: leaves[i], 11, 6)
    assert merkle.verify_inclusion(leaves[6], 6, 11, path, root)
    for j in range(len(path)):
        for bit in (0, 7, 255):
            bad = list(path)
            b = bytearray(bad[j])
            b[bit % 32] ^= 1 << (bit % 8)
            bad[j] = bytes(b)
            assert not merkle.verify_inclusion(leaves[6], 6, 11, bad, root)
    assert not merkle.verify_inclusion(leaves[6], 6, 11, path[:-1], root)
    assert not merkle.verify_inclusion(leaves[6], 6, 11, path + [path[0]], root)
    assert not merkle.verify_inclusion(leaves[6], 6, 11, [path[1], path[0]] + path[2:], root)
    assert not merkle.verify_inclusion(leaves[6], 6, 11, [p[:31] for p in path], root)
    assert not merkle.verify_inclusion(leaves[6], 11, 11, path, root)
    assert not merkle.verify_inclusion(leaves[6], -1, 11, path, root)
    assert not merkle.verify_inclusion(leaves[6], 6, 11, path, root[:31])


def test_node_cannot_pass_as_leaf():
    # second-preimage attempt: present an interior node's children as a leaf
    leaves = [b"a", b"b", b"c", b"d"]
    root = merkle.root_of(leaves)
    inner = merkle.leaf_hash(b"a") + merkle.leaf_hash(b"b")
    right = merkle.node_hash(merkle.leaf_hash(b"c"), merkle.leaf_hash(b"d"))
    assert not merkle.verify_inclusion(inner, 0, 2, [right], root)
    # without domain separation this would have been accepted
    assert _h(_h(inner) + right) != root
