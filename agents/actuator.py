# Actuator agent: drives the leased relay from the filter's commands.
import struct


async def main(rvm):
    cmd = await rvm.handle("cmd")
    relay = await rvm.lease("relay", 600000)
    while True:
        src, msg = await rvm.recv(cmd)
        on, avg = struct.unpack("<BH", msg)
        try:
            await (relay.on() if on else relay.off())
        except OSError:  # lease gone: renew, then apply the command
            relay = await rvm.lease("relay", 600000)
            await (relay.on() if on else relay.off())
