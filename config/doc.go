// Package config reads and validates reeve's TOML configuration, and the
// scenario files of reeve policy test (LoadScenario). It is the only
// package that reads TOML and imports no other part of reeve. raft, kafka
// and policy never see a Config: appliance hands them the plain values
// they need. The packages at the edge read their own sections: events
// (Config.Events, in events.Connect), logging (Config.Log), wasm
// (Config.Election, in wasm.ElectionConfig) and cli.
//
// Parse and Load start from the defaults (the same as Default), apply the
// file on top and validate the result. They report every problem in one
// pass, as an Errors, each as file:line:col, the dotted key and what to do:
//
//	cfg, err := config.Load("/etc/reeve/reeve.toml")
//	if err != nil {
//		// reeve.toml:7:1: raft.rt: unknown key; did you mean "rtt"?
//		// reeve.toml:9:1: raft.election_rtt: want an integer, got string; write 20 without quotes
//		// reeve.toml: node.id: required in cluster mode; set it to this node's id (1 or higher)
//		fmt.Fprintln(os.Stderr, err)
//		os.Exit(2)
//	}
//	for id, addr := range cfg.Cluster.Members() {
//		fmt.Println(id, addr)
//	}
//
// Without a file, Default gives a one-node cluster on 127.0.0.1 that needs
// no further setup. docs/configuration.md describes every key.
package config
