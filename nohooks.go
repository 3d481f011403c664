//go:build !reeve_testhooks

package main

import "github.com/reeve-edge/reeve/appliance"

// testOptions is empty in a production build: no fault can be injected.
func testOptions() appliance.Options { return appliance.Options{} }
