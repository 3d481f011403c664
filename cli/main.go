package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/reeve-edge/reeve/config"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad arguments or a bad configuration file
)

const usage = `reeve — a Kafka-compatible edge broker

Usage:
  reeve serve [-c FILE]                 run a node (no FILE: a one-node cluster on 127.0.0.1)
  reeve config check -c FILE            validate a configuration file; exit 2 on errors
  reeve topic create NAME [-p N] [-r N] [--config KEY=VALUE]...
  reeve topic list
  reeve topic describe NAME
  reeve topic delete NAME
  reeve node list
  reeve node add --id N --raft-address HOST:PORT
  reeve node remove ID
  reeve elect --topic T --partition P [--to NODE]   elect a partition's leader (default: the policy's choice)
  reeve policy check FILE.wasm [--setting K=V]...    compile, check and self-test a policy module; exit 2 if refused
  reeve policy test FILE.wasm|first-isr --scenario S.toml [--json]   decide a described cluster state
  reeve events --follow [-c FILE] [--nats URL] [--json]   print the cluster's events as they come
  reeve status [--json]                 nodes, partition health and recent elections
  reeve partitions [--topic T] [--unhealthy] [--json]   who leads each partition, its ISR and lag
  reeve elections [--topic T] [--json]  the node's decision log: every election it ran and why
  reeve version

The topic, node, elect, status, partitions and elections commands talk to a running node's admin endpoint, found
with --admin HOST:PORT, else admin.listen of -c FILE, else 127.0.0.1:9644. A node with admin.token_file set wants
its token: pass --token-file FILE, or -c FILE to use that file's admin.token_file.
`

// Serve runs a node on cfg until it stops (reeve serve). An error with an
// ExitCode method sets the exit status (2 for a configuration the cluster
// refuses); any other is status 1. Package
// appliance provides it; the client commands never start a node.
type Serve func(cfg *config.Config, stderr io.Writer) error

// Main runs the reeve command line and returns the process exit status.
// version is the release printed by reeve version.
func Main(args []string, stdout, stderr io.Writer, version string, serve Serve) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest, stderr, serve)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			fmt.Fprintln(stderr, "usage: reeve config check -c FILE")
			return exitUsage
		}
		return cmdConfigCheck(rest[1:], stdout, stderr)
	case "topic":
		return cmdTopic(rest, stdout, stderr)
	case "node":
		return cmdNode(rest, stdout, stderr)
	case "elect":
		return cmdElect(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "partitions":
		return cmdPartitions(rest, stdout, stderr)
	case "elections":
		return cmdElections(rest, stdout, stderr)
	case "policy":
		return cmdPolicy(rest, stdout, stderr)
	case "events":
		return cmdEvents(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "reeve %s\n", version)
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "reeve: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (reeve topic create orders -p 3), which flag.Parse
// alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadConfig reads -c FILE, or the embedded defaults when path is empty.
// Errors are printed the way operators fix them: one per line, file:line:col.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	if path == "" {
		return config.Default(), true
	}
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintf(stderr, "config: %s\n", e)
			}
			fmt.Fprintf(stderr, "config: %s: %d error(s)\n", path, len(errs))
		} else {
			fmt.Fprintf(stderr, "config: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `FILE` to check")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: reeve config check -c FILE")
		return exitUsage
	}
	if _, ok := loadConfig(*path, stderr); !ok {
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	return exitOK
}

func cmdServe(args []string, stderr io.Writer, serve Serve) int {
	fs := flag.NewFlagSet("reeve serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `FILE` (default: embedded one-node defaults)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	if err := serve(cfg, stderr); err != nil {
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return exitFailure
	}
	return exitOK
}

// adminFlags are the flags every client command shares.
type adminFlags struct {
	admin     *string
	config    *string
	tokenFile *string
	json      *bool
}

func newAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		admin:     fs.String("admin", "", "admin endpoint `HOST:PORT` of a running node"),
		config:    fs.String("c", "", "configuration `FILE` whose admin.listen and admin.token_file to use"),
		tokenFile: fs.String("token-file", "", "`FILE` holding the node's admin token (default: admin.token_file of -c FILE)"),
		json:      fs.Bool("json", false, "print the API's JSON instead of a table"),
	}
}

// client resolves the admin address (--admin, then admin.listen of -c
// FILE, then the default) and the token (--token-file, then
// admin.token_file of -c FILE, else none).
func (f adminFlags) client(stderr io.Writer) (*adminClient, bool) {
	c := &adminClient{}
	addr, tokenFile := *f.admin, *f.tokenFile
	if addr == "" || *f.config != "" {
		cfg, ok := loadConfig(*f.config, stderr)
		if !ok {
			return nil, false
		}
		if addr == "" {
			addr = dialable(cfg.Admin.Listen)
		}
		if tokenFile == "" && cfg.Admin.TokenFile != "" {
			tokenFile, c.tokenFrom = cfg.Admin.TokenFile, "admin.token_file of "+*f.config
		}
	}
	if tokenFile != "" {
		token, err := config.ReadToken(tokenFile)
		if err == nil && token == "" {
			err = fmt.Errorf("%s holds no token", tokenFile)
		}
		if err != nil {
			fmt.Fprintf(stderr, "reeve: admin token: %v\n", err)
			return nil, false
		}
		c.token = token
		if c.tokenFrom == "" {
			c.tokenFrom = "--token-file " + tokenFile
		}
	}
	c.base = "http://" + addr
	return c, true
}

// dialable turns a wildcard listen address into one a local client can dial.
func dialable(listen string) string {
	for _, wild := range []string{"0.0.0.0:", "[::]:", ":"} {
		if strings.HasPrefix(listen, wild) {
			return "127.0.0.1:" + strings.TrimPrefix(listen, wild)
		}
	}
	return listen
}
