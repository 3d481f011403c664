// Command reeve is a Kafka-compatible broker for small edge clusters.
package main

import (
	"os"

	"github.com/reeve-edge/reeve/appliance"
)

func main() {
	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr, testOptions()))
}
