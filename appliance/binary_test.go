package appliance_test

import (
	"debug/elf"
	"testing"
)

// TestBinary_isStatic checks the binary built as `make build` builds it
// (CGO_ENABLED=0) has no ELF interpreter and no shared-library needs, so it
// runs on any Linux host of its architecture.
func TestBinary_isStatic(t *testing.T) {
	f, err := elf.Open(reeveBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked", reeveBin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 0 {
		t.Errorf("ImportedLibraries() = %v, want none", libs)
	}
}
