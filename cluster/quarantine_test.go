package cluster_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// TestFinding1_QuarantineIsBoundedAndLeased: entries carry a lease, the
// newest QuarantineMax are kept, raw input is cut, and Quarantined lists
// the newest first.
func TestFinding1_QuarantineIsBoundedAndLeased(t *testing.T) {
	e := startEtcd(t)
	c, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: e.Endpoints(), Cluster: "test", Node: "a",
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond, QuarantineMax: 3},
		zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	base := time.Now().UTC()
	for i := range 5 {
		err := c.Quarantine(ctx, protocol.QuarantineEntry{At: base.Add(time.Duration(i) * time.Millisecond),
			Source: protocol.QuarantineSocket, Reason: fmt.Sprintf("reason %d", i), Raw: bytes.Repeat([]byte("x"), 70<<10)})
		if err != nil {
			t.Fatal(err)
		}
	}
	count, list, err := c.Quarantined(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if count != 3 || len(list) != 3 {
		t.Fatalf("quarantine holds %d (listed %d); want the newest 3", count, len(list))
	}
	for i, q := range list {
		if want := fmt.Sprintf("reason %d", 4-i); q.Reason != want {
			t.Errorf("entry %d: reason %q, want %q (newest first)", i, q.Reason, want)
		}
		if q.Node != "a" || len(q.Raw) != protocol.MaxQuarantineRaw || !q.Truncated {
			t.Errorf("entry %d: node %q, raw %d bytes, truncated %v; want a, %d, true", i, q.Node, len(q.Raw), q.Truncated, protocol.MaxQuarantineRaw)
		}
	}
	resp, err := c.Client().Get(ctx, c.Keys().QuarantinePrefix(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			t.Errorf("%s has no lease: it would stay for ever", kv.Key)
		}
	}
}

// TestFinding1_HandoffAndQueueEntriesHaveALease: a standby's handoff entry
// and the leader's own queue entries carry a lease, so an entry no leader
// takes is not kept for ever.
func TestFinding1_HandoffAndQueueEntriesHaveALease(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e, "a"), connect(t, e, "b")
	ctx := t.Context()
	if ok, err := b.HandOff(ctx, "k-standby", []byte(`{}`)); err != nil || !ok {
		t.Fatalf("HandOff = %v, %v", ok, err)
	}
	term, err := a.Campaign(ctx, protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Resign(ctx) //nolint:errcheck // cleanup
	if err := term.CommitBatch(ctx, protocol.Batch{Queue: map[string][]byte{"k-held": []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"k-standby", "k-held"} {
		resp, err := a.Client().Get(ctx, a.Keys().Handoff(key))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("handoff/%s missing", key)
		}
		if resp.Kvs[0].Lease == 0 {
			t.Errorf("handoff/%s has no lease: it would stay for ever", key)
		}
	}
}
