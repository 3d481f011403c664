package main

import (
	"testing"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

var (
	mains   = map[string]string{"power": "mains"}
	battery = map[string]string{"power": "battery"}
)

func replica(id uint64, alive, isr bool, labels map[string]string) sdk.Replica {
	return sdk.Replica{ID: id, Alive: alive, InISR: isr, Labels: labels, LogEndOffset: -1}
}

func TestConfigure(t *testing.T) {
	for _, bad := range []map[string]string{{}, {"value": "mains"}, {"label": "", "value": "mains"}, {"label": "power"}} {
		if err := configure(bad); err == nil {
			t.Errorf("settings %v accepted", bad)
		}
	}
	if err := configure(map[string]string{"label": "power", "value": "mains"}); err != nil {
		t.Fatal(err)
	}
	if label != "power" || value != "mains" || electReason != "first eligible replica with power=mains" {
		t.Errorf("configured label %q value %q reason %q", label, value, electReason)
	}
}

func TestDecide(t *testing.T) {
	if err := configure(map[string]string{"label": "power", "value": "mains"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   sdk.Input
		want sdk.Decision
	}{
		{"leader gone: the first mains replica, not the first in-sync one",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, mains), replica(2, true, true, battery), replica(3, true, true, mains)}},
			sdk.Elect(3, "first eligible replica with power=mains")},
		{"a shutting-down leader on mains is not chosen again",
			sdk.Input{Reason: sdk.ControlledShutdown, Leader: 1, Replicas: []sdk.Replica{
				replica(1, true, true, mains), replica(2, true, true, battery)}},
			sdk.FirstISR(sdk.Input{Reason: sdk.ControlledShutdown, Leader: 1, Replicas: []sdk.Replica{
				replica(1, true, true, mains), replica(2, true, true, battery)}})},
		{"mains replicas out of the ISR or dead do not count",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, mains), replica(2, true, false, mains), replica(3, false, true, mains), replica(4, true, true, battery)}},
			sdk.Elect(4, "first in-sync replica alive")},
		{"no eligible replica at all: unclean through first-isr",
			sdk.Input{Reason: sdk.LeaderTimeout, Unclean: true, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, mains), replica(2, true, false, mains)}},
			sdk.Elect(2, "unclean: alive but out of sync")},
		{"nothing at all: offline",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{replica(1, false, true, mains)}},
			sdk.Offline("no live in-sync replica")},
		{"a node without labels never matches",
			sdk.Input{Reason: sdk.LeaderTimeout, Leader: 1, Replicas: []sdk.Replica{
				replica(1, false, true, nil), replica(2, true, true, nil)}},
			sdk.Elect(2, "first in-sync replica alive")},
		{"rebalance keeps a leader on mains though another mains replica is preferred",
			sdk.Input{Reason: sdk.Rebalance, Leader: 3, Replicas: []sdk.Replica{
				replica(1, true, true, mains), replica(2, true, true, battery), replica(3, true, true, mains)}},
			sdk.Keep("the leader has power=mains")},
		{"rebalance moves a leader on battery to mains",
			sdk.Input{Reason: sdk.Rebalance, Leader: 1, Replicas: []sdk.Replica{
				replica(1, true, true, battery), replica(2, true, true, mains)}},
			sdk.Elect(2, "first eligible replica with power=mains")},
		{"rebalance does not keep a mains leader out of the ISR",
			sdk.Input{Reason: sdk.Manual, Leader: 1, Replicas: []sdk.Replica{
				replica(1, true, false, mains), replica(2, true, true, battery), replica(3, true, true, mains)}},
			sdk.Elect(3, "first eligible replica with power=mains")},
		{"rebalance without any mains replica is first-isr's",
			sdk.Input{Reason: sdk.Rebalance, Leader: 2, Replicas: []sdk.Replica{
				replica(1, true, true, battery), replica(2, true, true, battery)}},
			sdk.Elect(1, "first in-sync replica alive")},
	} {
		if got := decide(c.in); got != c.want {
			t.Errorf("%s: decided %+v, want %+v", c.name, got, c.want)
		}
	}
}
