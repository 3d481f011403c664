// Package wasm will host operator-written election policies compiled to
// WebAssembly, sandboxed in wazero, as implementations of policy.Policy; its
// sdk subpackage is what policy authors import.
//
// The package is empty until the WebAssembly policy work lands (see
// DESIGN.md, "Election policies").
package wasm
