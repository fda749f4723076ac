;; Traps after one host call: the partition faults (F1 restart).
(module
  (import "rvm" "now" (func $now (result i32)))
  (func (export "main") (drop (call $now)) (unreachable)))
