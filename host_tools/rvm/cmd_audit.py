"""rvm audit FILE --db DB | rvm audit --db DB query [...] | rvm audit --db DB timeline -o PNG"""
import os

from . import audit as A
from . import keys
from .errors import RvmToolError


def register(sub):
    p = sub.add_parser(
        "audit", help="store verified logs in SQLite; query; draw timelines",
        description="rvm audit FILE --db DB (--key-hex HEX | --pubkey PUB): "
        "verify FILE, refuse it if it forks a sealed head stored before, and "
        "store its records. rvm audit --db DB query [--partition P] [--kind K] "
        "[--since T] [--until T]: matching records (T in ms on the timeline, "
        "or seq:N). rvm audit --db DB timeline -o out.png: per-partition "
        "events over time. rvm audit --db DB summary.")
    p.add_argument("what", help="a .rvmw FILE to import, or query / timeline / summary")
    p.add_argument("--db", required=True)
    p.add_argument("--key-hex", help="device key to verify FILE (or $RVM_KEY_HEX)")
    p.add_argument("--key", help="device key file")
    p.add_argument("--pubkey", help="the device's Ed25519 public key (hex or "
                   "file) to verify FILE's Ed25519 seals; no secret needed")
    p.add_argument("--partition", type=int)
    p.add_argument("--kind")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--denied", action="store_true", help="only refusals")
    p.add_argument("--device", help="device id (hex) when the db holds several")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", help="timeline PNG path")
    p.set_defaults(func=run)


def run(args, transport=None):
    what = args.what
    if what not in ("query", "timeline", "summary"):
        pub = None
        if args.pubkey:
            from . import verify as V
            pub = V.parse_pubkey(args.pubkey)
        hex_key = args.key_hex or (None if args.key or pub else os.environ.get("RVM_KEY_HEX"))
        key = keys.load(args.key, hex_key) if (hex_key or args.key or not pub) else None
        db = A.open_db(args.db)
        rep = A.import_log(db, what, key, pub)
        print("stored %d new of %d records (seq %d..%d, sealed through %s) from %s in %s"
              % (rep["added"], rep["records"], rep["first_seq"], rep["last_seq"],
                 rep["sealed_through"], what, args.db))
        return 0
    if not os.path.exists(args.db):
        raise RvmToolError("no database %s (import a log first)" % args.db)
    db = A.open_db(args.db)
    if what == "query":
        rows = A.query(db, args.partition, args.kind, args.since, args.until,
                       args.device, True if args.denied else None, args.limit)
        print(A.to_json(rows) if args.json else A.format_rows(rows))
        return 0
    if what == "summary":
        s = A.summary(db)
        print(A.to_json(s) if args.json else
              "\n".join("%s: %s" % (k, s[k]) for k in sorted(s)))
        return 0
    if not args.output:
        raise RvmToolError("timeline needs -o FILE.png")
    rep = A.timeline(db, args.output, args.device)
    print("timeline of %d records over %d partitions -> %s"
          % (rep["records"], rep["partitions"], rep["file"]))
    return 0
