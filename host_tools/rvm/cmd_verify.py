"""rvm verify FILE [--key-hex HEX] [--pubkey HEX|FILE] [--since OLD] [--json]
[--jobs N] (at least one key; with both, a log that changed seal kind is
checked whole)"""
import argparse
import json

from . import verify as V


def _jobs(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError("--jobs needs a whole number >= 1, got %r" % text)
    return n


def register(sub):
    p = sub.add_parser("verify", help="verify a pulled .rvmw witness log",
                       description="Recompute the hash chain of a .rvmw log and "
                       "check its seals: HMAC seals with --key-hex (the device "
                       "key), Ed25519 seals with --pubkey (no secret needed). "
                       "--since OLD.rvmw also proves that FILE extends OLD's sealed "
                       "history. Exit 0 verified (consistent), 1 tampered, broken "
                       "or forked, 2 usage or I/O error, 3 chain intact but "
                       "unsealed (or a gap between OLD and FILE).")
    p.add_argument("file")
    p.add_argument("--key-hex", help="the device's HMAC seal key, hex")
    p.add_argument("--pubkey", help="the device's Ed25519 public key: 64 hex "
                   "digits or a file (rvm keys gen --ed25519 writes FILE.pub)")
    p.add_argument("--since", metavar="OLD", help="an earlier pull of the same "
                   "device: prove FILE extends it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="processes that check the file's chunks (default: one "
                   "per core; 1 checks in this process)")
    p.set_defaults(func=run, parser=p)


def run(args, transport=None):
    if args.key_hex is None and args.pubkey is None:
        args.parser.error("give --key-hex (HMAC seals) and/or --pubkey (Ed25519 seals)")
    key = V.parse_key_hex(args.key_hex) if args.key_hex is not None else None
    pub = V.parse_pubkey(args.pubkey) if args.pubkey is not None else None
    if args.since:
        from . import consistency as C
        rep = C.consistency_files(args.file, args.since, key, pub, jobs=args.jobs)
        if args.json:
            print(json.dumps(rep, sort_keys=True))
        else:
            print(C.summary_line(rep, args.file, args.since))
        return C.exit_code(rep)
    rep = V.verify_file(args.file, key, pub, jobs=args.jobs)
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print(V.summary_line(rep, args.file))
    return V.exit_code(rep)
