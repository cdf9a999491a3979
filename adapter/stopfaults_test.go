package adapter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// logTap keeps every log line of the nodes (as well as writing them to the
// test) so a test can show what a node logged.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logTap) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *logTap) lines(substr string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(w.buf.String(), "\n") {
		if strings.Contains(ln, substr) {
			out = append(out, ln)
		}
	}
	return out
}

func tapLog(l *lab, t *testing.T) *logTap {
	tap := &logTap{}
	l.Log = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), tap)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	return tap
}

// TestC11_HeldStopAppliedWhenTheStopCannotQueueIt: the end of a call
// reaches the leader's socket only; the leader holds it back and its etcd
// link goes silent just before it arrives, so the write that would queue it
// in etcd cannot land; then the leader is stopped gracefully (SIGTERM)
// while its term is still valid and the recorder reachable. The event
// exists nowhere else: the stopping leader must apply it itself (within its
// stop budget) rather than leave it to a queue entry that never landed.
func TestC11_HeldStopAppliedWhenTheStopCannotQueueIt(t *testing.T) {
	l := newLab(t)
	tap := tapLog(l, t)
	etcdProxy, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(l.Etcd.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	l.OnClose(func() { etcdProxy.SetMode(faultnet.Pass); etcdProxy.Close() }) // after the nodes stop
	l.Tune = func(c *config.Config) {
		c.Rules.HandoffGrace = 2 * time.Second // hold-back 3 s
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
	l.sendEvent("contact_center.engagement_started", "eng-att1", "", both, now, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-att1", "usr-att1", both, now.Add(time.Second), nil)
	seg := "eng-att1/usr-att1"
	labtest.WaitFor(t, 10*time.Second, "the start at the recorder", func() bool { return len(l.applied(seg)) == 1 })
	labtest.WaitFor(t, 5*time.Second, "b to see the start logged", func() bool { return b.Status().Pending == 0 })

	etcdProxy.SetMode(faultnet.Blackhole)
	l.sendEvent("contact_center.engagement_ended", "eng-att1", "", onlyA, now.Add(5*time.Second), nil)
	labtest.WaitFor(t, 5*time.Second, "a to hold the end back", func() bool { return a.Status().Parked == 1 })
	began := time.Now()
	a.Stop() // graceful: the term is still valid, the recorder reachable
	t.Logf("a stopped in %s", time.Since(began).Round(time.Millisecond))
	etcdProxy.SetMode(faultnet.Pass)

	labtest.WaitFor(t, 15*time.Second, "b to lead", func() bool { return b.Status().Role == adapter.RoleLeader })
	labtest.WaitFor(t, 10*time.Second, "the held stop at the recorder", func() bool { return len(l.applied(seg)) >= 2 })
	got := l.applied(seg)
	for _, ln := range tap.lines("log write failed") {
		t.Log("a logged: ", ln)
	}
	if want := []string{rcapi.ActionStart, rcapi.ActionStop}; !slices.Equal(got, want) {
		t.Fatalf("segment %s: got %v, want %v: the held-back end of the call was lost at the graceful stop (recording left open)", seg, got, want)
	}
}

// bigEnd returns an engagement_ended event with a pad field of size bytes.
func bigEnd(t *testing.T, eng string, at time.Time, size int) *events.Event {
	t.Helper()
	obj := map[string]any{"engagement_id": eng, "engagement_direction": "inbound", "channel": "voice",
		"date_time_ms": at.Format("2006-01-02T15:04:05.000Z"), "notes": strings.Repeat("n", size)}
	raw, _ := json.Marshal(map[string]any{"event": "contact_center.engagement_ended", "event_ts": at.UnixMilli(),
		"payload": map[string]any{"account_id": labtest.AccountID, "object": obj}})
	ev, err := events.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestLargeHeldEventsKeepTheLeader: the leader writes the raw events it
// holds back into its batch txns. A burst of ends of calls whose events are
// large (each well inside the 1 MiB frame limit) must not make a txn beyond
// etcd's request limit (1.5 MiB by default) or the client's (2 MiB): the
// write would fail and a healthy leader would step down for nothing.
func TestLargeHeldEventsKeepTheLeader(t *testing.T) {
	l := newLab(t)
	tap := tapLog(l, t)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	const calls = 8
	evs := make([]*events.Event, calls)
	for i := range evs {
		evs[i] = bigEnd(t, fmt.Sprintf("eng-big-%d", i), now.Add(time.Duration(i)*time.Millisecond), 300<<10)
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
	for _, ln := range tap.lines("leader stops") {
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
	etcdProxy, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(l.Etcd.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	l.OnClose(func() { etcdProxy.SetMode(faultnet.Pass); etcdProxy.Close() }) // after the nodes stop
	l.Tune = func(c *config.Config) {
		if c.Node == "a" {
			c.Etcd.Endpoints = []string{"http://" + etcdProxy.Addr()}
		}
	}
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
