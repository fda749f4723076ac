# IPC channels: bounded queues of payload bytes between partitions.
#
# A channel is a ring of `depth` fixed slots of `payload_max` bytes, allocated
# once when the channel is created (never per message):
#
#   buf  [ slot0 | slot1 | ... | slot(depth-1) ]   each payload_max bytes
#   lens, srcs, hashes: one entry per slot        head -> oldest message
#
# The kernel copies the payload in and stamps `srcs[slot]` with the calling
# partition; there is no way to pass a sender. A full ring refuses the send
# (EFULL, back-pressure) and keeps every queued message. Capabilities name
# channels (OT_CHANNEL, channel id): R_WRITE to send, R_READ to receive.
from array import array

from .compat import const

_CID_MAX = const(0xFFFF)


class Channel:
    def __init__(self, cid, owner, depth, payload_max):
        self.cid = cid
        self.owner = owner
        self.depth = depth
        self.pmax = payload_max
        self.buf = bytearray(depth * payload_max)
        self.mv = memoryview(self.buf)
        self.lens = array("H", [0] * depth)
        self.srcs = array("H", [0] * depth)
        self.hashes = array("I", [0] * depth)   # h32 of each payload
        self.seqs = array("I", [0] * depth)
        self.head = 0
        self.count = 0
        self.seq = 0          # messages ever sent (30-bit wrapping)

    def put(self, src, payload, n, hv):
        slot = (self.head + self.count) % self.depth
        o = slot * self.pmax
        self.mv[o:o + n] = payload
        self.lens[slot] = n
        self.srcs[slot] = src
        self.hashes[slot] = hv
        self.seq = (self.seq + 1) & 0x3FFFFFFF
        self.seqs[slot] = self.seq
        self.count += 1
        return self.seq

    def peek_slot(self):
        return self.head

    def pop(self):
        self.head = (self.head + 1) % self.depth
        self.count -= 1


class ChannelTable:
    def __init__(self, max_channels, depth, payload_max):
        self.max = max_channels
        self.depth = depth
        self.payload_max = payload_max
        self.chans = {}        # cid -> Channel
        self._next = 1

    def create(self, owner, depth):
        """New Channel or None when the table is full."""
        if len(self.chans) >= self.max:
            return None
        cid = self._next
        while cid in self.chans:
            cid = cid + 1 if cid < _CID_MAX else 1
        self._next = cid + 1 if cid < _CID_MAX else 1
        ch = Channel(cid, owner, depth, self.payload_max)
        self.chans[cid] = ch
        return ch

    def get(self, cid):
        return self.chans.get(cid)

    def remove(self, cid):
        return self.chans.pop(cid, None)

    def owned_by(self, pid):
        return [c for c in self.chans if self.chans[c].owner == pid]
