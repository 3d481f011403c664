//go:build reeve_testhooks

package main

import (
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/reeve-edge/reeve/appliance"
	"github.com/reeve-edge/reeve/events"
)

// A test build (go build -tags reeve_testhooks, as the process tests in
// appliance build it) lets a test act out faults through files named in
// the environment. A production build has none of this (nohooks.go).
//
//   - REEVE_TEST_KAFKA_WEDGE=FILE: while FILE exists, the Kafka acceptor
//     stops after each connection it accepts, as a hung acceptor would.
//   - REEVE_TEST_EVENTS_HOOK=FILE: FILE holds the crash the event
//     publisher acts out: "hold" (died right after the commit) or "noack"
//     (died after publishing); absent or empty, none.
//   - REEVE_TEST_FSYNC_EIO=FILE: while FILE exists, every fsync of a
//     partition log's files fails with EIO, as a failing disk's does.
func testOptions() appliance.Options {
	var o appliance.Options
	if path := os.Getenv("REEVE_TEST_KAFKA_WEDGE"); path != "" {
		o.KafkaAccepted = func() {
			for {
				if _, err := os.Stat(path); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	if path := os.Getenv("REEVE_TEST_EVENTS_HOOK"); path != "" {
		o.EventsFault = func() events.Fault {
			b, err := os.ReadFile(path)
			if err != nil {
				return events.NoFault
			}
			return events.Fault(strings.TrimSpace(string(b)))
		}
	}
	if path := os.Getenv("REEVE_TEST_FSYNC_EIO"); path != "" {
		o.BeforeFsync = func(string) error {
			if _, err := os.Stat(path); err == nil {
				return syscall.EIO
			}
			return nil
		}
	}
	return o
}
