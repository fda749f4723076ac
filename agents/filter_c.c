/* The demo filter agent in C (same behaviour as agents/filter.py and
 * agents/filter.wat): moving average of the last 4 sensor readings; tells
 * the actuator to switch the relay when the average crosses 600 / 400
 * (hysteresis), reports every 20 readings, checkpoints every 50.
 *
 * Built by tools/wasm_corpus.py (host_tools/rvm/wasmbuild.py c_to_wasm):
 *   clang --target=wasm32 -mcpu=mvp -nostdlib -O2 -Wl,--no-entry
 *         -Wl,--export=main -Wl,--stack-first -Wl,-z,stack-size=512 ...
 * Integers only; no libc (nothing here needs one). */
#include "rvm_agent.h"

#define WINDOW 4
#define HIGH 600
#define LOW 400

static uint32_t ring[WINDOW];
static uint8_t msg[16];
static uint8_t out[8];

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    put16(p, v);
    put16(p + 2, v >> 16);
}

void main(void) {
    int32_t raw = rvm_handle("raw", 3);
    int32_t cmd = rvm_handle("cmd", 3);
    int32_t rep = rvm_handle("report", 6);
    uint32_t on = 0, n = 0, cnt = 0, idx = 0;
    uint8_t st[8];
    if (rvm_restored(st, sizeof st) == 5) {   /* rebuilt after a fault */
        on = st[0];
        n = st[1] | (uint32_t)st[2] << 8 | (uint32_t)st[3] << 16 | (uint32_t)st[4] << 24;
    }
    for (;;) {
        if (rvm_recv(raw, -1, msg, sizeof msg) < 4) {
            continue;
        }
        ring[idx] = msg[2] | (uint32_t)msg[3] << 8;
        idx = (idx + 1) & (WINDOW - 1);
        if (cnt < WINDOW) {
            cnt++;
        }
        uint32_t avg = (ring[0] + ring[1] + ring[2] + ring[3]) / cnt;
        uint32_t want = avg > HIGH ? 1 : (avg < LOW ? 0 : on);
        if (want != on) {
            on = want;
            out[0] = (uint8_t)on;
            put16(out + 1, avg);
            rvm_send(cmd, out, 3);
        }
        n++;
        if (n % 20 == 0) {
            out[0] = 1;
            put16(out + 1, avg);
            put32(out + 3, n);
            rvm_send(rep, out, 7);
        }
        if (n % 50 == 0) {
            out[0] = (uint8_t)on;
            put32(out + 1, n);
            rvm_checkpoint(out, 5);
        }
    }
}
