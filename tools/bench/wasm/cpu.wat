;; CPU-bound kernels for `make bench` (kb_wasm.py): recursive fib and a
;; bitwise CRC-32 (IEEE, reflected) over the first n bytes of memory.
(module
  (memory (export "memory") 1)
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func (export "fill") (param i32) (local i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get 1) (local.get 0)))
      (i32.store8 (local.get 1) (i32.and (i32.mul (local.get 1) (i32.const 31)) (i32.const 255)))
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br $l))))
  (func (export "crc32") (param i32) (result i32) (local i32 i32 i32)
    (local.set 1 (i32.const -1))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get 2) (local.get 0)))
      (local.set 1 (i32.xor (local.get 1) (i32.load8_u (local.get 2))))
      (local.set 3 (i32.const 8))
      (loop $b
        (local.set 1 (i32.xor (i32.shr_u (local.get 1) (i32.const 1))
                              (i32.and (i32.const 0xEDB88320)
                                       (i32.sub (i32.const 0) (i32.and (local.get 1) (i32.const 1))))))
        (local.set 3 (i32.sub (local.get 3) (i32.const 1)))
        (br_if $b (local.get 3)))
      (local.set 2 (i32.add (local.get 2) (i32.const 1)))
      (br $l)))
    (i32.xor (local.get 1) (i32.const -1)))
)
