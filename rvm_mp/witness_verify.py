# Verify a window of witness records against the link before it: the C
# natmod rvmn_link.verify when present (no heap), else the portable body
# below (impls.py). Used by the store's recovery and verify walks and by
# the P3 linkage proof.
from . import impls
from .witness import chain_link


def verify_window_py(anchor, recs, n):
    """Index of the first of the n 64-byte records in `recs` whose link does
    not follow from `anchor` (the link before the first) and the records
    before it; n when the whole window verifies. Portable reference of
    rvmn_link.verify."""
    if len(anchor) < 32 or n < 0 or n * 64 > len(recs):
        raise ValueError("window longer than buffer")
    prev = bytes(anchor[0:32])
    mv = memoryview(recs)
    for i in range(n):
        r = mv[i * 64:i * 64 + 64]
        link = bytes(r[32:64])
        if chain_link(prev, r) != link:
            return i
        prev = link
    return n


_NL = impls.natmod("rvmn_link")
verify_window = _NL.verify if _NL else verify_window_py
impls.chose("verify", "natmod" if _NL else "portable")
