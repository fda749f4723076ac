# L0 platform layer: the only module that knows whether the kernel runs on a
# board, on the MicroPython unix port or on CPython. Everything above it asks
# the Platform for time, storage, devices, identity, keys and reset. Tests fake
# hardware by handing the kernel a Platform, never by patching L1.
import os
import sys

from .compat import IS_MICROPYTHON, ticks_ms, ticks_us, ticks_diff, sleep_ms

EXIT_F4 = 86   # process exit code of an F4 kernel reset on unix/CPython
EXIT_REBOOT = 87  # operator-requested reboot on unix/CPython
EXIT_WDT = 88    # FAULT_F4_RESET code of a watchdog reset (next boot)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _write(path, data):
    """Replace `path` atomically: write a temp file, then rename over the
    old one (POSIX and littlefs replace in one step). Only a filesystem whose
    rename refuses an existing target (FAT) takes the remove-then-rename path,
    which leaves a short window where a power cut loses the file."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    try:
        os.rename(tmp, path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)


class SimDevice:
    """A simulated device: records every operation, returns deterministic
    readings. `kind` is the profile's device type (pin, led, adc, i2c, uart)."""

    def __init__(self, name, spec):
        self.name = name
        self.kind = spec.get("type", "pin")
        self.spec = spec
        self.ops = []        # (op, args) history, newest last, bounded
        self.value = 0
        self._n = 0

    def _rec(self, op, arg):
        self.ops.append((op, arg))
        if len(self.ops) > 16:
            self.ops.pop(0)

    def on(self):
        self.value = 1
        self._rec("on", None)

    def off(self):
        self.value = 0
        self._rec("off", None)

    def toggle(self):
        self.value ^= 1
        self._rec("toggle", None)

    def set(self, v):
        self.value = v
        self._rec("set", v)

    def read(self):
        # A slow triangle wave, so a sensor agent sees changing readings.
        self._n += 1
        v = (self._n * 37) % 1024
        self._rec("read", v)
        return v

    def write(self, data):
        self._rec("write", len(data))
        return len(data)


def sim_device(name, spec):
    """The simulated device for a profile entry (tests, hosted runtimes and
    boards whose profile marks the device "sim": true)."""
    t = spec.get("type", "pin")
    if t in ("i2c", "spi", "uart"):
        from . import simdev  # the bus simulations load only when leased
        return simdev.make(t)
    return SimDevice(name, spec)


class StdioConsole:
    """Console on the process's stdin/stdout: the board's REPL line (UART or
    USB CDC) on MicroPython boards, the pty of `rvm sim` on the unix port, a
    terminal or pipe on CPython. Reads never block: select.poll says whether
    a byte is ready, then one byte is read (MicroPython's stdin read(n) waits
    for all n bytes)."""

    def __init__(self):
        import select
        self._in = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        self._out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else sys.stdout
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._fd = None
        if not IS_MICROPYTHON:
            self._fd = sys.stdin.fileno()
        self.eof = False

    def wait(self, timeout_ms):
        if self.eof:
            if timeout_ms > 0:
                sleep_ms(timeout_ms)
            return False
        return bool(self._poll.poll(timeout_ms if timeout_ms > 0 else 0))

    def read(self, n):
        if self.eof:
            return None
        if self._fd is not None:  # CPython: os.read returns what is there
            if not self._poll.poll(0):
                return None
            data = os.read(self._fd, n)
            if not data:
                self.eof = True
                return None
            return data
        out = None
        while n > 0 and self._poll.poll(0):
            b = self._in.read(1)
            if not b:
                self.eof = True
                break
            if b == b"\x03":
                # Ctrl-C (never raw inside a frame) on a UART whose port does
                # not turn it into KeyboardInterrupt (the qemu port): do it
                # here, and read no further: what follows (mpremote's
                # Ctrl-A) is for the REPL
                raise KeyboardInterrupt
            out = b if out is None else out + b
            n -= 1
        return out

    def write(self, data):
        self._out.write(data)
        try:
            self._out.flush()
        except AttributeError:
            pass


class MemConsole:
    """In-memory console for tests and the in-process transport: `rx` holds
    bytes sent to the device, `tx` bytes the device wrote."""

    def __init__(self):
        self.rx = bytearray()
        self.tx = bytearray()

    def feed(self, data):
        self.rx.extend(data)

    def take(self):
        out = bytes(self.tx)
        self.tx = bytearray()
        return out

    def wait(self, timeout_ms):
        if self.rx:
            return True
        if timeout_ms > 0:
            sleep_ms(timeout_ms)
        return bool(self.rx)

    def read(self, n):
        if not self.rx:
            return None
        out = bytes(self.rx[0:n])
        self.rx = self.rx[n:]
        return out

    def write(self, data):
        self.tx.extend(data)


class Platform:
    """Hosted platform: CPython or the MicroPython unix port. `root` is the
    directory that stands for the board's filesystem."""

    def __init__(self, root=".", device_id=None, key=None):
        self.root = root.rstrip("/") or "/"
        self.name = "unix" if IS_MICROPYTHON else "cpython"
        self._device_id = device_id
        self._key = key
        self.devices = {}
        self.exit_code = None

    # ---- time --------------------------------------------------------------
    def ticks_ms(self):
        return ticks_ms()

    def ticks_us(self):
        return ticks_us()

    def ticks_diff(self, a, b):
        return ticks_diff(a, b)

    def sleep_ms(self, ms):
        if ms > 0:
            sleep_ms(ms)

    def wait_io(self, timeout_ms):
        """Idle wait of the kernel loop: sleep up to timeout_ms; return True
        early when console input is ready. Without a console it just sleeps;
        with one (attach_console) it polls the console's input."""
        con = self.console
        if con is not None:
            return con.wait(timeout_ms)
        if timeout_ms > 0:
            sleep_ms(timeout_ms)
        return False

    # ---- console (the serial line the control console speaks on) ----------
    console = None  # None: no console; else a StdioConsole or MemConsole

    def attach_console(self, console=None):
        """Attach the control console's byte stream: `console` (a MemConsole
        in tests) or the process's stdin/stdout (the board's UART/USB REPL
        line, or the simulator's pty)."""
        self.console = console if console is not None else StdioConsole()
        return self.console

    def console_read(self, n):
        """Up to n bytes of console input without blocking; None when none."""
        con = self.console
        return con.read(n) if con is not None else None

    def console_write(self, data):
        con = self.console
        if con is not None:
            con.write(data)

    # ---- storage -----------------------------------------------------------
    def path(self, name):
        return self.root + "/" + name

    def read_file(self, name):
        return _read(self.path(name))

    def write_file(self, name, data):
        _write(self.path(name), data)

    def next_boot(self):
        """Increment and persist the boot counter; returns the new value."""
        raw = self.read_file("boot.cnt")
        n = int(raw) + 1 if raw else 0
        self.write_file("boot.cnt", b"%d" % n)
        return n

    # ---- identity and keys -------------------------------------------------
    def unique_id(self):
        """16-byte device id: the profile/test-provided one, else the one
        stored in the filesystem (created once from os.urandom)."""
        if self._device_id is not None:
            return self._device_id
        raw = self.read_file("device.id")
        if raw is None or len(raw) != 16:
            from .diag import random16
            raw = random16()
            self.write_file("device.id", raw)
        self._device_id = raw
        return raw

    def device_key(self):
        """The device's 32-byte seal key (rvm_key.bin), or None."""
        if self._key is not None:
            return self._key
        k = self.read_file("rvm_key.bin")
        self._key = k
        return k

    # ---- devices -----------------------------------------------------------
    def open_device(self, name, spec):
        d = self.devices.get(name)
        if d is None:
            d = sim_device(name, spec)
            self.devices[name] = d
        return d

    # ---- watchdog ------------------------------------------------------------
    def watchdog(self, spec):
        """The watchdog hardware for the profile's "watchdog" dict
        (hal_wdt.py), or None: hosted runtimes have none (tests hand the
        kernel a Platform whose watchdog is a fake)."""
        return None

    # ---- reset ---------------------------------------------------------------
    def reset(self, code=EXIT_F4):
        """F4/reboot: a board resets; hosted runtimes exit with `code`."""
        self.exit_code = code
        sys.exit(code)


class BoardPlatform(Platform):
    """A real MicroPython board: `machine` devices, reset and device id where
    the port has them. Every `machine` feature is optional: without
    machine.unique_id() the id is a random one persisted in the filesystem
    (device.id); a device the port lacks is refused when it is leased; a
    profile device with "sim": true is simulated (emulated boards)."""

    def __init__(self, root="", key=None):
        Platform.__init__(self, root or "", None, key)
        self.name = "board"

    def unique_id(self):
        if self._device_id is None:
            try:
                import machine
                uid = machine.unique_id()
            except (ImportError, AttributeError, OSError):
                return Platform.unique_id(self)
            import hashlib
            self._device_id = hashlib.sha256(b"RVM-uid" + uid).digest()[0:16]
        return self._device_id

    def open_device(self, name, spec):
        """The device object, or None when this port lacks it (the lease
        is then refused with ENOTSUP)."""
        d = self.devices.get(name)
        if d is not None:
            return d
        if spec.get("sim"):
            return Platform.open_device(self, name, spec)
        t = spec.get("type", "pin")
        try:
            import machine
            if t in ("pin", "led"):
                d = machine.Pin(spec["pin"], machine.Pin.OUT)
            elif t == "adc":
                d = machine.ADC(machine.Pin(spec["pin"]))
            elif t == "i2c":
                d = machine.I2C(spec.get("id", 0))
            elif t == "spi":
                d = machine.SPI(spec.get("id", 0))
            elif t == "uart":
                d = machine.UART(spec.get("id", 1), spec.get("baud", 115200))
        except (ImportError, AttributeError, KeyError, ValueError, TypeError,
                OSError):
            d = None
        if d is not None:
            self.devices[name] = d
        return d

    def watchdog(self, spec):
        from .hal_wdt import make
        return make(spec)

    def reset(self, code=EXIT_F4):
        try:
            import machine
            machine.reset()
        except (ImportError, AttributeError):
            sys.exit(code)


def default_platform(root="."):
    """The platform this runtime implies: BoardPlatform on a board, hosted
    Platform on the unix port and CPython."""
    if IS_MICROPYTHON and sys.platform not in ("linux", "darwin", "win32"):
        return BoardPlatform(root)
    return Platform(root)
