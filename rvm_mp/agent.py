# The agent side of the kernel boundary: the `rvm` object an agent's
# `async def main(rvm)` receives, and the one Request object it yields.
#
# An agent reaches the kernel only by awaiting a request:
#
#     agent coroutine                    runtime (kernel loop)
#     ---------------                    ---------------------
#     x = await rvm.recv(h)   --yield-->  sees req.op == OP_RECV, calls
#                                         kernel.recv(pid, h) for the agent's
#                                         own partition, then later
#         x = (src, payload)  <--send---  coro.send(result)   or
#         RvmError raised     <--throw--  coro.throw(error)
#
# Each agent owns exactly one Request; every rvm.<call>() fills its fields
# and returns it, so a call allocates nothing (the Request is its own
# iterator, like asyncio's SingletonGenerator). A call whose result is None
# finishes with a StopIteration built once per Request; a call with a value
# raises StopIteration(value) (one small object, not on the yield/sleep
# switch path).
#
# The `rvm` object holds the Request, the agent's partition id and name, and
# nothing of the kernel: there is no reference from agent space to kernel
# objects to walk. This is language-level isolation (see docs/agents.md).

# Request op codes (the runtime's dispatch table; order = hot first).
OP_YIELD = 1
OP_SLEEP = 2
OP_NOW = 3
OP_MY_ID = 4
OP_SEND = 5
OP_RECV = 6
OP_HANDLE = 7       # named capability handle from the agent's manifest
OP_LEASE = 8
OP_ALLOC = 9
OP_READ = 10
OP_WRITE = 11
OP_FREE = 12
OP_CHECKPOINT = 13
OP_SPAWN = 14
OP_WAIT_INPUT = 15
OP_CON_READ = 16
OP_CON_WRITE = 17
OP_CONTROL = 18     # control partition: kernel service call by name
OP_EXIT = 19
OP_LAST = 19

# Request states: 0 idle (next __next__ yields it), 1 yielded (the next
# send/__next__ finishes the await).
_IDLE = 0
_YIELDED = 1


class Request:
    """One per agent. `op` and `a0..a3` describe the call; the runtime
    reads them after the agent yields this object."""

    def __init__(self):
        self.op = 0
        self.a0 = None
        self.a1 = None
        self.a2 = None
        self.a3 = None
        self._st = _IDLE
        self._stop = StopIteration()

    def set(self, op, a0=None, a1=None, a2=None, a3=None):
        self.op = op
        self.a0 = a0
        self.a1 = a1
        self.a2 = a2
        self.a3 = a3
        return self

    def clear(self):
        # drop references to payloads once the call is served
        self.a0 = self.a1 = self.a2 = self.a3 = None

    # ---- iterator protocol: `await req` on MicroPython and CPython ----------
    def __iter__(self):
        return self

    __await__ = __iter__

    def __next__(self):
        # the hot path (every await starts here, and a None result ends
        # here): inlined rather than calling send()
        if self._st == _IDLE:
            self._st = _YIELDED
            return self
        self._st = _IDLE
        s = self._stop
        s.__traceback__ = None
        raise s

    def send(self, v):
        if self._st == _IDLE:
            self._st = _YIELDED
            return self
        self._st = _IDLE
        if v is None:
            s = self._stop
            s.__traceback__ = None
            raise s
        raise StopIteration(v)

    def throw(self, typ, val=None, tb=None):
        self._st = _IDLE
        if val is None:
            raise typ
        raise val

    def close(self):
        self._st = _IDLE


class Rvm:
    """The API object given to `main(rvm)`. Every method returns the agent's
    Request; `await` it."""
    moved = None   # after a migration: {handle in the old partition: new}

    def __init__(self, req, pid, name):
        self._r = req
        self.pid = pid
        self.name = name

    # ---- time and identity ----------------------------------------------
    def yield_(self):
        r = self._r
        r.op = OP_YIELD
        return r

    def sleep_ms(self, ms):
        r = self._r
        r.op = OP_SLEEP
        r.a0 = ms
        return r

    def now(self):
        r = self._r
        r.op = OP_NOW
        return r

    def my_id(self):
        r = self._r
        r.op = OP_MY_ID
        return r

    def exit(self, status=0):
        """End this agent cleanly (AGENT_EXIT with `status`)."""
        return self._r.set(OP_EXIT, status)

    # ---- capabilities and IPC ---------------------------------------------
    def handle(self, name):
        """The capability handle the manifest/profile named `name` (a channel
        end, a device, a partition); EBADHANDLE if the agent has none."""
        return self._r.set(OP_HANDLE, name)

    def send(self, handle, payload):
        return self._r.set(OP_SEND, handle, payload)

    def recv(self, handle, timeout_ms=-1):
        """(src_pid, payload). Blocks while the queue is empty (timeout_ms <
        0: forever; 0: poll, EEMPTY when empty; > 0: ETIMEOUT after it)."""
        return self._r.set(OP_RECV, handle, timeout_ms)

    # ---- devices ------------------------------------------------------------
    def lease(self, device, duration_ms, handle=None):
        """A DeviceProxy for `device` (name) for duration_ms."""
        return self._r.set(OP_LEASE, device, duration_ms, handle)

    # ---- memory (persistence engineer's RegionManager) ---------------------
    def alloc(self, size):
        return self._r.set(OP_ALLOC, size)

    def read(self, rid, off, n):
        return self._r.set(OP_READ, rid, off, n)

    def write(self, rid, off, data):
        return self._r.set(OP_WRITE, rid, off, data)

    def free(self, rid):
        return self._r.set(OP_FREE, rid)

    def checkpoint(self, state=b""):
        """Checkpoint this partition; `state` (bytes) is handed back to the
        agent's next start after an F2 rebuild as rvm.restored."""
        return self._r.set(OP_CHECKPOINT, state)

    # ---- partitions -----------------------------------------------------------
    def spawn(self, bundle_name):
        """Start another agent from a bundle the board holds; needs the
        spawn right (OT_PARTITION, 0, WRITE). Returns the new pid."""
        return self._r.set(OP_SPAWN, bundle_name)

    # ---- console (control partition only) -------------------------------------
    def wait_input(self, timeout_ms=-1):
        """Park until console input is ready; True, or False on timeout."""
        return self._r.set(OP_WAIT_INPUT, timeout_ms)

    def console_read(self, n=64):
        return self._r.set(OP_CON_READ, n)

    def console_write(self, data):
        return self._r.set(OP_CON_WRITE, data)

    def control(self, name, *args):
        """Kernel service call for the control partition (gated by its caps);
        `name` is a runtime service such as "ps" or "kill"."""
        return self._r.set(OP_CONTROL, name, args)
