package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/faultnet"
)

// connectVia connects node through a fault proxy of its own to e.
func connectVia(t *testing.T, e *cluster.Embedded, node string, ttl, margin time.Duration) (*cluster.Cluster, *faultnet.Proxy) {
	t.Helper()
	px, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(e.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: []string{"http://" + px.Addr()}, Cluster: "test",
		Node: node, SessionTTL: ttl, FenceMargin: margin}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		px.Close()
		t.Fatal(err)
	}
	// Heal the path first, so the client's last calls end.
	t.Cleanup(func() {
		px.SetBlackhole(faultnet.Upstream, false)
		px.SetLatency(faultnet.Downstream, 0)
		c.Close()
		px.Close()
	})
	return c, px
}

// waitUntil polls cond, an in-memory read, every 10 ms until it holds or
// limit passes.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(limit)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

// TestFinding4_NoOverlapUnderAsymmetricDelay: the leader's replies from
// etcd come late, then its requests stop reaching etcd. Its lease expires
// on the server, etcd elects the standby, and the old term must have ended
// (its deadline passed) strictly before the new term's Campaign returned.
// A deadline counted from the ack's arrival would outlive the lease by the
// return delay less the margin.
func TestFinding4_NoOverlapUnderAsymmetricDelay(t *testing.T) {
	const (
		ttl    = 10 * time.Second
		margin = 500 * time.Millisecond
		// Below the client's gRPC keepalive (2 s ping + 2 s timeout), so
		// the connection survives the delay; above the margin, so an
		// ack-based deadline would overlap the successor's term.
		returnDelay = 1500 * time.Millisecond
	)
	e := startEtcd(t)
	a, pa := connectVia(t, e, "a", ttl, margin)
	b, _ := connectVia(t, e, "b", ttl, margin)

	ta, err := a.Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Second)
		defer cancel()
		ta.Resign(ctx) //nolint:errcheck // a's etcd path is cut; its lease expired anyway
	}()
	// A deadline on the wall clock would move with a clock step.
	if d := ta.Deadline(); d == d.Round(0) {
		t.Errorf("Deadline() %s carries no monotonic reading", d)
	}

	type won struct {
		term *cluster.Term
		err  error
		at   time.Time // when Campaign returned (monotonic)
	}
	rb := make(chan won, 1)
	go func() {
		tb, err := b.Campaign(t.Context(), protocol.Member{})
		rb <- won{tb, err, time.Now()}
	}()
	waitUntil(t, 5*time.Second, "b to register", func() bool {
		ms, err := a.Members(t.Context())
		return err == nil && len(ms) == 2
	})

	// Slow return path: wait for two renewals whose acks came back through
	// it (the first may have been on the wire when the delay began).
	pa.SetLatency(faultnet.Downstream, returnDelay)
	for i := range 2 {
		before := ta.Deadline()
		waitUntil(t, 3*ttl/3+returnDelay+2*time.Second, "a renewal through the slow path", func() bool {
			return ta.Deadline().After(before)
		})
		t.Logf("renewal %d through the slow path: deadline %s ahead", i+1, time.Until(ta.Deadline()).Round(time.Millisecond))
	}
	// Then the request path goes silent: no renewal reaches etcd again.
	pa.SetBlackhole(faultnet.Upstream, true)
	cut := time.Now()

	r := wait(t, rb, 2*ttl, "b to win after a's lease expired")
	if r.err != nil {
		t.Fatalf("b's campaign: %v", r.err)
	}
	defer r.term.Resign(context.WithoutCancel(t.Context())) //nolint:errcheck
	deadline := ta.Deadline()
	t.Logf("request path cut at +0; a's deadline +%s; b's Campaign returned +%s (epoch %d → %d)",
		deadline.Sub(cut).Round(time.Millisecond), r.at.Sub(cut).Round(time.Millisecond), ta.Epoch(), r.term.Epoch())
	if !deadline.Before(r.at) {
		t.Fatalf("a's term was valid until %s after b's term began: two leaders at once", deadline.Sub(r.at))
	}
	if ta.Valid() {
		t.Fatal("a's term is still valid beside b's")
	}
	wait(t, ta.Done(), time.Second, "a's term to end")
	if r.term.Epoch() <= ta.Epoch() {
		t.Fatalf("b's epoch %d is not above a's %d", r.term.Epoch(), ta.Epoch())
	}
}
