package doctor_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// etcd's embedded server and gRPC keep a few process-wide workers.
		goleak.IgnoreTopFunction("go.etcd.io/etcd/pkg/v3/schedule.(*fifo).run"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

const labSecret = "doctor-lab-secret-51e0a7"

// lab is an in-process setup for doctor and status: embedded etcd on
// loopback, the simulated Zoom and the reference recorder as httptest
// servers.
type lab struct {
	t      *testing.T
	etcd   *cluster.Embedded
	zoom   *zoom.Server
	zoomTS *httptest.Server
	rec    *recorder.Recorder
	recTS  *httptest.Server
	log    zerolog.Logger
}

func newLab(t *testing.T, zc func(*zoom.Config)) *lab {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	zcfg := zoom.Config{AccountID: "acct-lab", ClientID: "lab-client", ClientSecret: labSecret,
		Subscriptions: []string{"sub-a", "sub-b"}, Logger: log.With().Str("component", "sim-zoom").Logger()}
	if zc != nil {
		zc(&zcfg)
	}
	z, err := zoom.New(zcfg)
	if err != nil {
		t.Fatal(err)
	}
	zts := httptest.NewServer(z.Handler())
	t.Cleanup(func() { z.Close(); zts.Close() })
	r := recorder.New(log.With().Str("component", "sim-recorder").Logger())
	rts := httptest.NewServer(r.Handler())
	t.Cleanup(rts.Close)
	return &lab{t: t, etcd: e, zoom: z, zoomTS: zts, rec: r, recTS: rts, log: log}
}

func (l *lab) config(node string) *config.Config {
	c := &config.Config{Node: node, HTTPAddr: "127.0.0.1:0", LogLevel: "info", Version: "v-test"}
	c.Etcd.Endpoints = l.etcd.Endpoints()
	c.Etcd.Cluster = "lab"
	c.Etcd.SessionTTL = 2 * time.Second
	c.Etcd.FenceMargin = 500 * time.Millisecond
	c.Zoom.TokenURL = l.zoomTS.URL + "/oauth/token"
	c.Zoom.AccountID, c.Zoom.ClientID, c.Zoom.ClientSecret = "acct-lab", "lab-client", labSecret
	c.Zoom.SubscriptionURL = "ws" + strings.TrimPrefix(l.zoomTS.URL, "http") + "/ws?subscriptionId=sub-" + node
	c.Zoom.HeartbeatInterval = time.Second
	c.Zoom.WatchdogTimeout = 3 * time.Second
	c.Recorder.URL = l.recTS.URL
	c.Rules.HandoffGrace = 300 * time.Millisecond
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.t.Fatal(err)
	}
	return c
}

// register writes a membership record for node under a lease, as a
// running node's campaign does, and keeps it until the test ends.
func (l *lab) register(node, subscription, address string) {
	l.t.Helper()
	cl, err := cluster.Connect(l.t.Context(), adapter.ClusterConfig(l.config(node), l.etcd.Endpoints()), l.log)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cl.Close() })
	lease, err := cl.Client().Grant(l.t.Context(), 30)
	if err != nil {
		l.t.Fatal(err)
	}
	b, _ := json.Marshal(cluster.Member{Node: node, Subscription: subscription, Version: "v-test", Address: address,
		Since: time.Now().UTC()})
	if _, err := cl.Client().Put(l.t.Context(), cl.Keys().Member(node), string(b), clientv3.WithLease(lease.ID)); err != nil {
		l.t.Fatal(err)
	}
}

// runningNode is a node built like `zccadapter run` builds one, its
// endpoints served on a loopback listener published as its address.
type runningNode struct {
	name  string
	node  *adapter.Node
	addr  string
	stop  func()
	parts *adapter.Parts
}

func (l *lab) start(name string) *runningNode {
	l.t.Helper()
	cfg := l.config(name)
	log := l.log.With().Str("node", name).Logger()
	cl, err := cluster.Connect(l.t.Context(), adapter.ClusterConfig(cfg, cfg.Etcd.Endpoints), log)
	if err != nil {
		l.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cl.Close()
		l.t.Fatal(err)
	}
	parts, err := adapter.Build(cfg, cl, ln.Addr().String(), nil, log)
	if err != nil {
		ln.Close()
		cl.Close()
		l.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(parts.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cl.Close()
		parts.Node.Run(ctx) //nolint:errcheck // nil after ctx
	}()
	n := &runningNode{name: name, node: parts.Node, addr: ln.Addr().String(), parts: parts}
	n.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			panic("node " + name + " did not stop within 15s")
		}
		srv.Close()
	}
	l.t.Cleanup(n.stop)
	return n
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a correctness wait
	}
}

func (n *runningNode) waitRole(t *testing.T, role string) adapter.NodeStatus {
	t.Helper()
	var s adapter.NodeStatus
	waitFor(t, 10*time.Second, "node "+n.name+" to be "+role, func() bool {
		s = n.node.Status()
		return s.Role == role && s.SocketUp
	})
	return s
}

// deadEndpoint is a loopback address nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
