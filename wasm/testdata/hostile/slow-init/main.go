// Command slow-init spins in reeve_init for the setting duration (a Go
// duration, default 1h) before it accepts its settings, to test the
// deadline on loading a module; after that it decides as first-isr.
package main

import (
	"time"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

func init() {
	sdk.Init(func(settings map[string]string) error {
		d := time.Hour
		if s, ok := settings["duration"]; ok {
			var err error
			if d, err = time.ParseDuration(s); err != nil {
				return err
			}
		}
		for start := sdk.Now(); sdk.Now().Sub(start) < d; {
		}
		return nil
	})
	sdk.Handle(sdk.FirstISR)
}

func main() {}
