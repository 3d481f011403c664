// Command big writes policy modules too big to commit: valid WebAssembly
// with the policy ABI's exports (answering a fixed failure) and functions
// of no use whose bodies are long runs of `i32.const 0; drop`.
//
//	go run ./wasm/testdata/hostile-wat/big -functions 1 -function-kib 1100 -o function-1100k.wasm
//	go run ./wasm/testdata/hostile-wat/big -functions 64 -function-kib 800 -o module-50m.wasm
//
// The first has one function body over the default
// election.policy_max_function_kib (1024): it is refused before it is
// compiled. The second, 51 MB, is made of functions under that bound and
// is over election.policy_max_module_mib (8): it is refused before it is
// read whole. -seed changes the bytes (a different digest), not the size.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
)

func main() {
	functions := flag.Int("functions", 1, "how many big functions")
	kib := flag.Int("function-kib", 1100, "the size of each big function's body in `KiB`")
	abi := flag.Int("abi", 2, "what reeve_abi_version returns")
	seed := flag.Int("seed", 0, "a value in the module, to change its bytes")
	out := flag.String("o", "", "the `FILE` to write")
	flag.Parse()
	if *out == "" || *functions < 1 || *kib < 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	write(w, *functions, *kib<<10, int32(*abi), int32(*seed))
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// write streams the module, so a 50 MB module never sits in memory.
//
// Types: 0 () -> i32, 1 (i32) -> i32, 2 (i32 i32) -> i64, 3 () -> ().
// Functions: 0 reeve_abi_version, 1 reeve_alloc, 2 reeve_decide, then the
// big ones (type 3), each `i32.const seed; drop` then `i32.const 0; drop`
// repeated to its size.
func write(w *bufio.Writer, functions, size int, abi, seed int32) {
	w.Write([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	section(w, 1, []byte{4,
		0x60, 0, 1, 0x7f,
		0x60, 1, 0x7f, 1, 0x7f,
		0x60, 2, 0x7f, 0x7f, 1, 0x7e,
		0x60, 0, 0})
	fn := uleb(nil, uint64(3+functions))
	fn = append(fn, 0, 1, 2)
	for range functions {
		fn = append(fn, 3)
	}
	section(w, 3, fn)
	section(w, 5, []byte{1, 0, 1}) // memory: 1 page
	var ex []byte
	ex = append(ex, 4)
	ex = export(ex, "memory", 2, 0)
	ex = export(ex, "reeve_abi_version", 0, 0)
	ex = export(ex, "reeve_alloc", 0, 1)
	ex = export(ex, "reeve_decide", 0, 2)
	section(w, 7, ex)

	// The ABI's three: no locals, one constant, end.
	var abiFuncs []byte
	for _, b := range [][]byte{
		sleb([]byte{0, 0x41}, int64(abi)), // i32.const abi
		{0, 0x41, 0x80, 0x08},             // i32.const 1024
		{0, 0x42, 0x7f},                   // i64.const -1
	} {
		b = append(b, 0x0b)
		abiFuncs = uleb(abiFuncs, uint64(len(b)))
		abiFuncs = append(abiFuncs, b...)
	}
	head := sleb([]byte{0, 0x41}, int64(seed)) // no locals; i32.const seed
	head = append(head, 0x1a)                  // drop
	runs := (size - len(head) - 1) / 3
	body := len(head) + 3*runs + 1
	bodyLen := uleb(nil, uint64(body))
	count := uleb(nil, uint64(3+functions))
	total := len(count) + len(abiFuncs) + functions*(len(bodyLen)+body)
	w.WriteByte(10)
	w.Write(uleb(nil, uint64(total)))
	w.Write(count)
	w.Write(abiFuncs)
	for range functions {
		w.Write(bodyLen)
		w.Write(head)
		for range runs {
			w.Write([]byte{0x41, 0, 0x1a})
		}
		w.WriteByte(0x0b)
	}
}

func section(w *bufio.Writer, id byte, body []byte) {
	w.WriteByte(id)
	w.Write(uleb(nil, uint64(len(body))))
	w.Write(body)
}

func export(b []byte, name string, kind byte, index uint64) []byte {
	b = uleb(b, uint64(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return uleb(b, index)
}

func uleb(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
