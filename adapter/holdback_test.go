package adapter_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// TestC15_HeldStopSurvivesLeaderCrash: the end of a call reaches the
// leader's socket only (the standby's socket missed it), and the leader
// crashes while it holds that event back. The event must not die with it:
// the leader queued it in etcd, and the successor applies it at promotion.
// "Crash" here: node a's links to etcd and to the recorder are cut at once,
// so it can neither write nor send again; its lease expires and b takes
// over.
func TestC15_HeldStopSurvivesLeaderCrash(t *testing.T) {
	l := newLab(t)
	recProxy := l.proxy(t, strings.TrimPrefix(l.RecTS.URL, "http://"))
	l.Tune = func(c *config.Config) {
		// Hold-back = grace + 1 s = 3 s: the crash comes well inside it.
		c.Rules.HandoffGrace = 2 * time.Second
		if c.Node == "a" {
			c.Recorder.URL = "http://" + recProxy.Addr()
			c.Recorder.RequestTimeout = 500 * time.Millisecond
		}
	}
	etcdProxy := l.etcdBehindProxy(t, "a")
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	both, onlyA := []string{"sub-a", "sub-b"}, []string{"sub-a"}
	l.sendEvent("contact_center.engagement_started", "eng-c15", "", both, now, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-c15", "usr-c15", both, now.Add(time.Second), nil)
	seg := "eng-c15/usr-c15"
	labtest.WaitFor(t, 10*time.Second, "the start at the recorder", func() bool { return len(l.applied(seg)) == 1 })
	l.sendEvent("contact_center.engagement_ended", "eng-c15", "", onlyA, now.Add(5*time.Second), nil)
	labtest.WaitFor(t, 5*time.Second, "the leader to hold the end back and queue it in etcd", func() bool {
		return a.Status().Parked == 1 && len(l.queuedKeys(t)) == 1
	})

	etcdProxy.SetMode(faultnet.Cut)
	recProxy.SetMode(faultnet.Cut)
	labtest.WaitFor(t, 15*time.Second, "b to lead after a's crash", func() bool {
		return b.Status().Role == adapter.RoleLeader
	})
	labtest.WaitFor(t, 10*time.Second, "the held stop at the recorder", func() bool { return len(l.applied(seg)) >= 2 })
	if got, want := l.applied(seg), []string{rcapi.ActionStart, rcapi.ActionStop}; !slices.Equal(got, want) {
		t.Fatalf("segment %s: got %v, want %v", seg, got, want)
	}
	labtest.WaitFor(t, 5*time.Second, "the queue to be empty once the stop is logged", func() bool { return len(l.queuedKeys(t)) == 0 })
	if s := b.Status(); s.HandedOff != 0 {
		t.Errorf("b handed off %d events; it received none that a had not", s.HandedOff)
	}
}

// TestStandbyDoesNotHandOffWhatTheLeaderHolds: every event reaches both
// sockets; the leader holds the ends of calls back for grace + 1 s. The
// standby sees them queued in etcd and does not hand them off again.
func TestStandbyDoesNotHandOffWhatTheLeaderHolds(t *testing.T) {
	l := newLab(t)
	l.Tune = func(c *config.Config) { c.Rules.HandoffGrace = time.Second }
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	both := []string{"sub-a", "sub-b"}
	const calls = 5
	for i := range calls {
		eng, user := "eng-held-"+string(rune('a'+i)), "usr-held-"+string(rune('a'+i))
		l.sendEvent("contact_center.engagement_started", eng, "", both, now, nil)
		l.sendEvent("contact_center.engagement_user_answered", eng, user, both, now.Add(time.Second), nil)
		l.sendEvent("contact_center.engagement_user_ended", eng, user, both, now.Add(2*time.Second), nil)
	}
	labtest.WaitFor(t, 15*time.Second, "every call started and stopped", func() bool {
		for i := range calls {
			if len(l.applied("eng-held-"+string(rune('a'+i))+"/usr-held-"+string(rune('a'+i)))) < 2 {
				return false
			}
		}
		return true
	})
	labtest.WaitFor(t, 5*time.Second, "b to see every event logged", func() bool { return b.Status().Pending == 0 })
	if s := b.Status(); s.HandedOff != 0 {
		t.Errorf("b handed off %d events the leader held back; want 0", s.HandedOff)
	}
	if q := l.queuedKeys(t); len(q) != 0 {
		t.Errorf("handoff queue holds %d entries after every event was applied", len(q))
	}
}
