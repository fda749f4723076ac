# Console file reads (loaded by control.py on the first `files` or
# `fileread` command, so a board never pulled from does not hold it).
#
# `rvm pull --deltas/--ckpt-dir` fetches the region delta log and the
# checkpoint files beside the witness log, over the same console, while the
# kernel runs. Only these files are readable, named relative to the region
# manager's root (<fs>/mem):
#
#   deltas.log             the delta log (synced before every read)
#   ckpt/p<pid>-<seq>.ck   a checkpoint file that exists now (pid 4 hex
#                          digits, seq 8 hex digits)
#
# Any other name (absolute, `..`, another directory, another file) is
# refused with ERIGHTS and witnessed OP_DENIED. A read streams at most
# _FILE_MAX bytes as DATA frames of <= _CHUNK bytes each from one
# preallocated buffer, so RAM stays bounded whatever the file's size; one
# OP_PULL record per read (target 1 delta log, 2 checkpoint; a offset,
# b bytes sent, c CRC-32 of the name, d CRC-32 of the bytes sent).
import json
import struct

from .compat import const
from . import errors
from . import frame as F
from . import kinds

_CHUNK = const(256)       # bytes per DATA frame
_FILE_MAX = const(2048)   # bytes per fileread request
_CMD_FILEREAD = const(20)  # control.CMDS index
T_DELTAS = const(1)
T_CKPT = const(2)
_CK_CHARS = "0123456789abcdefkp-."


def resolve(mem, name):
    """(path, target) of a readable file name, or an RvmError."""
    if mem is None or getattr(mem, "root", None) is None:
        return errors.ENOENT  # no region store on flash on this board
    if name == "deltas.log":
        return mem.root + "/deltas.log", T_DELTAS
    if not name.startswith("ckpt/"):
        return errors.ERIGHTS
    base = name[5:]
    if not base.endswith(".ck") or ".." in base or len(base) > 24:
        return errors.ERIGHTS
    for ch in base:
        if ch not in _CK_CHARS:
            return errors.ERIGHTS
    if base not in mem.fs.listdir(mem.root + "/ckpt"):
        return errors.ENOENT
    return mem.root + "/ckpt/" + base, T_CKPT


def files(ctl):
    """{"deltas": size (-1: none), "ckpt": [[name, size]...], "gen"}"""
    mem = ctl.k.mem if hasattr(ctl.k, "mem") else None
    if mem is None or getattr(mem, "root", None) is None:
        return errors.ENOENT
    mem.flush()
    fs = mem.fs
    out = []
    for name in sorted(fs.listdir(mem.root + "/ckpt")):
        if name.endswith(".ck"):
            out.append(["ckpt/" + name, fs.size(mem.root + "/ckpt/" + name)])
    return {"deltas": fs.size(mem.root + "/deltas.log"), "ckpt": out,
            "gen": _gen(mem, ctl.log.boot)}


_gens = [0]


def _gen(mem, boot):
    # compaction replaces the delta log object (and a boot starts afresh):
    # each object gets the next number of this boot when first seen, so a
    # host pulling in pieces restarts when the number changes
    dl = mem.deltas
    g = getattr(dl, "pull_gen", 0)
    if not g:
        _gens[0] += 1
        g = ((boot & 0x7FFF) << 16) | (_gens[0] & 0xFFFF)
        dl.pull_gen = g
    return g


def fileread(ctl, args, seq, dig):
    """fileread NAME OFFSET [N]: DATA frames (u32 offset + bytes), then an
    END frame {"next", "count", "size", "gen"}. Framed only."""
    log = ctl.log
    mem = ctl.k.mem if hasattr(ctl.k, "mem") else None
    err = None
    try:
        name = args[0]
        off = int(args[1], 0) if len(args) > 1 else 0
        n = int(args[2], 0) if len(args) > 2 else _FILE_MAX
        if off < 0 or n < 0:
            err = errors.EINVAL
    except (ValueError, IndexError):
        name = ""
        err = errors.EINVAL
    if err is None:
        err = ctl._gate(1, 0, 1, 35)  # (OT_PARTITION, 0) R_READ, OP_PULL
        err = err if err else None
    if err is None:
        r = resolve(mem, name)
        if errors.is_err(r):
            err = r
        else:
            path, target = r
    if err is not None:
        log.deny(kinds.OP_DENIED, ctl.pid, 0, err.code, 0, _CMD_FILEREAD,
                 seq, dig)
        ctl._error(seq, err, "fileread refused" if name else
                   "usage: fileread NAME OFFSET [N]", True)
        return err
    if target == T_DELTAS:
        mem.flush()  # buffered appends reach the file before it is read
    fs = mem.fs
    size = fs.size(path)
    n = min(n, _FILE_MAX)
    buf = bytearray(4 + _CHUNK)
    mv = memoryview(buf)
    sent = 0
    crc = 0
    try:
        f = fs.open(path, "rb")
    except OSError:
        f = None
    if f is None:  # gone between the check and the open (checkpoint rotation)
        log.deny(kinds.OP_DENIED, ctl.pid, 0, errors.ENOENT.code, 0,
                 _CMD_FILEREAD, seq, dig)
        ctl._error(seq, errors.ENOENT, "fileread refused", True)
        return errors.ENOENT
    try:
        f.seek(off)
        while sent < n:
            want = min(_CHUNK, n - sent)
            got = f.readinto(mv[4:4 + want])
            if not got:
                break
            struct.pack_into("<I", buf, 0, (off + sent) & 0xFFFFFFFF)
            ctl._send(F.T_DATA, seq, mv[0:4 + got])
            crc = F.crc32(mv[4:4 + got], crc)
            sent += got
    finally:
        f.close()
    log.emit(kinds.OP_PULL, ctl.pid, target, off, sent, F.crc32(name.encode()),
             crc)
    ctl._send(F.T_END, seq, json.dumps({"next": off + sent, "count": sent,
                                        "size": size, "gen": _gen(mem, ctl.log.boot)}).encode())
    return sent
