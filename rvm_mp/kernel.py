# Kernel: the L1 facade that wires partitions, capabilities, the proof gate,
# IPC and device leases together (docs/kernel-api.md is the contract).
#
#   agent runtime / console / coherence
#          | caller pid (never chosen by an agent), handle, args
#          v
#   Kernel.<call> --> ProofGate.check (P1 CapTable lookup, P2 policy)
#          |               \-- refusal: RvmError returned + CAP_DENIED witness
#          v
#   mutate PartitionTable / CapTable / ChannelTable / LeaseTable / mem
#          |
#          v
#   WitnessLog.emit (one record per privileged action)
#
# Kernel calls never raise: every path returns a value or a preallocated
# RvmError, and every refusal is witnessed. caller 0 is the kernel itself
# (boot, fault handling, the operator console): it needs no capability.
#
# Slots other layers fill (L1 imports nothing from L2/L3):
#   mem              RegionManager (persistence); drop_partition(pid) is called
#                    from _drop_partition
#   ipc_observer     on_message(src, dst, nbytes) per delivered message
#   state_observers  [obj.on_state(pid, old, new)] after every transition
from .compat import const, ticks_add
from . import errors
from . import kinds
from .errors import is_err
from .captable import (CapTable, R_READ, R_WRITE, R_GRANT, R_REVOKE,
                       R_GRANT_ONCE, R_ALL, MAX_DEPTH, OT_PARTITION,
                       OT_CHANNEL, OT_DEVICE, OT_REGION)
from .partition import (Partition, PartitionTable, legal, valid_pid,
                        ST_CREATED, ST_RUNNING, ST_SUSPENDED, ST_HIBERNATED,
                        ST_RECOVERING, ST_TERMINATED)
from .proofgate import (ProofGate, h32, OP_DERIVE, OP_GRANT, OP_REVOKE,
                        OP_DELETE, OP_SPAWN, OP_STATE, OP_TERMINATE,
                        OP_CHAN_CREATE, OP_CHAN_CLOSE, OP_SEND, OP_RECV,
                        OP_LEASE, OP_LEASE_REVOKE, OP_CODE_LOAD, OP_MIGRATE,
                        OP_MERGE, OP_REGION, OP_DEVICE, P3_HMAC, P3_ED25519,
                        P3_PREIMAGE, OP_SPLIT)
from .ipc import ChannelTable
from .lease import (LeaseTable, DeviceProxy, LEASE_MAX_MS, REASON_RELEASED,
                    REASON_KERNEL)

_M30 = const(0x3FFFFFFF)
_FRESH_RECORDS = const(256)   # how far behind the head a statement's seq may be
_BOUND_OPS = const((1 << 16) | (1 << 17) | (1 << 18))  # migrate, merge, split
_TTL_MAX = const(0x0FFFFFFF)


def _i(x):
    """x if it is an int (for witness fields), else 0."""
    return x if type(x) is int else 0


def lease_message(pid, name, duration_ms, nonce):
    """The bytes a P3 lease proof (HMAC or Ed25519) signs."""
    import struct
    return b"RVML" + struct.pack("<HII", pid, duration_ms, nonce) + \
        name.encode()


class Kernel:
    def __init__(self, platform, profile, log=None, clock=None):
        self.platform = platform
        self.profile = profile
        lim = profile["limits"]
        self.limits = lim
        self.clock = clock or platform.ticks_ms
        self.device_key = platform.device_key()
        if log is None:
            from .witness import WitnessLog
            w = profile["witness"]
            log = WitnessLog(platform.unique_id(), key=self.device_key,
                             ring=w["ring"], seal_every=w["seal_every"],
                             clock=self.clock)
        self.log = log
        nparts = lim["partitions"]
        per = lim["caps_per_partition"]
        self.parts = PartitionTable(nparts)
        # every live partition's table can fill; a few extra entries hold
        # GRANT_ONCE husks
        self.caps = CapTable(nparts * per + per, per)
        self.gate = ProofGate(self)
        self.ipc = ChannelTable(lim.get("channels", 2 * nparts),
                                lim["queue_depth"], lim["payload_max"])
        self.leases = LeaseTable(self, profile.get("devices", {}))
        self.mem = None              # RegionManager slot (persistence)
        self.ipc_observer = None     # on_message(src, dst, nbytes)
        self.state_observers = []    # on_state(pid, old, new)
        self.observer_errors = 0
        self.trusted_ed25519 = []
        self.p3_ops = (1 << OP_CODE_LOAD) | (1 << OP_MIGRATE) | \
            (1 << OP_MERGE) | (1 << OP_SPLIT)
        if profile.get("proof", {}).get("lease_p3"):
            self.p3_ops |= 1 << OP_LEASE
        self.edge_msgs = {}          # (a << 12 | b), a <= b -> messages
        self.edge_bytes = {}         # same key -> payload bytes
        self.last_src = 0
        self.last_dst = 0            # owner of the channel of the last send

    # ---- helpers -------------------------------------------------------------
    def _deny(self, kind, caller, target, err, tier, a=0, c=0, d=0):
        self.log.deny(kind, _i(caller), _i(target), err.code, tier, _i(a),
                      _i(c), _i(d))
        return err

    def _caller_ok(self, caller):
        """Caller is 0 (the kernel) or a pid with a live handle table."""
        if type(caller) is not int:
            return False
        return caller == 0 or caller in self.caps.tables

    def _notify(self, pid, old, new):
        for ob in self.state_observers:
            try:
                ob.on_state(pid, old, new)
            except Exception:
                self.observer_errors += 1

    def _mint(self, owner, otype, oid, rights):
        h, ci = self.caps.mint(owner, otype, oid, rights)
        if h < 0:
            return errors.err(ci)
        self.log.emit(kinds.CAP_MINT, 0, owner, otype, oid, rights, h)
        return h

    # ---- partitions ------------------------------------------------------------
    def part_create(self, caller, handle=0, pid=None, mem_quota=0,
                    cpu_quota=0, msg_quota=0, name=""):
        """New partition id (state Created) or an RvmError."""
        if not self._caller_ok(caller):
            return self._deny(kinds.PART_DENIED, caller, 0, errors.ESTATE, 0,
                              ST_CREATED, 0, OP_SPAWN)
        tier = 0
        if caller:
            ci = self.gate.check(caller, handle, OT_PARTITION, 0, R_WRITE,
                                 OP_SPAWN)
            if is_err(ci):
                return ci
            tier = 2
        if pid is None:
            pid = self.parts.free_pid()
        if not valid_pid(pid):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.EBADID,
                              tier, ST_CREATED, 0, OP_SPAWN)
        for q in (mem_quota, cpu_quota, msg_quota):
            if type(q) is not int or q < 0 or q > _M30:
                return self._deny(kinds.PART_DENIED, caller, pid,
                                  errors.EINVAL, tier, ST_CREATED, 0, OP_SPAWN)
        old = self.parts.get(pid)
        if old is not None and old.state != ST_TERMINATED:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.EBUSY,
                              tier, ST_CREATED, old.state, OP_SPAWN)
        if self.parts.live >= self.parts.max_live:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ENOMEM,
                              tier, ST_CREATED, 0, OP_SPAWN)
        if caller and self.caps.used[caller] >= self.caps.per:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ENOMEM,
                              tier, ST_CREATED, 0, OP_SPAWN)
        p = Partition(pid, caller, name, mem_quota, cpu_quota, msg_quota)
        self.parts.add(p)
        self.caps.open(pid)
        self.log.emit(kinds.PART_CREATE, caller, pid, mem_quota, cpu_quota,
                      msg_quota, caller)
        if caller:
            self._mint(caller, OT_PARTITION, pid, R_ALL & ~R_GRANT_ONCE)
        self._notify(pid, -1, ST_CREATED)
        return pid

    def part_state(self, pid):
        if not valid_pid(pid):
            return errors.EBADID
        p = self.parts.get(pid)
        if p is None:
            return errors.ENOENT
        return p.state

    def part_list(self):
        out = []
        for pid in self.parts.pids():
            p = self.parts.parts[pid]
            out.append((pid, p.state, p.name))
        return out

    def part_set_state(self, caller, pid, new_state, handle=0, reason=0):
        """0 or an RvmError. Only the transitions of partition._LEGAL."""
        if new_state == ST_TERMINATED:
            return self.part_terminate(caller, pid, handle, reason)
        if not self._caller_ok(caller):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ESTATE,
                              0, new_state, 0, OP_STATE)
        if not valid_pid(pid):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.EBADID,
                              0, new_state, 0, OP_STATE)
        tier = 0
        if caller:
            ci = self.gate.check(caller, handle, OT_PARTITION, pid, R_WRITE,
                                 OP_STATE)
            if is_err(ci):
                return ci
            tier = 2
        p = self.parts.get(pid)
        if p is None:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ENOENT,
                              tier, new_state, 0, OP_STATE)
        if type(new_state) is not int or not legal(p.state, new_state):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ESTATE,
                              tier, new_state, p.state, OP_STATE)
        old = p.state
        p.state = new_state
        self.log.emit(kinds.PART_STATE, caller, pid, old, new_state,
                      _i(reason), 0)
        self._notify(pid, old, new_state)
        return 0

    def part_start(self, caller, pid, handle=0):
        return self.part_set_state(caller, pid, ST_RUNNING, handle)

    def part_suspend(self, caller, pid, handle=0):
        return self.part_set_state(caller, pid, ST_SUSPENDED, handle)

    def part_resume(self, caller, pid, handle=0):
        return self.part_set_state(caller, pid, ST_RUNNING, handle)

    def part_hibernate(self, caller, pid, handle=0):
        return self.part_set_state(caller, pid, ST_HIBERNATED, handle)

    def part_recover(self, caller, pid, handle=0):
        return self.part_set_state(caller, pid, ST_RECOVERING, handle)

    def part_terminate(self, caller, pid, handle=0, status=0):
        """0 or an RvmError. Drops everything the partition owned."""
        if not self._caller_ok(caller):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ESTATE,
                              0, ST_TERMINATED, 0, OP_TERMINATE)
        if not valid_pid(pid):
            return self._deny(kinds.PART_DENIED, caller, pid, errors.EBADID,
                              0, ST_TERMINATED, 0, OP_TERMINATE)
        tier = 0
        if caller and caller != pid:
            ci = self.gate.check(caller, handle, OT_PARTITION, pid, R_WRITE,
                                 OP_TERMINATE)
            if is_err(ci):
                return ci
            tier = 2
        p = self.parts.get(pid)
        if p is None:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ENOENT,
                              tier, ST_TERMINATED, 0, OP_TERMINATE)
        if p.state == ST_TERMINATED:
            return self._deny(kinds.PART_DENIED, caller, pid, errors.ESTATE,
                              tier, ST_TERMINATED, p.state, OP_TERMINATE)
        self._drop_partition(caller, p, _i(status))
        return 0

    def _drop_partition(self, caller, p, status):
        """The ONE place a partition's kernel state is released (Tock's
        habit): leases, owned channels, every capability it holds and their
        subtrees elsewhere, every capability naming it, comm edges, nonce
        window, its handle table, then its regions through `mem`."""
        pid = p.pid
        old = p.state
        nle = self.leases.drop_partition(pid, caller)
        ncap = 0
        for cid in self.ipc.owned_by(pid):
            ncap += self._close_channel(caller, cid)[1]
        ncap += self.caps.drop_where(pid, OT_PARTITION, pid)
        self.caps.close(pid)
        for d in (self.edge_msgs, self.edge_bytes):
            for key in [k for k in d if (k >> 12) == pid or (k & 0xFFF) == pid]:
                del d[key]
        nreg = 0
        mem = self.mem
        if mem is not None and hasattr(mem, "drop_partition"):
            try:
                r = mem.drop_partition(pid)
                nreg = r if type(r) is int and r > 0 else 0
            except Exception:
                self.observer_errors += 1
        p.state = ST_TERMINATED
        p.exit_status = status
        p.nonce_bits = None
        p.msgs_used = 0
        self.parts.bury(p)
        self.log.emit(kinds.PART_TERMINATE, caller, pid, status, nreg, ncap,
                      nle)
        self._notify(pid, old, ST_TERMINATED)

    def quota_reset(self, pid):
        p = self.parts.get(pid) if type(pid) is int else None
        if p is None:
            return errors.ENOENT
        p.msgs_used = 0
        return 0

    # ---- capabilities -----------------------------------------------------------
    def cap_mint(self, owner, otype, oid, rights):
        """Kernel-internal: a root capability for `owner`. Handle or error."""
        if (not valid_pid(owner) or owner not in self.caps.tables
                or type(otype) is not int or not 1 <= otype <= 255
                or type(oid) is not int or not 0 <= oid <= 0xFFFF
                or type(rights) is not int or rights & ~R_ALL):
            return self._deny(kinds.CAP_DENIED, 0, owner, errors.EINVAL, 0,
                              0, rights, 0)
        h = self._mint(owner, otype, oid, rights)
        if is_err(h):
            self._deny(kinds.CAP_DENIED, 0, owner, h, 0, 0, rights, 0)
        return h

    def _bad_args(self, caller, op, handle, rights):
        return self._deny(kinds.CAP_DENIED, caller, 0, errors.EINVAL, 0,
                          handle, rights, op)

    def _expiry(self, ttl_ms):
        if ttl_ms:
            return ticks_add(self.clock(), ttl_ms), True
        return 0, False

    def cap_derive(self, caller, handle, rights, ttl_ms=0):
        """New handle (child of `handle`, same table) or an RvmError."""
        if (type(caller) is not int or caller <= 0 or type(rights) is not int
                or rights <= 0 or rights & ~R_ALL or type(ttl_ms) is not int
                or not 0 <= ttl_ms <= _TTL_MAX):
            return self._bad_args(caller, OP_DERIVE, handle, rights)
        g = self.gate
        ci = g.check(caller, handle, 0, -1, 0, OP_DERIVE)
        if is_err(ci):
            return ci
        caps = self.caps
        src = caps.rights[ci]
        allowed = src & ~R_GRANT_ONCE
        if src & R_GRANT:
            allowed |= R_GRANT_ONCE
        if rights & ~allowed:
            g.refuse(caller, caps.oid[ci], errors.ERIGHTS, 1, handle, rights,
                     OP_DERIVE)
            return errors.ERIGHTS
        if caps.depth[ci] + 1 > MAX_DEPTH:
            g.refuse(caller, caps.oid[ci], errors.EDEPTH, 2, handle, rights,
                     OP_DERIVE)
            return errors.EDEPTH
        exp, has = self._expiry(ttl_ms)
        h, c2 = caps.child(ci, caller, rights, exp, has)
        if h < 0:
            g.refuse(caller, caps.oid[ci], errors.err(c2), 2, handle, rights,
                     OP_DERIVE)
            return errors.err(c2)
        self.log.emit(kinds.CAP_DERIVE, caller, caller, handle, caps.oid[ci],
                      rights, h | (caps.depth[c2] << 16))
        return h

    def cap_grant(self, caller, handle, to_pid, rights, ttl_ms=0, nonce=-1):
        """New handle in to_pid's table or an RvmError."""
        if (type(caller) is not int or caller <= 0 or type(rights) is not int
                or rights <= 0 or rights & ~R_ALL or type(ttl_ms) is not int
                or not 0 <= ttl_ms <= _TTL_MAX or type(nonce) is not int):
            return self._bad_args(caller, OP_GRANT, handle, rights)
        g = self.gate
        if not valid_pid(to_pid):
            g.refuse(caller, _i(to_pid), errors.EBADID, 0, handle, rights,
                     OP_GRANT)
            return errors.EBADID
        ci = g.check(caller, handle, 0, -1, 0, OP_GRANT)
        if is_err(ci):
            return ci
        caps = self.caps
        oid = caps.oid[ci]
        src = caps.rights[ci]
        if not src & (R_GRANT | R_GRANT_ONCE):
            g.refuse(caller, oid, errors.ERIGHTS, 1, handle, rights, OP_GRANT)
            return errors.ERIGHTS
        once = not src & R_GRANT
        allowed = src & ~R_GRANT_ONCE
        if src & R_GRANT:
            allowed |= R_GRANT_ONCE
        if rights & ~allowed:
            g.refuse(caller, oid, errors.ERIGHTS, 1, handle, rights, OP_GRANT)
            return errors.ERIGHTS
        if caps.depth[ci] + 1 > MAX_DEPTH:
            g.refuse(caller, oid, errors.EDEPTH, 2, handle, rights, OP_GRANT)
            return errors.EDEPTH
        t = caps.tables.get(to_pid)
        tp = self.parts.get(to_pid)
        if t is None or tp is None or tp.state == ST_TERMINATED:
            e = errors.ENOENT if tp is None else errors.ESTATE
            g.refuse(caller, oid, e, 2, handle, rights, OP_GRANT)
            return e
        if caps.used[to_pid] >= caps.per or caps._nfree == 0:
            g.refuse(caller, oid, errors.ENOMEM, 2, handle, rights, OP_GRANT)
            return errors.ENOMEM
        if nonce >= 0:
            r = g.nonce_ok(self.parts.get(caller), nonce)
            if r:
                g.refuse(caller, oid, r, 2, handle, rights, OP_GRANT)
                return r
        exp, has = self._expiry(ttl_ms)
        h, c2 = caps.child(ci, to_pid, rights, exp, has)
        if once:
            caps.consume(ci)
        self.log.emit(kinds.CAP_GRANT, caller, to_pid, handle, h, rights, oid)
        return h

    def _resolve_for(self, caller, handle, holder, op, rights):
        """Pool index for a revoke/delete: through the gate for partitions,
        directly in `holder`'s table for the kernel (caller 0)."""
        if caller == 0:
            ci, code = self.caps.resolve(holder, handle)
            if ci < 0:
                return self._deny(kinds.CAP_DENIED, 0, holder,
                                  errors.err(code), 1, handle, rights, op)
            return ci
        if type(caller) is not int or caller < 0:
            return self._bad_args(caller, op, handle, rights)
        return self.gate.check(caller, handle, 0, -1, rights, op)

    def cap_revoke(self, caller, handle, holder=0):
        """Revoke every capability derived from `handle` (in every table);
        the handle itself stays. Needs R_REVOKE. Count or an RvmError."""
        ci = self._resolve_for(caller, handle, holder, OP_REVOKE, R_REVOKE)
        if is_err(ci):
            return ci
        caps = self.caps
        oid = caps.oid[ci]
        who = caps.holder[ci]
        n = caps.delete(ci, keep_root=True)  # the root itself is kept
        self.log.emit(kinds.CAP_REVOKE, caller, who, handle,
                      handle >> 8, n, oid)
        return n

    def cap_delete(self, caller, handle, holder=0):
        """Remove `handle` and its whole subtree. Count or an RvmError."""
        ci = self._resolve_for(caller, handle, holder, OP_DELETE, 0)
        if is_err(ci):
            return ci
        caps = self.caps
        oid = caps.oid[ci]
        who = caps.holder[ci]
        n = caps.delete(ci)
        t = caps.tables.get(who)
        gen = t[handle & 0xFF] >> 16 if t is not None else 0
        self.log.emit(kinds.CAP_REVOKE, caller, who, handle, gen, n, oid)
        return n

    def cap_lookup(self, pid, handle):
        ci, code = self.caps.resolve(pid, handle)
        if ci < 0:
            return errors.err(code)
        c = self.caps
        return (c.otype[ci], c.oid[ci], c.rights[ci], c.depth[ci])

    def cap_list(self, pid):
        return self.caps.entries(pid)

    def cap_attenuate(self, pid, handle, rights):
        """Kernel-internal (DC-8 split): AND the rights of `handle` and its
        subtree with `rights`. Witnessed by the split's CAP_ATTENUATE_SPLIT
        summary. Count or an RvmError."""
        ci, code = self.caps.resolve(pid, handle)
        if ci < 0:
            return self._deny(kinds.CAP_DENIED, 0, pid, errors.err(code), 1,
                              handle, rights, 0)
        return self.caps.attenuate(ci, _i(rights) & R_ALL)

    def cap_move(self, pid, handle, to_pid):
        """Kernel-internal (DC-8 split): move a capability to another
        partition's table, keeping its place in the tree. New handle."""
        ci, code = self.caps.resolve(pid, handle)
        if ci < 0:
            return self._deny(kinds.CAP_DENIED, 0, pid, errors.err(code), 1,
                              handle, 0, 0)
        h, code = self.caps.move(ci, to_pid)
        if h < 0:
            return self._deny(kinds.CAP_DENIED, 0, to_pid, errors.err(code),
                              1, handle, 0, 0)
        c = self.caps
        self.log.emit(kinds.CAP_GRANT, 0, to_pid, handle, h, c.rights[ci],
                      c.oid[ci])
        return h

    # ---- proofs ----------------------------------------------------------------
    def merkle_commit(self, lo, hi):
        return self.gate.commit_root(lo, hi)

    def prove(self, caller, op, target, proofs, args=b""):
        """P3 for a high-stakes op (code load, migrate, merge, split): 0 or
        error. Ops not in p3_ops pass without proofs. For the partition
        mutations (merge, migrate, split) the proofs must be bound to the
        operation: see op_statement()."""
        if type(op) is not int or not 0 <= op < 64:
            return self._deny(kinds.PROOF_P3, caller, target, errors.EINVAL,
                              3, 0, 0, 0)
        if not (self.p3_ops >> op) & 1 and not proofs:
            return 0
        if (_BOUND_OPS >> op) & 1:
            r = self._bound(_i(caller), op, _i(target), args, proofs)
            if r:
                return r
        return self.gate.p3(_i(caller), op, _i(target), proofs)

    def op_statement(self, op, actor, target, args, seq):
        """What a proof for a partition mutation signs (HMAC or Ed25519) or
        is a preimage of: the operation code, the partition asking, the
        target, a digest of the arguments, and a recent chain position
        (seq and its link), so it is good for this operation only, asked by
        this partition, at about this point of the log:
            b"RVMO" | op u8 | 0 | actor u16 | target u16 | seq u32 |
            sha256(args) 32 | link[seq] 32                  (78 bytes)
        None when seq is not a live, recent record."""
        import struct
        import hashlib
        log = self.log
        if type(seq) is not int or seq < 0 or \
                log.next_seq - 1 - seq > _FRESH_RECORDS:
            return None
        rec = log.record(seq)
        if rec is None:
            return None
        return b"RVMO" + struct.pack("<BBHHI", op, 0, actor, target, seq) + \
            hashlib.sha256(args).digest() + rec[32:64]

    def _bound(self, caller, op, target, args, proofs):
        """0 when at least one proof's message is this operation's statement
        and no proof signs anything else; EPROOF (witnessed) otherwise."""
        import struct
        bound = 0
        ok = type(proofs) is list or type(proofs) is tuple
        if ok:
            for pr in proofs:
                if type(pr) is not tuple or not pr or type(pr[0]) is not int:
                    ok = False
                    break
                kind = pr[0]
                if kind == P3_HMAC and len(pr) == 3:
                    msg = pr[1]
                elif kind == P3_ED25519 and len(pr) == 4:
                    msg = pr[2]
                elif kind == P3_PREIMAGE and len(pr) == 3:
                    msg = pr[2]
                else:
                    continue   # linkage, inclusion: facts about the log
                if type(msg) is not bytes or len(msg) != 78:
                    ok = False
                    break
                seq = struct.unpack_from("<I", msg, 10)[0]
                if msg != self.op_statement(op, caller, target, args, seq):
                    ok = False
                    break
                bound += 1
        if ok and bound:
            return 0
        return self._deny(kinds.PROOF_P3, caller, target, errors.EPROOF, 3,
                          0, 0, op)

    # ---- IPC -------------------------------------------------------------------
    def chan_create(self, caller, depth=0):
        """Handle (R_READ|R_WRITE|R_GRANT|R_REVOKE) on a new channel."""
        ch_limit = self.ipc.depth
        p = self.parts.get(caller) if type(caller) is int else None
        if p is None or caller not in self.caps.tables or p.state != ST_RUNNING:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.ESTATE, 0,
                              0, 0, OP_CHAN_CREATE)
        if type(depth) is not int or depth < 0 or depth > ch_limit:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.EINVAL, 0,
                              0, 0, OP_CHAN_CREATE)
        if self.caps.used[caller] >= self.caps.per:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.ENOMEM, 0,
                              0, 0, OP_CHAN_CREATE)
        ch = self.ipc.create(caller, depth or ch_limit)
        if ch is None:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.ENOMEM, 0,
                              0, 0, OP_CHAN_CREATE)
        self.log.emit(kinds.CHAN_CREATE, caller, caller, ch.cid, ch.depth,
                      ch.pmax, 0)
        return self._mint(caller, OT_CHANNEL, ch.cid,
                          R_READ | R_WRITE | R_GRANT | R_REVOKE)

    def _close_channel(self, caller, cid):
        """(messages dropped, capabilities revoked)."""
        ch = self.ipc.remove(cid)
        if ch is None:
            return 0, 0
        n = self.caps.drop_where(-1, OT_CHANNEL, cid)
        self.log.emit(kinds.CHAN_CLOSE, caller, ch.owner, cid, ch.count, n, 0)
        return ch.count, n

    def chan_set_owner(self, cid, to_pid):
        """Kernel-internal (coherence split/merge): the partition whose
        termination closes channel `cid` becomes `to_pid`. Witnessed by the
        SPLIT/MERGE record that calls it. 0 or ENOENT."""
        ch = self.ipc.chans.get(cid)
        if ch is None or not valid_pid(to_pid):
            return errors.ENOENT
        ch.owner = to_pid
        return 0

    def chan_close(self, caller, handle):
        ci = self.gate.check(caller, handle, OT_CHANNEL, -1, R_REVOKE,
                             OP_CHAN_CLOSE)
        if is_err(ci):
            return ci
        return self._close_channel(caller, self.caps.oid[ci])[0]

    def send(self, caller, handle, payload):
        """Queue payload on the channel named by handle; 0 or an RvmError.
        The sender recorded is `caller`, stamped by the kernel."""
        ci = self.gate.check(caller, handle, OT_CHANNEL, -1, R_WRITE, OP_SEND)
        if type(ci) is not int:
            return ci
        cid = self.caps.oid[ci]
        ch = self.ipc.chans.get(cid)
        if ch is None:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.ENOENT, 2,
                              cid, 0, OP_SEND)
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            return self._deny(kinds.IPC_DENIED, caller, ch.owner,
                              errors.EINVAL, 2, cid, 0, OP_SEND)
        n = len(payload)
        if n > ch.pmax:
            return self._deny(kinds.IPC_DENIED, caller, ch.owner,
                              errors.ETOOBIG, 2, cid, n, OP_SEND)
        if ch.count >= ch.depth:
            return self._deny(kinds.IPC_FULL, caller, ch.owner, errors.EFULL,
                              2, cid, ch.count, ch.depth)
        hv = h32(payload)
        seq = ch.put(caller, payload, n, hv)
        self.parts.parts[caller].msgs_used += 1
        self.last_dst = ch.owner
        self.log.emit(kinds.IPC_SEND, caller, ch.owner, cid, n, seq, hv)
        return 0

    def _take(self, caller, handle):
        ci = self.gate.check(caller, handle, OT_CHANNEL, -1, R_READ, OP_RECV)
        if type(ci) is not int:
            return ci
        cid = self.caps.oid[ci]
        ch = self.ipc.chans.get(cid)
        if ch is None:
            return self._deny(kinds.IPC_DENIED, caller, 0, errors.ENOENT, 2,
                              cid, 0, OP_RECV)
        if ch.count == 0:
            return errors.EEMPTY
        return ch

    def _delivered(self, caller, ch, slot):
        n = ch.lens[slot]
        src = ch.srcs[slot]
        self.log.emit(kinds.IPC_RECV, caller, src, ch.cid, n, ch.seqs[slot],
                      ch.hashes[slot])
        ch.pop()
        self.last_src = src
        a, b = (src, caller) if src <= caller else (caller, src)
        key = (a << 12) | b
        em = self.edge_msgs
        em[key] = (em.get(key, 0) + 1) & _M30
        eb = self.edge_bytes
        eb[key] = (eb.get(key, 0) + n) & _M30
        ob = self.ipc_observer
        if ob is not None:
            try:
                ob.on_message(src, caller, n)
            except Exception:
                self.observer_errors += 1
        return src, n

    def recv(self, caller, handle):
        """(src_pid, payload bytes), EEMPTY, or an RvmError."""
        ch = self._take(caller, handle)
        if is_err(ch):
            return ch
        slot = ch.head
        o = slot * ch.pmax
        data = bytes(ch.mv[o:o + ch.lens[slot]])
        src, n = self._delivered(caller, ch, slot)
        return src, data

    def recv_into(self, caller, handle, buf):
        """Copy the next message into buf; its length (sender in
        self.last_src) or an RvmError. A message longer than buf stays."""
        ch = self._take(caller, handle)
        if is_err(ch):
            return ch
        slot = ch.head
        n = ch.lens[slot]
        if not isinstance(buf, (bytearray, memoryview)):
            return self._deny(kinds.IPC_DENIED, caller, ch.srcs[slot],
                              errors.EINVAL, 2, ch.cid, n, OP_RECV)
        if n > len(buf):
            return self._deny(kinds.IPC_DENIED, caller, ch.srcs[slot],
                              errors.ETOOBIG, 2, ch.cid, n, OP_RECV)
        o = slot * ch.pmax
        try:
            buf[0:n] = ch.mv[o:o + n]
        except (TypeError, ValueError):   # a read-only memoryview
            return self._deny(kinds.IPC_DENIED, caller, ch.srcs[slot],
                              errors.EINVAL, 2, ch.cid, n, OP_RECV)
        self._delivered(caller, ch, slot)
        return n

    def pending(self, caller, handle):
        """Messages queued on the channel (needs R_READ), or an RvmError."""
        ci = self.gate.check(caller, handle, OT_CHANNEL, -1, R_READ, OP_RECV)
        if type(ci) is not int:
            return ci
        ch = self.ipc.chans.get(self.caps.oid[ci])
        return ch.count if ch is not None else errors.ENOENT

    def edge(self, a, b):
        if not valid_pid(a) or not valid_pid(b):
            return 0, 0
        if a > b:
            a, b = b, a
        key = (a << 12) | b
        return self.edge_msgs.get(key, 0), self.edge_bytes.get(key, 0)

    def edges(self):
        out = []
        for key in sorted(self.edge_msgs):
            out.append((key >> 12, key & 0xFFF, self.edge_msgs[key],
                        self.edge_bytes.get(key, 0)))
        return out

    # ---- device leases ---------------------------------------------------------
    def device_id(self, name):
        di = self.leases.index(name)
        return di + 1 if di >= 0 else errors.ENOENT

    def lease(self, caller, handle, name, duration_ms, nonce=-1, proofs=None):
        """A DeviceProxy for an exclusive lease on device `name`, or an
        RvmError. Needs a capability (OT_DEVICE, id) with R_READ; the lease
        carries the capability's R_READ/R_WRITE. When OP_LEASE is in p3_ops
        a proof over lease_message(caller, name, duration_ms, nonce) is
        required: [(P3_HMAC, mac)] or [(P3_ED25519, pubkey, sig)]."""
        lt = self.leases
        di = lt.index(name) if type(name) is str else -1
        if di < 0:
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.ENOENT, 0,
                              0, _i(duration_ms), OP_LEASE)
        if (type(duration_ms) is not int or not 1 <= duration_ms <= LEASE_MAX_MS
                or type(nonce) is not int or not -1 <= nonce <= _M30):
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.EINVAL, 0,
                              di + 1, 0, OP_LEASE)
        ci = self.gate.check(caller, handle, OT_DEVICE, di + 1, R_READ,
                             OP_LEASE)
        if is_err(ci):
            return ci
        tier = 2
        if (self.p3_ops >> OP_LEASE) & 1:
            if nonce < 0:
                return self._deny(kinds.LEASE_DENIED, caller, 0, errors.ENONCE,
                                  2, di + 1, duration_ms, OP_LEASE)
            msg = lease_message(caller, name, duration_ms, nonce)
            full = []
            if not isinstance(proofs, (list, tuple)):
                proofs = ()
            for pr in proofs:
                if not isinstance(pr, tuple) or not pr:
                    continue
                if pr[0] == P3_HMAC and len(pr) == 2:
                    full.append((P3_HMAC, msg, pr[1]))
                elif pr[0] == P3_ED25519 and len(pr) == 3:
                    full.append((P3_ED25519, pr[1], msg, pr[2]))
            r = self.gate.p3(caller, OP_LEASE, di + 1, full)
            if r:
                return r
            tier = 3
        h = lt._live(di, self.clock())
        if h:
            return self._deny(kinds.LEASE_DENIED, caller, h, errors.EBUSY,
                              tier, di + 1, duration_ms, OP_LEASE)
        if nonce >= 0:
            r = self.gate.nonce_ok(self.parts.get(caller), nonce)
            if r:
                return self._deny(kinds.LEASE_DENIED, caller, 0, r, tier,
                                  di + 1, duration_ms, OP_LEASE)
        if not lt.open(di):  # the port lacks this device
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.ENOTSUP,
                              tier, di + 1, duration_ms, OP_LEASE)
        rights = self.caps.rights[ci] & (R_READ | R_WRITE)
        lid = lt.grant(di, caller, duration_ms, rights, ci,
                       self.caps.serial[ci])
        self.log.emit(kinds.LEASE_GRANT, caller, caller, di + 1, lid,
                      duration_ms, rights)
        return DeviceProxy(lt, di, lid, caller)

    def lease_id(self, caller, handle, name, duration_ms):
        """lease() for an agent: the lease id (an int), never the proxy."""
        px = self.lease(caller, handle, name, duration_ms)
        return px if is_err(px) else px.lease_id

    def _lease_index(self, caller, lid, op):
        lt = self.leases
        for di in range(lt.n):
            if lt.lid[di] == lid or lt.ended_lid[di] == lid:
                return di
        self._deny(kinds.LEASE_DENIED, caller, 0, errors.ESTALE, 2, 0, 0, op)
        return -1

    def dev_call(self, caller, lid, op, args):
        """An agent's device operation under lease `lid`: the lease and the
        op's rights are checked again (witnessed on refusal), then
        devops.call runs it. The result (builtin values) or an RvmError."""
        from . import devops
        di = self._lease_index(caller, lid, OP_DEVICE)
        if di < 0:
            return errors.ESTALE
        need = devops.OPS.get(op)
        if need is None:
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.EINVAL, 2,
                              di + 1, lid, OP_DEVICE)
        lt = self.leases
        r = lt.check(di, lid, caller, need)
        if r:
            return r
        name = lt.names[di]
        return devops.call(lt.devs[di], lt.specs[name].get("type", ""), op,
                           args)

    def lease_release(self, caller, lid):
        """The holder ends its own lease `lid`."""
        di = self._lease_index(caller, lid, OP_LEASE_REVOKE)
        if di < 0:
            return errors.ESTALE
        lt = self.leases
        if lt.holder[di] != caller or lt.lid[di] != lid:
            return self._deny(kinds.LEASE_DENIED, caller, lt.holder[di],
                              errors.ESTALE, 2, di + 1, lid, OP_LEASE_REVOKE)
        return self.lease_revoke(caller, lt.names[di])

    def lease_revoke(self, caller, name, handle=0, reason=None):
        """End the lease on `name`: by its holder, by the kernel (caller 0),
        or by a capability with R_REVOKE on the device. 0 or an RvmError."""
        lt = self.leases
        di = lt.index(name) if type(name) is str else -1
        if di < 0:
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.ENOENT, 0,
                              0, 0, OP_LEASE_REVOKE)
        h = lt._live(di, self.clock())
        if not h:
            return self._deny(kinds.LEASE_DENIED, caller, 0, errors.ENOENT, 0,
                              di + 1, 0, OP_LEASE_REVOKE)
        if caller == 0:
            why = REASON_KERNEL
        elif caller == h:
            why = REASON_RELEASED
        else:
            ci = self.gate.check(caller, handle, OT_DEVICE, di + 1, R_REVOKE,
                                 OP_LEASE_REVOKE)
            if is_err(ci):
                return ci
            why = REASON_KERNEL
        lt.revoke(di, _i(caller), why if reason is None else _i(reason))
        return 0

    def expire_leases(self):
        return self.leases.expire()

    def leases_of(self, pid):
        return self.leases.of(pid) if valid_pid(pid) else []

    # ---- memory regions (rvm_mp/region.py) -----------------------------------
    # A partition names a region through a capability (OT_REGION, rid) the
    # kernel mints at allocation; each call passes the proof gate (P1 rights,
    # P2 policy) and the RegionManager then checks bounds and tier, moves the
    # bytes and witnesses the change (docs/persistence.md).
    def _region(self, caller, handle, rights):
        """(rid) for a region capability with `rights`, or an RvmError."""
        if self.mem is None:
            return errors.ENOENT
        ci = self.gate.check(caller, handle, OT_REGION, -1, rights, OP_REGION)
        if type(ci) is not int:
            return ci
        return self.caps.oid[ci]

    def region_alloc(self, caller, size):
        """A new zero-filled region; returns a handle (READ|WRITE|GRANT|
        REVOKE) in the caller's table."""
        if self.mem is None:
            return errors.ENOENT
        if not valid_pid(caller) or caller not in self.caps.tables:
            return self._deny(kinds.REGION_DENIED, caller, 0, errors.EBADID,
                              0, 0, _i(size), 1)
        rid = self.mem.alloc(caller, size)
        if is_err(rid):
            return rid
        h = self._mint(caller, OT_REGION, rid, R_READ | R_WRITE | R_GRANT
                       | R_REVOKE)
        if is_err(h):
            self.mem.free(0, rid)
        return h

    def region_read(self, caller, handle, off, n):
        rid = self._region(caller, handle, R_READ)
        if is_err(rid):
            return rid
        return self.mem.read(caller, rid, off, n, True)

    def region_write(self, caller, handle, off, data):
        rid = self._region(caller, handle, R_WRITE)
        if is_err(rid):
            return rid
        return self.mem.write(caller, rid, off, data, True)

    def region_free(self, caller, handle):
        """Free the region and drop every capability naming it."""
        rid = self._region(caller, handle, R_REVOKE)
        if is_err(rid):
            return rid
        r = self.mem.free(caller, rid, True)
        if is_err(r):
            return r
        self.caps.drop_where(-1, OT_REGION, rid)
        return 0

    def region_share(self, caller, handle, to_pid):
        """Share read-only (WARM) into to_pid: a READ child capability in
        its table (revocable with the parent). Returns that handle."""
        rid = self._region(caller, handle, R_GRANT)
        if is_err(rid):
            return rid
        h = self.cap_grant(caller, handle, to_pid, R_READ)
        if is_err(h):
            return h
        r = self.mem.share(caller, rid, to_pid, True)
        return r if is_err(r) else h

    def region_checkpoint(self, caller, pid, extra=b""):
        """Checkpoint a partition's regions (+ the caller's extra bytes).
        A partition may checkpoint itself; the kernel any partition."""
        if self.mem is None:
            return errors.ENOENT
        if caller != 0 and caller != pid:
            return self._deny(kinds.REGION_DENIED, caller, pid, errors.ERIGHTS,
                              1, 0, 0, 6)
        return self.mem.checkpoint(pid, extra, caller)

    def region_rollback(self, caller, handle):
        """F3 on request: rebuild the region from checkpoint + deltas."""
        rid = self._region(caller, handle, R_WRITE)
        if is_err(rid):
            return rid
        return self.mem.rollback_region(rid, caller)

    # ---- state summary (tests, console) -----------------------------------------
    def snapshot(self):
        """Bytes/tuples of all kernel security state, for before/after checks."""
        parts = []
        for pid in self.parts.pids():
            p = self.parts.parts[pid]
            parts.append((pid, p.state, p.msgs_used, p.nonce_hi,
                          bytes(p.nonce_bits) if p.nonce_bits else b""))
        chans = []
        for cid in sorted(self.ipc.chans):
            ch = self.ipc.chans[cid]
            chans.append((cid, ch.owner, ch.count, ch.head, ch.seq,
                          bytes(ch.buf)))
        lt = self.leases
        return (self.caps.snapshot(), tuple(parts), tuple(chans),
                bytes(lt.holder), bytes(lt.lid), tuple(self.edges()))
