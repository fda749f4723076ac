# Actuator agent: drives the leased relay from the filter's commands.
import struct


async def main(rvm):
    cmd = await rvm.handle("cmd")
    relay = await rvm.lease("relay", 600000)
    while True:
        src, msg = await rvm.recv(cmd)
        on, avg = struct.unpack("<BH", msg)
        r = relay.on() if on else relay.off()
        if r is not None and not isinstance(r, int):  # lease gone: renew
            relay = await rvm.lease("relay", 600000)
            relay.on() if on else relay.off()
