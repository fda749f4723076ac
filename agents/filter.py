# Filter agent: moving average of the sensor readings; tells the actuator
# to switch the relay when the average crosses a threshold (with
# hysteresis), reports to the supervisor, checkpoints its state now and then.
import struct

WINDOW = 4
HIGH = 600
LOW = 400


async def main(rvm):
    raw = await rvm.handle("raw")
    cmd = await rvm.handle("cmd")
    rep = await rvm.handle("report")
    hist = []
    on = 0
    n = 0
    if rvm.restored:  # rebuilt after a fault: continue from the checkpoint
        on, n = struct.unpack("<BI", rvm.restored)
    while True:
        src, msg = await rvm.recv(raw)
        seq, v = struct.unpack("<HH", msg)
        hist.append(v)
        if len(hist) > WINDOW:
            hist.pop(0)
        avg = sum(hist) // len(hist)
        want = 1 if avg > HIGH else (0 if avg < LOW else on)
        if want != on:
            on = want
            try:
                await rvm.send(cmd, struct.pack("<BH", on, avg))
            except Exception:
                pass
        n += 1
        if n % 20 == 0:
            try:
                await rvm.send(rep, struct.pack("<BHI", 1, avg, n))
            except Exception:
                pass
        if n % 50 == 0:
            try:
                await rvm.checkpoint(struct.pack("<BI", on, n))
            except Exception:  # no checkpoint store on this board
                pass
