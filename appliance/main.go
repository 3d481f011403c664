package appliance

import (
	"io"

	"github.com/reeve-edge/reeve/cli"
	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/logging"
)

// Main runs the reeve command line (package cli) and returns the process
// exit status; reeve serve runs a node here, with opts (none in a
// production build: see main's testhooks.go).
func Main(args []string, stdout, stderr io.Writer, opts Options) int {
	return cli.Main(args, stdout, stderr, Version, func(cfg *config.Config, stderr io.Writer) error {
		log, level := logging.New(cfg.Log, stderr)
		err := serve(cfg, log, level, opts)
		if err != nil {
			log.Error("reeve failed", "err", err)
		}
		return err
	})
}
