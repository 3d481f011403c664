package main

import (
	"testing"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

func replica(id uint64, alive, isr bool, leo int64) sdk.Replica {
	return sdk.Replica{ID: id, Alive: alive, InISR: isr, LogEndOffset: leo}
}

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		name string
		in   sdk.Input
		want sdk.Decision
	}{
		{"the highest offset wins over preference order",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 900), replica(2, true, true, 500), replica(3, true, true, 700)}},
			sdk.Elect(3, "the eligible replica with the highest log-end offset")},
		{"ties go to preference order",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 900), replica(2, true, true, 700), replica(3, true, true, 700)}},
			sdk.Elect(2, "the eligible replica with the highest log-end offset")},
		{"unknown offsets rank below known ones",
			sdk.Input{Reason: sdk.ControlledShutdown, Leader: 1, Replicas: []sdk.Replica{
				replica(1, true, true, 900), replica(2, true, true, -1), replica(3, true, true, 0)}},
			sdk.Elect(3, "the eligible replica with the highest log-end offset")},
		{"the dying leader's offset does not count, however high",
			sdk.Input{Reason: sdk.ControlledShutdown, Leader: 3, Replicas: []sdk.Replica{
				replica(1, true, true, 10), replica(2, true, true, 20), replica(3, true, true, 900)}},
			sdk.Elect(2, "the eligible replica with the highest log-end offset")},
		{"dead and out-of-sync replicas do not count",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 0), replica(2, false, true, 999), replica(3, true, false, 999), replica(4, true, true, 5)}},
			sdk.Elect(4, "the eligible replica with the highest log-end offset")},
		{"nothing known: first-isr",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 900), replica(2, true, true, -1), replica(3, true, true, -1)}},
			sdk.Elect(2, "first in-sync replica alive")},
		{"no eligible replica: unclean through first-isr",
			sdk.Input{Reason: sdk.LeaderTimeout, Unclean: true, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 900), replica(2, true, false, 800)}},
			sdk.Elect(2, "unclean: alive but out of sync")},
		{"no eligible replica, unclean off: offline",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, 900), replica(2, true, false, 800)}},
			sdk.Offline("no live in-sync replica")},
		{"rebalance keeps a leader that has the most",
			sdk.Input{Reason: sdk.Rebalance, Leader: 2, Replicas: []sdk.Replica{
				replica(1, true, true, 100), replica(2, true, true, 120)}},
			sdk.Keep("the leader has the highest log-end offset")},
		{"rebalance moves to a replica that has more",
			sdk.Input{Reason: sdk.Manual, Leader: 2, Replicas: []sdk.Replica{
				replica(1, true, true, 130), replica(2, true, true, 120)}},
			sdk.Elect(1, "the eligible replica with the highest log-end offset")},
		{"rebalance of an equal leader goes to preference order",
			sdk.Input{Reason: sdk.Rebalance, Leader: 2, Replicas: []sdk.Replica{
				replica(1, true, true, 120), replica(2, true, true, 120)}},
			sdk.Elect(1, "the eligible replica with the highest log-end offset")},
	} {
		if got := decide(c.in); got != c.want {
			t.Errorf("%s: decided %+v, want %+v", c.name, got, c.want)
		}
	}
}
