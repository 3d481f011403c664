package wasm

import (
	"fmt"
	"slices"
)

// This file rewrites function bodies for instrument: it decodes each
// body's instructions, works out how much code can run after each charge
// point before the next one, and writes the body back with the charges
// and with function indices renumbered.

// What an instruction is to the rewrite. A loop, and the kinds from
// opCall on, are rewritten; the rest are copied.
const (
	opPlain   = iota
	opBlock   // block
	opLoop    // loop: a charge point
	opIf      // if
	opElse    // else
	opEnd     // end
	opBr      // br
	opBrIf    // br_if
	opBrTable // br_table
	opStop    // return, unreachable: nothing after it runs
	opCall    // call: its function index is renumbered
	opRefFunc // ref.func: likewise
	opBulk    // a bulk memory or table operation: the count is on top of the stack
	opGrow    // memory.grow: the number of 64 KiB pages is on top of the stack
	opReturn  // return: the stack budget is given back first
)

// insn is one decoded instruction.
type insn struct {
	start, end int32  // its bytes in the body
	op         uint8  // one of the op constants
	block      int32  // the block it opens, continues or ends, or that br and br_if go to
	index      uint32 // the function of call and ref.func; the first target of br_table in codeRewriter.targets
	count      uint32 // br_table's number of targets, its default included
}

// blockInfo is one block, loop or if of a body; block 0 is the body.
type blockInfo struct {
	loop, cond    bool  // a loop; an if
	elseAt, endAt int32 // instruction indices; elseAt is -1 without else
}

// codeRewriter rewrites the code section, reusing its buffers from one
// body to the next.
type codeRewriter struct {
	m       *module
	insns   []insn
	blocks  []blockInfo
	stack   []int32 // open blocks
	targets []int32 // br_table targets, as blocks
	after   []int64 // per instruction: the most code that can run from it to the next charge point
	depth   int     // the deepest nesting of blocks in the body
	quad    int64   // the body's quadratic compile work: depth squared plus each br_table's targets squared
}

func (m *module) rewriteCode(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.ok() && int(n) != len(m.funcTypes) {
		r.fail("%d function bodies for %d functions", n, len(m.funcTypes))
	}
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	c := &codeRewriter{m: m}
	var fn []byte
	var work compileWork
	for i := range n {
		if !r.ok() {
			break
		}
		code := r.bytes(int(r.u32()))
		if r.err != nil {
			break
		}
		if len(code) > m.functionBytes {
			return nil, fmt.Errorf("function %d is %d KiB of code; election.policy_max_function_kib allows %d",
				m.importedFuncs+i, (len(code)+1023)/1024, m.functionBytes/1024)
		}
		var err error
		t := m.funcTypes[i]
		if fn, err = c.rewrite(fn[:0], code, m.params[t], m.bodyTypes[t]); err != nil {
			return nil, fmt.Errorf("function %d: %w", m.importedFuncs+i, err)
		}
		work.add(len(code), c.depth, c.quad+int64(c.depth)*int64(c.depth))
		if work.total > maxCompileWork {
			return nil, fmt.Errorf("compiling it would take too long: %s, which is over %d units of compile work (the Go SDK's modules take about 3.5 million); split or simplify its code",
				work, maxCompileWork)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	return out, r.end("code section")
}

// rewrite appends the instrumented version of one function body (its
// locals and code) to out; bodyType is the block type of its results.
func (c *codeRewriter) rewrite(out, code []byte, params uint32, bodyType []byte) ([]byte, error) {
	r := &reader{b: code}
	groups := r.u32()
	groupsEnd := r.off
	locals := uint64(params)
	for range groups {
		locals += uint64(r.u32())
		r.valType()
	}
	if r.err != nil {
		return nil, r.err
	}
	if locals > maxLocals {
		return nil, fmt.Errorf("a function has %d parameters and locals; reeve allows %d", locals, maxLocals)
	}
	localsEnd := r.off
	expr := code[localsEnd:]
	bulk, err := c.decode(expr)
	if err != nil {
		return nil, err
	}
	entry := c.weigh()
	// A bulk operation's count is kept in an i32 local added after the
	// others.
	if bulk {
		out = appendU32(out, groups+1)
		out = append(out, code[groupsEnd:localsEnd]...)
		out = append(out, 1, 0x7f)
	} else {
		out = append(out, code[:localsEnd]...)
	}
	tmp := uint32(locals)
	m := c.m
	frame := frameBytes(uint32(locals))
	out = m.charge(out, entry)
	out = m.enterFrame(out, frame)
	out = append(append(out, 0x02), bodyType...) // block: a branch to the body's label lands before the give-back
	// Instructions that stay as they are are copied in runs, up to the
	// next one that changes.
	copied := int32(0)
	for i, in := range c.insns {
		if in.op != opLoop && in.op < opCall { // unchanged
			continue
		}
		out = append(out, expr[copied:in.start]...)
		copied = in.end
		b := expr[in.start:in.end]
		switch in.op {
		case opCall:
			out = appendU32(append(out, 0x10), m.funcIndex(in.index))
		case opRefFunc:
			out = appendU32(append(out, 0xd2), m.funcIndex(in.index))
		case opReturn:
			out = append(m.leaveFrame(out, frame), b...)
		case opLoop:
			out = append(out, b...)
			out = m.charge(out, c.after[i+1]+int64(len(b)))
		case opBulk, opGrow:
			// fuel -= count (pages: count << 16), leaving the count on the stack
			out = appendU32(append(out, 0x22), tmp)               // local.tee tmp
			out = appendU32(append(out, 0x23), m.fuelGlobal)      // global.get fuel
			out = append(appendU32(append(out, 0x20), tmp), 0xad) // local.get tmp; i64.extend_i32_u
			if in.op == opGrow {
				out = append(out, 0x42, 16, 0x86) // i64.const 16; i64.shl
			}
			out = appendU32(append(out, 0x7d, 0x24), m.fuelGlobal) // i64.sub; global.set fuel
			out = append(out, b...)
		}
	}
	// The body's last instruction is its end (decode checked): end the
	// block, give the frame back, end the body.
	out = append(out, expr[copied:len(expr)-1]...)
	out = m.leaveFrame(append(out, 0x0b), frame)
	return append(out, 0x0b), nil
}

// enterFrame appends code that takes a frame from the stack budget, and
// calls reeve.stack (which ends the call) when too little is left.
func (m *module) enterFrame(out []byte, frame uint32) []byte {
	out = appendU32(append(out, 0x23), m.stackGlobal)        // global.get stack
	out = appendS64(append(out, 0x41), int64(frame))         // i32.const frame
	out = append(out, 0x49, 0x04, 0x40)                      // i32.lt_u; if
	out = appendU32(append(out, 0x10), m.stackFunc)          // call reeve.stack
	out = append(out, 0x1a, 0x0b)                            // drop; end
	out = appendU32(append(out, 0x23), m.stackGlobal)        // global.get stack
	out = appendS64(append(out, 0x41), int64(frame))         // i32.const frame
	return appendU32(append(out, 0x6b, 0x24), m.stackGlobal) // i32.sub; global.set stack
}

// leaveFrame appends code that gives a frame back to the stack budget.
func (m *module) leaveFrame(out []byte, frame uint32) []byte {
	out = appendU32(append(out, 0x23), m.stackGlobal)        // global.get stack
	out = appendS64(append(out, 0x41), int64(frame))         // i32.const frame
	return appendU32(append(out, 0x6a, 0x24), m.stackGlobal) // i32.add; global.set stack
}

// charge appends code that takes w from the fuel and, when none is left,
// calls reeve.fuel for more (which stops the call past its deadline).
func (m *module) charge(out []byte, w int64) []byte {
	out = appendU32(append(out, 0x23), m.fuelGlobal)       // global.get fuel
	out = appendS64(append(out, 0x42), w)                  // i64.const w
	out = appendU32(append(out, 0x7d, 0x24), m.fuelGlobal) // i64.sub; global.set fuel
	out = appendU32(append(out, 0x23), m.fuelGlobal)       // global.get fuel
	out = append(out, 0x42, 0, 0x53, 0x04, 0x40)           // i64.const 0; i64.lt_s; if
	out = appendU32(append(out, 0x10), m.fuelFunc)         // call reeve.fuel
	out = appendU32(append(out, 0x24), m.fuelGlobal)       // global.set fuel
	return append(out, 0x0b)                               // end
}

// weigh works out, for every instruction, the most bytes of code that can
// run from it before the next charge point (a loop header, a call's entry
// into its function, or the end of the call), and returns that for the
// body's entry. Every jump but one back to a loop goes forward, so one
// pass from the last instruction to the first does it.
func (c *codeRewriter) weigh() int64 {
	n := len(c.insns)
	c.after = slices.Grow(c.after[:0], n+1)[:n+1]
	c.after[n] = 0
	after, blocks := c.after, c.blocks
	to := func(b int32) int64 {
		if blocks[b].loop {
			return 0 // the loop header charges for what follows
		}
		return after[blocks[b].endAt]
	}
	for i := n - 1; i >= 0; i-- {
		in := &c.insns[i]
		size, next := int64(in.end-in.start), after[i+1]
		switch in.op {
		case opLoop:
			after[i] = 0
		case opBr:
			after[i] = size + to(in.block)
		case opBrIf:
			after[i] = size + max(next, to(in.block))
		case opBrTable:
			most := int64(0)
			for _, t := range c.targets[in.index : in.index+in.count] {
				most = max(most, to(t))
			}
			after[i] = size + most
		case opStop, opReturn:
			after[i] = size
		case opIf:
			b := blocks[in.block]
			other := after[b.endAt]
			if b.elseAt >= 0 {
				other = after[b.elseAt+1]
			}
			after[i] = size + max(next, other)
		case opElse: // reached at the end of the then branch
			after[i] = size + after[blocks[in.block].endAt]
		default:
			after[i] = size + next
		}
	}
	return after[0]
}

// decode reads the instructions of a body's code into c.insns, with its
// blocks, and reports whether any is a bulk operation.
func (c *codeRewriter) decode(expr []byte) (bulk bool, err error) {
	c.insns, c.blocks, c.stack, c.targets = c.insns[:0], c.blocks[:0], c.stack[:0], c.targets[:0]
	c.depth, c.quad = 0, 0
	c.blocks = append(c.blocks, blockInfo{elseAt: -1, endAt: -1})
	c.stack = append(c.stack, 0)
	r := &reader{b: expr}
	label := func() int32 { // a branch's target block
		l := r.u32()
		if int(l) >= len(c.stack) {
			r.fail("branch to label %d with %d blocks open", l, len(c.stack))
			return 0
		}
		return c.stack[len(c.stack)-1-int(l)]
	}
	for r.ok() && r.off < len(expr) {
		if len(c.stack) == 0 {
			r.fail("code after the body's end")
			break
		}
		in := insn{start: int32(r.off)}
		idx := int32(len(c.insns))
		switch op := r.byte(); {
		case op == 0x00: // unreachable
			in.op = opStop
		case op == 0x0f: // return
			in.op = opReturn
		case op == 0x01 || op == 0x1a || op == 0x1b || op == 0xd1 || op >= 0x45 && op <= 0xc4:
			// nop, drop, select, ref.is_null, and the numeric instructions
		case op >= 0x02 && op <= 0x04: // block, loop, if
			r.blockType()
			in.op, in.block = [...]uint8{opBlock, opLoop, opIf}[op-2], int32(len(c.blocks))
			c.blocks = append(c.blocks, blockInfo{loop: op == 0x03, cond: op == 0x04, elseAt: -1, endAt: -1})
			c.stack = append(c.stack, in.block)
			c.depth = max(c.depth, len(c.stack))
		case op == 0x05: // else
			in.op, in.block = opElse, c.stack[len(c.stack)-1]
			if b := c.blocks[in.block]; !b.cond || b.elseAt >= 0 {
				r.fail("else outside an if")
			}
			c.blocks[in.block].elseAt = idx
		case op == 0x0b: // end
			in.op, in.block = opEnd, c.stack[len(c.stack)-1]
			c.blocks[in.block].endAt = idx
			c.stack = c.stack[:len(c.stack)-1]
		case op == 0x0c:
			in.op = opBr
			in.block = label()
		case op == 0x0d:
			in.op = opBrIf
			in.block = label()
		case op == 0x0e:
			in.op, in.index = opBrTable, uint32(len(c.targets))
			n := r.u32()
			if int(n) > len(expr) {
				r.fail("br_table of %d targets", n)
				break
			}
			for range n + 1 {
				c.targets = append(c.targets, label())
			}
			in.count = n + 1
			c.quad += int64(n+1) * int64(n+1)
		case op == 0x10:
			in.op, in.index = opCall, r.u32()
		case op == 0x11: // call_indirect type table
			r.u32()
			r.u32()
		case op == 0x1c: // select with types
			for range r.u32() {
				if !r.ok() {
					break
				}
				r.valType()
			}
		case op >= 0x20 && op <= 0x26: // locals, globals, table.get, table.set
			r.u32()
		case op >= 0x28 && op <= 0x3e: // loads and stores
			r.u32()
			r.u32()
		case op == 0x3f: // memory.size
			r.u32()
		case op == 0x40: // memory.grow
			in.op = opGrow
			r.u32()
		case op == 0x41:
			r.leb(5)
		case op == 0x42:
			r.leb(10)
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0: // ref.null
			r.byte()
		case op == 0xd2:
			in.op, in.index = opRefFunc, r.u32()
		case op == 0xfc:
			in.op = c.decodeFC(r)
		case op == 0xfd:
			decodeSIMD(r)
		default:
			r.fail("opcode %#x is from a proposal reeve does not run", op)
		}
		in.end = int32(r.off)
		bulk = bulk || in.op == opBulk || in.op == opGrow
		c.insns = append(c.insns, in)
	}
	if r.err == nil && (len(c.stack) != 0 || len(c.insns) == 0) {
		r.fail("the body does not end")
	}
	return bulk, r.err
}

// decodeFC reads the rest of an instruction with the 0xfc prefix: the
// saturating conversions and the bulk memory and table operations.
func (c *codeRewriter) decodeFC(r *reader) uint8 {
	switch sub := r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8 || sub == 12 || sub == 14: // memory.init, table.init, table.copy: two indices
		r.u32()
		r.u32()
		return opBulk
	case sub == 10: // memory.copy
		r.u32()
		r.u32()
		return opBulk
	case sub == 11 || sub == 15 || sub == 17: // memory.fill, table.grow, table.fill
		r.u32()
		return opBulk
	case sub == 9 || sub == 13 || sub == 16: // data.drop, elem.drop, table.size
		r.u32()
	default:
		r.fail("opcode 0xfc %d is from a proposal reeve does not run", sub)
	}
	return opPlain
}

// decodeSIMD reads the rest of an instruction with the 0xfd prefix.
func decodeSIMD(r *reader) {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93: // loads and stores
		r.u32()
		r.u32()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.u32()
		r.u32()
		r.byte()
	case sub <= 255:
	default:
		r.fail("opcode 0xfd %d is from a proposal reeve does not run", sub)
	}
}

// blockType reads a block type: empty, a value type, or a type index.
func (r *reader) blockType() {
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return
	}
	switch r.b[r.off] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		r.off++
	default:
		r.leb(5) // a signed 33-bit type index
	}
}

// The compiler's work, which wazero does not bound, grows with the number
// of functions, the bytes of code, and in a function with the square of
// its block nesting and of each br_table's number of targets. Measured
// with wazero 1.12 on a 2-core machine: about 37 µs a function, 57 ns a
// byte of code, 4.4 ns a nesting level squared and 0.4 ns a br_table
// target squared, so 100,000 empty functions took 3.7 s and one br_table
// of 400,000 targets 53 s. A module is refused before compiling when its
// estimate, in units of about one byte of code, is over maxCompileWork:
// about a second of compiling, 4.5 times the Go SDK's modules.
const (
	maxCompileWork  = 16 << 20
	workPerFunction = 650
	quadWorkDivisor = 13
)

// compileWork adds up a module's compile work.
type compileWork struct {
	total            int64
	functions, bytes int64
	deepest          int
}

func (w *compileWork) add(bytes, depth int, quad int64) {
	w.functions++
	w.bytes += int64(bytes)
	w.deepest = max(w.deepest, depth)
	w.total += workPerFunction + int64(bytes) + quad/quadWorkDivisor
}

func (w compileWork) String() string {
	return fmt.Sprintf("%d functions, %d bytes of code, blocks nested %d deep", w.functions, w.bytes, w.deepest)
}
