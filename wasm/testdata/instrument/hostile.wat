;; hostile.wat has three ways never to return, each of which the deadline
;; must stop: a loop that does nothing, a loop that fills all of memory on
;; every pass (little code, much work), and recursion that fans out
;; without a loop, which wazero's own check at loop headers never saw.
;;
;; Regenerate hostile.wasm with wabt: wat2wasm hostile.wat
(module
  (memory 256 256)
  (func (export "spin") (loop $l (br $l)))
  (func (export "fill")
    (loop $l
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 16777216))
      (br $l)))
  (func $fan (export "fan") (param $n i32)
    (if (local.get $n)
      (then
        (call $fan (i32.sub (local.get $n) (i32.const 1)))
        (call $fan (i32.sub (local.get $n) (i32.const 1)))))))
