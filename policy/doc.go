// Package policy will hold reeve's election controller: the liveness table,
// election timers, the Policy interface, the built-in first-ISR policy, the
// safety validation of every decision and the decision log.
//
// It needs no network and no Raft: the controller proposes through an
// interface it declares. The package is empty until the leader-election
// work lands (see DESIGN.md, "Election policies").
package policy
