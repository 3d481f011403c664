;; table-grow-start.wat grows its table by 0xfffffff0 (2^32 - 16) elements
;; in its start function, which runs when the module is instantiated,
;; before reeve calls any export. Unbounded, wazero allocates 32 GiB for
;; the elements and the Go runtime dies; bounded, table.grow returns -1
;; (the spec allows a grow to fail) and the module traps to say so.
;;
;; Its exports are the ABI's, answering a fixed failure: the hostile part
;; is all in the start function.
;;
;; Regenerate table-grow-start.wasm with wabt: wat2wasm table-grow-start.wat
(module
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func $start
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0xfffffff0)) (i32.const -1))
      (then unreachable)))
  (start $start)
  (func (export "reeve_abi_version") (result i32) (i32.const 2))
  (func (export "reeve_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "reeve_decide") (param i32 i32) (result i64) (i64.const -1)))
