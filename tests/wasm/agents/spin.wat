;; A module that never calls the host: only fuel stops it.
(module (func (export "main") (loop (br 0))))
