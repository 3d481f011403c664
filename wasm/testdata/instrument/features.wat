;; features.wat exercises what instrument rewrites: an imported function
;; and global ahead of reeve.fuel, function indices in calls, ref.func,
;; element segments of every form, the start function, exports and the
;; name section; loops (with parameters), block and if results, br_table,
;; bulk memory and table operations, memory.grow, select with types and
;; SIMD immediates. Each export returns a number that TestInstrument
;; compares before and after the rewrite.
;;
;; Regenerate features.wasm with wabt: wat2wasm --debug-names features.wat
(module $features
  (type $binop (func (param i32 i32) (result i32)))
  (type $pair (func (param i32) (result i32 i32)))
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "base" (global $base i32))
  (memory (export "memory") 1 4)
  (table $t 4 funcref)
  (table $u 2 funcref)
  (global $started (mut i32) (i32.const 0))
  (global $fref funcref (ref.func $sub))
  (elem (i32.const 0) $mul $sub)
  (elem (table $t) (i32.const 2) func $mul)
  (elem $passive funcref (ref.func $sub) (ref.func $mul))
  (elem declare func $add3)
  (data $d "reeve instrument")
  (start $start)

  (func $start (global.set $started (i32.const 7)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $add3 (param i32) (result i32) (i32.add (local.get 0) (i32.const 3)))
  (func $divmod (type $pair) (i32.div_u (local.get 0) (i32.const 7)) (i32.rem_u (local.get 0) (i32.const 7)))

  ;; every way out of a function, each of which must give its stack
  ;; budget back: a br_if and a br_table to the function's own label, a
  ;; return from inside a block, and the end (10, 20, 30, 41, 40 for k 0-4)
  (func $exit (param $k i32) (result i32)
    (i32.const 10)
    (br_if 0 (i32.eqz (local.get $k)))
    (drop)
    (block $b (result i32)
      (i32.const 20)
      (br_if 1 (i32.eq (local.get $k) (i32.const 1)))
      (drop)
      (if (i32.eq (local.get $k) (i32.const 2)) (then (return (i32.const 30))))
      (i32.const 40)
      (i32.sub (local.get $k) (i32.const 3))
      (br_table $b 1))
    (i32.add (i32.const 1)))

  ;; calls $exit and the two-result $divmod n times each: far more calls
  ;; than the stack budget has frames, so a way out that kept its frame
  ;; would trap
  (func $exits (export "exits") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (call $exit (i32.rem_u (local.get $i) (i32.const 5)))))
      (call $divmod (local.get $i))
      (i32.add)
      (local.set $sum (i32.add (local.get $sum)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))

  ;; sum of i*i for i below n, in a loop that carries the sum as a parameter
  (func $squares (export "squares") (param $n i32) (result i32)
    (local $i i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (call $add (local.get $i) (local.get $i))
      (drop)
      (i32.add (i32.mul (local.get $i) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))

  ;; a dispatch loop like Go's: br_table picks the next block by state
  (func $dispatch (export "dispatch") (param $n i32) (result i32)
    (local $state i32) (local $acc i32)
    (block $done
      (loop $top
        (block $c2 (block $c1 (block $c0
          (br_table $c0 $c1 $c2 $done (local.get $state)))
          ;; c0
          (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
          (local.set $state (i32.const 1))
          (br $top))
          ;; c1
          (local.set $acc (i32.mul (local.get $acc) (i32.const 3)))
          (local.set $state (select (result i32) (i32.const 0) (i32.const 2) (i32.lt_u (local.get $acc) (local.get $n))))
          (br $top))
        ;; c2
        (local.set $state (i32.const 3))
        (br $top)))
    (local.get $acc))

  ;; calls through the table, ref.func, the passive segment and table ops
  (func $indirect (export "indirect") (result i32)
    (local $r i32)
    (table.init $u $passive (i32.const 0) (i32.const 0) (i32.const 2))
    (local.set $r (call_indirect $t (type $binop) (i32.const 6) (i32.const 7) (i32.const 0)))
    (local.set $r (i32.add (local.get $r) (call_indirect $t (type $binop) (i32.const 9) (i32.const 4) (i32.const 1))))
    (local.set $r (i32.add (local.get $r) (call_indirect $u (type $binop) (i32.const 9) (i32.const 4) (i32.const 0))))
    (table.set $t (i32.const 3) (global.get $fref))
    (local.set $r (i32.add (local.get $r) (call_indirect $t (type $binop) (i32.const 100) (i32.const 1) (i32.const 3))))
    (drop (table.grow $t (ref.func $add3) (i32.const 2)))
    (table.fill $t (i32.const 4) (ref.func $add3) (i32.const 2))
    (table.copy $t $u (i32.const 0) (i32.const 0) (i32.const 1))
    (local.set $r (i32.add (local.get $r) (call_indirect $t (type $binop) (i32.const 1) (i32.const 1) (i32.const 0))))
    (local.set $r (i32.add (local.get $r) (table.size $t)))
    (elem.drop $passive)
    (i32.add (local.get $r) (global.get $started)))

  ;; bulk memory in a loop, memory.grow, data segments and SIMD
  (func $bulk (export "bulk") (result i32)
    (local $i i32) (local $x i32) (local $y i32)
    (memory.init $d (i32.const 16) (i32.const 0) (i32.const 16))
    (loop $l
      (memory.copy (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 16))) (i32.const 16) (i32.const 16))
      (memory.fill (i32.const 1024) (local.get $i) (i32.const 100))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 5))))
    (data.drop $d)
    (drop (memory.grow (i32.const 1)))
    (v128.store (i32.const 2048)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
        (v128.load offset=64 (i32.const 0))
        (v128.const i32x4 1 2 3 4)))
    (v128.store32_lane 1 (i32.const 4096) (v128.load32_zero (i32.const 2052)))
    (local.set $x (i32x4.extract_lane 0 (v128.load (i32.const 2048))))
    (call $divmod (i32.add (local.get $x) (i32.load8_u (i32.const 1099))))
    (local.set $y)
    (i32.add (i32.mul (memory.size) (i32.const 1000)))
    (i32.add (local.get $y))
    (i32.add (i32.load (i32.const 4096))))

  ;; if with results and else, block results, a trunc_sat and a global import
  (func $branches (export "branches") (param $n i32) (result i32)
    (local $f f64)
    (local.set $f (f64.convert_i32_s (local.get $n)))
    (block $b (result i32)
      (if (result i32) (i32.gt_s (local.get $n) (i32.const 10))
        (then (i32.trunc_sat_f64_s (f64.mul (local.get $f) (f64.const 1.5))))
        (else (br $b (i32.add (local.get $n) (global.get $base)))))))
)
