"""rvm audit: verified witness logs in SQLite, forensic queries, timelines.

import_log() verifies the file first (host_tools.rvm.verify) and refuses a
log that is tampered, broken or unsealed. Records go into one table with
their fields decoded and the kind names from rvm_mp.kinds:

  records(device_id, seq, time_ms, boot, t_ms, kind, kind_name, family,
          flags, denied, degraded, tier, actor, target, a, b, c, d, link,
          sealed, log_id)          primary key (device_id, seq)
  logs(id, file, device_id, imported_at, first_seq, last_seq, records,
       sealed_through, verdict)

time_ms: a board has no wall clock; t_ms is ticks_ms at emit (wraps, restarts
each boot). time_ms is a monotonic timeline built from it: within a boot the
ticks_diff from the previous record, and each new boot continues where the
previous boot's last record was (the gap while the board was off is
unknown and counted as 0). Queries and the timeline use time_ms.

Importing an overlapping log again adds only new records; a record whose
link differs from the stored one for the same (device, seq) is a fork and
the whole import is refused.

Sealed heads: every (seq, link) a valid seal authenticates through is kept
in `heads(device_id, seq, link, log_id)`. A new log must agree with every
stored head it holds (or continues from, through its anchor): one that
differs is a fork of sealed history and is refused with the first diverging
seq (host_tools/rvm/consistency.py explains why the chain is the proof).
"""
import datetime
import json
import sqlite3
import struct

from rvm_mp import kinds as K

from . import verify as V
from .errors import RvmToolError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs(
  id INTEGER PRIMARY KEY, file TEXT, device_id TEXT, imported_at TEXT,
  first_seq INTEGER, last_seq INTEGER, records INTEGER,
  sealed_through INTEGER, verdict TEXT);
CREATE TABLE IF NOT EXISTS records(
  device_id TEXT, seq INTEGER, time_ms INTEGER, boot INTEGER, t_ms INTEGER,
  kind INTEGER, kind_name TEXT, family TEXT, flags INTEGER, denied INTEGER,
  degraded INTEGER, tier INTEGER, actor INTEGER, target INTEGER,
  a INTEGER, b INTEGER, c INTEGER, d INTEGER, link TEXT, sealed INTEGER,
  log_id INTEGER, PRIMARY KEY(device_id, seq));
CREATE TABLE IF NOT EXISTS pubkeys(
  device_id TEXT, from_seq INTEGER, pubkey TEXT, PRIMARY KEY(device_id, from_seq));
CREATE TABLE IF NOT EXISTS heads(
  device_id TEXT, seq INTEGER, link TEXT, log_id INTEGER,
  PRIMARY KEY(device_id, seq));
CREATE INDEX IF NOT EXISTS rec_actor ON records(actor);
CREATE INDEX IF NOT EXISTS rec_target ON records(target);
CREATE INDEX IF NOT EXISTS rec_kind ON records(kind);
CREATE INDEX IF NOT EXISTS rec_time ON records(time_ms);
"""
_TICKS_PERIOD = 1 << 30
COLUMNS = ("seq", "time_ms", "boot", "kind_name", "actor", "target", "a", "b",
           "c", "d", "flags")


def open_db(path):
    try:
        db = sqlite3.connect(path)
        db.executescript(_SCHEMA)
    except sqlite3.Error as e:
        raise RvmToolError("cannot open database %s: %s" % (path, e))
    return db


def _ticks_diff(a, b):
    half = _TICKS_PERIOD // 2
    return ((a - b + half) & (_TICKS_PERIOD - 1)) - half


def check_heads(db, dev, data, rep):
    """Refuse (RvmToolError, exit 1) a verified log that forks a sealed head
    stored for its device."""
    from . import consistency as C
    nf, nl = rep["first_seq"], rep["last_seq"]
    rows = db.execute("SELECT seq, link FROM heads WHERE device_id=? AND seq>=? AND "
                      "seq<=? ORDER BY seq", (dev, nf - 1, nl)).fetchall()
    for seq, link in rows:
        got = C.link_at(data, nf, seq)
        if got is not None and got.hex() != link:
            d = seq
            for s in range(nf, seq + 1):  # first seq whose link differs
                row = db.execute("SELECT link FROM records WHERE device_id=? AND seq=?",
                                 (dev, s)).fetchone()
                if row is not None and row[0] != C.link_at(data, nf, s).hex():
                    d = s
                    break
            return ("a forked log: it rewrites the sealed head at seq %d seen "
                    "before (first diverging seq %d)" % (seq, d))
    return None


def key_in_force(db, data, pubkey):
    """The Ed25519 key to verify `data` with: when `pubkey` is one this
    database has seen for the device (the one first given, or one a verified
    KEY_ROTATE introduced), the device's key in force at the file's first
    seq, so an auditor keeps passing the key they were first given after
    the board rotated. Otherwise `pubkey` itself."""
    try:
        dev, _, first = V.parse_header(data)
    except ValueError:
        return pubkey
    rows = db.execute("SELECT from_seq, pubkey FROM pubkeys WHERE device_id=? "
                      "ORDER BY from_seq", (dev.hex(),)).fetchall()
    if pubkey.hex() not in [r[1] for r in rows]:
        return pubkey
    use = pubkey
    for seq, pk in rows:
        if seq <= first:
            use = bytes.fromhex(pk)
    return use


def import_log(db, path, key=None, pubkey=None):
    """Verify `path` with `key` (HMAC seals) and/or `pubkey` (Ed25519
    seals), check it against the stored sealed heads and store its records.
    Returns a summary."""
    from . import consistency as C
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RvmToolError("cannot read %s: %s" % (path, e.strerror))
    info = {}
    if pubkey is not None:
        pubkey = key_in_force(db, data, pubkey)
    rep = V.verify_bytes(data, key, pubkey, info)
    if rep["verdict"] != "verified":
        raise RvmToolError("refusing %s: log is %s%s" % (
            path, rep["verdict"],
            " at seq %s: %s" % (rep["bad_seq"], rep["reason"]) if rep.get("reason") else ""), 1)
    dev = rep["device_id"]
    why = check_heads(db, dev, data, rep)
    if why:
        raise RvmToolError("refusing %s: %s" % (path, why), 1)
    names = K.names()
    sealed_through = rep["sealed_through"] if rep["sealed_through"] is not None else -1
    cur = db.cursor()
    # continue the timeline from what the database holds for this device
    row = cur.execute("SELECT seq, time_ms, boot, t_ms FROM records WHERE device_id=? "
                      "AND seq < ? ORDER BY seq DESC LIMIT 1", (dev, rep["first_seq"])).fetchone()
    prev = row[1:] if row else None
    cur.execute("INSERT INTO logs(file, device_id, imported_at, first_seq, last_seq, "
                "records, sealed_through, verdict) VALUES (?,?,?,?,?,?,?,?)",
                (path, dev, datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 rep["first_seq"], rep["last_seq"], rep["records"],
                 rep["sealed_through"], rep["verdict"]))
    log_id = cur.lastrowid
    added = 0
    for i in range(rep["records"]):
        rec = data[64 + i * 64:128 + i * 64]
        seq, t_ms, boot, kind, flags, actor, target, a, b, c, d = struct.unpack_from(
            "<IIHBBHHIIII", rec, 0)
        link = rec[32:64].hex()
        if prev is None:
            time_ms = 0
        elif boot == prev[1]:
            time_ms = prev[0] + max(0, _ticks_diff(t_ms, prev[2]))
        else:
            time_ms = prev[0]
        prev = (time_ms, boot, t_ms)
        old = cur.execute("SELECT link FROM records WHERE device_id=? AND seq=?",
                          (dev, seq)).fetchone()
        if old is not None:
            if old[0] != link:
                db.rollback()
                raise RvmToolError("refusing %s: record %d differs from the one "
                                   "already stored (a forked log)" % (path, seq), 1)
            continue
        cur.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (dev, seq, time_ms, boot, t_ms, kind,
                     names.get(kind, "KIND_%02X" % kind), K.family(kind), flags,
                     flags & 1, (flags >> 1) & 1, (flags >> 2) & 3, actor, target,
                     a, b, c, d, link, 1 if seq <= sealed_through else 0, log_id))
        added += 1
    for seq, link in C.sealed_heads(data, rep["first_seq"], info["seal_idx"]):
        cur.execute("INSERT OR IGNORE INTO heads VALUES (?,?,?,?)", (dev, seq, link, log_id))
    if pubkey is not None:
        cur.execute("INSERT OR IGNORE INTO pubkeys VALUES (?,?,?)",
                    (dev, rep["first_seq"], pubkey.hex()))
        for r in rep["key_rotations"]:  # in force after the old key's seal
            cur.execute("INSERT OR IGNORE INTO pubkeys VALUES (?,?,?)",
                        (dev, r["seq"] + 6, r["new_pubkey"]))
    db.commit()
    return {"file": path, "device_id": dev, "records": rep["records"], "added": added,
            "first_seq": rep["first_seq"], "last_seq": rep["last_seq"],
            "sealed_through": rep["sealed_through"],
            "unsealed_tail": rep["unsealed_tail"]}


def _kind_filter(kind):
    """SQL condition + args for --kind: a name (PART_CREATE), a family
    (operator), or a number (0x10, 16)."""
    try:
        return "kind = ?", [int(kind, 0)]
    except ValueError:
        pass
    up = kind.upper()
    names = K.names()
    if up in names.values():
        return "kind_name = ?", [up]
    fams = set(K.family(k) for k in names)
    if kind.lower() in fams:
        return "family = ?", [kind.lower()]
    raise RvmToolError("unknown kind %r (a kind name like PART_CREATE, a family "
                       "like operator, or a number)" % kind)


def _time_arg(v, col="time_ms"):
    """--since/--until: ms on the timeline, or seq:N."""
    if v.startswith("seq:"):
        return "seq", int(v[4:], 0)
    return col, int(float(v))


def query(db, partition=None, kind=None, since=None, until=None, device=None,
          denied=None, limit=None):
    """Records matching every given filter, oldest first, as dicts."""
    where, args = [], []
    if device:
        where.append("device_id = ?")
        args.append(device)
    if partition is not None:
        where.append("(actor = ? OR target = ?)")
        args += [int(partition), int(partition)]
    if kind:
        w, a = _kind_filter(kind)
        where.append(w)
        args += a
    try:
        if since is not None:
            col, v = _time_arg(str(since))
            where.append("%s >= ?" % col)
            args.append(v)
        if until is not None:
            col, v = _time_arg(str(until))
            where.append("%s <= ?" % col)
            args.append(v)
    except ValueError:
        raise RvmToolError("--since/--until take milliseconds or seq:N")
    if denied is not None:
        where.append("denied = ?")
        args.append(1 if denied else 0)
    sql = "SELECT * FROM records"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY device_id, seq"
    if limit:
        sql += " LIMIT %d" % int(limit)
    cur = db.execute(sql, args)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def format_rows(rows, columns=COLUMNS):
    if not rows:
        return "(no records)"
    table = [[str(r[c]) if c != "flags" else _flags(r[c]) for c in columns] for r in rows]
    w = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w[i]) for i, c in enumerate(columns)).rstrip()]
    for t in table:
        lines.append("  ".join(t[i].ljust(w[i]) for i in range(len(columns))).rstrip())
    return "\n".join(lines)


def _flags(f):
    out = []
    if f & 1:
        out.append("denied")
    if f & 2:
        out.append("degraded")
    if (f >> 2) & 3:
        out.append("P%d" % ((f >> 2) & 3))
    return ",".join(out) or "-"


def timeline(db, out_png, device=None):
    """Per-partition events over time: one row per partition (actor, or the
    target of kernel actions), colour by kind family, denials as red x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = query(db, device=device)
    if not rows:
        raise RvmToolError("the database has no records to draw")
    fams = ["boot", "partition", "capability", "ipc", "memory", "scheduler",
            "coherence", "fault", "device", "agent", "operator", "seal"]
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(11, 5))
    def row(r):  # the partition a record belongs to on the plot
        if r["actor"] or r["kind"] == K.SEAL:
            return r["actor"]
        return r["target"] if r["target"] <= 4095 else 0
    for r in rows:
        r["row"] = row(r)
    parts = sorted(set(r["row"] for r in rows))
    ypos = {p: i for i, p in enumerate(parts)}
    for fi, fam in enumerate(fams):
        sel = [r for r in rows if r["family"] == fam and not r["denied"]]
        if sel:
            ax.scatter([r["time_ms"] / 1000.0 for r in sel],
                       [ypos[r["row"]] for r in sel],
                       s=12, color=cmap(fi), label=fam)
    den = [r for r in rows if r["denied"]]
    if den:
        ax.scatter([r["time_ms"] / 1000.0 for r in den],
                   [ypos[r["row"]] for r in den],
                   s=40, marker="x", color="red", label="denied")
    ax.set_yticks(range(len(parts)))
    ax.set_yticklabels(["kernel" if p == 0 else "p%d" % p for p in parts])
    ax.set_xlabel("time on the board's timeline (s)")
    ax.set_ylabel("partition")
    ax.set_title("RVM-MP witness timeline (%d records)" % len(rows))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return {"file": out_png, "records": len(rows), "partitions": len(parts)}


def summary(db):
    cur = db.execute("SELECT COUNT(*), COUNT(DISTINCT device_id), SUM(denied), "
                     "MIN(seq), MAX(seq) FROM records")
    n, devs, den, lo, hi = cur.fetchone()
    by_fam = dict(db.execute("SELECT family, COUNT(*) FROM records GROUP BY family").fetchall())
    return {"records": n, "devices": devs, "denied": den or 0, "first_seq": lo,
            "last_seq": hi, "by_family": by_fam}


def to_json(rows):
    return json.dumps(rows, sort_keys=True)
