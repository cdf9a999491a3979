package adapter_test

import (
	"bytes"
	"context"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/internal/labtest"
)

// TestStandbyStopsWithEtcdUnreachable: a standby waits in its campaign; its
// etcd becomes unreachable (connections refused, or silence); the node is
// stopped. Run must return (a hang, not a speed, is what the 10 s bound
// detects). etcd's Election.Campaign,
// cancelled while it waits for the leader's key to go, resigns with the
// client's own context (no deadline), which blocks until etcd is back;
// cluster.Campaign stops waiting for it when its context ends, and the
// cluster's Close joins it.
func TestStandbyStopsWithEtcdUnreachable(t *testing.T) {
	for _, mode := range []faultnet.Mode{faultnet.Blackhole, faultnet.Cut} {
		t.Run(mode.String(), func(t *testing.T) {
			l := newLab(t)
			etcdProxy := l.proxy(t, strings.TrimPrefix(l.Etcd.Endpoints()[0], "http://"))
			b := l.start("b")
			b.WaitRole(t, adapter.RoleLeader, 10*time.Second)

			// Node a, run by hand (labtest's Stop panics after 15 s).
			cfg := l.Config("a")
			cfg.Etcd.Endpoints = []string{"http://" + etcdProxy.Addr()}
			cl, err := cluster.Connect(t.Context(), assemble.ClusterConfig(cfg, cfg.Etcd.Endpoints), l.Log)
			if err != nil {
				t.Fatal(err)
			}
			parts, err := assemble.Build(cfg, cl, "in-process", nil, l.Log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); defer cl.Close(); parts.Node.Run(ctx) }() //nolint:errcheck
			labtest.WaitFor(t, 10*time.Second, "a to be standby", func() bool {
				s := parts.Node.Status()
				return s.Role == adapter.RoleStandby && s.SocketUp && s.EtcdOK
			})

			// a's campaign waits for b's key to go (its own key is written).
			labtest.WaitFor(t, 10*time.Second, "a's election key", func() bool {
				return slices.ContainsFunc(l.electionValues(t), func(v string) bool { return v == "a" })
			})
			etcdProxy.SetMode(mode)
			began := time.Now()
			cancel()
			select {
			case <-done:
				t.Logf("a stopped in %s", time.Since(began).Round(time.Millisecond))
				return
			case <-time.After(10 * time.Second):
			}
			var dump bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&dump, 2) //nolint:errcheck
			for _, g := range strings.Split(dump.String(), "\n\n") {
				if strings.Contains(g, "adapter.(*Node).standby") || strings.Contains(g, "concurrency.(*Election).Resign") {
					t.Logf("stuck:\n%s", g)
				}
			}
			cl.Close() // end the client under it: the hung call then fails and Run returns
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("a did not stop even once its etcd client was closed")
			}
			t.Errorf("standby a did not stop within 10s with etcd unreachable (%s); Run returned only once the test closed its etcd client, after %s",
				mode, time.Since(began).Round(time.Millisecond))
		})
	}
}
