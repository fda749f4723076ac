# Host verify bench (CPython): `rvm verify` throughput on a 200,000-record
# sealed log (a seal every 1,000 records), against raw hashlib over the same
# records measured in the same run.
#
# Rows:
#   verify_bytes           records/s of host_tools/rvm/verify.verify_bytes
#   raw hashlib            records/s of one sha256(64 bytes).digest() per
#                          record in a tight loop (no compare, no seq check):
#                          the floor any verifier of this chain pays
#   sequential reference   records/s of the straightforward left-to-right loop
#                          (the first version of verify.py: per-record
#                          memoryview slices, struct unpack of the seq, three
#                          hash updates) -- the "before" figure
#   ratios                 verify / raw, verify / reference
# (group "window"; one measurement of each per repeat, ratios per repeat)
#
# Group "process1m": `rvm verify` of a 1,000,000-record sealed log as its own
# process, the way an auditor runs it: records/s end to end (process start
# to exit) and the process's peak RSS (os.wait4's ru_maxrss: that child
# alone). Floor: a python process that only reads the same file in 1 MB
# chunks (what the disk and page cache give), same repeat. The log is made
# once and cached in build/bench/ (remade when witness.py changes).
import hashlib
import os
import subprocess
import sys
import io
import struct
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from rvm_mp import kinds
from rvm_mp.witness import WitnessLog
from host_tools.rvm import verify as V

N = 200000
N_PROC = 1000000
GROUPS = ("window", "process1m")
KEY = bytes(range(32, 64))


def _log(n=None):
    N = n or globals()["N"]
    log = WitnessLog(bytes(range(16)), boot=1, key=KEY, ring=N + 8,
                     seal_every=1000, clock=lambda: 777)
    k = kinds.IPC_SEND
    i = 0
    while log.next_seq < N - 1:
        log.emit(k, 1 + i % 7, 2, i, i >> 3, 5, 9)
        i += 1
        if i % 500 == 0 and log.next_seq < N - 1:
            log.service()
    log.seal()
    b = io.BytesIO()
    log.export(b)
    return b.getvalue()


def _reference(data, key):
    """The sequential loop of the first verify.py (kept for the comparison)."""
    body = memoryview(data)[64:]
    n = len(body) // 64
    prev = bytes(data[24:56])
    seq_expect = struct.unpack_from("<I", data, 56)[0]
    kid = V._key_id(key)
    sha = hashlib.sha256
    unpack_seq = struct.Struct("<I").unpack_from
    for i in range(n):
        rec = body[i * 64:i * 64 + 64]
        h = sha(b"RVMW")
        h.update(prev)
        h.update(rec[0:32])
        link = h.digest()
        if unpack_seq(rec, 0)[0] != seq_expect or link != rec[32:64]:
            return i
        if rec[10] == kinds.SEAL:
            if (rec[14] | (rec[15] << 8)) != kid or \
                    V.seal_mac(key, prev, bytes(rec[0:16])) != bytes(rec[16:32]):
                return i
        prev = link
        seq_expect += 1
    return None


def _raw(data):
    sha = hashlib.sha256
    for o in range(64, len(data), 64):
        sha(data[o:o + 64]).digest()


def _once(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def bench_window(emit):
    import benchutil
    data = _log(50000 if benchutil.QUICK else N)
    n = len(data) // 64 - 1
    sides = [("v", lambda: V.verify_bytes(data, KEY)), ("r", lambda: _raw(data)),
             ("ref", lambda: _reference(data, KEY))]
    if benchutil.ROUND & 1:
        sides.reverse()
    t = {}
    for k, fn in sides:
        t[k] = _once(fn)
    rep = t["v"][1]
    assert rep["verdict"] == "verified" and rep["records"] == n, rep
    assert t["ref"][1] is None
    v, r, ref = n / t["v"][0], n / t["r"][0], n / t["ref"][0]
    emit("verify_bytes, %dk records (a seal every 1000)" % (n // 1000), v,
         "rec/s", "in-process")
    emit("raw hashlib, one sha256 per record", r, "rec/s", "same records, same repeat")
    emit("sequential reference verifier (before)", ref, "rec/s")
    emit("verify / raw hashlib", v / r, "x")
    emit("verify / sequential reference", v / ref, "x", "speed-up of the column/window verifier")


def _log_file(n):
    """A sealed n-record .rvmw in build/bench (made once)."""
    import benchutil  # noqa: F401
    wit = os.path.join(ROOT, "rvm_mp", "witness.py")
    st = os.stat(wit)
    path = os.path.join(ROOT, "build", "bench", "verify-%d-%d-%d.rvmw"
                        % (n, st.st_size, st.st_mtime_ns))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = _log(n)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return path


def _run(cmd):
    """(wall seconds, peak RSS bytes, exit status) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    return dt, ru.ru_maxrss * 1024, p.returncode


def bench_process1m(emit):
    import benchutil
    n = 200000 if benchutil.QUICK else N_PROC
    path = _log_file(n)
    rvm = os.path.join(os.path.dirname(sys.executable), "rvm")
    cmd = [rvm, "verify", path, "--key-hex", KEY.hex()]
    floor = [sys.executable, "-c", "f = open(%r, 'rb')\nwhile f.read(1 << 20): pass" % path]
    if benchutil.ROUND & 1:
        fl = _run(floor)
        v = _run(cmd)
    else:
        v = _run(cmd)
        fl = _run(floor)
    if v[2] != 0:
        raise RuntimeError("rvm verify exited %d" % v[2])
    size = os.path.getsize(path)
    emit("rvm verify, %dk records, as a process" % (n // 1000), n / v[0], "rec/s",
         "end to end; goal >= 2e6")
    emit("rvm verify peak RSS", v[1] / 1e6, "MB", "goal <= 64")
    emit("rvm verify peak RSS / file size", v[1] / float(size), "x",
         "file %.1f MB" % (size / 1e6))
    emit("floor: read the file in a python process", n / fl[0], "rec/s",
         "same repeat")
    emit("rvm verify / read floor", fl[0] / v[0], "x", "1.0 = disk speed")


def bench(emit):
    for g in GROUPS:
        globals()["bench_" + g](emit)
