;; An agent tries to free regions 1..4 by number, its own linear memory's
;; among them (a region id is not a handle: refused), and logs the codes.
(module
  (import "rvm" "free" (func $free (param i32) (result i32)))
  (import "rvm" "log" (func $log (param i32 i32)))
  (import "rvm" "sleep_ms" (func $sleep (param i32) (result i32)))
  (memory 1)
  (func (export "main") (local $i i32)
    (loop $l
      (i32.store8 (local.get $i)
                  (i32.sub (i32.const 0) (call $free (i32.add (local.get $i) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
    (i32.store8 (i32.const 4) (i32.const 0x21))
    (call $log (i32.const 0) (i32.const 5))
    (drop (call $sleep (i32.const 100000))))
)
