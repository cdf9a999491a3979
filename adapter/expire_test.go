package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/recorder"
)

// These tests drive the leader type directly (promote, process, housekeep,
// flush from the test goroutine), on a real cluster over embedded etcd, so
// that the clock can be advanced without sleeping and the leader's maps can
// be read between steps.

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startEtcd starts an embedded etcd member for the test.
func startEtcd(t testing.TB) *cluster.Embedded {
	t.Helper()
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// connectNode connects node to e with a dedup window of one minute (the
// cluster's minimum).
func connectNode(t testing.TB, e *cluster.Embedded, node string) *cluster.Cluster {
	t.Helper()
	cl, err := cluster.Connect(context.Background(), cluster.Config{Endpoints: e.Endpoints(), Node: node,
		SessionTTL: 2 * time.Second, DedupWindow: time.Minute}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// newClockedNode returns a node on cl whose housekeeping and rules read
// clock, with hold-back off (its timer runs on the wall clock).
func newClockedNode(t testing.TB, cl *cluster.Cluster, sink Sink, clock *fakeClock) *Node {
	t.Helper()
	n, err := NewNode(NodeConfig{Name: cl.Config().Node, HoldBack: -1,
		Rules:  Rules{MaxEventAge: 10 * time.Minute, Now: clock.Now},
		Now:    clock.Now,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("node", cl.Config().Node).Logger(),
	}, cl.Protocol(), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// takeLead campaigns, builds the term's leader as Node.lead does and
// promotes it. The returned crash ends the term without writing anything
// more (a leader killed after its last send); stop ends it with the stop
// protocol. Call exactly one of them.
func takeLead(t testing.TB, n *Node) (L *leader, crash, stop func()) {
	t.Helper()
	ctx, cancelCampaign := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelCampaign()
	term, err := n.cl.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(term.Context())
	L = &leader{n: n, term: term, ctx: lctx, log: n.log}
	if _, ok := L.promote(); !ok {
		cancel()
		t.Fatal("promotion failed")
	}
	crash = func() {
		cancel()
		rctx, rc := context.WithTimeout(context.Background(), 2*time.Second)
		defer rc()
		if err := term.Resign(rctx); err != nil {
			t.Log(err)
		}
	}
	stop = func() { L.stopTerm(context.Background(), cancel) }
	return L, crash, stop
}

// samples caches the sample events by name.
var samples sync.Map

// event builds the sample event name at when, of engagement eng and agent
// user, parsed with a clock at when.
func event(t testing.TB, name string, when time.Time, eng, user string) *events.Event {
	t.Helper()
	b, ok := samples.Load(name)
	if !ok {
		raw, err := os.ReadFile(filepath.Join("..", "events", "testdata", "samples", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		samples.Store(name, raw)
		b = raw
	}
	var env map[string]any
	if err := json.Unmarshal(b.([]byte), &env); err != nil {
		t.Fatal(err)
	}
	obj := env["payload"].(map[string]any)["object"].(map[string]any)
	env["event_ts"] = when.UnixMilli()
	obj["date_time_ms"] = when.UTC().Format("2006-01-02T15:04:05.000Z")
	obj["engagement_id"] = eng
	if user != "" {
		obj["user_id"] = user
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.ParseWith(raw, events.Limits{Now: func() time.Time { return when }})
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return ev
}

// noReconcile is a sink whose recorder cannot list its open recordings: a
// leader promoted on it continues from the log alone.
type noReconcile struct{ Sink }

func (noReconcile) OpenRecordings(context.Context) ([]rcapi.OpenRecording, error) {
	return nil, errors.New("open recordings unavailable")
}

// stopsOf returns the ledger's stop commands of a segment, in order.
func stopsOf(l rcapi.Ledger, segID string) []rcapi.LedgerEntry {
	var out []rcapi.LedgerEntry
	for _, e := range l.Entries {
		if e.Command != nil && e.Command.SegmentID == segID && e.Command.Action == rcapi.ActionStop {
			out = append(out, e)
		}
	}
	return out
}

// TestFinding7_IdleEngagementIsClosed: an engagement whose end never comes
// gets, once the idle timeout has passed on the node's clock (advanced, no
// sleep), a stop with reason expired, and its state record is closed. The
// leader dies right after that stop, before writing; its successor, whose
// recorder cannot tell it what is open, expires the engagement again from
// the log: its stop has the same command id, so the recorder answers
// duplicate and the recording has exactly one stop.
func TestFinding7_IdleEngagementIsClosed(t *testing.T) {
	e := startEtcd(t)
	rec := recorder.New(zerolog.Nop())
	ts := httptest.NewServer(rec.Handler())
	defer ts.Close()
	sinkFor := func() Sink {
		s, err := NewHTTPSink(HTTPSinkConfig{URL: ts.URL, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	na := newClockedNode(t, connectNode(t, e, "a"), sinkFor(), clock)
	nb := newClockedNode(t, connectNode(t, e, "b"), noReconcile{sinkFor()}, clock)

	a, crashA, _ := takeLead(t, na)
	start := clock.Now()
	for _, ev := range []*events.Event{
		event(t, "contact_center.engagement_started", start, "eng-lost", "u1"),
		event(t, "contact_center.engagement_user_answered", start.Add(time.Second), "eng-lost", "u1"),
	} {
		if err := a.process(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.flush(a.ctx); err != nil {
		t.Fatal(err)
	}
	const seg = "eng-lost/u1"

	// Just before the timeout: nothing happens.
	clock.Advance(12*time.Hour - time.Minute)
	if err := a.housekeep(); err != nil {
		t.Fatal(err)
	}
	if got := stopsOf(rec.Ledger(), seg); len(got) != 0 {
		t.Fatalf("stopped before the idle timeout: %+v", got)
	}

	// Past it: one stop, reason expired; the engagement is closed.
	clock.Advance(2 * time.Minute)
	if err := a.housekeep(); err != nil {
		t.Fatal(err)
	}
	stops := stopsOf(rec.Ledger(), seg)
	if len(stops) != 1 || stops[0].Result != rcapi.ResultApplied || stops[0].Command.Metadata["reason"] != ReasonExpired {
		t.Fatalf("after the idle timeout: stops %+v, want one applied stop with reason %q", stops, ReasonExpired)
	}
	if eng := a.engs["eng-lost"]; eng == nil || !eng.Closed || eng.Open() {
		t.Fatalf("engagement after expiry: %+v, want closed with no open segment", eng)
	}
	if got := na.Status().Expired; got != 1 {
		t.Errorf("status engagements_expired = %d, want 1", got)
	}
	id := stops[0].Command.ID
	crashA() // before the closed record was written

	b, _, stopB := takeLead(t, nb)
	defer stopB()
	if eng := b.engs["eng-lost"]; eng == nil || !eng.Open() {
		t.Fatalf("successor's state: %+v, want the engagement open (the closed record was never written)", eng)
	}
	clock.Advance(time.Minute)
	if err := b.housekeep(); err != nil {
		t.Fatal(err)
	}
	if err := b.flush(b.ctx); err != nil {
		t.Fatal(err)
	}
	stops = stopsOf(rec.Ledger(), seg)
	applied := 0
	for _, s := range stops {
		if s.Command.ID != id {
			t.Errorf("successor's stop id %s, want %s (the same recording fact)", s.Command.ID, id)
		}
		if s.Result == rcapi.ResultApplied {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("stops applied at the recorder: %d of %+v, want exactly 1", applied, stops)
	}
	if got := nb.Status().Duplicates; got != 1 {
		t.Errorf("successor's duplicates = %d, want 1 (its stop absorbed by id)", got)
	}
	snap, err := nb.cl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored Engagement
	if err := json.Unmarshal(snap.States["eng-lost"], &stored); err != nil {
		t.Fatal(err)
	}
	if !stored.Closed || stored.Open() {
		t.Errorf("stored state after the successor's write: %+v, want closed", stored)
	}
}

// TestExpireStopsCarryTheEndsID: the stop Expire gives a segment has the
// id the segment's own end would have given it, and the same on every call.
func TestExpireStopsCarryTheEndsID(t *testing.T) {
	r := Rules{}
	eng, _, _ := r.Apply(nil, sample(t, answered, 0, nil))
	ended := eng.Clone()
	_, endCmds, _ := r.Apply(ended, sample(t, engEnded, time.Minute, nil))
	at := t0.Add(13 * time.Hour)
	first := r.Expire(eng.Clone(), at)
	second := r.Expire(eng.Clone(), at.Add(time.Hour))
	if len(first) != 1 || len(endCmds) != 1 {
		t.Fatalf("expire gave %d stops, the end %d; want 1 each", len(first), len(endCmds))
	}
	if first[0].ID != endCmds[0].ID || second[0].ID != first[0].ID {
		t.Errorf("ids: expire %s, again %s, end %s; want all equal", first[0].ID, second[0].ID, endCmds[0].ID)
	}
	if first[0].Metadata["reason"] != ReasonExpired || first[0].Action != rcapi.ActionStop {
		t.Errorf("expire command %+v, want a stop with reason expired", first[0])
	}
	closed := eng.Clone()
	if cmds := r.Expire(closed, at); len(cmds) != 1 || !closed.Closed || !closed.ClosedAt.Equal(at) || closed.Open() {
		t.Errorf("expired engagement %+v, want closed at %s with no open segment", closed, at)
	}
}
