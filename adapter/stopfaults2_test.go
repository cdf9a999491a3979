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

// TestC11_HeldStopAppliedWhenTheLoopWaitsOnAWrite is
// TestC11_HeldStopAppliedWhenTheStopCannotQueueIt with one more event on
// a's socket after the held end: the loop is then waiting for the write in
// flight (etcd silent) when the stop comes. The stop must not wait for that
// write past its own budget, or the term is fenced first and the held end
// (queued nowhere) is lost; with the default session TTL as with a short
// one.
func TestC11_HeldStopAppliedWhenTheLoopWaitsOnAWrite(t *testing.T) {
	t.Run("ttl=2s", func(t *testing.T) { heldStopLoopWaitsOnWrite(t, 0, 0) })
	t.Run("ttl=5s", func(t *testing.T) { heldStopLoopWaitsOnWrite(t, 5*time.Second, 1500*time.Millisecond) })
}

func heldStopLoopWaitsOnWrite(t *testing.T, ttl, margin time.Duration) {
	l := newLab(t)
	tap := tapLog(l, t)
	etcdProxy, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(l.Etcd.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	l.OnClose(func() { etcdProxy.SetMode(faultnet.Pass); etcdProxy.Close() })
	l.Tune = func(c *config.Config) {
		c.Rules.HandoffGrace = 2 * time.Second // hold-back 3 s
		if ttl != 0 {
			c.Etcd.SessionTTL, c.Etcd.FenceMargin = ttl, margin
		}
		if c.Node == "a" {
			c.Etcd.Endpoints = []string{"http://" + etcdProxy.Addr()}
		}
	}
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	both, onlyA := []string{"sub-a", "sub-b"}, []string{"sub-a"}
	l.sendEvent("contact_center.engagement_started", "eng-rv1", "", both, now, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-rv1", "usr-rv1", both, now.Add(time.Second), nil)
	seg := "eng-rv1/usr-rv1"
	labtest.WaitFor(t, 10*time.Second, "the start at the recorder", func() bool { return len(l.applied(seg)) == 1 })
	labtest.WaitFor(t, 5*time.Second, "b to see the start logged", func() bool { return b.Status().Pending == 0 })

	etcdProxy.SetMode(faultnet.Blackhole)
	l.sendEvent("contact_center.engagement_ended", "eng-rv1", "", onlyA, now.Add(5*time.Second), nil)
	labtest.WaitFor(t, 5*time.Second, "a to hold the end back", func() bool { return a.Status().Parked == 1 })
	// One more event on a's socket: the loop takes it, then waits in
	// flushAsync for the write in flight (blackholed).
	r0 := a.Status().Received
	l.sendEvent("contact_center.engagement_started", "eng-rv2", "", onlyA, now.Add(6*time.Second), nil)
	labtest.WaitFor(t, 5*time.Second, "a to take the next event", func() bool { return a.Status().Received > r0 })
	began := time.Now()
	a.Stop()
	took := time.Since(began)
	t.Logf("a stopped in %s", took.Round(time.Millisecond))
	etcdProxy.SetMode(faultnet.Pass)

	labtest.WaitFor(t, 20*time.Second, "b to lead", func() bool { return b.Status().Role == adapter.RoleLeader })
	// b applies what it can (its own backlog and the queue) before it is live.
	labtest.WaitFor(t, 10*time.Second, "b live with nothing pending", func() bool {
		s := b.Status()
		return s.Role == adapter.RoleLeader && s.Pending == 0
	})
	for _, ln := range tap.lines("\"node\":\"a\"") {
		if strings.Contains(ln, "warn") || strings.Contains(ln, "stop") {
			t.Log("a logged: ", ln)
		}
	}
	got := l.applied(seg)
	if want := []string{rcapi.ActionStart, rcapi.ActionStop}; !slices.Equal(got, want) {
		t.Errorf("segment %s: got %v, want %v: held end lost at a graceful stop (a stopped in %s)", seg, got, want, took.Round(time.Millisecond))
	}
}
