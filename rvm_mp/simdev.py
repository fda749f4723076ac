# Simulated bus devices (platform layer, with hal.SimDevice): an I2C bus
# with two targets, an SPI bus with MISO tied to MOSI and a looped-back UART,
# each with the `machine` API that devops.py drives. hal.sim_device() loads
# this module the first time such a device is leased, so a kernel without
# bus leases never holds it.


class SimI2C:
    """A simulated I2C bus with two targets: 0x48 (a register file whose
    register 0 reads a changing 16-bit sample) and 0x50 (a 256-byte EEPROM).
    machine.I2C's API; a missing address raises OSError(ENODEV) as a bus
    NACK does."""

    def __init__(self):
        self.mem = {0x48: bytearray(256), 0x50: bytearray(256)}
        self.ptr = {0x48: 0, 0x50: 0}
        self._n = 0

    def _dev(self, addr):
        m = self.mem.get(addr)
        if m is None:
            raise OSError(19)
        return m

    def scan(self):
        return sorted(self.mem)

    def readfrom_mem(self, addr, mem, n):
        m = self._dev(addr)
        if addr == 0x48:
            self._n += 1
            v = (self._n * 37) % 1024
            m[0] = v >> 8
            m[1] = v & 255
        mem &= 255
        return bytes((m[(mem + i) & 255] for i in range(n)))

    def writeto_mem(self, addr, mem, buf):
        m = self._dev(addr)
        for i in range(len(buf)):
            m[(mem + i) & 255] = buf[i]

    def readfrom(self, addr, n):
        r = self.readfrom_mem(addr, self.ptr[addr] if addr in self.ptr else 0, n)
        self.ptr[addr] = (self.ptr[addr] + n) & 255
        return r

    def writeto(self, addr, buf):
        self._dev(addr)
        if len(buf):
            self.ptr[addr] = buf[0]
            self.writeto_mem(addr, buf[0], buf[1:])
            self.ptr[addr] = (buf[0] + len(buf) - 1) & 255
        return 1  # machine.I2C.writeto returns the number of ACKs


class SimSPI:
    """A simulated SPI bus with MISO tied to MOSI: what is written is read
    back (write_readinto), read(n, w) clocks out w and reads it."""

    def read(self, n, write=0):
        return bytes([write & 255]) * n

    def write(self, buf):
        return None

    def write_readinto(self, wbuf, rbuf):
        rbuf[:] = wbuf


class SimUART:
    """A simulated UART with TX looped back to RX (machine.UART's API)."""

    def __init__(self):
        self.rx = bytearray()

    def any(self):
        return len(self.rx)

    def read(self, n=-1):
        if not self.rx:
            return None
        if n < 0 or n > len(self.rx):
            n = len(self.rx)
        out = bytes(self.rx[0:n])
        self.rx = self.rx[n:]
        return out

    def write(self, buf):
        self.rx.extend(buf)
        if len(self.rx) > 256:  # a bounded FIFO, oldest bytes lost
            self.rx = self.rx[-256:]
        return len(buf)


def make(kind):
    if kind == "i2c":
        return SimI2C()
    if kind == "spi":
        return SimSPI()
    return SimUART()
