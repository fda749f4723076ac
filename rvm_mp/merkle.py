# Merkle tree hashes of RFC 9162 (Certificate Transparency v2, as RFC 6962):
# domain-separated leaves and nodes, so a leaf can never pass as a node.
#
#   leaf(d)    = SHA-256(0x00 || d)
#   node(l, r) = SHA-256(0x01 || l || r)
#   MTH({})    = SHA-256("")
#   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n]))   k = largest power of 2 < n
#
# The kernel commits the root of a sealed witness range [lo, hi) (leaves are
# the 64-byte records) and later proves that a record is in it from the
# root alone, after the records themselves have left RAM (P3 inclusion).
# `get(i)` callbacks give leaf data i (0-based within the tree) lazily, so a
# tree never needs all its leaves in RAM at once.
import hashlib

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data):
    h = hashlib.sha256(_LEAF)
    h.update(data)
    return h.digest()


def node_hash(left, right):
    h = hashlib.sha256(_NODE)
    h.update(left)
    h.update(right)
    return h.digest()


def _split(n):
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _mth(get, lo, hi):
    n = hi - lo
    if n == 1:
        return leaf_hash(get(lo))
    k = _split(n)
    return node_hash(_mth(get, lo, lo + k), _mth(get, lo + k, hi))


def root(get, n):
    """MTH of leaves get(0..n-1)."""
    if n <= 0:
        return hashlib.sha256(b"").digest()
    return _mth(get, 0, n)


def root_of(leaves):
    return root(lambda i: leaves[i], len(leaves))


def _path(get, m, lo, hi, out):
    n = hi - lo
    if n <= 1:
        return
    k = _split(n)
    if m < k:
        _path(get, m, lo, lo + k, out)
        out.append(_mth(get, lo + k, hi))
    else:
        _path(get, m - k, lo + k, hi, out)
        out.append(_mth(get, lo, lo + k))


def inclusion_path(get, n, index):
    """Audit path for leaf `index` in a tree of n leaves (RFC 6962 PATH)."""
    if index < 0 or index >= n:
        return None
    out = []
    _path(get, index, 0, n, out)
    return out


def verify_inclusion(leaf_data, index, size, path, root_hash):
    """RFC 9162 2.1.3.2: True when leaf_data is leaf `index` of the tree of
    `size` leaves whose root is root_hash. Strict: wrong lengths fail."""
    if index < 0 or index >= size or len(root_hash) != 32:
        return False
    fn = index
    sn = size - 1
    r = leaf_hash(leaf_data)
    for p in path:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == bytes(root_hash)
