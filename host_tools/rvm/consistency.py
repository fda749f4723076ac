"""Consistency between two pulls of one device's witness log: does NEW
extend OLD? (`rvm verify NEW --since OLD`, `rvm audit` on every import.)

The proof is the hash chain plus OLD's sealed head, not an RFC 9162 Merkle
consistency proof. Every link commits to the whole history before it:

    link[s] = SHA-256(b"RVMW" + link[s-1] + rec[s][0:32])

so two verified logs whose links agree at seq s hold the same records up
to s (from wherever each one starts). OLD's sealed head (hs, link[hs]) --
the last record its seals authenticate -- is all a monitor has to keep;
NEW extends OLD iff NEW is verified and its link at hs (or its anchor, when
NEW starts at hs + 1) equals OLD's. The chain segment NEW carries between
the two heads is the consistency proof. A Merkle proof would be O(log n)
hashes instead of O(records since OLD), but the auditor pulls those records
anyway (to store and query them), and a tree on the board would cost RAM,
flash and a second commitment for the seals to sign; the chain costs
nothing more than what the board already keeps.

Verdicts: "consistent" (exit 0), "forked" (exit 1: NEW rewrites OLD's
sealed history; `diverge_seq` is the first seq NEW holds whose link differs
from OLD's), "truncated" (exit 1: NEW ends before OLD's sealed head, a
rolled-back log), "gap" (exit 3: NEW starts after OLD's head + 1, so nothing
links them; pull from an earlier seq), and NEW's own verify verdict when NEW
does not verify.
"""
from . import verify as V
from .errors import RvmToolError

HDR, REC = V.HDR, V.REC
_M32 = 0xFFFFFFFF


def link_at(data, first, seq):
    """Stored link of `seq` in a file image starting at `first` (the anchor
    for seq first-1), or None when the file does not hold it."""
    i = seq - first
    if i == -1:
        return bytes(data[24:56])
    n = (len(data) - HDR) // REC
    if i < 0 or i >= n:
        return None
    o = HDR + i * REC
    return bytes(data[o + 32:o + 64])


def sealed_heads(data, first, seal_idx):
    """[(seq, link hex)] for each index a valid seal authenticates through."""
    return [((first + i) & _M32, bytes(data[HDR + i * REC + 32:HDR + i * REC + 64]).hex())
            for i in seal_idx]


def key_at(rep_old, pubkey, seq):
    """The Ed25519 key in force at `seq`, after OLD's rotations before it
    (a rotation is in force once its sealing group, 5 records on, is done)."""
    k = pubkey
    for r in rep_old.get("key_rotations") or []:
        if r["seq"] + 5 < seq:
            k = bytes.fromhex(r["new_pubkey"])
    return k


def check_head(data, rep, head_seq, head_link):
    """Compare a verified NEW image with one sealed head. Returns
    (verdict, diverge_seq, reason); verdict None means consistent."""
    nf, nl = rep["first_seq"], rep["last_seq"]
    if nl is None or head_seq > nl:
        return ("truncated", None, "NEW ends at seq %s, before the sealed head at seq %d: "
                "NEW does not extend it (a truncated or rolled-back log)" % (nl, head_seq))
    if head_seq < nf - 1:
        return ("gap", None, "NEW starts at seq %d, after the sealed head at seq %d + 1: "
                "nothing links them (pull from seq %d or earlier)" % (nf, head_seq, head_seq + 1))
    got = link_at(data, nf, head_seq)
    if got == bytes(head_link):
        return None, None, None
    return "forked", None, "link of seq %d differs" % head_seq


def consistency(old, new, key=None, pubkey=None, jobs=None):
    """Verify OLD and NEW (images: bytes or V.FileImage, the latter checked
    by `jobs` processes) and prove NEW extends OLD's sealed head. Returns a
    report dict."""
    ro = V.verify_bytes(old, key, pubkey, jobs=jobs)
    out = {"verdict": None, "old": ro, "new": None, "old_head": None,
           "diverge_seq": None, "reason": None, "tail_differs_at": None}
    if ro["verdict"] != "verified":
        out["verdict"] = "old_" + ro["verdict"]
        out["reason"] = "OLD is %s: %s" % (ro["verdict"], ro["reason"])
        return out
    hs = ro["sealed_through"]
    hl = link_at(old, ro["first_seq"], hs)
    out["old_head"] = {"seq": hs, "link": hl.hex()}
    try:
        nfirst = V.parse_header(new[0:HDR])[2]
    except ValueError:
        nfirst = ro["first_seq"]
    rn = V.verify_bytes(new, key, key_at(ro, pubkey, nfirst) if pubkey else None,
                        jobs=jobs)
    out["new"] = rn
    if rn["verdict"] != "verified":
        out["verdict"] = rn["verdict"]
        out["diverge_seq"] = rn["bad_seq"]
        out["reason"] = "NEW is %s: %s" % (rn["verdict"], rn["reason"])
        return out
    if rn["device_id"] != ro["device_id"]:
        out["verdict"] = "forked"
        out["reason"] = "NEW is from device %s, OLD from %s" % (rn["device_id"], ro["device_id"])
        return out
    verdict, _, reason = check_head(new, rn, hs, hl)
    of, nf = ro["first_seq"], rn["first_seq"]
    if verdict == "forked":
        # first seq both hold whose links differ (the chain makes every
        # later link differ too)
        lo, hi = max(of, nf), min(hs, rn["last_seq"])
        d = None
        for s in range(lo, hi + 1):
            if link_at(new, nf, s) != link_at(old, of, s):
                d = s
                break
        if d is None:  # NEW starts at hs + 1 and its anchor differs
            d = nf
            reason = ("NEW's anchor is not OLD's link of seq %d: NEW does not "
                      "continue OLD's sealed history" % hs)
        else:
            reason = ("NEW rewrites OLD's sealed history: first diverging seq %d%s"
                      % (d, " (or earlier: NEW's anchor already differs)"
                         if d == nf and nf > of else ""))
        out["diverge_seq"] = d
    if verdict is not None:
        out["verdict"], out["reason"] = verdict, reason
        return out
    # consistent through OLD's sealed head; OLD's unsealed tail is not
    # authenticated, but say when NEW disagrees with it
    for s in range(hs + 1, min(ro["last_seq"], rn["last_seq"]) + 1):
        if link_at(new, nf, s) != link_at(old, of, s):
            out["tail_differs_at"] = s
            break
    out["verdict"] = "consistent"
    return out


def exit_code(rep):
    v = rep["verdict"]
    if v == "consistent":
        return 0
    if v in ("gap", "unsealed", "old_unsealed"):
        return 3
    return 1


def summary_line(rep, new_path, old_path):
    if rep["verdict"] == "consistent":
        rn = rep["new"]
        s = ("consistent: %s extends %s: sealed head seq %d matches; NEW verified "
             "through seq %d" % (new_path, old_path, rep["old_head"]["seq"],
                                 rn["sealed_through"]))
        if rep["tail_differs_at"] is not None:
            s += ("; OLD's unsealed tail differs from NEW at seq %d (it was never "
                  "authenticated)" % rep["tail_differs_at"])
        return s
    if rep["verdict"] == "forked":
        return "forked: %s does not extend %s: %s" % (new_path, old_path, rep["reason"])
    return "%s: %s vs %s: %s" % (rep["verdict"], new_path, old_path, rep["reason"])


def consistency_files(new_path, old_path, key=None, pubkey=None, jobs=None):
    """consistency() of two files, each read on demand (V.FileImage)."""
    old = V.open_log(old_path)
    try:
        new = V.open_log(new_path)
        try:
            return consistency(old, new, key, pubkey, jobs)
        finally:
            V.close_log(new)
    finally:
        V.close_log(old)


__all__ = ["consistency", "consistency_files", "check_head", "sealed_heads",
           "link_at", "exit_code", "summary_line", "RvmToolError"]
