//go:build !wasip1

package sdk

import (
	"fmt"
	"os"
	"time"
)

// nativeLog stands in for reeve's log when the package runs outside
// WebAssembly, as in its tests and an author's native unit tests.
var nativeLog = func(level Level, msg string) { fmt.Fprintf(os.Stderr, "policy %s: %s\n", level, msg) }

func hostLog(level int32, msg string) { nativeLog(Level(level), msg) }

func hostNow() int64 { return time.Now().UnixMilli() }
