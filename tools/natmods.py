"""Build the C natmods in native/ for every arch: `make natmods`.

    python tools/natmods.py [--arch x64,armv7m,...|all] [--out build/natmods]

1. Fetches MicroPython's natmod toolchain through pip (no other network):
   the sdist of `mpy-cross-v6-3` carries py/ headers, py/dynruntime.mk,
   py/dynruntime.h and tools/mpy_ld.py of MicroPython 1.23 (mpy 6.3, the
   format the 1.29 firmware loads). Cached in build/natmods/src/.
2. Builds each native/<mod>/ with its Makefile (py/dynruntime.mk) per arch
   into build/natmods/<arch>/<mod>.mpy and writes build/natmods/<arch>/
   NATMODS.json (text size from mpy_ld and .mpy size per module).
   `rvm build` ships the files of the board's arch from there.

Cortex-M arches need Debian's gcc-arm-none-eabi + libnewlib-arm-none-eabi
(the Makefile installs them). rv32imc (ESP32-C3) and the xtensa arches are
reported as not buildable here, with the reason (see native/README.md).
One line per failure, exit 1 when an asked-for arch could not be built.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "native")
SDIST = "mpy-cross-v6-3"
CORTEX_M = ("armv6m", "armv7m", "armv7emsp", "armv7emdp")
ARCHES = ("x64",) + CORTEX_M
# why the other MicroPython arches are not built here
NOT_HERE = {
    "rv32imc": "the natmod linker of MicroPython 1.23 (mpy_ld.py in the %s "
               "sdist) has no RISC-V support (it came in a later release); Debian's "
               "gcc-riscv64-unknown-elf could compile the C" % SDIST,
    "xtensa": "no xtensa-lx106-elf toolchain in Debian",
    "xtensawin": "no xtensa-esp32-elf toolchain in Debian",
}


class BuildError(Exception):
    pass


def modules():
    """Names of the natmods: every native/<mod>/ holding <mod>.c."""
    out = []
    for d in sorted(os.listdir(NATIVE)):
        if os.path.exists(os.path.join(NATIVE, d, d + ".c")):
            out.append(d)
    return out


def fetch(cache):
    """The MicroPython tree from the pip sdist (cached); returns MPY_DIR."""
    mpy_dir = os.path.join(cache, "micropython")
    if os.path.exists(os.path.join(mpy_dir, "py", "dynruntime.mk")):
        return mpy_dir
    os.makedirs(cache, exist_ok=True)
    dl = os.path.join(cache, "dl")
    if not glob.glob(os.path.join(dl, "*.tar.gz")):
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                            "--no-binary", ":all:", "--no-deps", SDIST, "-d", dl],
                           capture_output=True, text=True)
        if p.returncode != 0:
            last = (p.stderr or p.stdout).strip().splitlines()[-1:]
            raise BuildError("pip download %s failed: %s" % (SDIST, " ".join(last)))
    tgz = sorted(glob.glob(os.path.join(dl, "*.tar.gz")))[-1]
    tmp = os.path.join(cache, "x")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz) as tf:
        tf.extractall(tmp, filter="data")
    found = glob.glob(os.path.join(tmp, "*", "micropython"))
    if not found:
        raise BuildError("%s has no micropython/ tree" % os.path.basename(tgz))
    shutil.rmtree(mpy_dir, ignore_errors=True)
    shutil.move(found[0], mpy_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    return mpy_dir


def toolchain_ok(arch):
    gcc = "gcc" if arch == "x64" else "arm-none-eabi-gcc"
    return shutil.which(gcc) is not None


def _fresh(mod, arch, out_dir):
    """The sizes of an up-to-date earlier build of mod for arch, or None."""
    dst = os.path.join(out_dir, mod + ".mpy")
    try:
        prev = json.load(open(os.path.join(out_dir, "NATMODS.json")))["modules"][mod]
        t = os.path.getmtime(dst)
    except (OSError, ValueError, KeyError):
        return None
    src = os.path.join(NATIVE, mod)
    for f in os.listdir(src):
        if f.endswith((".c", ".h")) or f == "Makefile":
            if os.path.getmtime(os.path.join(src, f)) > t:
                return None
    if prev.get("mpy") != os.path.getsize(dst):
        return None
    return prev


def build_one(mpy_dir, mod, arch, out_dir, obj_root):
    """Build native/<mod> for arch (unless an earlier build is newer than
    its sources); returns {"text": bytes, "mpy": bytes}."""
    prev = _fresh(mod, arch, out_dir)
    if prev is not None:
        return prev
    src = os.path.join(NATIVE, mod)
    obj = os.path.join(obj_root, arch, mod)
    shutil.rmtree(obj, ignore_errors=True)
    target = os.path.join(src, mod + ".mpy")
    if os.path.exists(target):
        os.remove(target)
    env = dict(os.environ)
    # mpy_ld.py needs pyelftools: the venv's python has it
    cmd = ["make", "-C", src, "MPY_DIR=" + mpy_dir, "ARCH=" + arch,
           "BUILD=" + obj, "PYTHON=" + sys.executable]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0 or not os.path.exists(target):
        err = [ln for ln in (p.stderr + p.stdout).splitlines()
               if ln.strip() and not ln.startswith("make")]
        raise BuildError("%s for %s: %s" % (mod, arch, err[-1] if err else "make failed"))
    m = re.search(r"text size:\s+(\d+)", p.stdout)
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, mod + ".mpy")
    shutil.move(target, dst)
    return {"text": int(m.group(1)) if m else None, "mpy": os.path.getsize(dst)}


def build(arches, out_root, log=print):
    """Build every module for every arch; returns {arch: {mod: sizes}} and
    the list of failure lines."""
    mpy_dir = fetch(os.path.join(out_root, "src"))
    obj_root = os.path.join(out_root, "obj")
    done = {}
    failed = []
    for arch in arches:
        if arch in NOT_HERE:
            failed.append("%s: not built here: %s" % (arch, NOT_HERE[arch]))
            continue
        if arch not in ARCHES:
            failed.append("%s: unknown arch (one of %s)" % (arch, ", ".join(ARCHES)))
            continue
        if not toolchain_ok(arch):
            failed.append("%s: arm-none-eabi-gcc not found (Debian gcc-arm-none-eabi, "
                          "libnewlib-arm-none-eabi; `make natmods` installs them)" % arch)
            continue
        out_dir = os.path.join(out_root, arch)
        sizes = {}
        for mod in modules():
            try:
                sizes[mod] = build_one(mpy_dir, mod, arch, out_dir, obj_root)
            except BuildError as e:
                failed.append(str(e))
        with open(os.path.join(out_dir, "NATMODS.json"), "w") as f:
            json.dump({"arch": arch, "source": SDIST, "modules": sizes}, f,
                      indent=1, sort_keys=True)
        done[arch] = sizes
        log("natmods %-9s %s" % (arch, "  ".join(
            "%s %d B" % (m, s["text"] or s["mpy"]) for m, s in sorted(sizes.items()))))
    return done, failed


def main(argv=None):
    ap = argparse.ArgumentParser(description="build the natmods in native/")
    ap.add_argument("--arch", default="all",
                    help="comma list, or all (%s)" % ",".join(ARCHES))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "natmods"))
    a = ap.parse_args(argv)
    arches = ARCHES if a.arch == "all" else tuple(x for x in a.arch.split(",") if x)
    try:
        done, failed = build(arches, a.out)
    except BuildError as e:
        print("natmods: %s" % e, file=sys.stderr)
        return 1
    if a.arch == "all":
        for arch in sorted(NOT_HERE):
            print("natmods %-9s not built: %s" % (arch, NOT_HERE[arch]))
    for line in failed:
        if a.arch == "all" and line.split(":")[0] in NOT_HERE:
            continue
        print("natmods: %s" % line, file=sys.stderr)
    bad = [x for x in failed if x.split(":")[0] not in NOT_HERE or a.arch != "all"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
