package adapter_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// waitStarts waits (up to limit) until the recorder applied exactly one
// start to each segment eng-<prefix>-NN/usr-<prefix> for NN < n, and fails
// the test naming the segments without.
func (l *lab) waitStarts(t *testing.T, prefix string, n int, limit time.Duration) {
	t.Helper()
	missing := func() []string {
		var out []string
		for i := range n {
			seg := fmt.Sprintf("eng-%s-%02d/usr-%s", prefix, i, prefix)
			if got := l.applied(seg); len(got) != 1 || got[0] != rcapi.ActionStart {
				out = append(out, seg)
			}
		}
		return out
	}
	deadline := time.Now().Add(limit)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling interval, not a correctness wait
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d starts the stopped node had received never reached the recorder exactly once: %v", len(m), n, m)
	}
}

// sendAnswers publishes n answers (eng-<prefix>-NN, agent usr-<prefix>)
// to subscription sub only.
func (l *lab) sendAnswers(prefix string, n int, sub string) {
	l.T.Helper()
	now := time.Now().UTC()
	for i := range n {
		l.sendEvent("contact_center.engagement_user_answered", fmt.Sprintf("eng-%s-%02d", prefix, i), "usr-"+prefix,
			[]string{sub}, now.Add(time.Duration(i)*time.Millisecond), nil)
	}
}

// TestStopKeepsEventsTheLeaderReceivedButHadNotApplied: the leader's loop
// is busy (a recorder command hangs) while more events arrive on its
// socket only (the standby's socket missed them, as a node just restarted
// misses what came before it connected). The leader is stopped gracefully
// with those events still in its inbox, and the one whose send the stop cut
// short only pending: they must outlive it (queued for the successor), not
// vanish with the process. G1.
func TestStopKeepsEventsTheLeaderReceivedButHadNotApplied(t *testing.T) {
	l := newLab(t)
	// The recorder's command endpoint blocks while gated.
	var gated atomic.Bool
	var blocked atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	inner := l.Rec.Handler()
	l.RecTS = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/commands" && gated.Load() {
			blocked.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	l.OnClose(func() { once.Do(func() { close(release) }); l.RecTS.Close() })

	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	gated.Store(true)
	const n = 20
	l.sendAnswers("inbox", n, "sub-a")
	// a's socket handed all n to the node; its loop hangs on the first start.
	labtest.WaitFor(t, 10*time.Second, "a's socket to deliver the events", func() bool {
		return a.Parts.Client.Status().Events >= n
	})
	labtest.WaitFor(t, 10*time.Second, "a's first start to hang at the recorder", func() bool { return blocked.Load() >= 1 })

	a.Stop() // graceful: SIGTERM
	if s := a.Status(); s.Dropped != 0 {
		t.Errorf("the stopped leader counts %d events dropped; want 0 (all queued for the successor)", s.Dropped)
	}
	gated.Store(false)
	once.Do(func() { close(release) })
	b.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	l.waitStarts(t, "inbox", n, 10*time.Second)
}

// TestStopKeepsEventsOnlyTheStandbyReceived: a standby's socket alone
// received some events (the leader's missed them) and the standby is
// stopped gracefully before its handoff grace has passed: it must hand them
// to the leader on its way out, not take them with it. G1.
func TestStopKeepsEventsOnlyTheStandbyReceived(t *testing.T) {
	l := newLab(t)
	// b's grace outlasts the test: only the stop hands its events off.
	l.Tune = func(c *config.Config) {
		if c.Node == "b" {
			c.Rules.HandoffGrace = 10 * time.Minute
			c.Etcd.DedupWindow = time.Hour // the grace must stay below half the window (config)
		}
	}
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	const n = 12
	l.sendAnswers("standby", n, "sub-b")
	labtest.WaitFor(t, 10*time.Second, "b to hold the events", func() bool {
		return b.Status().Received >= n
	})
	b.Stop() // graceful: SIGTERM
	if s := b.Status(); s.Dropped != 0 || s.HandedOff != n {
		t.Errorf("the stopped standby counts %d events dropped and %d handed off; want 0 and %d", s.Dropped, s.HandedOff, n)
	}
	l.waitStarts(t, "standby", n, 10*time.Second)
	if s := a.Status(); s.Role != adapter.RoleLeader {
		t.Errorf("a is %s; want leader", s.Role)
	}
}
