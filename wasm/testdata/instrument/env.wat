;; env.wat is the "env" module features.wasm imports from: a function and
;; a global.
;;
;; Regenerate env.wasm with wabt: wat2wasm env.wat
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (global (export "base") i32 (i32.const 1000)))
