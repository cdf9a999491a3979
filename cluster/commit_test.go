package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// lead campaigns on c through the protocol view and resigns at cleanup.
func lead(t *testing.T, c *cluster.Cluster) protocol.Term {
	t.Helper()
	term, err := c.Protocol().Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Resign(context.Background()) }) //nolint:errcheck // the lease expires anyway
	return term
}

// stored is a key's value, revision and lease as etcd holds them.
type stored struct {
	Value              []byte
	ModRevision, Lease int64
}

// get reads key at rev (0: now); nil when it does not exist.
func get(t *testing.T, c *cluster.Cluster, key string, rev int64) *stored {
	t.Helper()
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := c.Client().Get(t.Context(), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	return &stored{kv.Value, kv.ModRevision, kv.Lease}
}

// TestCommitBatchOrderChunksAndLeases: a batch one op over the txn limit is
// two txns; the first holds the state records, the dedup keys and the first
// queue deletion, the second the rest, in the batch's order. Closed state
// records and dedup keys carry the dedup lease (one dedup window); open
// records and queue entries carry none.
func TestCommitBatchOrderChunksAndLeases(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	ctx := t.Context()
	k := c.Keys()
	for _, key := range []string{"u1", "u2"} {
		if _, err := c.Client().Put(ctx, k.Handoff(key), "{}"); err != nil {
			t.Fatal(err)
		}
	}
	term := lead(t, c)

	b := protocol.Batch{
		States: map[string]protocol.StateRecord{
			"open":   {JSON: []byte(`{"open":true}`)},
			"closed": {JSON: []byte(`{"open":false}`), Closed: true},
		},
		Unqueue: []string{"u1", "u2"},
		Queue:   map[string][]byte{"q": []byte(`{"held":1}`)},
	}
	// 2 states + applied + 1 deletion fill the first txn exactly.
	for i := range cluster.MaxTxnOps - 3 {
		b.Applied = append(b.Applied, fmt.Sprintf("k%03d", i))
	}
	txns := 0
	b.Observe = func(took time.Duration) {
		if took <= 0 {
			t.Errorf("txn latency %s, want > 0", took)
		}
		txns++
	}
	if err := term.CommitBatch(ctx, b); err != nil {
		t.Fatalf("CommitBatch: %v", err)
	}
	if txns != 2 {
		t.Fatalf("%d txns observed, want 2 (%d ops, limit %d)", txns, cluster.MaxTxnOps+1, cluster.MaxTxnOps)
	}

	open, closed := get(t, c, k.State("open"), 0), get(t, c, k.State("closed"), 0)
	if open == nil || closed == nil || string(open.Value) != `{"open":true}` {
		t.Fatalf("state records: open %v, closed %v", open, closed)
	}
	r1 := open.ModRevision
	if open.Lease != 0 {
		t.Errorf("open engagement's record has lease %x, want none", open.Lease)
	}
	lease := closed.Lease
	if lease == 0 || closed.ModRevision != r1 {
		t.Errorf("closed record: lease %x, revision %d; want the dedup lease, revision %d", lease, closed.ModRevision, r1)
	}
	for _, key := range b.Applied {
		kv := get(t, c, k.Dedup(key), 0)
		if kv == nil || kv.ModRevision != r1 || kv.Lease != lease || string(kv.Value) != "a" {
			t.Fatalf("dedup %s = %+v; want value a, the dedup lease %x, revision %d", key, kv, lease, r1)
		}
	}
	ttl, err := c.Client().TimeToLive(ctx, clientv3.LeaseID(lease))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(c.Config().DedupWindow.Seconds()); ttl.GrantedTTL != want {
		t.Errorf("dedup lease granted for %ds, want the dedup window %ds", ttl.GrantedTTL, want)
	}
	// u1 went in the first txn, u2 and the queue entry in the second.
	if kv := get(t, c, k.Handoff("u1"), r1); kv != nil {
		t.Errorf("u1 still queued at the first txn's revision %d", r1)
	}
	if kv := get(t, c, k.Handoff("u2"), r1); kv == nil {
		t.Errorf("u2 already deleted at the first txn's revision %d", r1)
	}
	if kv := get(t, c, k.Handoff("u2"), 0); kv != nil {
		t.Error("u2 still queued")
	}
	q := get(t, c, k.Handoff("q"), 0)
	// Finding 1: a queue entry no leader takes must not stay for ever.
	if q == nil || q.ModRevision <= r1 || q.Lease != lease || !bytes.Equal(q.Value, b.Queue["q"]) {
		t.Errorf("queue entry q = %+v; want it in the second txn (after %d), under the dedup lease %x", q, r1, lease)
	}
}

// TestCommitBatchChunksByBytes: records of a quarter of the byte limit go
// three to a txn.
func TestCommitBatchChunksByBytes(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	term := lead(t, c)
	big := bytes.Repeat([]byte("x"), cluster.MaxTxnBytes/4+1)
	b := protocol.Batch{States: map[string]protocol.StateRecord{}}
	for i := range 5 {
		b.States[fmt.Sprintf("e%d", i)] = protocol.StateRecord{JSON: big}
	}
	txns := 0
	b.Observe = func(time.Duration) { txns++ }
	if err := term.CommitBatch(t.Context(), b); err != nil {
		t.Fatalf("CommitBatch: %v", err)
	}
	perRev := map[int64]int{}
	for id := range b.States {
		kv := get(t, c, c.Keys().State(id), 0)
		if kv == nil || len(kv.Value) != len(big) {
			t.Fatalf("state %s not written whole", id)
		}
		perRev[kv.ModRevision]++
	}
	if txns != 2 || len(perRev) != 2 {
		t.Fatalf("%d txns observed, records per revision %v; want 2 txns of 3 and 2", txns, perRev)
	}
	for rev, n := range perRev {
		if n != 3 && n != 2 {
			t.Errorf("%d records at revision %d; want 3 and 2", n, rev)
		}
	}
}

// TestCommitBatchRedoesAfterDedupLeaseLost: the dedup lease is revoked
// behind the leader's back; the next batch takes a new lease and lands
// whole, and the txn that failed is not observed.
func TestCommitBatchRedoesAfterDedupLeaseLost(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	ctx := t.Context()
	k := c.Keys()
	term := lead(t, c)
	if err := term.CommitBatch(ctx, protocol.Batch{Applied: []string{"k1"}}); err != nil {
		t.Fatal(err)
	}
	first := get(t, c, k.Dedup("k1"), 0)
	if first == nil || first.Lease == 0 {
		t.Fatalf("k1 = %+v, want it under the dedup lease", first)
	}
	if _, err := c.Client().Revoke(ctx, clientv3.LeaseID(first.Lease)); err != nil {
		t.Fatal(err)
	}
	txns := 0
	b := protocol.Batch{
		States:  map[string]protocol.StateRecord{"e": {JSON: []byte(`{}`), Closed: true}},
		Applied: []string{"k2"},
		Observe: func(time.Duration) { txns++ },
	}
	if err := term.CommitBatch(ctx, b); err != nil {
		t.Fatalf("CommitBatch after the dedup lease was revoked: %v", err)
	}
	if txns != 1 {
		t.Errorf("%d txns observed, want 1 (the failed one is not)", txns)
	}
	k2, st := get(t, c, k.Dedup("k2"), 0), get(t, c, k.State("e"), 0)
	if k2 == nil || st == nil || k2.Lease == 0 || k2.Lease == first.Lease || st.Lease != k2.Lease {
		t.Fatalf("after the redo: k2 %+v, state %+v; want both under a new dedup lease (old %x)", k2, st, first.Lease)
	}
	if !term.Valid() {
		t.Fatal("the redo ended the term")
	}
}

// TestCommitBatchRefusedWhenNotLeading: a term that has ended writes
// nothing (ErrFenced); a term whose election key is gone writes nothing and
// ends (ErrNotLeader).
func TestCommitBatchRefusedWhenNotLeading(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	ctx := t.Context()
	k := c.Keys()
	observed := func(time.Duration) { t.Error("a refused txn was observed") }

	term := lead(t, c)
	term.Lose(errors.New("recorder answered stale_epoch"))
	err := term.CommitBatch(ctx, protocol.Batch{Applied: []string{"lost"}, Observe: observed})
	if !errors.Is(err, protocol.ErrFenced) {
		t.Fatalf("CommitBatch after Lose = %v, want ErrFenced", err)
	}
	if kv := get(t, c, k.Dedup("lost"), 0); kv != nil {
		t.Fatal("a term that ended wrote")
	}
	if err := term.Resign(ctx); err != nil {
		t.Fatal(err)
	}

	ct, err := c.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Resign(context.Background()) //nolint:errcheck // the lease expires anyway
	if _, err := c.Client().Delete(ctx, ct.LeaderKey()); err != nil {
		t.Fatal(err)
	}
	err = ct.CommitBatch(ctx, protocol.Batch{Applied: []string{"usurped"}, Observe: observed})
	if !errors.Is(err, protocol.ErrNotLeader) {
		t.Fatalf("CommitBatch without the election key = %v, want ErrNotLeader", err)
	}
	if kv := get(t, c, k.Dedup("usurped"), 0); kv != nil {
		t.Fatal("a term that lost its key wrote")
	}
	if ct.Valid() || !errors.Is(ct.Err(), protocol.ErrNotLeader) {
		t.Fatalf("term after the failed guard: valid %v, err %v; want ended with ErrNotLeader", ct.Valid(), ct.Err())
	}
}

// TestProtocolViewReturnsUntypedNil: the protocol view's constructors
// return a nil interface, not a nil pointer in one, on error.
func TestProtocolViewReturnsUntypedNil(t *testing.T) {
	e := startEtcd(t)
	p := connect(t, e, "a").Protocol()
	if s, err := p.NewTokenStore(""); err == nil || s != nil {
		t.Fatalf("NewTokenStore(\"\") = %v, %v; want nil and an error", s, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if term, err := p.Campaign(ctx, protocol.Member{}); err == nil || term != nil {
		t.Fatalf("Campaign on an ended context = %v, %v; want nil and an error", term, err)
	}
	if got := p.Settings(); got.Node != "a" || got.SessionTTL == 0 || got.DedupWindow == 0 {
		t.Fatalf("Settings() = %+v, want node a with defaults", got)
	}
}
