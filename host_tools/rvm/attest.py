"""What the host expects a board's boot to attest, and the comparison.

`rvm build` (through `rvm deploy`'s staging) records the kernel it built:
dist/NAME/kernel.dig is the attestation fold over the built module files
(rvm_mp.boot.measure_modules, the same function the board runs over the
files it reads: its filesystem or its memory-mapped ROMFS). `rvm deploy`
ships it; boot phase 4 compares its own measurement with it (BOOT_PHASE 4
b = ECORRUPT when they differ).

`rvm attest --port P --build dist/NAME` pulls the board's verified log, takes
the newest BOOT_ATTEST and compares it with the digest the host computes
from the build: kernel fold, SHA-256 of the deployed board.json, SHA-256 of
every bundle in dist/NAME/agents/ the profile starts, in the profile's order.
A kernel frozen into the firmware is measured by the identity the firmware
reports (rvm_mp.boot.frozen_measure), which the host cannot compute from a
build: for it `rvm attest` needs --frozen-ident (the board's
sys.implementation, as `rvm attest` prints it) and says so.
"""
import hashlib
import json
import os
import struct

from rvm_mp import boot as KB
from rvm_mp import kinds

from .errors import RvmToolError


def kernel_fold(build_dir):
    d, n = KB.measure_modules(os.path.join(build_dir, "rvm_mp"),
                              fold=hashlib.sha256(KB.D0).digest())
    return d, n


def record(build_dir):
    """Write build_dir/kernel.dig (the fold the board's boot checks)."""
    d, n = kernel_fold(build_dir)
    with open(os.path.join(build_dir, "kernel.dig"), "wb") as f:
        f.write(d)
    return d, n


def expected(build_dir, frozen_fold=None):
    """(digest, parts) the board should attest for this build."""
    prof_path = os.path.join(build_dir, "board.json")
    if not os.path.exists(prof_path):
        raise RvmToolError("%s is not a build directory (no board.json): run "
                           "`rvm build` or `rvm deploy -o` first" % build_dir)
    with open(prof_path, "rb") as f:
        raw = f.read()
    prof = json.loads(raw)
    if frozen_fold is not None:
        dm = frozen_fold
    else:
        if not os.path.isdir(os.path.join(build_dir, "rvm_mp")):
            raise RvmToolError("%s has no rvm_mp/ build" % build_dir)
        dm, _ = kernel_fold(build_dir)
    bundles = []
    names = []
    for spec in prof.get("agents", ()):
        name = spec.get("name")
        if not name or spec.get("autostart", True) is False:
            continue
        p = os.path.join(build_dir, spec.get("bundle") or "agents/%s.rvmb" % name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                bundles.append(hashlib.sha256(f.read()).digest())
            names.append(name)
    d = KB.attest(None, hashlib.sha256(raw).digest(), bundles, dm)
    return d, {"kernel": dm.hex(), "profile": hashlib.sha256(raw).hexdigest(),
               "bundles": names}


def boot_records(path):
    """(BOOT_ATTEST first 16 bytes, BOOT_PHASE 4 error, seq) of the newest
    boot in a pulled .rvmw file."""
    from . import verify as V
    with open(path, "rb") as f:
        data = f.read()[V.HDR:]
    att = None
    ph4 = 0
    for i in range(0, len(data) - 63, 64):
        f = struct.unpack_from("<IIHBBHHIIII", data, i)
        if f[3] == kinds.BOOT_PHASE and f[7] == 4:
            ph4 = f[8]
        elif f[3] == kinds.BOOT_ATTEST:
            att = (struct.pack("<IIII", f[7], f[8], f[9], f[10]), ph4, f[0])
    return att
