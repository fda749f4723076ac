"""Host side of the console protocol (docs/console-protocol.md): requests
over CRC frames, replies as JSON, log pulls that resume across a board
reboot. Plain functions over a transport; the rvm commands are thin CLIs.
"""
import hashlib
import json
import os
import struct
import time

from rvm_mp import frame as F
from rvm_mp.witness import file_header

from .errors import RvmToolError

REBOOT_MARKS = (b"soft reboot", b"RVM-MP control console", b"rvm-sim: board process")


class BoardError(RvmToolError):
    """The kernel refused a command: err is its error name."""

    def __init__(self, command, err, msg):
        RvmToolError.__init__(self, "%s: %s (%s)" % (command, msg, err), 1)
        self.err = err


class NotAnswering(RvmToolError):
    pass


class Client:
    """A console session. request(line) -> reply dict; raises BoardError when
    the kernel refuses, NotAnswering on timeout. `text` collects the human
    text seen between frames; `reboots` counts reboot banners seen."""

    def __init__(self, transport, timeout=3.0):
        self.t = transport
        self.timeout = timeout
        self.seq = int.from_bytes(os.urandom(2), "little") & 0x7FFF
        self.dec = F.Decoder(max_payload=F.MAX_PAYLOAD)
        self.text = bytearray()
        self.reboots = 0
        self._pending = []

    def _next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def _frames(self, until):
        """Yield (ftype, seq, payload) frames until the monotonic deadline."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            left = until - time.monotonic()
            if left <= 0:
                return
            data = self.t.read(min(left, 0.1))
            for b in data:
                r = self.dec.feed(b)
                if r == F.R_TEXT:
                    self.text.append(b)
                    tail = bytes(self.text[-64:])
                    for m in REBOOT_MARKS:
                        if tail.endswith(m):
                            self.reboots += 1
                    if len(self.text) > 8192:
                        del self.text[:4096]
                elif r == F.R_FRAME:
                    self._pending.append((self.dec.ftype, self.dec.seq, self.dec.payload))

    def send(self, line):
        seq = self._next_seq()
        data = line.encode()
        if len(data) > F.MAX_PAYLOAD:
            raise RvmToolError("command longer than %d bytes" % F.MAX_PAYLOAD)
        self.t.write(F.encode(F.T_REQ, seq, data))
        return seq

    def request(self, line, timeout=None):
        seq = self.send(line)
        deadline = time.monotonic() + (timeout or self.timeout)
        buf = b""
        for ftype, fseq, payload in self._frames(deadline):
            if fseq != seq:
                continue  # a stale reply to an earlier request
            if ftype == F.T_MORE:
                buf += payload
            elif ftype == F.T_ANS:
                return json.loads(buf + payload)
            elif ftype == F.T_ERR:
                e = json.loads(payload)
                raise BoardError(line.split()[0] if line.split() else line,
                                 e.get("err"), e.get("msg", "refused"))
        raise NotAnswering(
            "board on %s is not answering the RVM console (no reply to %r within "
            "%.0f s); is the kernel running?" % (self.t.name, line.split()[0] if line else line,
                                                 timeout or self.timeout))

    def logread(self, lo, n, timeout=None):
        """Records lo.. (up to n) as a list of 64-byte records."""
        seq = self.send("logread %d %d" % (lo, n))
        deadline = time.monotonic() + (timeout or self.timeout)
        recs = []
        for ftype, fseq, payload in self._frames(deadline):
            if fseq != seq:
                continue
            if ftype == F.T_DATA:
                first = struct.unpack_from("<I", payload, 0)[0]
                if first != lo + len(recs):
                    raise RvmToolError("pull: data frame starts at seq %d, expected %d"
                                       % (first, lo + len(recs)))
                body = payload[4:]
                for i in range(0, len(body) - 63, 64):
                    recs.append(bytes(body[i:i + 64]))
            elif ftype == F.T_END:
                return recs, json.loads(payload)
            elif ftype == F.T_ERR:
                e = json.loads(payload)
                raise BoardError("logread", e.get("err"), e.get("msg", "refused"))
        raise NotAnswering("board on %s stopped answering during the pull" % self.t.name)

    def fileread(self, name, off, timeout=None):
        """Bytes of a board file from off (up to 2048 per request) and the
        END object {"next", "count", "size", "gen"}."""
        seq = self.send("fileread %s %d" % (name, off))
        deadline = time.monotonic() + (timeout or self.timeout)
        out = bytearray()
        for ftype, fseq, payload in self._frames(deadline):
            if fseq != seq:
                continue
            if ftype == F.T_DATA:
                first = struct.unpack_from("<I", payload, 0)[0]
                if first != off + len(out):
                    raise RvmToolError("pull: %s data frame at offset %d, expected %d"
                                       % (name, first, off + len(out)))
                out += payload[4:]
            elif ftype == F.T_END:
                return bytes(out), json.loads(payload)
            elif ftype == F.T_ERR:
                e = json.loads(payload)
                raise BoardError("fileread %s" % name, e.get("err"), e.get("msg", "refused"))
        raise NotAnswering("board on %s stopped answering during the pull of %s"
                           % (self.t.name, name))

    def wait_ready(self, total=20.0):
        """Ping with `hello` until the console answers (after a reboot)."""
        end = time.monotonic() + total
        last = None
        while time.monotonic() < end:
            try:
                return self.request("hello", timeout=1.0)
            except NotAnswering as e:
                last = e
        raise last or NotAnswering("board on %s is not answering" % self.t.name)


def connect(transport, timeout=3.0):
    """A Client after a successful hello (raises NotAnswering)."""
    c = Client(transport, timeout)
    transport.reset_input()
    c.hello = c.request("hello")
    return c


def ps(transport, timeout=3.0):
    return connect(transport, timeout).request("ps")["partitions"]


def run_command(transport, line, timeout=3.0):
    return connect(transport, timeout).request(line)


def _link(prev, rec):
    h = hashlib.sha256(b"RVMW")
    h.update(prev)
    h.update(rec[0:32])
    return h.digest()


def pull(transport, out_path, progress=None, window=64, timeout=3.0,
         reboot_wait=30.0, after_window=None, deltas=None, ckpt_dir=None,
         file_progress=None, ack=True):
    """Seal, then pull the whole persisted log into a .rvmw file.

    Records are checked (seq and chain link) as they arrive. If the board
    reboots or stops answering mid-pull, wait for it to come back, seal again
    and resume from the next record; the records already pulled were
    persisted (the device flushes before it sends), so the file stays one
    chain. With `ack`, the board is told what the file now holds (`ack
    SEQ`: its retention drops acknowledged records first). Returns a summary
    dict. `after_window(client, n)` is a test hook."""
    c = connect(transport, timeout)
    dev_hex = c.hello["device_id"]
    seal = c.request("seal")
    info = c.request("loginfo")
    if info["device_id"] != dev_hex:
        raise RvmToolError("pull: device id changed during the pull")
    device_id = bytes.fromhex(dev_hex)
    low = info["low"]
    anchor = bytes.fromhex(info["anchor"]) if info.get("anchor") else None
    if anchor is None:
        raise RvmToolError("pull: the board cannot give the link before seq %d" % low)
    target = seal["seal_seq"] + 1
    tmp = out_path + ".part"
    resumed = 0
    windows = 0
    prev = anchor
    lo = low
    with open(tmp, "wb") as f:
        f.write(bytes(file_header(device_id, anchor, low)))
        while lo < target:
            try:
                recs, end = c.logread(lo, min(window, target - lo))
            except (NotAnswering, BoardError) as e:
                if isinstance(e, BoardError) and e.err not in (None, "EABORT", "ECRC"):
                    raise
                resumed += 1
                if resumed > 5:
                    raise RvmToolError("pull: the board kept resetting; gave up at seq %d" % lo)
                if progress:
                    progress(lo - low, target - low, "board not answering; waiting for it")
                try:
                    hello = c.wait_ready(reboot_wait)
                except NotAnswering:
                    raise RvmToolError("pull: board on %s went away at seq %d and did "
                                       "not come back within %.0f s" % (transport.name, lo, reboot_wait))
                if hello["device_id"] != dev_hex:
                    raise RvmToolError("pull: a different board answered after the reset")
                seal = c.request("seal")
                target = max(target, seal["seal_seq"] + 1)
                continue
            if not recs:
                raise RvmToolError("pull: board sent no records at seq %d (log is %d long)"
                                   % (lo, end.get("head", -1)))
            for rec in recs:
                seq = struct.unpack_from("<I", rec, 0)[0]
                if seq != lo:
                    raise RvmToolError("pull: expected seq %d, got %d" % (lo, seq))
                link = _link(prev, rec)
                if link != rec[32:64]:
                    raise RvmToolError("pull: record %d does not chain to its predecessor" % seq)
                prev = link
                f.write(rec)
                lo += 1
            windows += 1
            if progress:
                progress(lo - low, target - low, "")
            if after_window:
                after_window(c, windows)
    os.replace(tmp, out_path)
    rep = {"file": out_path, "records": lo - low, "first_seq": low,
           "last_seq": lo - 1, "seal_seq": target - 1, "resumed": resumed,
           "device_id": dev_hex, "acked": None}
    if ack:
        # the file is on disk: the board may now drop these records first
        # when its flash fills (a kernel without `ack` or a store: refused)
        try:
            rep["acked"] = c.request("ack %d" % lo)["acked"]
        except BoardError:
            pass
    if deltas or ckpt_dir:
        rep["files"] = pull_files(transport, deltas, ckpt_dir, file_progress,
                                  timeout, client=c)
    return rep


def _read_file(c, name, progress=None, reboot_wait=30.0):
    """The whole of board file `name` (console `fileread`). Restarts from
    offset 0 when the file changes under the pull (the delta log compacted,
    or the board rebooted: `gen` differs); gives up after 5 restarts."""
    restarts = 0
    while True:
        data = bytearray()
        gen = None
        size = None
        try:
            while True:
                chunk, end = c.fileread(name, len(data))
                if gen is None:
                    gen = end.get("gen")
                elif end.get("gen") != gen:
                    raise _Changed()
                data += chunk
                size = end["size"]
                if progress:
                    progress(len(data), max(size, len(data)), name)
                if end["count"] == 0 or len(data) >= size:
                    return bytes(data)
        except _Changed:
            pass
        except NotAnswering:
            try:
                c.wait_ready(reboot_wait)
            except NotAnswering:
                raise RvmToolError("pull: board on %s went away during the pull of %s"
                                   % (c.t.name, name))
        restarts += 1
        if restarts > 5:
            raise RvmToolError("pull: %s kept changing on the board; gave up" % name)


class _Changed(Exception):
    pass


def _write(path, data):
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def pull_files(transport, deltas=None, ckpt_dir=None, progress=None, timeout=3.0,
               client=None):
    """Fetch the region delta log (to `deltas`) and every checkpoint file
    (into `ckpt_dir`) over the console, while the kernel runs. Pull the
    witness log first: the delta log read afterwards holds the delta of
    every region write that log witnessed. Returns {"deltas": its size
    in bytes (None: not asked), "ckpt": [file names], "ckpt_bytes"}."""
    c = client or connect(transport, timeout)
    try:
        ls = c.request("files")
    except BoardError as e:
        if e.err == "ENOENT":
            raise RvmToolError("pull: the board keeps no region store on flash "
                               "(no delta log or checkpoints to fetch)")
        raise
    rep = {"deltas": None, "ckpt": [], "ckpt_bytes": 0}
    if deltas:
        if ls["deltas"] < 0:
            data = b""  # no region was ever written: an empty delta log
        else:
            data = _read_file(c, "deltas.log", progress)
        _write(deltas, data)
        rep["deltas"] = len(data)
    if ckpt_dir:
        os.makedirs(ckpt_dir, exist_ok=True)
        for name, size in ls["ckpt"]:
            try:
                data = _read_file(c, name, progress)
            except BoardError as e:
                if e.err == "ENOENT":
                    continue  # rotated away since the listing: a newer one replaced it
                raise
            _write(os.path.join(ckpt_dir, name.split("/")[-1]), data)
            rep["ckpt"].append(name.split("/")[-1])
            rep["ckpt_bytes"] += len(data)
    return rep
