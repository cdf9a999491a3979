package adapter_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// TestC11_HeldStopAppliedWhenTheStopCannotQueueIt: the end of a call
// reaches the leader's socket only; the leader holds it back and its etcd
// link goes silent just before it arrives, so the write that would queue it
// in etcd cannot land; then the leader is stopped gracefully (SIGTERM)
// while its term is still valid and the recorder reachable. The event
// exists nowhere else: the stopping leader must apply it itself (within its
// stop budget) rather than leave it to a queue entry that never landed.
func TestC11_HeldStopAppliedWhenTheStopCannotQueueIt(t *testing.T) {
	heldStopAtAFailingStop(t, 0, 0, false)
}

// TestC11_HeldStopAppliedWhenTheLoopWaitsOnAWrite is the same with one more
// event on a's socket after the held end: the loop is then waiting for the
// write in flight (etcd silent) when the stop comes. The stop must not wait
// for that write past its own budget, or the term is fenced first and the
// held end (queued nowhere) is lost; with the default session TTL as with a
// short one.
func TestC11_HeldStopAppliedWhenTheLoopWaitsOnAWrite(t *testing.T) {
	t.Run("ttl=2s", func(t *testing.T) { heldStopAtAFailingStop(t, 0, 0, true) })
	t.Run("ttl=5s", func(t *testing.T) { heldStopAtAFailingStop(t, 5*time.Second, 1500*time.Millisecond, true) })
}

// heldStopAtAFailingStop runs the C-11 held-stop case: session TTL and
// fence margin ttl and margin (0: the lab's), with the loop busy on a write
// when loopBusy.
func heldStopAtAFailingStop(t *testing.T, ttl, margin time.Duration, loopBusy bool) {
	l := newLab(t)
	logs := captureLogs(t, l)
	l.Tune = func(c *config.Config) {
		c.Rules.HandoffGrace = 2 * time.Second // hold-back 3 s
		if ttl != 0 {
			c.Etcd.SessionTTL, c.Etcd.FenceMargin = ttl, margin
		}
	}
	etcdProxy := l.etcdBehindProxy(t, "a")
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	both, onlyA := []string{"sub-a", "sub-b"}, []string{"sub-a"}
	l.sendEvent("contact_center.engagement_started", "eng-c11h", "", both, now, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-c11h", "usr-c11h", both, now.Add(time.Second), nil)
	seg := "eng-c11h/usr-c11h"
	labtest.WaitFor(t, 10*time.Second, "the start at the recorder", func() bool { return len(l.applied(seg)) == 1 })
	labtest.WaitFor(t, 5*time.Second, "b to see the start logged", func() bool { return b.Status().Pending == 0 })

	etcdProxy.SetMode(faultnet.Blackhole)
	l.sendEvent("contact_center.engagement_ended", "eng-c11h", "", onlyA, now.Add(5*time.Second), nil)
	labtest.WaitFor(t, 5*time.Second, "a to hold the end back", func() bool { return a.Status().Parked == 1 })
	if loopBusy {
		// One more event on a's socket: the loop takes it, then waits for
		// the write in flight (blackholed).
		r0 := a.Status().Received
		l.sendEvent("contact_center.engagement_started", "eng-c11h-2", "", onlyA, now.Add(6*time.Second), nil)
		labtest.WaitFor(t, 5*time.Second, "a to take the next event", func() bool { return a.Status().Received > r0 })
	}
	began := time.Now()
	a.Stop() // graceful: the term is still valid, the recorder reachable
	t.Logf("a stopped in %s", time.Since(began).Round(time.Millisecond))
	etcdProxy.SetMode(faultnet.Pass)

	labtest.WaitFor(t, 20*time.Second, "b to lead", func() bool { return b.Status().Role == adapter.RoleLeader })
	labtest.WaitFor(t, 10*time.Second, "the held stop at the recorder", func() bool { return len(l.applied(seg)) >= 2 })
	for _, ln := range logs.lines("log write failed") {
		t.Log("a logged: ", ln)
	}
	if got, want := l.applied(seg), []string{rcapi.ActionStart, rcapi.ActionStop}; !slices.Equal(got, want) {
		t.Fatalf("segment %s: got %v, want %v: the held-back end of the call was lost at the graceful stop (recording left open)", seg, got, want)
	}
}

// TestLargeHeldEventsKeepTheLeader: the leader writes the raw events it
// holds back into its batch txns. A burst of ends of calls whose events are
// large (each well inside the 1 MiB frame limit) must not make a txn beyond
// etcd's request limit (1.5 MiB by default) or the client's (2 MiB): the
// write would fail and a healthy leader would step down for nothing.
func TestLargeHeldEventsKeepTheLeader(t *testing.T) {
	l := newLab(t)
	logs := captureLogs(t, l)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	const calls = 8
	evs := make([]*events.Event, calls)
	for i := range evs {
		evs[i] = parsedEvent(t, "contact_center.engagement_ended", fmt.Sprintf("eng-big-%d", i), "",
			now.Add(time.Duration(i)*time.Millisecond), map[string]any{"notes": strings.Repeat("n", 300<<10)})
	}
	for _, ev := range evs {
		a.Parts.Node.Deliver(ev) // the end of each call, on a's socket
	}
	labtest.WaitFor(t, 20*time.Second, "every end applied and logged", func() bool {
		// The dedup log holds every end (the test sends no other event),
		// and the queue is empty.
		return a.Status().MirrorApplied >= calls && len(l.queuedKeys(t)) == 0
	})
	t.Logf("a: %+v", a.Status())
	t.Logf("b: %+v", b.Status())
	for _, ln := range logs.lines("leader stops") {
		t.Log("logged: ", ln)
	}
	if s := a.Status(); s.Role != adapter.RoleLeader || s.Epoch != sa.Epoch || b.Status().Terms != 0 {
		t.Fatalf("a healthy leader lost its term over held events: a is %s at epoch %d (was %d), b won %d terms",
			s.Role, s.Epoch, sa.Epoch, b.Status().Terms)
	}
}

// TestParkedGaugeClearedWhenTheTermEnds: a leader that holds an event back
// when its term ends (here: etcd silent past the fencing deadline) must not
// go on reporting it as parked (events_parked) as a standby.
func TestParkedGaugeClearedWhenTheTermEnds(t *testing.T) {
	l := newLab(t)
	etcdProxy := l.etcdBehindProxy(t, "a")
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)
	now := time.Now().UTC()
	l.sendEvent("contact_center.engagement_ended", "eng-att4", "", []string{"sub-a", "sub-b"}, now, nil)
	labtest.WaitFor(t, 5*time.Second, "a to hold the end back", func() bool { return a.Status().Parked == 1 })
	etcdProxy.SetMode(faultnet.Blackhole)
	labtest.WaitFor(t, 15*time.Second, "b to lead", func() bool { return b.Status().Role == adapter.RoleLeader })
	etcdProxy.SetMode(faultnet.Pass)
	labtest.WaitFor(t, 15*time.Second, "a back as a standby with nothing pending", func() bool {
		s := a.Status()
		return s.Role == adapter.RoleStandby && s.EtcdOK && s.Pending == 0
	})
	if s := a.Status(); s.Parked != 0 {
		t.Fatalf("standby a reports %d parked events; it holds none", s.Parked)
	}
}
