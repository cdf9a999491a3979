package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.etcd.io/etcd/pkg/v3/schedule.(*fifo).run"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

func startEtcd(t *testing.T) *cluster.Embedded {
	t.Helper()
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func connect(t *testing.T, e *cluster.Embedded, node string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: e.Endpoints(), Cluster: "test", Node: node,
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond},
		zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type result struct {
	term *cluster.Term
	err  error
}

func campaignAsync(ctx context.Context, c *cluster.Cluster) <-chan result {
	ch := make(chan result, 1)
	go func() {
		t, err := c.Campaign(ctx, protocol.Member{Subscription: "sub-" + c.Config().Node})
		ch <- result{t, err}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T, limit time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
	panic("unreachable")
}

func TestEpochIsTheCreateRevisionAndGuardsWrites(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e, "a"), connect(t, e, "b")
	ctx := t.Context()
	ta, err := a.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Client().Get(ctx, ta.LeaderKey())
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != ta.Epoch() {
		t.Fatalf("epoch %d is not the create revision of %s: %v %v", ta.Epoch(), ta.LeaderKey(), resp, err)
	}
	if _, err := ta.CommitOps(ctx, clientv3.OpPut(a.Keys().Root()+"x", "1")); err != nil {
		t.Fatalf("leader commit: %v", err)
	}
	if node, epoch, _ := b.Leader(ctx); node != "a" || epoch != ta.Epoch() {
		t.Fatalf("Leader() = %s/%d, want a/%d", node, epoch, ta.Epoch())
	}

	rb := campaignAsync(ctx, b)
	// Someone deletes a's key behind its back: its next write must fail.
	if _, err := a.Client().Delete(ctx, ta.LeaderKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.CommitOps(ctx, clientv3.OpPut(a.Keys().Root()+"x", "2")); !errors.Is(err, protocol.ErrNotLeader) {
		t.Fatalf("commit after losing the key: %v, want ErrNotLeader", err)
	}
	wait(t, ta.Done(), time.Second, "a's term to end")
	r := wait(t, rb, 5*time.Second, "b to win")
	if r.err != nil || r.term.Epoch() <= ta.Epoch() {
		t.Fatalf("b: %v, epoch %v; want an epoch above %d", r.err, r.term, ta.Epoch())
	}
	ta.Resign(ctx)
	r.term.Resign(ctx)
}

// TestC08_StandbyWhoseSessionExpiredIsNotLeader: the standby waits in
// Campaign, its lease expires, then the leader goes away. The standby must
// not believe it leads on the strength of its old campaign; it campaigns
// again with a new session and only then leads, never beside another leader.
func TestC08_StandbyWhoseSessionExpiredIsNotLeader(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e, "a"), connect(t, e, "b")
	ctx := t.Context()
	ta, err := a.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	rb := campaignAsync(ctx, b)
	// Wait for b's membership (its session) and revoke that lease, as an
	// expiry during an etcd outage would.
	var lease clientv3.LeaseID
	deadline := time.Now().Add(5 * time.Second)
	for lease == 0 && time.Now().Before(deadline) {
		resp, err := a.Client().Get(ctx, b.Keys().Member("b"))
		if err == nil && len(resp.Kvs) == 1 {
			lease = clientv3.LeaseID(resp.Kvs[0].Lease)
		}
	}
	if lease == 0 {
		t.Fatal("b never registered")
	}
	if _, err := a.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	r := wait(t, rb, 5*time.Second, "b's campaign to notice its lost session")
	if r.err == nil {
		t.Fatalf("b won a campaign whose session had expired (epoch %d) while a leads (%d)", r.term.Epoch(), ta.Epoch())
	}
	if !errors.Is(r.err, protocol.ErrSessionLost) && !errors.Is(r.err, protocol.ErrPhantomLeader) {
		t.Logf("b's campaign ended with %v", r.err)
	}
	if !ta.Valid() {
		t.Fatal("a lost its term")
	}
	// A new campaign, with a new session, wins once a resigns.
	rb = campaignAsync(ctx, b)
	if err := ta.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	r = wait(t, rb, 5*time.Second, "b to win after a resigned")
	if r.err != nil || !r.term.Valid() {
		t.Fatalf("b: %v", r.err)
	}
	r.term.Resign(ctx)
}

// TestC09_LeaderFencesItselfWhenEtcdStops: with etcd gone, the leader ends
// its term at last ack + TTL − margin, before etcd could have let the lease
// expire and elected anyone else.
func TestC09_LeaderFencesItselfWhenEtcdStops(t *testing.T) {
	e := startEtcd(t)
	a := connect(t, e, "a")
	ta, err := a.Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// etcd is gone: Resign must give up within its context.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		ta.Resign(ctx) //nolint:errcheck // expected to fail
	}()
	// The instant the term ends, taken as it ends: embedded etcd's Close
	// drains client streams for up to 7 s, and the term may end meanwhile.
	ended := make(chan time.Time, 1)
	go func() { <-ta.Done(); ended <- time.Now() }()
	stoppedAt := time.Now()
	e.Close()
	doneAt := wait(t, ended, 5*time.Second, "the leader to fence itself")
	if !errors.Is(ta.Err(), protocol.ErrFenced) && !errors.Is(ta.Err(), protocol.ErrSessionLost) {
		t.Fatalf("term ended with %v, want ErrFenced", ta.Err())
	}
	// The lease can expire on the server no earlier than deadline + margin.
	if serverExpiry := ta.Deadline().Add(500 * time.Millisecond); !doneAt.Before(serverExpiry) {
		t.Fatalf("fenced at %s, not before the earliest server expiry %s", doneAt, serverExpiry)
	}
	if ta.Valid() {
		t.Fatal("a fenced term still reports Valid")
	}
	if _, err := ta.CommitOps(t.Context()); !errors.Is(err, protocol.ErrFenced) {
		t.Fatalf("commit after fencing: %v, want ErrFenced", err)
	}
	t.Logf("fenced %s after etcd stopped", doneAt.Sub(stoppedAt))
}

type countingFetcher struct {
	n    atomic.Int64
	max  int64
	t    *testing.T
	gate chan struct{}
}

func (f *countingFetcher) Fetch(ctx context.Context) (*oauth2.Token, error) {
	n := f.n.Add(1)
	if n > f.max {
		f.t.Errorf("unexpected token fetch #%d (allowed %d)", n, f.max)
	}
	if f.gate != nil {
		<-f.gate
	}
	return &oauth2.Token{AccessToken: "tok-" + string(rune('0'+n)) + "-secretvalue", TokenType: "bearer",
		Expiry: time.Now().Add(time.Hour)}, nil
}

// TestC06_NodesShareOneToken: two nodes on one OAuth client share the token
// through etcd: one fetch, however many callers at once, on either node.
func TestC06_NodesShareOneToken(t *testing.T) {
	e := startEtcd(t)
	f := &countingFetcher{max: 1, t: t, gate: make(chan struct{})}
	var sources []*auth.SharedSource
	for _, n := range []string{"a", "b"} {
		store, err := connect(t, e, n).NewTokenStore("client-secret-1")
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, auth.NewSharedSource(store, f, 0))
	}
	var wg sync.WaitGroup
	toks := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(s *auth.SharedSource) {
			defer wg.Done()
			tok, err := s.Token(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			toks <- tok.AccessToken
		}(sources[i%2])
	}
	close(f.gate)
	wg.Wait()
	close(toks)
	first := ""
	for tok := range toks {
		if first == "" {
			first = tok
		}
		if tok != first {
			t.Fatalf("nodes got different tokens: %q and %q", first, tok)
		}
	}
	if f.n.Load() != 1 {
		t.Fatalf("%d fetches, want 1", f.n.Load())
	}
	// A token the server refused is replaced once, for everyone.
	f.max = 2
	sources[0].Invalidate(&oauth2.Token{AccessToken: first})
	tok, err := sources[0].Token(t.Context())
	if err != nil || tok.AccessToken == first {
		t.Fatalf("after Invalidate: %v, %v", tok, err)
	}
}

func TestTokenIsEncryptedAtRest(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	store, _ := c.NewTokenStore("secret-one")
	tok := &oauth2.Token{AccessToken: "plain-access-token-value", Expiry: time.Now().Add(time.Hour)}
	if _, err := store.Update(t.Context(), func(*oauth2.Token) (*oauth2.Token, error) { return tok, nil }); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Client().Get(t.Context(), c.Keys().Token())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(err)
	}
	if strings.Contains(string(resp.Kvs[0].Value), "plain-access-token-value") {
		t.Fatal("token stored in clear")
	}
	if got, err := store.Load(t.Context()); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("Load = %v, %v", got, err)
	}
	other, _ := c.NewTokenStore("secret-two")
	if _, err := other.Load(t.Context()); !errors.Is(err, cluster.ErrTokenUnreadable) {
		t.Fatalf("a node with another secret read the token: %v", err)
	}
}

func TestHandOffSkipsAppliedEvents(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	ctx := t.Context()
	if _, err := c.Client().Put(ctx, c.Keys().Dedup("k1"), "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HandOff(ctx, "k1", []byte("{}")); err != nil || ok {
		t.Fatalf("HandOff of an applied event = %v, %v; want false", ok, err)
	}
	if ok, err := c.HandOff(ctx, "k2", []byte(`{"x":1}`)); err != nil || !ok {
		t.Fatalf("HandOff = %v, %v; want true", ok, err)
	}
	s, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Applied["k1"]; !ok || string(s.Handoffs["k2"]) != `{"x":1}` {
		t.Fatalf("snapshot: %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	base := cluster.Config{Endpoints: []string{"127.0.0.1:1"}, Node: "a", SessionTTL: 5 * time.Second,
		FenceMargin: time.Second, DedupWindow: time.Hour}
	cases := map[string]func(*cluster.Config){
		"endpoints":      func(c *cluster.Config) { c.Endpoints = nil },
		"node":           func(c *cluster.Config) { c.Node = "a/b" },
		"session_ttl":    func(c *cluster.Config) { c.SessionTTL = time.Second },
		"fence_margin":   func(c *cluster.Config) { c.FenceMargin = 4 * time.Second },
		"dedup_window":   func(c *cluster.Config) { c.DedupWindow = time.Second },
		"quarantine_ttl": func(c *cluster.Config) { c.QuarantineTTL = time.Second },
		"quarantine_max": func(c *cluster.Config) { c.QuarantineMax = -1 },
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for key, mut := range cases {
		c := base
		mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name the field", key, err)
		}
	}
}
