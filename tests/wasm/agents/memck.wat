;; Linear memory as a kernel region: a counter in memory, a checkpoint at
;; 3, a trap at 5. After an F2 rebuild the memory comes back from the
;; checkpoint (the counter goes on from 3); after an F1 restart it is a
;; fresh instance's (from 0).
;; @page-size 1
(module
  (import "rvm" "checkpoint" (func $ck (param i32 i32) (result i32)))
  (import "rvm" "sleep_ms" (func $sleep (param i32) (result i32)))
  (memory 16 16)
  (data (i32.const 8) "wasm")
  (func (export "main") (local $c i32)
    (loop $l
      (local.set $c (i32.add (i32.load (i32.const 0)) (i32.const 1)))
      (i32.store (i32.const 0) (local.get $c))
      (if (i32.eq (local.get $c) (i32.const 3))
        (then (drop (call $ck (i32.const 8) (i32.const 4)))))
      (if (i32.eq (local.get $c) (i32.const 5))
        (then unreachable))
      (drop (call $sleep (i32.const 10)))
      (br $l)))
)
