;; none.wat answers none (no eligible leader: offline) for every partition
;; of every batch, live in-sync replicas or not; the self-test has
;; partitions with live in-sync replicas, so it is refused at load.
;;
;; The decoder and encoder (from ";; ---- ABI" to ";; ---- end") are the
;; same in first-isr.wat, keep.wat, none.wat, selftest-cheat.wat and
;; sleeper.wat.
;;
;; Regenerate none.wasm with wabt: wat2wasm none.wat
(module
  (memory (export "memory") 1)

  ;; ---- ABI (docs/policy-abi.md, version 2.0)
  ;; Memory: 0-4095 free, 4096-36863 the batch's node ids (at most 4,096
  ;; nodes), the input buffer at 65536, the answer after it. Every record
  ;; starts with its length; a record's fields this module does not know
  ;; (a later minor's) are skipped.
  (global $incap (mut i32) (i32.const 0)) ;; the input buffer's size
  (global $p (mut i32) (i32.const 0))     ;; read cursor
  (global $end (mut i32) (i32.const 0))   ;; end of the batch
  (global $o (mut i32) (i32.const 0))     ;; write cursor
  (global $nnodes (mut i32) (i32.const 0))
  ;; the partition read last: its topic, reason, leader and first-isr's choice
  (global $topic (mut i32) (i32.const 0))
  (global $topiclen (mut i32) (i32.const 0))
  (global $reason (mut i32) (i32.const 0))
  (global $leader (mut i64) (i64.const 0))
  (global $clean (mut i32) (i32.const 0)) ;; the choice is in the ISR

  (func (export "reeve_abi_version") (result i32) (i32.const 2))

  ;; grow grows memory to hold $top bytes, or traps.
  (func $grow (param $top i32)
    (local $have i32)
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $top) (local.get $have))
      (then
        (if (i32.lt_s
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $top) (local.get $have)) (i32.const 65535)) (i32.const 16)))
              (i32.const 0))
          (then unreachable)))))

  (func (export "reeve_alloc") (param $size i32) (result i32)
    (call $grow (i32.add (i32.const 65536) (local.get $size)))
    (global.set $incap (local.get $size))
    (i32.const 65536))

  ;; take returns the cursor and moves it n bytes on; past the batch's end
  ;; it traps.
  (func $take (param $n i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $p))
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $end) (local.get $at)))
      (then unreachable))
    (global.set $p (i32.add (local.get $at) (local.get $n)))
    (local.get $at))
  (func $u8 (result i32) (i32.load8_u (call $take (i32.const 1))))
  (func $u16 (result i32) (i32.load16_u (call $take (i32.const 2))))
  (func $u32 (result i32) (i32.load (call $take (i32.const 4))))
  (func $u64 (result i64) (i64.load (call $take (i32.const 8))))
  ;; record reads a record's length (a u32 if $wide, else a u16), checks
  ;; that the record is within the batch, and returns where it ends; the
  ;; cursor is at its first field.
  (func $record (param $wide i32) (result i32)
    (local $n i32)
    (local.set $n (if (result i32) (local.get $wide) (then (call $u32)) (else (call $u16))))
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $end) (global.get $p)))
      (then unreachable))
    (i32.add (global.get $p) (local.get $n)))

  (func $put8 (param i32)
    (i32.store8 (global.get $o) (local.get 0))
    (global.set $o (i32.add (global.get $o) (i32.const 1))))
  (func $put16 (param i32)
    (i32.store16 (global.get $o) (local.get 0))
    (global.set $o (i32.add (global.get $o) (i32.const 2))))
  (func $put32 (param i32)
    (i32.store (global.get $o) (local.get 0))
    (global.set $o (i32.add (global.get $o) (i32.const 4))))
  (func $put64 (param i64)
    (i64.store (global.get $o) (local.get 0))
    (global.set $o (i32.add (global.get $o) (i32.const 8))))
  ;; decision appends one decision whose reason is the string at $s, $n.
  (func $decision (param $kind i32) (param $leader i64) (param $s i32) (param $n i32)
    (call $put32 (i32.add (i32.const 11) (local.get $n)))
    (call $put8 (local.get $kind))
    (call $put64 (local.get $leader))
    (call $put16 (local.get $n))
    (memory.copy (global.get $o) (local.get $s) (local.get $n))
    (global.set $o (i32.add (global.get $o) (local.get $n))))

  ;; header reads the batch's version, header and node table, keeping the
  ;; nodes' ids, and returns its partition count.
  (func $header (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $next i32) (local $n i32)
    (global.set $p (local.get $ptr))
    (global.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.ne (call $u16) (i32.const 2)) (then unreachable)) ;; major
    (drop (call $u16))                                         ;; minor
    (local.set $next (call $record (i32.const 0)))
    (global.set $nnodes (call $u32))
    (local.set $n (call $u32))
    (global.set $p (local.get $next))
    (if (i32.gt_u (global.get $nnodes) (i32.const 4096)) (then unreachable))
    (block $done
      (loop $node
        (br_if $done (i32.ge_u (local.get $i) (global.get $nnodes)))
        (local.set $next (call $record (i32.const 1)))
        (i64.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3))) (call $u64))
        (global.set $p (local.get $next)) ;; past the heartbeat age and labels
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $node)))
    (local.get $n))

  ;; partition reads one partition and returns first-isr's choice: the
  ;; first replica alive and in the ISR, else with unclean election the
  ;; first alive one, else 0.
  (func $partition (result i64)
    (local $next i32) (local $rnext i32) (local $flags i32) (local $n i32) (local $node i32) (local $rf i32)
    (local $id i64) (local $isr i64) (local $alive i64)
    (local.set $next (call $record (i32.const 1)))
    (global.set $topiclen (call $u16))
    (global.set $topic (call $take (global.get $topiclen)))
    (drop (call $u32)) ;; partition
    (global.set $reason (call $u8))
    (local.set $flags (call $u8))
    (global.set $leader (call $u64))
    (drop (call $u32)) ;; leader epoch
    (local.set $n (call $u16))
    (block $done
      (loop $replica
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $rnext (call $record (i32.const 0)))
        (local.set $node (call $u32))
        (local.set $rf (call $u8))
        (global.set $p (local.get $rnext)) ;; past the log-end offset
        (if (i32.ge_u (local.get $node) (global.get $nnodes)) (then unreachable))
        (local.set $id (i64.load (i32.add (i32.const 4096) (i32.shl (local.get $node) (i32.const 3)))))
        (if (i32.and (i32.eq (i32.and (local.get $rf) (i32.const 3)) (i32.const 3)) (i64.eqz (local.get $isr)))
          (then (local.set $isr (local.get $id))))
        (if (i32.and (i32.and (local.get $rf) (i32.const 1)) (i64.eqz (local.get $alive)))
          (then (local.set $alive (local.get $id))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $replica)))
    (global.set $p (local.get $next))
    (global.set $clean (i32.eqz (i64.eqz (local.get $isr))))
    (if (result i64) (i64.eqz (local.get $isr))
      (then (select (local.get $alive) (i64.const 0) (i32.and (local.get $flags) (i32.const 1))))
      (else (local.get $isr))))

  ;; begin places the answer after the input buffer, room for n decisions
  ;; with reasons of up to 49 bytes, and writes its version and header.
  (func $begin (param $n i32) (result i32)
    (local $at i32)
    (if (i32.gt_u (local.get $n) (i32.const 0x100000)) (then unreachable))
    (local.set $at (i32.and (i32.add (i32.add (i32.const 65536) (global.get $incap)) (i32.const 7)) (i32.const -8)))
    (call $grow (i32.add (local.get $at) (i32.add (i32.const 10) (i32.shl (local.get $n) (i32.const 6)))))
    (global.set $o (local.get $at))
    (call $put16 (i32.const 2)) ;; major
    (call $put16 (i32.const 0)) ;; minor
    (call $put16 (i32.const 4)) ;; the header's length
    (call $put32 (local.get $n))
    (local.get $at))

  ;; end returns the answer begun at $at as reeve_decide's result.
  (func $end (param $at i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $at)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $o) (local.get $at)))))

  ;; firstISR appends first-isr's decision for the partition read last,
  ;; whose choice is $c: none, keep (the choice leads and is in the ISR)
  ;; or the choice.
  (func $firstISR (param $c i64)
    (if (i64.eqz (local.get $c))
      (then (call $decision (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 24)))
      (else
        (if (i32.and (i64.eq (local.get $c) (global.get $leader)) (global.get $clean))
          (then (call $decision (i32.const 1) (i64.const 0) (i32.const 64) (i32.const 44)))
          (else (call $decision (i32.const 2) (local.get $c) (i32.const 128) (i32.const 27)))))))
  (data (i32.const 0) "no live eligible replica")
  (data (i32.const 64) "the leader is the first live in-sync replica")
  (data (i32.const 128) "first live eligible replica")
  ;; ---- end
  (data (i32.const 192) "none")

  (func (export "reeve_decide") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $at i32)
    (local.set $n (call $header (local.get $ptr) (local.get $len)))
    (local.set $at (call $begin (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $partition))
        (call $decision (i32.const 0) (i64.const 0) (i32.const 192) (i32.const 4))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (call $end (local.get $at)))
)
