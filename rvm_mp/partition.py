# Partitions: the unit of isolation, scheduling and accounting.
# Ids 1..4095 (0 is the kernel; anything else is refused with EBADID).
#
#   Created --> Running <--> Suspended --> Hibernated
#      |          |  ^          |  ^           |
#      |          v  |          v  |           |
#      |        Recovering <----+--+-----------+
#      +----------+-----------+----------------+--> Terminated
#
# Only the transitions in _LEGAL happen; the kernel witnesses each one
# (PART_STATE) and refuses the rest (PART_DENIED, ESTATE). The table keeps a
# terminated partition as a tombstone so later calls on it get ESTATE; it
# keeps at most `max_live` tombstones (oldest dropped first).
from .compat import const

ST_CREATED = const(0)
ST_RUNNING = const(1)
ST_SUSPENDED = const(2)
ST_HIBERNATED = const(3)
ST_RECOVERING = const(4)
ST_TERMINATED = const(5)
PID_MAX = const(4095)

STATE_NAMES = ("created", "running", "suspended", "hibernated",
               "recovering", "terminated")

# bit (1 << new) set in _LEGAL[old] when old -> new is allowed
_LEGAL = (
    (1 << ST_RUNNING) | (1 << ST_TERMINATED),                          # created
    (1 << ST_SUSPENDED) | (1 << ST_RECOVERING) | (1 << ST_TERMINATED),  # running
    (1 << ST_RUNNING) | (1 << ST_HIBERNATED) | (1 << ST_RECOVERING)
    | (1 << ST_TERMINATED),                                             # suspended
    (1 << ST_RUNNING) | (1 << ST_RECOVERING) | (1 << ST_TERMINATED),    # hibernated
    (1 << ST_RUNNING) | (1 << ST_SUSPENDED) | (1 << ST_TERMINATED),     # recovering
    0,                                                                  # terminated
)


def legal(old, new):
    if old < 0 or old > 5 or new < 0 or new > 5:
        return False
    return bool(_LEGAL[old] & (1 << new))


def valid_pid(pid):
    return type(pid) is int and 1 <= pid <= PID_MAX


class Partition:
    """Kernel-side record of one partition. Fields change only through the
    kernel. state: ST_*; quotas 0 = unlimited; nonce_hi/nonce_bits: the
    replay window of the proof gate (64 nonces below the highest seen)."""

    def __init__(self, pid, parent, name, mem_quota, cpu_quota, msg_quota):
        self.pid = pid
        self.parent = parent
        self.name = name
        self.state = ST_CREATED
        self.mem_quota = mem_quota
        self.cpu_quota = cpu_quota
        self.msg_quota = msg_quota
        self.msgs_used = 0
        self.nonce_hi = -1
        self.nonce_bits = bytearray(8)
        self.exit_status = 0


class PartitionTable:
    def __init__(self, max_live):
        self.max_live = max_live
        self.parts = {}      # pid -> Partition (live and tombstones)
        self._tombs = []     # pids of tombstones, oldest first
        self.live = 0

    def get(self, pid):
        return self.parts.get(pid)

    def free_pid(self):
        """Lowest pid never used (as far as the table remembers), else the
        oldest tombstone's, else 0. Fresh ids first, so a message stamped
        with a dead partition's id is not read as the next partition's."""
        for pid in range(1, PID_MAX + 1):
            if pid not in self.parts:
                return pid
        return self._tombs[0] if self._tombs else 0

    def add(self, p):
        old = self.parts.get(p.pid)
        if old is not None and p.pid in self._tombs:
            self._tombs.remove(p.pid)
        self.parts[p.pid] = p
        self.live += 1

    def bury(self, p):
        """p just became Terminated: keep it as a bounded tombstone."""
        self.live -= 1
        self._tombs.append(p.pid)
        while len(self._tombs) > self.max_live:
            self.parts.pop(self._tombs.pop(0), None)

    def pids(self):
        return sorted(self.parts)
