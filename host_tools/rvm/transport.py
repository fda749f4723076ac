"""Byte transports to a board's serial line.

Every host function that talks to a board takes a transport as its first
argument (the scripting API); the CLI opens a SerialTransport from --port,
tests inject a LoopbackTransport (an in-process board: a Kernel and its
Control console on a MemConsole).

A transport has write(data), read(timeout) -> bytes (whatever arrived within
timeout seconds, maybe b""), reset_input(), close() and a `name`.
"""
import time

from .errors import RvmToolError


class SerialTransport:
    def __init__(self, port, baud=115200):
        import serial
        self.name = port
        try:
            self.ser = serial.Serial(port, baud, timeout=0, write_timeout=5)
        except (serial.SerialException, OSError, ValueError) as e:
            msg = str(e).split(":")[0] if "could not open port" in str(e) else str(e)
            raise RvmToolError("cannot open port %s: %s" % (port, msg))

    def write(self, data):
        import serial
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise RvmToolError("write to %s failed: %s" % (self.name, e))

    def read(self, timeout=0.1):
        import serial
        end = time.monotonic() + timeout
        try:
            while True:
                n = self.ser.in_waiting
                if n:
                    return self.ser.read(n)
                if time.monotonic() >= end:
                    return b""
                time.sleep(0.005)
        except (serial.SerialException, OSError) as e:
            raise RvmToolError("read from %s failed: %s" % (self.name, e))

    def reset_input(self):
        try:
            self.ser.reset_input_buffer()
        except Exception:  # noqa: BLE001 - a closed pty: nothing to drop
            pass

    def close(self):
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001
            pass


class LoopbackTransport:
    """An in-process board: `control` is an rvm_mp.control.Control whose
    platform console is a MemConsole. write() feeds the console and runs the
    console's poll, read() returns what the device wrote. `on_poll`, if set,
    is called before each poll (tests use it to reboot the board)."""

    def __init__(self, control, console, name="loopback"):
        self.control = control
        self.console = console
        self.name = name
        self.on_poll = None
        self.dead = False   # a board that stopped answering

    def write(self, data):
        if self.dead:
            return
        self.console.feed(data)
        if self.on_poll:
            self.on_poll(self)
        if not self.dead:
            self.control.poll(budget=1 << 20)

    def read(self, timeout=0.1):
        out = self.console.take()
        if not out and timeout:
            time.sleep(min(timeout, 0.01))
        return out

    def reset_input(self):
        self.console.take()

    def close(self):
        pass


def open_port(port, transport=None):
    """The injected transport, or a SerialTransport on `port`."""
    if transport is not None:
        return transport
    if not port:
        raise RvmToolError("no port given (use --port PORT)")
    return SerialTransport(port)
