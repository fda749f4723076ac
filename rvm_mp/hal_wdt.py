# L0 watchdog hardware: the board's watchdog timer and the word that
# survives a watchdog reset. Loaded only for profiles with "watchdog".
#
# The kernel side (rvm_mp/watchdog.py) sees one small interface:
#
#   start(timeout_ms)  arm the timer (a real WDT cannot be stopped again)
#   feed()             restart the count
#   stop()             True if the hardware could be stopped (else False)
#   cause()            True when the last reset was the watchdog's
#   scratch()          the word written before the reset (0: none)
#   mark(v)            write the word (v < 2**30: a small int, no allocation)
#   clear_boot()       forget cause and word once the kernel has read them
#
# Two implementations, chosen by the profile's "watchdog" dict:
#
#   "hw": "machine"  machine.WDT(timeout=ms).feed() and machine.reset_cause()
#                    == machine.WDT_RESET; the word lives where the board
#                    keeps one across a watchdog reset:
#                      "scratch": {"mem32": ADDR}  a register written with
#                        machine.mem32 (RP2040 watchdog SCRATCH0
#                        0x4005800c, an STM32 RTC backup register)
#                      "scratch": "rtc"  machine.RTC().memory() (ESP32 RTC
#                        slow memory), four bytes
#                      none: the culprit is not named (pid 0)
#   "hw": "mem32"    the emulated board's watchdog peripheral (qemu
#                    mps2-an385 has none; tests/host/qemuboard.py plays it):
#                    four words at "base" in RAM that the firmware never uses
#
#          base+0   CTRL     0 stopped, else the timeout in ms (kernel writes)
#          base+4   FEED     a counter the kernel bumps on every feed
#          base+8   SCRATCH  the partition word (kept across the reset)
#          base+12  CAUSE    1 after a watchdog reset (the "hardware" sets it)
#
#   The harness polls CTRL and FEED; when FEED stalls longer than CTRL ms it
#   does what the timer would: the board resets (qemu restarts with the
#   flash kept) with CAUSE = 1 and SCRATCH preset by qemu's generic loader.
_MASK = 0x3FFFFFFF


class Mem32WDT:
    """The emulated board's watchdog peripheral (machine.mem32 words). The
    word addresses are computed once: a sum per call could make a big int
    (an allocation) on a 32-bit port for addresses near 2**30."""

    def __init__(self, base):
        import machine
        self.m = machine.mem32
        self.base = base
        self.a_feed = base + 4
        self.a_word = base + 8
        self.a_cause = base + 12
        self.n = 0

    def start(self, timeout_ms):
        self.m[self.a_feed] = self.n
        self.m[self.base] = timeout_ms

    def feed(self):
        n = (self.n + 1) & _MASK
        self.n = n
        self.m[self.a_feed] = n

    def stop(self):
        self.m[self.base] = 0
        return True

    def cause(self):
        return self.m[self.a_cause] == 1

    def scratch(self):
        return self.m[self.a_word] & 0xFFFFFFFF

    def mark(self, v):
        self.m[self.a_word] = v

    def clear_boot(self):
        self.m[self.a_cause] = 0
        self.m[self.a_word] = 0


class MachineWDT:
    """machine.WDT and machine.reset_cause(); the word per `scratch`."""

    def __init__(self, scratch=None):
        import machine
        self.machine = machine
        self.wdt = None
        self.m = None
        self.rtc = None
        self.addr = 0
        self.buf = bytearray(4)
        if type(scratch) is dict and "mem32" in scratch:
            self.m = machine.mem32
            self.addr = addr(scratch["mem32"])
        elif scratch == "rtc":
            self.rtc = machine.RTC()

    def start(self, timeout_ms):
        self.wdt = self.machine.WDT(timeout=timeout_ms)

    def feed(self):
        w = self.wdt
        if w is not None:
            w.feed()

    def stop(self):
        return False   # MicroPython's WDT has no way to stop it

    def cause(self):
        m = self.machine
        try:
            return m.reset_cause() == m.WDT_RESET
        except AttributeError:
            return False

    def scratch(self):
        if self.m is not None:
            return self.m[self.addr] & 0xFFFFFFFF
        if self.rtc is not None:
            b = self.rtc.memory()
            if len(b) >= 4:
                return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
        return 0

    def mark(self, v):
        if self.m is not None:
            self.m[self.addr] = v
        elif self.rtc is not None:
            b = self.buf   # preallocated: no allocation per resume
            b[0] = v & 0xFF
            b[1] = (v >> 8) & 0xFF
            b[2] = (v >> 16) & 0xFF
            b[3] = (v >> 24) & 0xFF
            self.rtc.memory(b)

    def clear_boot(self):
        self.mark(0)


def addr(v):
    """An address from the profile: an int or a "0x..." string (JSON has no
    hex literals)."""
    if type(v) is str:
        return int(v[2:], 16) if v[:2] in ("0x", "0X") else int(v)
    return int(v)


def make(spec):
    """The watchdog hardware the profile names, or None when this port lacks
    it (no machine.WDT, no machine.mem32)."""
    hw = spec.get("hw", "machine")
    try:
        if hw == "mem32":
            return Mem32WDT(addr(spec["base"]))
        if hw == "machine":
            import machine
            if not hasattr(machine, "WDT"):
                return None
            return MachineWDT(spec.get("scratch"))
    except (ImportError, AttributeError, KeyError, ValueError, TypeError):
        pass
    return None
