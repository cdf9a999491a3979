package adapter_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/verify"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// settle waits (bounded) for the recorder's ledger to match the truth and
// returns G1, G2, G3 and G6 on it. With ZCC_DEBUG_LEDGER set, a G1 failure
// also logs the whole ledger and the truth.
func (l *lab) settle(t testing.TB, truth traffic.Truth) []verify.Invariant {
	var g1, g2 verify.Invariant
	deadline := time.Now().Add(15 * time.Second)
	for {
		g1, g2 = verify.CompareTruth(truth, l.Rec.Ledger())
		if g1.Pass && g2.Pass || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	ledger := l.Rec.Ledger()
	if !g1.Pass && os.Getenv("ZCC_DEBUG_LEDGER") != "" {
		for _, e := range ledger.Entries {
			if e.Command != nil {
				t.Logf("LEDGER %d %s %s %s %s ep=%d node=%s at=%s", e.Seq, e.Result, e.Command.Action, e.Command.SegmentID, e.Command.Event, e.Command.Epoch, e.Command.Node, e.ReceivedAt.Format("15:04:05.000"))
			}
		}
		for _, s := range truth.Segments {
			t.Logf("TRUTH %s %v", s.SegmentID, s.Actions)
		}
	}
	return []verify.Invariant{g1, g2, verify.CheckFencing(ledger), verify.Order(ledger)}
}

// checkLedger asserts settle's invariants.
func checkLedger(t *testing.T, l *lab, truth traffic.Truth) {
	t.Helper()
	for _, inv := range l.settle(t, truth) {
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

// TestC10_C15_C16_LeaderStoppedMidTraffic stops the leader twice while calls
// keep coming at tens of events per second, in the middle of its batch
// writes: the standby, hot all along, takes over, applies what the old
// leader had not logged, and the recorder's ledger equals the ground truth
// exactly (no lost, no duplicated effect). G3 as checked here also fails on
// a single stale-epoch attempt: the stopping leader's work must have ended
// before its successor started (C-10).
func TestC10_C15_C16_LeaderStoppedMidTraffic(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	l.startTraffic(traffic.Config{Seed: 7, Agents: 30, CallsPerSecond: 12,
		MinCall: traffic.Duration(300 * time.Millisecond), MaxCall: traffic.Duration(2 * time.Second),
		QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
	labtest.WaitFor(t, 20*time.Second, "40 commands from a", func() bool { return l.appliedSince(sa.Epoch) >= 40 })

	// Stop leader a mid-traffic: b takes over.
	a.Stop()
	sb := b.WaitRole(t, adapter.RoleLeader, 5*time.Second)
	if sb.Epoch <= sa.Epoch {
		t.Fatalf("new epoch %d is not above the old %d", sb.Epoch, sa.Epoch)
	}
	a2 := l.start("a")
	a2.WaitRole(t, adapter.RoleStandby, 10*time.Second)
	labtest.WaitFor(t, 20*time.Second, "40 commands from b", func() bool { return l.appliedSince(sb.Epoch) >= 40 })

	// Stop b: the restarted a, standby while events poured in, takes over.
	b.Stop()
	s2 := a2.WaitRole(t, adapter.RoleLeader, 5*time.Second)
	labtest.WaitFor(t, 20*time.Second, "10 commands from a again", func() bool { return l.appliedSince(s2.Epoch) >= 10 })

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
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	send := func(name string, subs []string, at time.Time, extra map[string]any) {
		l.sendEvent(name, "eng-c01", "usr-c01", subs, at, extra)
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
	labtest.WaitFor(t, 10*time.Second, "the handed-off call at the recorder", func() bool {
		got = l.applied(seg)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("segment %s: got %v, want %v", seg, got, want)
	}
	if s := b.Status(); s.HandedOff < 3 {
		t.Errorf("standby handed off %d events, want ≥ 3", s.HandedOff)
	}
}

// TestC05_DegradedLeaderHandsOver: the leader's subscription goes half-open
// (TCP up, nothing delivered, no heartbeat replies). Its watchdog closes the
// socket, the redial gets no answer, the node reports itself degraded and,
// since the standby's socket is healthy, hands leadership over.
func TestC05_DegradedLeaderHandsOver(t *testing.T) {
	l := newLab(t)
	l.Tune = func(c *config.Config) { c.Zoom.DegradedAfter = 2 * time.Second }
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	if _, err := l.Zoom.SetFaults("sub-a", zoom.Faults{HalfOpen: true}); err != nil {
		t.Fatal(err)
	}
	var sb adapter.NodeStatus
	labtest.WaitFor(t, 30*time.Second, "b to lead after a's socket died", func() bool {
		sb = b.Status()
		return sb.Role == adapter.RoleLeader
	})
	if sb.Epoch <= sa.Epoch {
		t.Fatalf("b's epoch %d is not above a's %d", sb.Epoch, sa.Epoch)
	}
	if s := a.Status(); !s.Degraded || s.Role == adapter.RoleLeader {
		t.Fatalf("a: degraded=%v role=%s; want degraded, not leader", s.Degraded, s.Role)
	}
	// Healed: a's socket comes back and it is a healthy standby again.
	if _, err := l.Zoom.SetFaults("sub-a", zoom.Faults{}); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 40*time.Second, "a to recover as a healthy standby", func() bool {
		s := a.Status()
		return s.SocketUp && !s.Degraded && s.Role == adapter.RoleStandby
	})
}

// TestC11_RecorderFailingWhileLeaderStops: the recorder fails every command
// while the leader retries a start with the same id; the leader is stopped
// mid-retry. The successor must not trust state the old leader held but the
// recorder never confirmed: once the recorder answers, the start lands, then
// the stop, once each.
func TestC11_RecorderFailingWhileLeaderStops(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	l.Rec.FailNext(100000, 503)
	now := time.Now().UTC()
	both := []string{"sub-a", "sub-b"}
	l.sendEvent("contact_center.engagement_started", "eng-c11", "", both, now, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-c11", "usr-c11", both, now.Add(time.Second), nil)
	faults := func() int {
		n := 0
		for _, e := range l.Rec.Ledger().Entries {
			if e.Command != nil && e.Command.SegmentID == "eng-c11/usr-c11" && e.Result != rcapi.ResultApplied {
				n++
			}
		}
		return n
	}
	labtest.WaitFor(t, 10*time.Second, "the leader to retry the start", func() bool { return faults() >= 3 })
	a.Stop()
	// b is elected and, in promotion, retries the same start against the
	// failing recorder.
	labtest.WaitFor(t, 10*time.Second, "b to be elected", func() bool {
		r := b.Status().Role
		return r == adapter.RolePromoting || r == adapter.RoleLeader
	})
	l.Rec.FailNext(0, 0)
	b.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	l.sendEvent("contact_center.engagement_user_ended", "eng-c11", "usr-c11", both, now.Add(5*time.Second), nil)
	var got []string
	labtest.WaitFor(t, 15*time.Second, "start and stop at the recorder", func() bool {
		got = l.applied("eng-c11/usr-c11")
		return len(got) >= 2
	})
	if len(got) != 2 || got[0] != rcapi.ActionStart || got[1] != rcapi.ActionStop {
		t.Fatalf("segment eng-c11/usr-c11: got %v, want [start stop]", got)
	}
}

// TestNodeRefusesSharedSubscriptionOrName: a second node on the same
// subscription, or with the same name, is refused at start with an error
// that says what to fix.
func TestNodeRefusesSharedSubscriptionOrName(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	for _, tc := range []struct {
		name, sub string
		want      error
	}{
		{"b", "sub-a", adapter.ErrSubscriptionShared},
		{"a", "sub-b", adapter.ErrNodeNameTaken},
	} {
		cfg := l.Config(tc.name)
		cfg.Zoom.SubscriptionURL = strings.Replace(cfg.Zoom.SubscriptionURL, "sub-"+tc.name, tc.sub, 1)
		cl, err := cluster.Connect(t.Context(), assemble.ClusterConfig(cfg, cfg.Etcd.Endpoints), l.Log)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := assemble.Build(cfg, cl, "in-process", nil, l.Log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		err = parts.Node.Run(ctx)
		cancel()
		cl.Close()
		if !errors.Is(err, tc.want) {
			t.Errorf("node %s on %s: Run = %v, want %v", tc.name, tc.sub, err, tc.want)
		}
	}
	if s := a.Status(); s.Role != adapter.RoleLeader {
		t.Fatalf("a lost leadership to a refused node: %s", s.Role)
	}
}

// TestMessageSignaturesVerified: with the app's secret token configured, a
// node accepts frames signed with it and drops (and counts) frames whose
// x-zm-signature does not match.
func TestMessageSignaturesVerified(t *testing.T) {
	l := newLab(t, func(c *zoom.Config) { c.SecretToken = "app-secret-token-1" })
	l.Tune = func(c *config.Config) {
		c.Zoom.SecretToken = "app-secret-token-1"
		if c.Node == "b" {
			c.Zoom.SecretToken = "a-stale-secret-token"
		}
	}
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.serve("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)
	now := time.Now().UTC()
	both := []string{"sub-a", "sub-b"}
	l.sendEvent("contact_center.engagement_user_answered", "eng-sig", "usr-sig", both, now, nil)
	labtest.WaitFor(t, 10*time.Second, "the signed start at the recorder", func() bool { return len(l.applied("eng-sig/usr-sig")) == 1 })
	labtest.WaitFor(t, 10*time.Second, "b to count the bad signature", func() bool {
		return b.Status().Received == 0 && metricBadSignatures(b) > 0
	})
	// Visible to the operator: in /status and as a metric.
	if s := b.Status(); s.BadSignatures == 0 {
		t.Errorf("b's status shows %d bad signatures", s.BadSignatures)
	}
	if s := a.Status(); s.BadSignatures != 0 {
		t.Errorf("a's status shows %d bad signatures; its secret token is right", s.BadSignatures)
	}
	code, body := get(t, b.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", code)
	}
	if got := samples(t, body)[`zccadapter_events_bad_signature_total{node="b"}`]; got < 1 {
		t.Errorf("b's metric zccadapter_events_bad_signature_total is %v, want ≥ 1", got)
	}
}

// metricBadSignatures reads the subscription client's counter through the
// node's Source.
func metricBadSignatures(n *labtest.Node) int64 { return n.Parts.Client.Status().BadSignatures }
