;; recursion.wat recurses without end in reeve_decide: every call nests
;; one deeper. Unbounded, wazero grows its stack until it gives up (about
;; 400 MB); bounded (policy_max_stack_kib), the call traps with a "call
;; stack" error long before.
;;
;; Regenerate recursion.wasm with wabt: wat2wasm recursion.wat
(module
  (memory (export "memory") 1)
  (func $down (param $depth i64) (result i64)
    (i64.add (call $down (i64.add (local.get $depth) (i64.const 1))) (i64.const 1)))
  (func (export "reeve_abi_version") (result i32) (i32.const 2))
  (func (export "reeve_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "reeve_decide") (param i32 i32) (result i64)
    (call $down (i64.const 0))))
