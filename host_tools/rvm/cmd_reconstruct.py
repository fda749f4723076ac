"""rvm reconstruct LOG DELTAS --region R --seq K --key-hex HEX [--ckpt-dir D] [--out FILE] [--json]"""
import json

from . import reconstruct as R
from . import verify as V


def register(sub):
    p = sub.add_parser(
        "reconstruct", help="rebuild a region's bytes at a witness seq",
        description="Time travel off the device: verify a pulled witness log, "
        "check the board's delta log against it, and rebuild region R as it "
        "was when record K was emitted (nearest checkpoint + deltas). "
        "Exit 0 rebuilt, 1 log or deltas do not verify, 2 usage or I/O error, "
        "3 the region did not exist at that seq, 4 that part of its history was "
        "compacted away on the board.")
    p.add_argument("log", help="pulled .rvmw witness log")
    p.add_argument("deltas", help="the board's mem/deltas.log")
    p.add_argument("--region", type=int, required=True, help="region id")
    p.add_argument("--seq", type=int, required=True, help="witness seq")
    p.add_argument("--key-hex", required=True, help="the device's seal key, hex")
    p.add_argument("--ckpt-dir", help="the board's mem/ckpt directory (optional)")
    p.add_argument("--out", help="write the bytes to this file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args, transport=None):
    key = V.parse_key_hex(args.key_hex)
    rep = R.reconstruct(args.log, args.deltas, args.region, args.seq, key,
                        args.ckpt_dir)
    data = rep["bytes"]
    if args.out and data is not None:
        with open(args.out, "wb") as f:
            f.write(data)
    if args.json:
        out = dict(rep)
        out["bytes"] = data.hex() if data is not None else None
        print(json.dumps(out, sort_keys=True))
    elif data is None:
        print("region %d did not exist at seq %d" % (args.region, args.seq))
    else:
        print("region %d at seq %d: %d bytes (base checkpoint seq %d, %d deltas "
              "applied, %d checked against the log)%s"
              % (args.region, args.seq, rep["size"], rep["base_seq"],
                 rep["deltas_applied"], rep["deltas_checked"],
                 "" if args.out else "\n" + data.hex()))
    return 0 if data is not None else 3
