# Migration of an agent's partition state to another partition, within a
# time budget (ADR-132 DC-7): serialize -> transfer -> rebuild, all or
# nothing.
#
#   src Running --suspend--> capture caps + region bytes + agent state
#        |                      | serialize to an image (format below)
#        |                      | transfer in chunks over a link
#        |                      | rebuild: parse + verify the digest,
#        |                      |          check the destination has room
#        |   over budget at any check before the commit point:
#        |     abort, src back to Running, MIGRATION_TIMEOUT, src ineligible
#        |     for `cooldown_ms`; nothing in the destination changed
#        v   commit: caps move (cap_move keeps the derivation tree, so a
#   dst Running   later revoke still reaches them), regions reassign,
#                 channels change owner, src is terminated, MIGRATION_DONE
#
# The clock is checked after every chunk (chunk bytes, default 256), so an
# abort happens at most one chunk past the budget. The agent's coroutine is
# not serialized (neither runtime can): the image carries the agent's name,
# code hash and restart state (bytes the agent checkpointed); `on_commit`
# lets the runtime restart the agent in the destination from them.
#
# Image format v1 (little-endian; the same bytes go between boards later):
#
#   off  size  field
#   0    4     magic b"RVMG"
#   4    2     version 1
#   6    2     source partition id
#   8    32    agent code hash (SHA-256 of its bundle; zeros if unknown)
#   40   1     name length N, then N bytes of name (utf-8)
#   ..   2     capability count C, then C x (u8 otype, u16 oid, u8 rights)
#   ..   2     region count R, then R x (u16 rid, u32 size, size bytes)
#   ..   4     state length S, then S bytes of agent restart state
#   ..   32    SHA-256 of every byte before it
#
# Between boards the receiving kernel would not move capabilities (they are
# local kernel objects) but re-mint them from the image after a P3 check
# (an HMAC or Ed25519 tag over the image, proofgate P3_HMAC/P3_ED25519); that
# rebuild path is the documented format only, not implemented yet.
import hashlib
import struct

from ..compat import const, ticks_ms, ticks_diff, ticks_add
from .. import errors
from .. import kinds

MAGIC = b"RVMG"
VERSION = const(1)
OT_GRAPH = const(6)
OT_CHANNEL = const(2)
OP_MIGRATE = const(16)
ST_RUNNING = const(1)


def serialize(src, code_hash, name, caps, regions, state):
    """caps: [(otype, oid, rights)], regions: [(rid, bytes)]. -> bytes."""
    nm = name.encode() if isinstance(name, str) else bytes(name)
    ch = bytes(code_hash) if code_hash else bytes(32)
    if len(ch) != 32 or len(nm) > 255:
        raise ValueError("bad code hash or name")
    out = bytearray(MAGIC)
    out += struct.pack("<HH", VERSION, src & 0xFFFF)
    out += ch
    out += struct.pack("<B", len(nm)) + nm
    out += struct.pack("<H", len(caps))
    for ot, oid, rights in caps:
        out += struct.pack("<BHB", ot & 0xFF, oid & 0xFFFF, rights & 0xFF)
    out += struct.pack("<H", len(regions))
    for rid, data in regions:
        out += struct.pack("<HI", rid & 0xFFFF, len(data))
        out += data
    st = bytes(state or b"")
    out += struct.pack("<I", len(st)) + st
    out += hashlib.sha256(out).digest()
    return bytes(out)


def parse(img):
    """bytes -> dict(src, code_hash, name, caps, regions, state), or an
    RvmError (ECORRUPT for a bad digest or structure, EINVAL for a wrong
    magic or version)."""
    n = len(img)
    if n < 40 + 1 + 2 + 2 + 4 + 32 or img[0:4] != MAGIC:
        return errors.EINVAL
    if hashlib.sha256(img[:n - 32]).digest() != img[n - 32:]:
        return errors.ECORRUPT
    ver, src = struct.unpack_from("<HH", img, 4)
    if ver != VERSION:
        return errors.EINVAL
    try:
        o = 8
        code_hash = bytes(img[o:o + 32])
        o += 32
        ln = img[o]
        name = bytes(img[o + 1:o + 1 + ln]).decode()
        o += 1 + ln
        (nc,) = struct.unpack_from("<H", img, o)
        o += 2
        caps = []
        for _ in range(nc):
            caps.append(struct.unpack_from("<BHB", img, o))
            o += 4
        (nr,) = struct.unpack_from("<H", img, o)
        o += 2
        regions = []
        for _ in range(nr):
            rid, size = struct.unpack_from("<HI", img, o)
            o += 6
            if o + size > n - 32:
                return errors.ECORRUPT
            regions.append((rid, bytes(img[o:o + size])))
            o += size
        (ns,) = struct.unpack_from("<I", img, o)
        o += 4
        state = bytes(img[o:o + ns])
        o += ns
    except (IndexError, ValueError, UnicodeError):
        return errors.ECORRUPT
    if o != n - 32:
        return errors.ECORRUPT
    return {"src": src, "code_hash": code_hash, "name": name, "caps": caps,
            "regions": regions, "state": state}


class MemLink:
    """Local transfer: chunks land in a RAM buffer (the destination side).
    A board-to-board link would send the same chunks over the console."""

    def __init__(self):
        self.buf = bytearray()

    def reset(self):
        self.buf = bytearray()

    def send(self, chunk):
        self.buf += chunk
        return len(chunk)

    def received(self):
        return bytes(self.buf)


class Migrator:
    """DC-7 migrations for one kernel. `budget_ms` per migration (profile
    may scale it by partition size class), `cooldown_ms` of ineligibility
    after a timeout."""

    def __init__(self, k, engine=None, budget_ms=100, cooldown_ms=5000,
                 chunk=256, clock=ticks_ms, link=None):
        self.k = k
        self.engine = engine
        self.budget_ms = budget_ms
        self.cooldown_ms = cooldown_ms
        self.chunk = chunk
        self.clock = clock
        self.link = link if link is not None else MemLink()
        self._until = {}           # pid -> ticks_ms end of cooldown
        self.done = 0
        self.timeouts = 0
        self.on_commit = None      # fn(src, dst, parsed image) for the runtime
        self.handle_map = {}       # last commit: src handle -> dst handle
        self.ctx = None            # the caller's context during migrate()

    def eligible(self, pid):
        t = self._until.get(pid)
        if t is None:
            return True
        if ticks_diff(self.clock(), t) >= 0:
            del self._until[pid]
            return True
        return False

    def _deny(self, caller, src, err, tier, dst):
        self.k.log.deny(kinds.MIGRATION_START, caller, src, err.code, tier,
                        dst, self.budget_ms)
        return err

    def migrate(self, src, dst, caller=0, handle=0, proofs=None, state=b"",
                code_hash=None, name=""):
        """Move src's capabilities, regions and agent state into dst.
        Returns the image size on success or an RvmError (witnessed)."""
        k = self.k
        log = k.log
        eng = self.engine
        if eng is not None and not eng.allowed():
            return self._deny(caller, src, errors.EDEGRADED, 0, dst)
        if src == dst or k.part_state(src) != ST_RUNNING:
            return self._deny(caller, src, errors.ESTATE, 0, dst)
        sd = k.part_state(dst)
        if errors.is_err(sd) or sd > 2:  # Created, Running or Suspended
            return self._deny(caller, src, errors.ESTATE, 0, dst)
        if not self.eligible(src):
            return self._deny(caller, src, errors.EBUSY, 0, dst)
        if caller != 0:
            ok = k.gate.check(caller, handle, OT_GRAPH, src, 2, OP_MIGRATE)
            if errors.is_err(ok):
                return ok
            ok = k.prove(caller, OP_MIGRATE, src, proofs or (),
                         struct.pack("<HH", src, dst))
            if errors.is_err(ok):
                return ok
        clock = self.clock
        t0 = clock()
        deadline = ticks_add(t0, self.budget_ms)
        log.emit(kinds.MIGRATION_START, caller, src, dst, 0, self.budget_ms, 0)
        k.part_suspend(0, src)
        # 1. serialize
        caps = k.cap_list(src)
        mem = k.mem
        regs = []
        if mem is not None:
            for rid in mem.regions_of(src):
                data = mem.read(0, rid, 0, mem.regions[rid].size)
                if errors.is_err(data):
                    return self._abort(src, dst, t0, data)
                regs.append((rid, bytes(data)))
                if ticks_diff(clock(), deadline) > 0:
                    return self._abort(src, dst, t0, errors.ETIMEOUT)
        img = serialize(src, code_hash, name,
                        [(c[1], c[2], c[3]) for c in caps], regs, state)
        # 2. transfer, chunk by chunk, budget checked after each
        link = self.link
        link.reset()
        o = 0
        n = len(img)
        while o < n:
            link.send(img[o:o + self.chunk])
            o += self.chunk
            if ticks_diff(clock(), deadline) > 0:
                return self._abort(src, dst, t0, errors.ETIMEOUT)
        # 3. rebuild: verify what arrived, check room, then commit
        got = parse(link.received())
        if errors.is_err(got):
            return self._abort(src, dst, t0, got)
        per = getattr(k.caps, "per", 0)
        if per and len(k.cap_list(dst)) + len(got["caps"]) > per:
            return self._abort(src, dst, t0, errors.EQUOTA)
        if ticks_diff(clock(), deadline) > 0:
            return self._abort(src, dst, t0, errors.ETIMEOUT)
        # commit point: nothing below can exceed the budget or half-apply
        owned = k.ipc.owned_by(src)
        hm = {}
        for c in caps:
            hm[c[0]] = k.cap_move(src, c[0], dst)
        self.handle_map = hm
        for cid in owned:
            k.chan_set_owner(cid, dst)
        for rid, data in regs:
            mem.reassign(rid, dst, 0)
        if sd != ST_RUNNING:
            k.part_start(0, dst) if sd == 0 else k.part_resume(0, dst)
        el = ticks_diff(clock(), t0)
        k.part_terminate(0, src)
        if eng is not None:
            eng.forget(src)
        self.done += 1
        log.emit(kinds.MIGRATION_DONE, 0, src, dst, el, len(regs), n)
        if self.on_commit is not None:
            self.on_commit(src, dst, got)
        return n

    def _abort(self, src, dst, t0, err):
        """Nothing was applied to dst: resume src, witness, cool down."""
        k = self.k
        el = ticks_diff(self.clock(), t0)
        self.link.reset()
        k.part_resume(0, src)
        self._until[src] = ticks_add(self.clock(), self.cooldown_ms)
        if err is errors.ETIMEOUT:
            self.timeouts += 1
            k.log.emit(kinds.MIGRATION_TIMEOUT, 0, src, dst, el,
                       self.budget_ms, self.cooldown_ms)
        else:
            k.log.deny(kinds.MIGRATION_TIMEOUT, 0, src, err.code, 2, dst,
                       self.budget_ms, el)
        return err
