"""rvm attest --port PORT --build DIR --key-hex HEX [--frozen-ident HEX]"""
import json
import os
import tempfile

from . import attest as A
from . import keys
from rvm_mp import errors

from .errors import RvmToolError


def register(sub):
    p = sub.add_parser("attest", help="compare the board's boot attestation with a build",
                       description="Pull and verify the board's witness log, take the "
                       "newest BOOT_ATTEST and compare it with the digest this host "
                       "computes from the build directory (kernel modules, board.json, "
                       "the agent bundles the profile starts). Exit 0 match, 1 mismatch.")
    p.add_argument("--port", required=True)
    p.add_argument("--build", required=True, help="the build directory (dist/NAME)")
    p.add_argument("--key", help="device key file")
    p.add_argument("--key-hex")
    p.add_argument("--frozen-ident", help="hex of rvm_mp.boot.frozen_measure() on the "
                   "board, for a kernel frozen into the firmware")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args, transport=None):
    from . import console, verify as V
    from .transport import open_port
    key = keys.load(args.key, args.key_hex)
    frozen = bytes.fromhex(args.frozen_ident) if args.frozen_ident else None
    if frozen is not None:
        import hashlib
        from rvm_mp import boot as KB
        frozen = KB.extend(hashlib.sha256(KB.D0).digest(), frozen)
    want, parts = A.expected(args.build, frozen)
    fd, tmp = tempfile.mkstemp(suffix=".rvmw")
    os.close(fd)
    try:
        t = transport or open_port(args.port)
        try:
            console.pull(t, tmp, ack=False)
        finally:
            if transport is None:
                t.close()
        v = V.verify_file(tmp, key)
        if v["verdict"] not in ("verified", "unsealed"):
            raise RvmToolError("attest: the board's log does not verify (%s)" % v["verdict"])
        got = A.boot_records(tmp)
    finally:
        os.remove(tmp)
    if got is None:
        raise RvmToolError("attest: no BOOT_ATTEST record in the board's log")
    dig, ph4, seq = got
    ok = dig == want[0:16]
    rep = {"match": ok, "board": dig.hex(), "expected": want[0:16].hex(),
           "seq": seq, "kernel_check": "differs from kernel.dig" if ph4 == errors.ECORRUPT.code else
           ("ok" if ph4 == 0 else "error %d" % ph4), **parts}
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print("%s: board attests %s at seq %d, build %s gives %s (kernel %s...)" % (
            "MATCH" if ok else "MISMATCH", rep["board"], seq, args.build,
            rep["expected"], parts["kernel"][:16]))
    return 0 if ok else 1
