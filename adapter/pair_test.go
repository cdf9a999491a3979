package adapter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/verify"
)

// checkLedger waits (bounded) for the recorder's ledger to match the truth,
// then asserts G1, G2, G3 and G6.
func checkLedger(t *testing.T, l *lab, truth traffic.Truth) {
	t.Helper()
	var g1, g2 verify.Invariant
	deadline := time.Now().Add(15 * time.Second)
	for {
		g1, g2 = verify.CompareTruth(truth, l.rec.Ledger())
		if g1.Pass && g2.Pass || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	ledger := l.rec.Ledger()
	for _, inv := range []verify.Invariant{g1, g2, verify.CheckFencing(ledger), verify.Order(ledger)} {
		if !inv.Pass {
			t.Errorf("%s %s failed: %s; %v", inv.ID, inv.Name, inv.Evidence, inv.Details)
		} else {
			t.Logf("%s %s: %s", inv.ID, inv.Name, inv.Evidence)
		}
	}
	if len(truth.Segments) < 10 {
		t.Errorf("traffic produced only %d segments; the test proves little", len(truth.Segments))
	}
}

// TestC15_C16_LeaderStoppedMidTraffic stops the leader twice while calls keep
// coming at tens of events per second: the standby, hot all along, takes
// over, applies what the old leader had not logged, and the recorder's
// ledger equals the ground truth exactly (no lost, no duplicated effect).
func TestC15_C16_LeaderStoppedMidTraffic(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	sa := a.waitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.waitRole(t, adapter.RoleStandby, 10*time.Second)

	l.startTraffic(traffic.Config{Seed: 7, Agents: 30, CallsPerSecond: 12,
		MinCall: traffic.Duration(300 * time.Millisecond), MaxCall: traffic.Duration(2 * time.Second),
		QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
	waitFor(t, 20*time.Second, "40 commands from a", func() bool { return l.applied(sa.Epoch) >= 40 })

	// Stop leader a mid-traffic: b takes over.
	a.stop()
	sb := b.waitRole(t, adapter.RoleLeader, 5*time.Second)
	if sb.Epoch <= sa.Epoch {
		t.Fatalf("new epoch %d is not above the old %d", sb.Epoch, sa.Epoch)
	}
	a2 := l.start("a")
	a2.waitRole(t, adapter.RoleStandby, 10*time.Second)
	waitFor(t, 20*time.Second, "40 commands from b", func() bool { return l.applied(sb.Epoch) >= 40 })

	// Stop b: the restarted a, standby while events poured in, takes over.
	b.stop()
	s2 := a2.waitRole(t, adapter.RoleLeader, 5*time.Second)
	waitFor(t, 20*time.Second, "10 commands from a again", func() bool { return l.applied(s2.Epoch) >= 10 })

	truth := l.stopTraffic()
	checkLedger(t, l, truth)
}

// TestC01_HandoffOfEventsOnlyTheStandbySaw sends a call's events to the
// standby's subscription only (the leader's socket "missed" them): the
// standby hands them to the leader through etcd after the grace period and
// the leader drives the recorder; the copies are applied once.
func TestC01_HandoffOfEventsOnlyTheStandbySaw(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	a.waitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.waitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	send := func(name string, subs []string, at time.Time, extra map[string]any) {
		obj := map[string]any{"engagement_id": "eng-c01", "engagement_direction": "inbound", "channel": "voice",
			"date_time_ms": at.Format("2006-01-02T15:04:05.000Z"), "user_id": "usr-c01", "user_display_name": "Agent C01",
			"consumer_number": "+15550100001"}
		for k, v := range extra {
			obj[k] = v
		}
		ev := map[string]any{"event": name, "event_ts": at.UnixMilli(), "payload": map[string]any{"account_id": "acct-lab", "object": obj}}
		raw, _ := json.Marshal(ev)
		l.post("/sim/events", map[string]any{"subscriptions": subs, "event": json.RawMessage(raw)}, nil)
	}
	both, onlyB := []string{"sub-a", "sub-b"}, []string{"sub-b"}
	send("contact_center.engagement_started", both, now, nil)
	send("contact_center.engagement_user_answered", onlyB, now.Add(time.Second), nil)
	send("contact_center.engagement_user_hold", onlyB, now.Add(2*time.Second), nil)
	send("contact_center.engagement_user_unhold", both, now.Add(3*time.Second), nil)
	send("contact_center.engagement_user_ended", onlyB, now.Add(4*time.Second), nil)

	seg := "eng-c01/usr-c01"
	want := []string{rcapi.ActionStart, rcapi.ActionPause, rcapi.ActionResume, rcapi.ActionStop}
	var got []string
	waitFor(t, 10*time.Second, "the handed-off call at the recorder", func() bool {
		got = got[:0]
		for _, e := range l.rec.Ledger().Entries {
			if e.Kind == "command" && e.Result == rcapi.ResultApplied && e.Command.SegmentID == seg {
				got = append(got, e.Command.Action)
			}
		}
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		t.Fatalf("segment %s: got %v, want %v", seg, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("segment %s: got %v, want %v", seg, got, want)
		}
	}
	if s := b.node.Status(); s.HandedOff < 3 {
		t.Errorf("standby handed off %d events, want ≥ 3", s.HandedOff)
	}
}
