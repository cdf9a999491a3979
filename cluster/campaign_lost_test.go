package cluster_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/faultnet"
)

// TestCampaignEndsWhenSessionLostBehindSilentEtcd: b waits in
// Campaign behind a; b's etcd goes silent. Campaign must return the lost
// session's error about the fencing deadline (not wait for ctx), and
// nothing may leak once etcd is back and the clients close (goleak).
func TestCampaignEndsWhenSessionLostBehindSilentEtcd(t *testing.T) {
	e := startEtcd(t)
	a := connect(t, e, "a")
	ta, err := a.Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(e.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: []string{"http://" + px.Addr()}, Cluster: "test", Node: "b",
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { px.SetMode(faultnet.Pass); b.Close(); px.Close() }()
	rb := campaignAsync(t.Context(), b)
	// b registered: its member key exists.
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := a.Client().Get(t.Context(), a.Keys().Member("b"))
		if err == nil && len(resp.Kvs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never registered")
		}
	}
	px.SetMode(faultnet.Blackhole)
	began := time.Now()
	r := wait(t, rb, 4*time.Second, "b's campaign to end with its session")
	took := time.Since(began)
	t.Logf("campaign ended after %s: %v", took.Round(time.Millisecond), r.err)
	if r.err == nil {
		t.Fatal("b won with a silent etcd")
	}
	if !errors.Is(r.err, protocol.ErrSessionLost) && !errors.Is(r.err, protocol.ErrFenced) {
		t.Errorf("campaign error %v, want the session's", r.err)
	}
	if !ta.Valid() {
		t.Fatal("a lost its term")
	}
	ta.Resign(t.Context()) //nolint:errcheck
}
