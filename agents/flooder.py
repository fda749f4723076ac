# Misbehaving agent 2: floods channel "flood" as fast as it can. Its
# message quota per epoch is small: the kernel throttles it (QUOTA_THROTTLE)
# until the next epoch, so it cannot starve the others.
async def main(rvm):
    out = await rvm.handle("flood")
    payload = b"x" * 32
    while True:
        try:
            await rvm.send(out, payload)
        except Exception:  # EQUOTA (now throttled) or EFULL (back off)
            await rvm.sleep_ms(200)
