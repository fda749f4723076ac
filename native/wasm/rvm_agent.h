/* rvm_agent.h: the host ABI of an RVM-MP WebAssembly agent (docs/wasm.md).
 *
 * Build (Debian clang + lld):
 *   clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -Wl,--export=main \
 *         -Wl,--initial-memory=65536 -o agent.wasm agent.c
 * then `rvm bundle agent.wasm` (the module is validated before it is signed).
 * Integers only: the kernel's interpreter refuses f32/f64.
 *
 * Every call is a kernel call made by the partition: capability-checked by the
 * same syscall table as a Python agent's and witnessed with the partition as
 * actor. Results >= 0 are values; < 0 is -E (rvm_mp/errors.py: -1 EBADHANDLE,
 * -3 ERIGHTS, -7 EQUOTA, -11 EEMPTY, -18 EINVAL, -20 ETIMEOUT, ...). A pointer
 * range outside linear memory is refused (-18), never followed.
 */
#ifndef RVM_AGENT_H
#define RVM_AGENT_H
#include <stdint.h>

#define RVM_IMPORT(name) __attribute__((import_module("rvm"), import_name(name)))

/* scheduling and time */
RVM_IMPORT("yield_") int32_t rvm_yield(void);
RVM_IMPORT("sleep_ms") int32_t rvm_sleep_ms(int32_t ms);
RVM_IMPORT("now") int32_t rvm_now(void);              /* ticks_ms */
RVM_IMPORT("my_id") int32_t rvm_my_id(void);          /* partition id */
RVM_IMPORT("exit") void rvm_exit(int32_t status);     /* 0..255, does not return */

/* capabilities by name ("raw", "cmd", a device, "spawn") */
RVM_IMPORT("handle") int32_t rvm_handle(const char *name, int32_t len);

/* channels: send copies len bytes; recv blocks up to timeout_ms (-1: forever),
 * copies at most cap bytes to buf and returns the message length; sender()
 * is the pid of the last received message's sender */
RVM_IMPORT("send") int32_t rvm_send(int32_t h, const void *buf, int32_t len);
RVM_IMPORT("recv") int32_t rvm_recv(int32_t h, int32_t timeout_ms, void *buf, int32_t cap);
RVM_IMPORT("sender") int32_t rvm_sender(void);

/* devices: lease by name for duration_ms; dev() runs op ("on", "off",
 * "toggle", "set", "read") with one int argument (arg < 0: none); an int
 * result is returned */
RVM_IMPORT("lease") int32_t rvm_lease(const char *dev, int32_t len, int32_t duration_ms);
RVM_IMPORT("dev") int32_t rvm_dev(int32_t lease, const char *op, int32_t len, int32_t arg);
RVM_IMPORT("release") int32_t rvm_release(int32_t lease);

/* kernel memory regions (the partition's quota) */
RVM_IMPORT("alloc") int32_t rvm_alloc(int32_t size);
RVM_IMPORT("read") int32_t rvm_read(int32_t rid, int32_t off, void *buf, int32_t n);
RVM_IMPORT("write") int32_t rvm_write(int32_t rid, int32_t off, const void *buf, int32_t n);
RVM_IMPORT("free") int32_t rvm_free(int32_t rid);

/* restart state: checkpoint() keeps len bytes (with the partition's regions);
 * restored() copies them back after a fault restart (-1: none) */
RVM_IMPORT("checkpoint") int32_t rvm_checkpoint(const void *state, int32_t len);
RVM_IMPORT("restored") int32_t rvm_restored(void *buf, int32_t cap);

/* a line of text into the partition's log channel (`out PID` on the console) */
RVM_IMPORT("log") void rvm_log(const char *text, int32_t len);

#endif
