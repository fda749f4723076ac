;; The demo filter agent in WebAssembly (same behaviour as agents/filter.py):
;; moving average of the last 4 sensor readings; tells the actuator to
;; switch the relay when the average crosses 600 / 400 (hysteresis),
;; reports every 20 readings, checkpoints every 50.
;; @page-size 1  (the build writes the custom-page-sizes encoding: 128 bytes)
;;   0 "raw"  4 "cmd"  8 "report"  16 restored  32 message  48 out  64 ring[4]
(module
  (import "rvm" "handle" (func $handle (param i32 i32) (result i32)))
  (import "rvm" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (import "rvm" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "rvm" "checkpoint" (func $checkpoint (param i32 i32) (result i32)))
  (import "rvm" "restored" (func $restored (param i32 i32) (result i32)))
  (memory 128 128)
  (data (i32.const 0) "raw")
  (data (i32.const 4) "cmd")
  (data (i32.const 8) "report")
  (func (export "main")
    (local $raw i32) (local $cmd i32) (local $rep i32) (local $on i32)
    (local $n i32) (local $cnt i32) (local $idx i32) (local $avg i32) (local $want i32)
    (local.set $raw (call $handle (i32.const 0) (i32.const 3)))
    (local.set $cmd (call $handle (i32.const 4) (i32.const 3)))
    (local.set $rep (call $handle (i32.const 8) (i32.const 6)))
    (if (i32.eq (call $restored (i32.const 16) (i32.const 8)) (i32.const 5))
      (then (local.set $on (i32.load8_u (i32.const 16)))
            (local.set $n (i32.load (i32.const 17)))))
    (loop $next
      (if (i32.ge_s (call $recv (local.get $raw) (i32.const -1) (i32.const 32) (i32.const 16))
                    (i32.const 4))
        (then
          (i32.store (i32.add (i32.const 64) (i32.shl (local.get $idx) (i32.const 2)))
                     (i32.load16_u (i32.const 34)))
          (local.set $idx (i32.and (i32.add (local.get $idx) (i32.const 1)) (i32.const 3)))
          (if (i32.lt_u (local.get $cnt) (i32.const 4))
            (then (local.set $cnt (i32.add (local.get $cnt) (i32.const 1)))))
          (local.set $avg
            (i32.div_u
              (i32.add (i32.add (i32.load (i32.const 64)) (i32.load (i32.const 68)))
                       (i32.add (i32.load (i32.const 72)) (i32.load (i32.const 76))))
              (local.get $cnt)))
          (local.set $want
            (if (result i32) (i32.gt_u (local.get $avg) (i32.const 600))
              (then (i32.const 1))
              (else (if (result i32) (i32.lt_u (local.get $avg) (i32.const 400))
                      (then (i32.const 0)) (else (local.get $on))))))
          (if (i32.ne (local.get $want) (local.get $on))
            (then
              (local.set $on (local.get $want))
              (i32.store8 (i32.const 48) (local.get $on))
              (i32.store16 (i32.const 49) (local.get $avg))
              (drop (call $send (local.get $cmd) (i32.const 48) (i32.const 3)))))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 20)))
            (then
              (i32.store8 (i32.const 48) (i32.const 1))
              (i32.store16 (i32.const 49) (local.get $avg))
              (i32.store (i32.const 51) (local.get $n))
              (drop (call $send (local.get $rep) (i32.const 48) (i32.const 7)))))
          (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 50)))
            (then
              (i32.store8 (i32.const 48) (local.get $on))
              (i32.store (i32.const 49) (local.get $n))
              (drop (call $checkpoint (i32.const 48) (i32.const 5)))))))
      (br $next)))
)
