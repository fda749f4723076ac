# Sensor agent: samples the leased (simulated) temperature ADC every 250 ms
# and sends (sample no, reading) to the filter over channel "raw".
import struct


async def main(rvm):
    out = await rvm.handle("raw")
    dev = await rvm.lease("temp", 600000)
    n = 0
    while True:
        try:
            v = await dev.read()
        except OSError:  # lease expired or revoked: lease again
            dev = await rvm.lease("temp", 600000)
            continue
        try:
            await rvm.send(out, struct.pack("<HH", n & 0xFFFF, v & 0xFFFF))
        except OSError:  # EFULL: the filter is behind; drop this sample
            pass
        n += 1
        await rvm.sleep_ms(250)
