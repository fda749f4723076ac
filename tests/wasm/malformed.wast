;; malformed binaries (core spec 5)
(assert_malformed (module binary "") "unexpected end")
(assert_malformed (module binary "\00asm") "unexpected end")
(assert_malformed (module binary "\00asn\01\00\00\00") "magic header not detected")
(assert_malformed (module binary "\00asm\02\00\00\00") "unknown binary version")
(assert_malformed (module binary "\00asm\01\00\00\00\0e\00") "malformed section id")
(assert_malformed (module binary "\00asm\01\00\00\00\01\05\01\60\00\00") "section size out of bounds")
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\00") "section size mismatch")
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\61\00\00") "malformed function type")
(assert_malformed (module binary "\00asm\01\00\00\00\01\05\01\60\01\7b\00") "malformed value type")
;; type section twice
(assert_malformed (module binary "\00asm\01\00\00\00\01\01\00\01\01\00") "unexpected section")
;; code section before function section
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\0a\04\01\02\00\0b\03\02\01\00") "unexpected section")
;; function without code
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00") "function and code section have inconsistent lengths")
;; LEB128 too long (u32 in 6 bytes)
(assert_malformed (module binary "\00asm\01\00\00\00\01\09\01\60\00\80\80\80\80\80\00") "integer representation too long")
;; LEB128 u32 with bits beyond 32
(assert_malformed (module binary "\00asm\01\00\00\00\05\07\01\00\80\80\80\80\70") "integer too large")
;; i32.const with unused bits that are not a sign extension
(assert_malformed (module binary "\00asm\01\00\00\00\01\05\01\60\00\01\7f\03\02\01\00\0a\0b\01\09\00\41\80\80\80\80\70\0b") "integer too large")
;; body ends before its end opcode
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00\0a\04\01\02\00\01") "unexpected end")
;; bytes after the function's end
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00\0a\06\01\04\00\0b\01\0b") "section size mismatch")
;; an opcode that does not exist
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00\0a\05\01\03\00\ff\0b") "illegal opcode")
;; memory.size with a non-zero reserved byte
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00\05\03\01\00\01\0a\07\01\05\00\3f\01\1a\0b") "zero byte expected")
;; bad limits flag
(assert_malformed (module binary "\00asm\01\00\00\00\05\03\01\02\00") "malformed limits flags")
;; a custom page size other than 1 or 65536
(assert_malformed (module binary "\00asm\01\00\00\00\05\04\01\08\01\03") "invalid custom page size")
;; export name that is not UTF-8
(assert_malformed (module binary "\00asm\01\00\00\00\01\04\01\60\00\00\03\02\01\00\07\05\01\01\ff\00\00\0a\04\01\02\00\0b") "malformed UTF-8 encoding")
;; import of a memory (only function imports are supported)
(assert_malformed (module binary "\00asm\01\00\00\00\02\0b\01\03rvm\03mem\02\00\01") "unsupported import kind")
;; a valid module in binary form with a custom section
(module binary "\00asm\01\00\00\00\00\04\03abc\05\03\01\00\01\07\05\01\01m\02\00")
