# Supervisor agent (the control demo): collects the filter's reports and
# drains the flooder's queue, keeps counters in a memory region, and
# checkpoints them. It is a recovery agent: it may run in Recovery mode.
import struct


async def main(rvm):
    rep = await rvm.handle("report")
    flood = await rvm.handle("flood")
    try:
        rid = await rvm.alloc(16)
    except Exception:  # no region arena on this board
        rid = 0
    reports = 0
    drained = 0
    while True:
        try:
            src, msg = await rvm.recv(rep, 0)
            reports += 1
        except Exception:  # EEMPTY
            pass
        for _ in range(4):
            try:
                await rvm.recv(flood, 0)
                drained += 1
            except Exception:
                break
        if rid:
            await rvm.write(rid, 0, struct.pack("<II", reports, drained))
            if reports and reports % 10 == 0:
                try:
                    await rvm.checkpoint(struct.pack("<II", reports, drained))
                except Exception:
                    pass
        await rvm.sleep_ms(250)
