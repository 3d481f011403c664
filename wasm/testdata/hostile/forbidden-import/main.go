// Command forbidden-import imports and calls wasi_snapshot_preview1's
// sock_accept and path_open, which reeve must refuse at load; the calls
// keep the linker from dropping the imports.
package main

import (
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

//go:wasmimport wasi_snapshot_preview1 sock_accept
func sockAccept(fd, flags int32, newFD *int32) int32

//go:wasmimport wasi_snapshot_preview1 path_open
func pathOpen(dirFD, dirFlags int32, path unsafe.Pointer, pathLen, oflags int32, rightsBase, rightsInheriting int64, fdFlags int32, fd *int32) int32

var path = []byte("/etc/passwd")

func init() {
	sdk.Handle(func(in sdk.Input) sdk.Decision {
		var fd int32
		if errno := sockAccept(3, 0, &fd); errno == 0 {
			return sdk.Keep("accepted a connection")
		}
		if errno := pathOpen(3, 0, unsafe.Pointer(&path[0]), int32(len(path)), 0, 1<<1, 0, 0, &fd); errno == 0 {
			return sdk.Keep("opened a file")
		}
		return sdk.FirstISR(in)
	})
}

func main() {}
