package cluster_test

import (
	"errors"
	"math"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// TestFinding8_BumpEpochAboveRecorderFence: etcd restored from a backup
// issues revisions below the recorder's fence N. After BumpEpoch(N) the
// next term's epoch is above N and above every earlier epoch, its guarded
// writes still work, and later bumps never lower the base.
func TestFinding8_BumpEpochAboveRecorderFence(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e, "a"), connect(t, e, "b")
	ctx := t.Context()

	ta, err := a.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	first := ta.Epoch()
	if err := ta.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	// The recorder's fence, from the etcd before the restore.
	fence := first + 1000

	base, raised, err := b.BumpEpoch(ctx, fence)
	if err != nil || !raised {
		t.Fatalf("BumpEpoch(%d) = %d, %v, %v; want a raised base", fence, base, raised, err)
	}
	if got, err := a.EpochBase(ctx); err != nil || got != base {
		t.Fatalf("EpochBase = %d, %v; want %d", got, err, base)
	}
	tb, err := b.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Epoch() <= fence || tb.Epoch() <= first {
		t.Fatalf("epoch after the bump = %d; want above the fence %d and the earlier epoch %d", tb.Epoch(), fence, first)
	}
	// The etcd guard still compares the key's create revision: writes pass.
	if _, err := tb.CommitOps(ctx, clientv3.OpPut(b.Keys().Root()+"x", "1")); err != nil {
		t.Fatalf("guarded write after the bump: %v", err)
	}
	if err := tb.CommitBatch(ctx, protocol.Batch{Applied: []string{"k1"}}); err != nil {
		t.Fatalf("CommitBatch after the bump: %v", err)
	}
	if node, epoch, err := a.Leader(ctx); err != nil || node != "b" || epoch != tb.Epoch() {
		t.Fatalf("Leader() = %s/%d, %v; want b/%d", node, epoch, err, tb.Epoch())
	}

	// A lower bump changes nothing; epochs keep rising.
	if got, raised, err := a.BumpEpoch(ctx, first); err != nil || raised || got != base {
		t.Fatalf("lower BumpEpoch = %d, %v, %v; want %d unchanged", got, raised, err, base)
	}
	if err := tb.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	ta2, err := a.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	if ta2.Epoch() <= tb.Epoch() {
		t.Fatalf("epoch %d after %d: epochs must rise from term to term", ta2.Epoch(), tb.Epoch())
	}
	// A bump while a term leads leaves that term's epoch alone and lifts
	// the next one above the new fence.
	fence2 := ta2.Epoch() + 50
	if _, raised, err := b.BumpEpoch(ctx, fence2); err != nil || !raised {
		t.Fatalf("BumpEpoch(%d): %v, %v", fence2, raised, err)
	}
	if _, err := ta2.CommitOps(ctx, clientv3.OpPut(a.Keys().Root()+"x", "2")); err != nil {
		t.Fatalf("the leading term's write after a bump: %v", err)
	}
	if err := ta2.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	tb2, err := b.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb2.Resign(ctx) //nolint:errcheck
	if tb2.Epoch() <= fence2 {
		t.Fatalf("epoch %d after bumping above %d", tb2.Epoch(), fence2)
	}

	for _, bad := range []int64{-1, math.MaxInt64} {
		if _, _, err := a.BumpEpoch(ctx, bad); err == nil {
			t.Errorf("BumpEpoch(%d) accepted", bad)
		}
	}
}

// TestEpochBaseUnreadable: a base that is not a number stops a campaign
// with an error rather than yielding a wrong epoch.
func TestEpochBaseUnreadable(t *testing.T) {
	e := startEtcd(t)
	a := connect(t, e, "a")
	if _, err := a.Client().Put(t.Context(), a.Keys().Root()+"epoch-base", "twelve"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Campaign(t.Context(), protocol.Member{}); err == nil || errors.Is(err, protocol.ErrPhantomLeader) {
		t.Fatalf("Campaign with an unreadable epoch base: %v; want an error about the base", err)
	}
	if _, _, err := a.BumpEpoch(t.Context(), 10); err == nil {
		t.Fatal("BumpEpoch over an unreadable base succeeded")
	}
}
