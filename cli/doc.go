// Package cli is the reeve command line. Main dispatches: reeve serve
// loads the configuration and hands it to the Serve function package
// appliance gives it; config check and policy check/test work on local
// files; events --follow subscribes to NATS; the other commands (topic,
// node, elect, status, partitions, elections) are clients of a node's
// admin API.
//
// It decodes the admin API's and the events' JSON into package api's
// types and knows nothing of the server or the Raft state behind them.
package cli
