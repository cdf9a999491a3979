package adapter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// memSink is a recorder in memory that absorbs a repeated command id as a
// duplicate, as the recorder does.
type memSink struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *memSink) Send(_ context.Context, c rcapi.Command) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[c.ID] {
		return rcapi.ResultDuplicate, nil
	}
	s.ids[c.ID] = true
	return rcapi.ResultApplied, nil
}
func (s *memSink) SendAgent(context.Context, rcapi.AgentUpdate) (string, error) {
	return rcapi.ResultApplied, nil
}
func (s *memSink) ClaimEpoch(context.Context, rcapi.EpochClaim) error { return nil }
func (s *memSink) OpenRecordings(context.Context) ([]rcapi.OpenRecording, error) {
	return nil, nil
}

// TestFinding7_ThirtyDaySoakStaysBounded drives the leader through 30
// simulated days of steady traffic — 48 calls a day that start and end, of
// which 3 a day lose their end, 4 reach the leader as handoffs written to
// etcd by the other node, and 5 deliver their agent's end before the answer
// (parked as Early) — and samples, at each simulated midnight, every etcd
// prefix the leader writes (state/, dedup/, handoff/; there is no
// quarantine/ prefix) and its maps (engagements, applied keys, parked
// events, pending). The last week's maximum of each must stay within 1.2×
// the first week's: size, not time, is asserted.
//
// What is compressed, and how: the node's clock (NodeConfig.Now and the
// rules' clock) is simulated and jumps from event to event, so the idle
// timeout (12h), the leader's own dedup window (Settings().DedupWindow,
// 1m, measured on that clock) and the prune run on simulated time; the
// leader's housekeeping, which runs every 30s of wall time in the live
// loop, runs here before every call. etcd's leases run on wall time and
// the cluster's dedup window cannot be shorter than 1m, longer than this
// test: so at each simulated midnight the test revokes the dedup leases
// (every lease granted with the dedup window's TTL), which is what etcd
// does when they run out — the dedup keys and closed state records of the
// day vanish; open records, which have no lease, stay. The etcd dedup
// window is thus one simulated day; the leader's next write takes a new
// lease (CommitBatch's lease-not-found path).
func TestFinding7_ThirtyDaySoakStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: 30 simulated days")
	}
	e := startEtcd(t)
	cla, clb := connectNode(t, e, "a"), connectNode(t, e, "b")
	// The 30 days end half a day after now: a handoff is parsed on the wall
	// clock (events.Parse), which takes event times from 30 days back to
	// one day ahead.
	day0 := time.Now().UTC().Truncate(time.Hour).Add(-29*24*time.Hour - 12*time.Hour)
	clock := &fakeClock{t: day0}
	n := newClockedNode(t, cla, &memSink{ids: map[string]bool{}}, clock)
	L, _, stop := takeLead(t, n)
	defer stop()
	ctx := context.Background()
	cli, keys := cla.Client(), cla.Keys()
	dedupTTL := int64(cla.Config().DedupWindow / time.Second)

	const (
		days        = 30
		callsPerDay = 48
		callEvery   = 24 * time.Hour / callsPerDay
	)
	type sample struct{ state, dedup, handoff, engs, applied, parked, pending int64 }
	var samples []sample
	count := func(prefix string) int64 {
		r, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return r.Count
	}
	flushIfFull := func(force bool) {
		if force || L.batch.size() >= n.cfg.BatchSize {
			if err := L.flush(L.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// deliver hands one event to the leader at its time, from its own
	// socket or as a handoff the other node wrote to etcd.
	deliver := func(ev *events.Event, handoff bool) {
		clock.Set(ev.Time)
		var err error
		if handoff {
			if _, err := clb.Protocol().HandOff(ctx, ev.Key, ev.Raw); err != nil {
				t.Fatal(err)
			}
			err = L.handoff(protocol.Handoff{Key: ev.Key, Raw: ev.Raw})
		} else {
			err = L.own(ev)
		}
		if err != nil {
			t.Fatal(err)
		}
		flushIfFull(false)
	}
	const (
		started, answered = "contact_center.engagement_started", "contact_center.engagement_user_answered"
		userEnded, ended  = "contact_center.engagement_user_ended", "contact_center.engagement_ended"
		hold, unhold      = "contact_center.engagement_user_hold", "contact_center.engagement_user_unhold"
	)
	lost := 0
	for d := 0; d < days; d++ {
		for i := 0; i < callsPerDay; i++ {
			at := day0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*callEvery)
			clock.Set(at)
			if err := L.housekeep(); err != nil {
				t.Fatal(err)
			}
			eng, user := fmt.Sprintf("eng-%d-%d", d, i), fmt.Sprintf("agent-%d", i%20)
			ev := func(name string, after time.Duration) *events.Event { return event(t, name, at.Add(after), eng, user) }
			loseEnd := i%16 == 7 // 3 a day
			handoff := i%12 == 3 // 4 a day
			early := i%10 == 1   // 5 a day
			deliver(ev(started, 0), false)
			if early {
				deliver(ev(userEnded, 5*time.Minute), false)
			}
			deliver(ev(answered, 10*time.Second), handoff)
			if i%10 == 5 {
				deliver(ev(hold, time.Minute), false)
				deliver(ev(unhold, 2*time.Minute), false)
			}
			if loseEnd {
				lost++
				continue
			}
			if !early {
				deliver(ev(userEnded, 5*time.Minute), false)
			}
			deliver(ev(ended, 5*time.Minute+time.Second), false)
		}
		// Simulated midnight: write, sample, then let etcd's dedup window
		// pass (revoke the dedup leases).
		clock.Set(day0.Add(time.Duration(d+1) * 24 * time.Hour))
		if err := L.housekeep(); err != nil {
			t.Fatal(err)
		}
		flushIfFull(true)
		s := sample{state: count(keys.State("")), dedup: count(keys.DedupPrefix()), handoff: count(keys.Handoff("")),
			engs: int64(len(L.engs)), applied: int64(len(L.applied)), parked: int64(len(L.parkedAt)), pending: int64(len(n.pending))}
		samples = append(samples, s)
		t.Logf("day %2d: state/ %d, dedup/ %d, handoff/ %d; engagements %d, applied keys %d, parked %d, pending %d",
			d+1, s.state, s.dedup, s.handoff, s.engs, s.applied, s.parked, s.pending)
		revokeDedupLeases(t, cli, dedupTTL)
	}
	weekMax := func(from, to int, f func(sample) int64) int64 {
		m := int64(0)
		for _, s := range samples[from:to] {
			m = max(m, f(s))
		}
		return m
	}
	for _, m := range []struct {
		name string
		f    func(sample) int64
		some bool // must be non-zero in the first week, or the test proves nothing
	}{
		{"etcd state/", func(s sample) int64 { return s.state }, true},
		{"etcd dedup/", func(s sample) int64 { return s.dedup }, true},
		{"etcd handoff/", func(s sample) int64 { return s.handoff }, false},
		{"engagements", func(s sample) int64 { return s.engs }, true},
		{"applied keys", func(s sample) int64 { return s.applied }, false},
		{"parked", func(s sample) int64 { return s.parked }, false},
		{"pending", func(s sample) int64 { return s.pending }, false},
	} {
		first, last := weekMax(0, 7, m.f), weekMax(days-7, days, m.f)
		if m.some && first == 0 {
			t.Errorf("%s: first week's max is 0; the soak exercises nothing there", m.name)
		}
		if last*10 > first*12 {
			t.Errorf("%s: last week's max %d > 1.2 × first week's max %d: it grows with time", m.name, last, first)
		}
	}
	if got, min := n.Status().Expired, int64(lost-3); got < min {
		t.Errorf("engagements expired = %d, want ≥ %d (calls whose end was lost, less the last day's)", got, min)
	}
	if got := n.Status().Commands; got == 0 {
		t.Error("no command sent")
	}
}

// revokeDedupLeases revokes every lease granted with the dedup window's TTL
// (the leader's dedup leases; sessions and health records have the session
// TTL).
func revokeDedupLeases(t testing.TB, cli *clientv3.Client, ttl int64) {
	t.Helper()
	ctx := context.Background()
	ls, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls.Leases {
		r, err := cli.TimeToLive(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.GrantedTTL == ttl {
			if _, err := cli.Revoke(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}
