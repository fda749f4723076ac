# Control partition and console protocol, device side: commands through the
# real Kernel and proof gate, framed and human modes, bad input, log pulls.
# Runs on CPython and on the MicroPython unix port.
import json
import os
import struct

import kt
from rvm_mp import board, control, errors, kinds
from rvm_mp import frame as F
from rvm_mp.hal import Platform, MemConsole
from rvm_mp.kernel import Kernel
from rvm_mp.witness import WitnessLog, genesis_link, chain_link
from rvm_mp.witness_store import WitnessStore

# source .py files compile at import (a deployed board runs .mpy): 256K
HEAP = "320K"  # kernel compiled from source in the heap, plus a 256-record ring


def _setup(store=False, ring=16):
    prof = board.load("seed-64k", dirs=(kt.repo_root() + "/boards",))
    d = kt.tmpdir("ctl")
    pf = Platform(d, device_id=kt.DEVICE_ID, key=kt.KEY)
    con = pf.attach_console(MemConsole())
    st = None
    if store:
        st = WitnessStore(d + "/wit", seg_records=16,
                          genesis=genesis_link(kt.DEVICE_ID))
    log = WitnessLog(kt.DEVICE_ID, boot=1, key=kt.KEY, ring=ring, store=st)
    k = Kernel(pf, prof, log=log)
    c = control.Control(k, pf, board="seed-64k", banner=False)
    return k, c, con


def _ask(c, con, line, seq=1):
    con.feed(F.encode(F.T_REQ, seq, line.encode()))
    c.poll()
    return F.decode(con.take())


def _answer(items):
    """JSON of the final answer frame (after MORE chunks), or the error."""
    buf = b""
    for r, ft, seq, payload in items:
        if r == F.R_FRAME and ft == F.T_MORE:
            buf += payload
        elif r == F.R_FRAME and ft in (F.T_ANS, F.T_ERR):
            return ft, json.loads(buf + payload)
    raise AssertionError("no answer frame in %r" % (items,))


def _kinds(log, lo=0):
    return [r[10] for r in log.iter_range(lo, log.next_seq)]


def test_control_partition_is_first_and_gated():
    k, c, con = _setup()
    assert c.pid == 1
    parts = k.part_list()
    assert parts[0][0] == 1 and parts[0][2] == "control"
    ft, obj = _answer(_ask(c, con, "ps"))
    assert ft == F.T_ANS and obj["partitions"][0]["name"] == "control"
    # a partition control did not create and holds no cap on: refused by
    # the gate (witnessed), not bypassed
    other = k.part_create(0, name="stranger")
    k.part_start(0, other)
    before = k.log.next_seq
    ft, obj = _answer(_ask(c, con, "kill %d" % other, 2))
    assert ft == F.T_ERR and obj["err"] in ("EBADHANDLE", "ERIGHTS", "EWRONGOBJ")
    assert k.part_state(other) == 1
    ks = _kinds(k.log, before)
    assert kinds.OP_DENIED in ks
    assert kinds.PART_DENIED in ks or kinds.CAP_DENIED in ks


def test_spawn_suspend_resume_kill_are_witnessed():
    k, c, con = _setup()
    ft, obj = _answer(_ask(c, con, "spawn sensor"))
    assert ft == F.T_ANS
    pid = obj["pid"]
    assert k.part_state(pid) == 0  # created (the runtime starts agents)
    k.part_start(c.pid, pid, c._cap(1, pid))
    ft, obj = _answer(_ask(c, con, "suspend %d" % pid, 3))
    assert obj["state"] == "suspended"
    ft, obj = _answer(_ask(c, con, "resume %d" % pid, 4))
    assert obj["state"] == "running"
    ft, obj = _answer(_ask(c, con, "kill %d" % pid, 5))
    assert obj["state"] == "terminated"
    ops = [r for r in k.log.query(kind=kinds.OP_COMMAND)]
    codes = [struct.unpack_from("<I", r, 16)[0] for r in ops]
    assert codes == [control.CMDS.index(n) for n in
                     ("spawn", "suspend", "resume", "kill")]
    for r in ops:  # actor is the control partition; c = frame seq
        assert r[12] == c.pid
    assert struct.unpack_from("<I", ops[-1], 24)[0] == 5
    # killing it again: refused, witnessed, kernel still answers
    ft, obj = _answer(_ask(c, con, "kill %d" % pid, 6))
    assert ft == F.T_ERR
    ft, obj = _answer(_ask(c, con, "stat", 7))
    assert ft == F.T_ANS and obj["partitions"] >= 2
    # which implementation each loaded hot path runs (impls.which)
    assert obj["impls"]["link"] in ("natmod", "viper", "portable")
    assert obj["impls"]["p1"] in ("natmod", "native", "portable")


def test_lease_grant_revoke_seal():
    k, c, con = _setup()
    ft, obj = _answer(_ask(c, con, "lease relay 500"))
    assert ft == F.T_ANS and obj["holder"] == c.pid
    assert k.leases_of(c.pid)[0][0] == "relay"
    ft, obj = _answer(_ask(c, con, "lease relay 500", 2))
    assert ft == F.T_ERR and obj["err"] == "EBUSY"
    ft, obj = _answer(_ask(c, con, "lease revoke relay", 3))
    assert ft == F.T_ANS and k.leases_of(c.pid) == []
    ft, obj = _answer(_ask(c, con, "lease nosuch 500", 4))
    assert ft == F.T_ERR and obj["err"] == "ENOENT"
    # grant the spawn right's child to a new partition, then revoke it
    pid = _answer(_ask(c, con, "spawn worker", 5))[1]["pid"]
    h = c._cap(3, k.device_id("led"))
    ft, obj = _answer(_ask(c, con, "grant %d %d 1" % (pid, h), 6))
    assert ft == F.T_ANS and obj["rights"] == 1
    assert len(k.cap_list(pid)) >= 1
    ft, obj = _answer(_ask(c, con, "revoke %d" % h, 7))
    assert ft == F.T_ANS and obj["revoked"] >= 1
    ft, obj = _answer(_ask(c, con, "seal", 8))
    assert k.log.record(obj["seal_seq"])[10] == kinds.SEAL


def test_human_mode_line_editing_and_errors():
    k, c, con = _setup()
    con.feed(b"hepl\x7f\x7flp\r\n")
    c.poll()
    out = con.take()
    assert b"stat" in out and b"rvm> " in out  # help listed the commands
    con.feed(b"frobnicate 1 2\r")
    c.poll()
    out = con.take()
    assert b"error: unknown command" in out
    con.feed(b"x" * 500 + b"\r")
    c.poll()
    out = con.take()
    assert b"longer than" in out
    con.feed(b"ps\r")
    c.poll()
    out = con.take()
    assert b"PID" in out and b"control" in out
    con.feed(b"logread 0 5\r")  # framed-only
    c.poll()
    assert b"framed-only" in con.take()
    assert kinds.OP_DENIED in _kinds(k.log)


def test_bad_frames_get_error_frames_never_a_crash():
    k, c, con = _setup(ring=256)  # keep every record of the junk in RAM
    good = F.encode(F.T_REQ, 9, b"stat")
    i = good.find(b"stat")
    corrupt = good[:i] + b"s" + b"x" + good[i + 2:]
    con.feed(corrupt)
    con.feed(good[:6] + good)             # truncated by a new frame
    con.feed(F.encode(F.T_ANS, 3, b"{}"))  # a type the device never takes
    c.poll()
    items = F.decode(con.take())
    errs = [json.loads(p)["err"] for r, ft, s, p in items if r == F.R_FRAME and ft == F.T_ERR]
    assert errs[0] == "ECRC" and errs[1] == "EABORT" and "EINVAL" in errs
    answers = [p for r, ft, s, p in items if r == F.R_FRAME and ft == F.T_ANS]
    assert len(answers) == 1 and json.loads(answers[0])["board"] == "seed-64k"
    # oversize: longer than the decoder's buffer
    raw = bytearray([F.SOF]) + b"Q" + b"A" * 900 + bytearray([F.EOF])
    con.feed(bytes(raw))
    for _ in range(5):  # random bytes
        con.feed(os.urandom(300))
    con.feed(bytes([F.EOF]))
    c.poll(budget=5000)
    con.take()
    ft, obj = _answer(_ask(c, con, "hello", 77))
    assert ft == F.T_ANS and obj["proto"] == control.PROTO
    assert len(k.log.query(kind=kinds.OP_BAD_FRAME)) >= 3
    assert c.bad_frames >= 3


def test_half_frame_times_out():
    k, c, con = _setup()
    good = F.encode(F.T_REQ, 5, b"stat")
    con.feed(good[:5])
    c.poll()
    assert c.dec.in_frame
    c._frame_t -= 5000  # as if 5 s passed
    c.poll()
    items = F.decode(con.take())
    assert items and json.loads(items[0][3])["err"] == "EABORT"


def test_logread_streams_from_store_and_chains():
    k, c, con = _setup(store=True, ring=8)
    for i in range(70):
        k.log.emit(kinds.IPC_SEND, 2, 3, i)
        if i % 10 == 0:
            k.log.service()
    info = _answer(_ask(c, con, "loginfo", 1))[1]
    assert info["low"] == 0 and info["next"] >= 70
    anchor = bytes.fromhex(info["anchor"])
    assert anchor == genesis_link(kt.DEVICE_ID)
    recs = []
    lo = 0
    seq = 2
    target = info["next"]  # each pull adds an OP_PULL record: stop at the head we saw
    while lo < target:
        items = _ask(c, con, "logread %d 16" % lo, seq)
        seq += 1
        end = None
        for r, ft, s, p in items:
            assert r == F.R_FRAME and s == seq - 1
            if ft == F.T_DATA:
                assert struct.unpack_from("<I", p, 0)[0] == len(recs)
                for j in range(4, len(p), 64):
                    recs.append(p[j:j + 64])
            elif ft == F.T_END:
                end = json.loads(p)
        assert end is not None
        assert end["count"] > 0
        lo = end["next"]
    prev = anchor
    for i, rec in enumerate(recs):
        assert struct.unpack_from("<I", rec, 0)[0] == i
        assert rec[32:64] == chain_link(prev, rec)
        prev = rec[32:64]
    assert len(recs) >= target
    assert len(k.log.query(kind=kinds.OP_PULL)) >= 5


def test_reply_pieces_make_the_same_json():
    # framed replies are encoded a list item at a time (a small board's heap
    # is fragmented): the pieces join to the JSON of the whole reply
    objs = [{"partitions": [{"pid": i, "name": "a" * i, "leases": [i]}
                            for i in range(40)]},
            {"partitions": []}, {}, {"a": 1, "b": [1, [2, 3]], "c": "x"},
            [1, 2], "text", 7, None]
    for o in objs:
        assert json.loads("".join(control._pieces(o))) == o


def test_long_framed_reply_arrives_whole():
    k, c, con = _setup()
    big = {"rows": [{"n": i, "s": "x" * (i % 50)} for i in range(60)],
           "end": 1}
    c._reply(True, 9, big)
    items = F.decode(con.take())
    more = [x for x in items if x[1] == F.T_MORE]
    assert len(more) >= 3 and all(x[2] == 9 for x in items)
    assert _answer(items) == (F.T_ANS, big)
