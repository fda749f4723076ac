#!/usr/bin/env python3
"""Write the golden witness vectors (tests/vectors/witness/) ON MICROPYTHON.

`make vectors` runs this. The kernel witness code runs under the MicroPython
unix port (.venv/bin/micropython, a subprocess); it builds every vector
described in tests/kernel/wvectors.py and writes the .rvmw files and
index.json. This script then checks each file with the host verifier
(`rvm verify`'s verify_bytes) and exits 1 if any verdict differs from the
expectation the generator declared, so a disagreement between device code
and host tools is caught before the vectors are committed.

usage: tools/make_vectors.py [--out DIR] [--micropython EXE] [--check-only]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "vectors", "witness")

MP_SCRIPT = r'''
import sys, json, os
sys.path.insert(0, %(root)r)
sys.path.insert(0, %(root)r + "/tests/kernel")
import wvectors
out = %(out)r
tmp = %(tmp)r
index = {"generator": "tests/kernel/wvectors.py via tools/make_vectors.py",
         "runtime": "%%s %%s" %% (sys.implementation.name,
                                  ".".join(str(v) for v in sys.implementation.version[0:3])),
         "vectors": []}
for i, name in enumerate(wvectors.NAMES):
    d = tmp + "/store-" + name
    data, exp = wvectors.build(name, d)
    with open(out + "/" + name + ".rvmw", "wb") as f:
        f.write(data)
    index["vectors"].append(wvectors.index_entry(name, data, exp))
    print("wrote", name, len(data))
with open(out + "/index.json", "w") as f:
    f.write(json.dumps(index))
print("@@DONE")
'''


def micropython_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


def generate(out, mp):
    tmp = tempfile.mkdtemp(prefix="rvm-vectors-")
    code = MP_SCRIPT % {"root": ROOT, "out": out, "tmp": tmp}
    p = subprocess.run([mp, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    if "@@DONE" not in p.stdout:
        sys.stderr.write("make_vectors: MicroPython run failed (exit %d)\n%s\n%s\n"
                         % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        return False
    # rewrite index.json readably (MicroPython's json has no indent)
    path = os.path.join(out, "index.json")
    with open(path) as f:
        index = json.load(f)
    with open(path, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    return True


def check(out):
    """Host verifier vs the declared expectations; returns the mismatches."""
    sys.path.insert(0, ROOT)
    from host_tools.rvm.verify import verify_bytes
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    bad = []
    for v in index["vectors"]:
        with open(os.path.join(out, v["file"]), "rb") as f:
            data = f.read()
        rep = verify_bytes(data, bytes.fromhex(v["key_hex"]))
        for k in ("verdict", "records", "first_seq", "last_seq", "sealed_through",
                  "unsealed_tail", "bad_seq"):
            if rep[k] != v[k]:
                bad.append("%s: %s is %r, expected %r" % (v["file"], k, rep[k], v[k]))
        print("  %-22s %-9s records %4d  sealed_through %-5s bad_seq %s"
              % (v["file"], rep["verdict"], rep["records"], rep["sealed_through"],
                 rep["bad_seq"]))
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--micropython", default=micropython_cmd())
    ap.add_argument("--check-only", action="store_true",
                    help="only check the existing files with the host verifier")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if not args.check_only and not generate(args.out, args.micropython):
        return 1
    bad = check(args.out)
    for line in bad:
        print("MISMATCH " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
