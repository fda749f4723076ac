"""rvm verify FILE --key-hex HEX [--json]"""
import json

from . import verify as V


def register(sub):
    p = sub.add_parser("verify", help="verify a pulled .rvmw witness log",
                       description="Recompute the hash chain of a .rvmw log and "
                       "check its HMAC seals. Exit 0 verified, 1 tampered or broken, "
                       "2 usage or I/O error, 3 chain intact but unsealed.")
    p.add_argument("file")
    p.add_argument("--key-hex", required=True, help="the device's seal key, hex")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args, transport=None):
    key = V.parse_key_hex(args.key_hex)
    rep = V.verify_file(args.file, key)
    if args.json:
        print(json.dumps(rep, sort_keys=True))
    else:
        print(V.summary_line(rep, args.file))
    return V.exit_code(rep)
