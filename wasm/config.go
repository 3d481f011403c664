package wasm

import "github.com/reeve-edge/reeve/config"

// ElectionConfig is the sandbox the [election] section configures: what a
// node runs its policies in, and what `reeve policy check` tests them in.
// CacheDir and Logger are left for the caller.
func ElectionConfig(e config.Election) Config {
	return Config{
		MemoryLimit:      uint64(e.PolicyMemoryMiB) << 20,
		Timeout:          e.PolicyTimeout.Duration,
		MaxModuleBytes:   int64(e.PolicyMaxModuleMiB) << 20,
		MaxFunctionBytes: e.PolicyMaxFunctionKiB << 10,
		MaxTableElements: uint32(e.PolicyMaxTableElements),
		MaxStackBytes:    uint32(e.PolicyMaxStackKiB) << 10,
	}
}
