package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/traffic"
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

// lab is an in-process redundancy lab: embedded etcd on loopback, the
// simulated Zoom and the reference recorder as httptest servers, and as many
// node runtimes as a test starts.
type lab struct {
	t      *testing.T
	etcd   *cluster.Embedded
	zoom   *zoom.Server
	zoomTS *httptest.Server
	rec    *recorder.Recorder
	recTS  *httptest.Server
	secret string
	log    zerolog.Logger
	// tune, when set, adjusts each node's configuration before it starts.
	tune func(*config.Config)
	// closers run in reverse order on close.
	closers []func()
	closed  bool
}

// close stops every node, then the simulators and etcd. Idempotent; also
// run by t.Cleanup.
func (l *lab) close() {
	if l.closed {
		return
	}
	l.closed = true
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
}

const labSecret = "lab-client-secret-3f9a71c2"

// newLab starts a lab; opts adjust the simulated Zoom's configuration.
func newLab(t *testing.T, opts ...func(*zoom.Config)) *lab {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	l := &lab{t: t, secret: labSecret, log: log}
	t.Cleanup(l.close)
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l.etcd = e
	l.closers = append(l.closers, e.Close)
	zc := zoom.Config{AccountID: "acct-lab", ClientID: "lab-client", ClientSecret: labSecret,
		Subscriptions: []string{"sub-a", "sub-b", "sub-c"}, Logger: log.With().Str("component", "sim-zoom").Logger()}
	for _, o := range opts {
		o(&zc)
	}
	z, err := zoom.New(zc)
	if err != nil {
		t.Fatal(err)
	}
	l.zoom, l.zoomTS = z, httptest.NewServer(z.Handler())
	l.closers = append(l.closers, func() { z.Close(); l.zoomTS.Close() })
	l.rec = recorder.New(log.With().Str("component", "sim-recorder").Logger())
	l.recTS = httptest.NewServer(l.rec.Handler())
	l.closers = append(l.closers, l.recTS.Close)
	return l
}

func (l *lab) config(name string) *config.Config {
	c := &config.Config{Node: name, HTTPAddr: "127.0.0.1:0", LogLevel: "info"}
	c.Etcd.Endpoints = l.etcd.Endpoints()
	c.Etcd.Cluster = "lab"
	c.Etcd.SessionTTL = 2 * time.Second
	c.Etcd.FenceMargin = 500 * time.Millisecond
	c.Zoom.TokenURL = l.zoomTS.URL + "/oauth/token"
	c.Zoom.AccountID, c.Zoom.ClientID, c.Zoom.ClientSecret = "acct-lab", "lab-client", l.secret
	c.Zoom.SubscriptionURL = "ws" + strings.TrimPrefix(l.zoomTS.URL, "http") + "/ws?subscriptionId=sub-" + name
	c.Zoom.HeartbeatInterval = time.Second
	c.Zoom.WatchdogTimeout = 3 * time.Second
	c.Recorder.URL = l.recTS.URL
	c.Rules.PauseOnHold = true
	c.Rules.HandoffGrace = 300 * time.Millisecond
	if l.tune != nil {
		l.tune(c)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.t.Fatal(err)
	}
	return c
}

// labNode is one running node runtime.
type labNode struct {
	name   string
	node   *adapter.Node
	parts  *adapter.Parts
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *lab) start(name string) *labNode {
	l.t.Helper()
	cfg := l.config(name)
	log := l.log.With().Str("node", name).Logger()
	cl, err := cluster.Connect(l.t.Context(), adapter.ClusterConfig(cfg, cfg.Etcd.Endpoints), log)
	if err != nil {
		l.t.Fatal(err)
	}
	parts, err := adapter.Build(cfg, cl, "in-process", nil, log)
	if err != nil {
		cl.Close()
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &labNode{name: name, node: parts.Node, parts: parts, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		defer cl.Close()
		parts.Node.Run(ctx) //nolint:errcheck // nil after ctx
	}()
	l.closers = append(l.closers, n.stop)
	return n
}

// stop cancels the node and waits for Run to return (bounded).
func (n *labNode) stop() {
	n.cancel()
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		panic("node " + n.name + " did not stop within 15s")
	}
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

func (n *labNode) waitRole(t *testing.T, role string, limit time.Duration) adapter.NodeStatus {
	t.Helper()
	var s adapter.NodeStatus
	waitFor(t, limit, fmt.Sprintf("node %s to be %s", n.name, role), func() bool {
		s = n.node.Status()
		return s.Role == role && s.SocketUp
	})
	return s
}

func (l *lab) post(path string, in, out any) {
	l.t.Helper()
	b, _ := json.Marshal(in)
	resp, err := http.Post(l.zoomTS.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		l.t.Fatalf("POST %s: HTTP %d", path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			l.t.Fatal(err)
		}
	}
}

// sendEvent publishes one literal engagement event to some subscriptions.
// user may be "" (no agent on the event).
func (l *lab) sendEvent(name, eng, user string, subs []string, at time.Time, extra map[string]any) {
	l.t.Helper()
	obj := map[string]any{"engagement_id": eng, "engagement_direction": "inbound", "channel": "voice",
		"date_time_ms": at.Format("2006-01-02T15:04:05.000Z"), "consumer_number": "+15550100001"}
	if user != "" {
		obj["user_id"], obj["user_display_name"] = user, "Agent "+user
	}
	for k, v := range extra {
		obj[k] = v
	}
	ev := map[string]any{"event": name, "event_ts": at.UnixMilli(), "payload": map[string]any{"account_id": "acct-lab", "object": obj}}
	raw, _ := json.Marshal(ev)
	l.post("/sim/events", map[string]any{"subscriptions": subs, "event": json.RawMessage(raw)}, nil)
}

// applied returns the recording actions the recorder applied to a segment.
func (l *lab) applied(segment string) []string {
	var out []string
	for _, e := range l.rec.Ledger().Entries {
		if e.Kind == "command" && e.Result == rcapi.ResultApplied && e.Command.SegmentID == segment {
			out = append(out, e.Command.Action)
		}
	}
	return out
}

// appliedSince counts applied commands at the recorder with epoch ≥ min.
func (l *lab) appliedSince(min int64) int {
	n := 0
	for _, e := range l.rec.Ledger().Entries {
		if e.Kind == "command" && e.Result == rcapi.ResultApplied && e.Command.Epoch >= min {
			n++
		}
	}
	return n
}

func (l *lab) startTraffic(cfg traffic.Config) {
	l.post("/sim/traffic/start", cfg, nil)
}

func (l *lab) stopTraffic() traffic.Truth {
	var truth traffic.Truth
	l.post("/sim/traffic/stop", struct{}{}, &truth)
	return truth
}
