;; tables-many.wat declares four tables of 32,768 elements: each is under
;; the default bound of 65,536 elements, all four together are twice it.
;; The bound is on all tables together, so it is refused when it compiles.
;;
;; Regenerate tables-many.wasm with wabt: wat2wasm tables-many.wat
(module
  (memory (export "memory") 1)
  (table 32768 funcref)
  (table 32768 funcref)
  (table 32768 externref)
  (table 32768 externref)
  (func (export "reeve_abi_version") (result i32) (i32.const 2))
  (func (export "reeve_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "reeve_decide") (param i32 i32) (result i64) (i64.const -1)))
