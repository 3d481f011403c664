;; table-grow-decide.wat grows its table by 2^27 elements in every
;; reeve_decide call, the self-test's included. Unbounded, wazero allocates
;; 1 GiB for the elements (and takes over a second to, past any deadline);
;; bounded, table.grow returns -1 and the module traps (unreachable) to say
;; so. If the grow succeeds the module reports failure (-1).
;;
;; Regenerate table-grow-decide.wasm with wabt: wat2wasm table-grow-decide.wat
(module
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "reeve_abi_version") (result i32) (i32.const 2))
  (func (export "reeve_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "reeve_decide") (param i32 i32) (result i64)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0x8000000)) (i32.const -1))
      (then unreachable))
    (i64.const -1)))
