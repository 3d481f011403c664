package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// This file rewrites a module before it is compiled so that it checks its
// deadline itself, cheaply, instead of relying on wazero's
// WithCloseOnContextDone.
//
// wazero bounds a call by leaving the machine code for Go at every loop
// header to see whether the call's context is done (a known cost, wazero
// issue 2466). That takes about 25 ns a time, and Go's WebAssembly passes
// a loop header at every taken jump (it compiles a function to a loop
// around a jump table), so it made a policy written with the Go SDK four
// to five times slower than the same code unchecked: BenchmarkPolicyDecide
// (package appliance) took 2.1-2.4 µs a decision at a batch of 100 with
// it, 0.54-0.65 µs with this. See docs/policy-abi.md, "Limits".
//
// The rewritten module keeps a budget of work, "fuel", in a global of its
// own. At every function entry and loop header it subtracts the most work
// the code can do before it reaches the next function entry or loop
// header (counted in bytes of code, see codeRewriter.weigh), and before a bulk
// memory or table operation the number of bytes or elements it touches
// (64 KiB a page for memory.grow). Only when the budget runs out does it
// call the host: reeve.fuel, which stops the call if its context's
// deadline has passed and otherwise hands out fuelPerCheck more. A check
// in machine code is a load, a subtraction, a store and a branch.
//
// The host is reached at least every fuelPerCheck bytes of straight-line
// code, which bounds how far past its deadline a call can run by the time
// that much code takes: microseconds for a policy, and by estimate about
// 15 ms for code built to be slow (a chain of loads, each a cache miss, at
// 7 bytes of code a load). wazero's check gave no bound for a long loop
// body, and none at all for recursion that fans out without a loop, which
// ran 6 s past a 50 ms deadline at a depth of 30 (see
// testdata/instrument/hostile.wat); here every call is charged at its
// entry. And a call into the module no longer starts a goroutine to watch
// its context.

// The rewrite also bounds the module's call stack and its tables, which
// wazero does not: wazero grows a call stack up to 400 MB before it traps,
// and a table to whatever table.grow asks (2^32 elements is 32 GiB, and
// the Go runtime dies rather than fail the allocation). A stack budget in
// bytes, in a global of the module's own, is charged at every function
// entry with an estimate of the frame (frameBytes) and given back on the
// way out; each body is wrapped in a block so that a branch to the
// function's label also passes the give-back. A call that finds too little
// left calls reeve.stack, which ends the call. Every table gets a maximum
// that keeps all of them within the bound, so table.grow past it fails as
// the spec allows (it answers -1) and allocates nothing.

// fuelModule, fuelName and stackName name the host functions the
// rewritten module imports; a module that imports one itself is refused.
const (
	fuelModule = "reeve"
	fuelName   = "fuel"
	stackName  = "stack"
)

// addedImport reports whether mod.name is a host function the rewrite
// adds.
func addedImport(mod, name string) bool {
	return mod == fuelModule && (name == fuelName || name == stackName)
}

// bounds are the sandbox's limits that the rewrite enforces.
type bounds struct {
	tableElements uint32 // all tables together
	stackBytes    uint32 // the call stack, as frameBytes counts it
	functionBytes int    // one function body's code
}

// maxLocals bounds one function's parameters and locals: a frame's size
// and the compiler's work grow with them.
const maxLocals = 50000

// frameBytes estimates a call's stack frame: wazero's frame header, and
// a slot for every parameter and local.
func frameBytes(locals uint32) uint32 { return 64 + 16*locals }

// fuelPerCheck is the budget reeve.fuel hands out: bytes of straight-line
// code, or bytes of memory a bulk operation touches.
const fuelPerCheck = 1 << 20

// Section ids, in the order the binary format requires (the data count
// section, 12, goes between elements and code).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secDataCount = 12
)

// sectionRank orders known sections for inserting a missing one.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// errNotWasm wraps every instrument error but one (a module that imports
// reeve.fuel): the module does not decode, or uses a feature reeve does
// not run.
var errNotWasm = errors.New("not a valid WebAssembly module")

// module is what the rewrite needs to know about a module.
type module struct {
	bounds
	importedFuncs uint32   // function imports, which come first in the function index space
	fuelFunc      uint32   // the index of reeve.fuel: right after the other imports
	stackFunc     uint32   // the index of reeve.stack: right after reeve.fuel
	fuelType      uint32   // their type, () -> i64
	fuelGlobal    uint32   // the budget's global: after every other global
	stackGlobal   uint32   // the stack budget's global: right after it
	params        []uint32 // parameter count of each type
	bodyTypes     [][]byte // per type, the block type of a block with its results
	funcTypes     []uint32 // the type of each function the module defines
}

// addedFuncs is how many functions the rewrite imports.
const addedFuncs = 2

// funcIndex renumbers a function index of the original module: the added
// imports shift the module's own functions.
func (m *module) funcIndex(i uint32) uint32 {
	if i >= m.importedFuncs {
		return i + addedFuncs
	}
	return i
}

// instrument returns code rewritten to check its deadline through
// reeve.fuel and to keep within b, or an error that says why it cannot be.
func instrument(code []byte, b bounds) ([]byte, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" || binary.LittleEndian.Uint32(code[4:]) != 1 {
		return nil, fmt.Errorf("%w: no \\0asm header of version 1", errNotWasm)
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: code, off: 8}
	for r.ok() && r.off < len(r.b) {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if id > 12 {
			r.fail("section %d is from a proposal reeve does not run", id)
		}
		secs = append(secs, section{id, body})
	}
	if r.err != nil {
		return nil, r.err
	}
	known := map[byte][]byte{}
	for _, s := range secs {
		if s.id == secCustom {
			continue
		}
		if _, dup := known[s.id]; dup {
			return nil, fmt.Errorf("%w: section %d appears twice", errNotWasm, s.id)
		}
		known[s.id] = s.body
	}
	// The sections are read in the order each needs the one before: the
	// import's type, then the function index it takes, then the global's.
	m := &module{bounds: b}
	types, err := m.readTypes(orEmpty(known[secType]))
	if err != nil {
		return nil, err
	}
	imports, err := m.readImports(orEmpty(known[secImport]))
	if err != nil {
		return nil, err
	}
	m.fuelFunc, m.stackFunc = m.importedFuncs, m.importedFuncs+1
	if b, ok := known[secFunction]; ok {
		if err := m.readFunctions(b); err != nil {
			return nil, err
		}
	}
	globals, err := m.readGlobals(orEmpty(known[secGlobal]))
	if err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(code)+len(code)/8), code[:8]...)
	pending := map[byte][]byte{secType: types, secImport: imports, secGlobal: globals}
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	flush := func(before byte) { // the rewritten sections that come before section before
		for _, id := range []byte{secType, secImport, secGlobal} {
			if b, ok := pending[id]; ok && (before == 0 || sectionRank[id] < sectionRank[before]) {
				emit(id, b)
				delete(pending, id)
			}
		}
	}
	for _, s := range secs {
		body := s.body
		switch s.id {
		case secCustom:
			body, err = m.rewriteCustom(body)
			if body == nil && err == nil {
				continue // dropped
			}
		case secType, secImport, secGlobal:
			flush(s.id)
			emit(s.id, pending[s.id])
			delete(pending, s.id)
			continue
		case secExport:
			body, err = m.rewriteExports(body)
		case secStart:
			body, err = m.rewriteStart(body)
		case secTable:
			body, err = m.rewriteTables(body)
		case secElement:
			body, err = m.rewriteElements(body)
		case secCode:
			body, err = m.rewriteCode(body)
		}
		if err != nil {
			return nil, err
		}
		if s.id != secCustom {
			flush(s.id)
		}
		emit(s.id, body)
	}
	flush(0)
	return out, nil
}

// orEmpty returns a section's body, or that of a section with no entries
// for a missing one.
func orEmpty(body []byte) []byte {
	if body == nil {
		return []byte{0}
	}
	return body
}

// readTypes reads the type section, records each type's parameter count
// and the block type that wraps a body of that type, and returns it with
// the types the rewrite needs added: () -> i64, and () -> results for a
// type of several results that has parameters.
func (m *module) readTypes(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	entries := r.off
	found := false
	noParams := map[string]uint32{} // results -> a type () -> results
	var results []string
	for i := uint32(0); i < n && r.ok(); i++ {
		if r.byte() != 0x60 {
			r.fail("type %d is not a function type", i)
			break
		}
		np := r.u32()
		for range np {
			r.valType()
		}
		nr := r.u32()
		if int(nr) > len(r.b)-r.off {
			r.fail("type %d has %d results", i, nr)
			break
		}
		var res []byte
		for range nr {
			res = append(res, r.valType())
		}
		m.params = append(m.params, np)
		results = append(results, string(res))
		if _, ok := noParams[string(res)]; !ok && np == 0 {
			noParams[string(res)] = i
		}
		if !found && np == 0 && nr == 1 && res[0] == 0x7e {
			m.fuelType, found = i, true
		}
	}
	if err := r.end("type section"); err != nil {
		return nil, err
	}
	var added []byte
	next := n
	addType := func(res string) uint32 {
		added = append(added, 0x60, 0)
		added = appendU32(added, uint32(len(res)))
		added = append(added, res...)
		m.params = append(m.params, 0)
		noParams[res] = next
		next++
		return next - 1
	}
	if !found {
		m.fuelType = addType("\x7e")
	}
	m.bodyTypes = make([][]byte, len(results))
	for i, res := range results {
		switch len(res) {
		case 0:
			m.bodyTypes[i] = []byte{0x40}
		case 1:
			m.bodyTypes[i] = []byte{res[0]}
		default:
			t, ok := noParams[res]
			if !ok {
				t = addType(res)
			}
			m.bodyTypes[i] = appendS64(nil, int64(t))
		}
	}
	if next == n {
		return body, nil
	}
	out := appendU32(nil, next)
	out = append(out, body[entries:]...)
	return append(out, added...), nil
}

// readImports counts the function and global imports and returns the
// section with reeve.fuel added after them.
func (m *module) readImports(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	entries := r.off
	for i := uint32(0); i < n && r.ok(); i++ {
		mod, name := r.name(), r.name()
		if addedImport(mod, name) {
			return nil, fmt.Errorf("it imports %s.%s, which reeve adds itself (see docs/policy-abi.md)", mod, name)
		}
		switch kind := r.byte(); kind {
		case 0: // function
			r.u32()
			m.importedFuncs++
		case 1: // table
			return nil, fmt.Errorf("it imports table %s.%s; a policy's tables must be its own", mod, name)
		case 2: // memory
			r.limits()
		case 3: // global
			r.valType()
			r.byte()
			m.fuelGlobal++
		default:
			r.fail("import %d has unknown kind %d", i, kind)
		}
	}
	if err := r.end("import section"); err != nil {
		return nil, err
	}
	out := appendU32(nil, n+addedFuncs)
	out = append(out, body[entries:]...)
	for _, name := range []string{fuelName, stackName} {
		out = appendName(out, fuelModule)
		out = appendName(out, name)
		out = append(out, 0)
		out = appendU32(out, m.fuelType)
	}
	return out, nil
}

func (m *module) readFunctions(body []byte) error {
	r := &reader{b: body}
	n := r.u32()
	if n > maxCompileWork/workPerFunction {
		return fmt.Errorf("compiling it would take too long: %d functions, which is over %d units of compile work (the Go SDK's modules take about 3.5 million); split or simplify its code",
			n, maxCompileWork)
	}
	for range n {
		if !r.ok() {
			break
		}
		t := r.u32()
		if t >= uint32(len(m.bodyTypes)) { // the module's own types, not those the rewrite adds
			r.fail("function of type %d, of %d types", t, len(m.bodyTypes))
		}
		m.funcTypes = append(m.funcTypes, t)
	}
	return r.end("function section")
}

// readGlobals returns the global section with function references in its
// initializers renumbered and the fuel global added at the end, whose
// index it records.
func (m *module) readGlobals(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n+2)
	for range n {
		if !r.ok() {
			break
		}
		start := r.off
		r.valType()
		r.byte()
		out = append(out, r.b[start:r.off]...)
		out = m.constExpr(r, out)
	}
	if err := r.end("global section"); err != nil {
		return nil, err
	}
	m.fuelGlobal += n
	m.stackGlobal = m.fuelGlobal + 1
	out = append(out, 0x7e, 1, 0x42, 0, 0x0b) // (mut i64) (i64.const 0): the first check refills it
	out = append(out, 0x7f, 1, 0x41)          // (mut i32) (i32.const stackBytes)
	out = appendS64(out, int64(m.stackBytes))
	return append(out, 0x0b), nil
}

// rewriteTables refuses tables that together start larger than the bound,
// and gives each a maximum that keeps them within it: the room left is
// shared out evenly.
func (m *module) rewriteTables(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	type table struct {
		ref      byte
		min, max uint32
		hasMax   bool
	}
	var tables []table
	total := uint64(0)
	for i := uint32(0); i < n && r.ok(); i++ {
		t := table{ref: r.byte()}
		if t.ref != 0x70 && t.ref != 0x6f {
			r.fail("table %d has element type %#x", i, t.ref)
		}
		switch flags := r.byte(); flags {
		case 0:
			t.min = r.u32()
		case 1:
			t.min, t.max, t.hasMax = r.u32(), r.u32(), true
		default:
			r.fail("table %d has limits flags %#x", i, flags)
		}
		total += uint64(t.min)
		tables = append(tables, t)
	}
	if err := r.end("table section"); err != nil {
		return nil, err
	}
	if total > uint64(m.tableElements) {
		return nil, fmt.Errorf("its tables start with %d elements; election.policy_max_table_elements allows %d", total, m.tableElements)
	}
	share := (uint64(m.tableElements) - total) / uint64(max(len(tables), 1))
	out := appendU32(nil, n)
	for _, t := range tables {
		top := uint64(t.min) + share
		if t.hasMax {
			top = min(top, uint64(t.max))
		}
		out = append(out, t.ref, 1)
		out = appendU32(appendU32(out, t.min), uint32(top))
	}
	return out, nil
}

// constExpr copies a constant expression, renumbering ref.func.
func (m *module) constExpr(r *reader, out []byte) []byte {
	for r.ok() {
		start := r.off
		switch op := r.byte(); op {
		case 0x0b: // end
			return append(out, op)
		case 0x41: // i32.const
			r.leb(5)
		case 0x42: // i64.const
			r.leb(10)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0x23: // global.get
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		case 0xd2: // ref.func
			out = append(out, op)
			out = appendU32(out, m.funcIndex(r.u32()))
			continue
		case 0xfd: // v128.const
			if sub := r.u32(); sub != 12 {
				r.fail("SIMD opcode %d in a constant expression", sub)
			}
			r.bytes(16)
		default:
			r.fail("opcode %#x in a constant expression", op)
		}
		out = append(out, r.b[start:r.off]...)
	}
	return out
}

func (m *module) rewriteExports(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		if !r.ok() {
			break
		}
		out = appendName(out, r.name())
		kind, idx := r.byte(), r.u32()
		if kind == 0 {
			idx = m.funcIndex(idx)
		}
		out = appendU32(append(out, kind), idx)
	}
	return out, r.end("export section")
}

func (m *module) rewriteStart(body []byte) ([]byte, error) {
	r := &reader{b: body}
	f := m.funcIndex(r.u32())
	return appendU32(nil, f), r.end("start section")
}

// rewriteElements renumbers the functions in element segments, in each of
// their eight forms.
func (m *module) rewriteElements(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	for range n {
		if !r.ok() {
			break
		}
		flags := r.u32()
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			break
		}
		out = appendU32(out, flags)
		if flags&3 == 2 { // an explicit table
			out = appendU32(out, r.u32())
		}
		if flags&1 == 0 { // active: an offset
			out = m.constExpr(r, out)
		}
		if flags&3 != 0 { // an element kind or reference type
			out = append(out, r.byte())
		}
		count := r.u32()
		out = appendU32(out, count)
		for range count {
			if !r.ok() {
				break
			}
			if flags&4 != 0 {
				out = m.constExpr(r, out)
			} else {
				out = appendU32(out, m.funcIndex(r.u32()))
			}
		}
	}
	return out, r.end("element section")
}

// rewriteCustom renumbers the function and local names of the name
// section and drops DWARF, whose code offsets the rewrite invalidates;
// other custom sections are kept. It returns nil for a dropped section.
func (m *module) rewriteCustom(body []byte) ([]byte, error) {
	r := &reader{b: body}
	name := r.name()
	if r.err != nil {
		return nil, r.err
	}
	if strings.HasPrefix(name, ".debug_") {
		return nil, nil
	}
	if name != "name" {
		return body, nil
	}
	out := appendName(nil, name)
	for r.ok() && r.off < len(r.b) {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			break
		}
		var b []byte
		switch id {
		case 0: // the module's name
			sub.name()
			b = sub.b
		case 1: // function names
			n := sub.u32()
			b = appendU32(nil, n)
			for range n {
				b = appendU32(b, m.funcIndex(sub.u32()))
				b = appendName(b, sub.name())
			}
		case 2: // local names, by function
			n := sub.u32()
			b = appendU32(nil, n)
			for range n {
				b = appendU32(b, m.funcIndex(sub.u32()))
				start := sub.off
				for range sub.u32() {
					sub.u32()
					sub.name()
				}
				b = append(b, sub.b[start:sub.off]...)
			}
		default: // names reeve does not need; some index functions
			continue
		}
		if sub.err != nil || sub.off != len(sub.b) {
			return nil, nil // a name section reeve cannot read is dropped, as wazero ignores one
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(b)))
		out = append(out, b...)
	}
	if r.err != nil {
		return nil, nil
	}
	return out, nil
}

// reader reads the binary format with a sticky error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) ok() bool { return r.err == nil }

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", errNotWasm, r.off, fmt.Sprintf(format, args...))
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.fail("%d bytes needed, %d left", n, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// leb skips a LEB128 number of at most max bytes.
func (r *reader) leb(max int) {
	for i := 0; i < max; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("LEB128 number longer than %d bytes", max)
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 0xffffffff {
				r.fail("u32 out of range")
			}
			return uint32(v)
		}
	}
	r.fail("u32 longer than 5 bytes")
	return 0
}

func (r *reader) name() string {
	return string(r.bytes(int(r.u32())))
}

// valType reads a value type of the core features reeve runs (MVP, SIMD
// and reference types).
func (r *reader) valType() byte {
	t := r.byte()
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.fail("value type %#x", t)
	}
	return t
}

func (r *reader) limits() {
	flags := r.byte()
	if flags > 3 {
		r.fail("limits flags %#x", flags)
	}
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// end reports an error if reading failed or left bytes over.
func (r *reader) end(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over in the %s", len(r.b)-r.off, what)
	}
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}
