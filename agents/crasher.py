# Misbehaving agent 1: tries a gated import (refused, witnessed), then
# raises every few seconds. The kernel restarts it (F1), rebuilds its
# partition after 3 restarts (F2), and stops it for good after repeated
# rebuilds; the other agents keep running throughout.
async def main(rvm):
    try:
        import machine  # needs a device lease: refused
    except ImportError:
        pass
    n = 0
    while True:
        await rvm.sleep_ms(1000)
        n += 1
        if n >= 3:
            raise ValueError("crasher: deliberate fault")
