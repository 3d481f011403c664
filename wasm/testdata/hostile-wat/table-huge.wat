;; table-huge.wat declares a table of 2^27 elements: instantiating it
;; allocates 1 GiB, so a bounded runtime refuses it when it compiles.
;;
;; Regenerate table-huge.wasm with wabt: wat2wasm table-huge.wat
(module
  (memory (export "memory") 1)
  (table 0x8000000 funcref)
  (func (export "reeve_abi_version") (result i32) (i32.const 2))
  (func (export "reeve_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "reeve_decide") (param i32 i32) (result i64) (i64.const -1)))
