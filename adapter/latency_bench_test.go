package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/bench/kit"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// benchLab is the full in-process lab of the latency benchmark: embedded
// etcd, the simulated Zoom and the reference recorder as httptest servers,
// and nodes built from configuration exactly as `zccadapter run` builds
// them (subscription socket, shared token, HTTP sink), with the
// production defaults of the rules.
type benchLab struct {
	b      *testing.B
	etcd   *cluster.Embedded
	zoom   *zoom.Server
	zoomTS *httptest.Server
	recTS  *httptest.Server

	mu      sync.Mutex
	sentAt  map[string]time.Time // kit.Key(engagement, event ms) → publish time
	gotAt   map[string]time.Time // command id → first receipt at the recorder
	cmds    []benchCmd
	commits kit.Marks // the leader's write txns
	mirror  kit.Marks // the standby mirror's watch deliveries
	raw     kit.Marks // a bare etcd watch of the same prefix (reference)
}

// benchCmd is one command's first receipt at the recorder.
type benchCmd struct {
	node, action, key string
	at                time.Time
}

const benchLabSecret = "bench-lab-secret-5c1e"

// benchRefWindow is how long the latency reference runs at each rate.
const benchRefWindow = 3 * time.Second

func newBenchLab(b *testing.B) *benchLab {
	b.Helper()
	l := &benchLab{b: b, etcd: benchEtcd(b), sentAt: map[string]time.Time{}, gotAt: map[string]time.Time{}}
	z, err := zoom.New(zoom.Config{AccountID: "acct-bench", ClientID: "bench-client", ClientSecret: benchLabSecret,
		Subscriptions: []string{"sub-a", "sub-b", "sub-ref"}, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	l.zoom, l.zoomTS = z, httptest.NewServer(z.Handler())
	b.Cleanup(func() { z.Close(); l.zoomTS.Close() })
	h := recorder.New(zerolog.Nop()).Handler()
	// The forwarder of the latency reference has a recorder of its own, so
	// that its commands touch neither the ledger nor the epoch fence.
	refRec := recorder.New(zerolog.Nop()).Handler()
	// The recorder's receipt: when the command's request reaches it.
	l.recTS = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := h
		if r.Method == http.MethodPost && r.URL.Path == "/v1/commands" {
			at := time.Now()
			body, _ := io.ReadAll(r.Body)
			var c rcapi.Command
			if json.Unmarshal(body, &c) == nil {
				l.mu.Lock()
				if _, seen := l.gotAt[c.ID]; !seen {
					l.gotAt[c.ID] = at
					l.cmds = append(l.cmds, benchCmd{node: c.Node, action: c.Action, key: kit.Key(c.EngagementID, c.At.UnixMilli()), at: at})
				}
				l.mu.Unlock()
			}
			if c.Node == "ref" {
				target = refRec
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		target.ServeHTTP(w, r)
	}))
	b.Cleanup(l.recTS.Close)
	return l
}

// start builds and runs node name; its etcd client is instrumented: the
// leader's commits and the standby mirror's deliveries are timed.
func (l *benchLab) start(name string) *benchNode {
	b := l.b
	b.Helper()
	c := l.config(name)
	cl, err := cluster.Connect(context.Background(), assemble.ClusterConfig(c, c.Etcd.Endpoints), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	kit.TimeCommits(cl.Client(), &l.commits)
	kit.TimeWatch(cl.Client(), cl.Keys().Root(), &l.mirror)
	parts, err := assemble.Build(c, cl, "in-process", nil, zerolog.Nop())
	if err != nil {
		cl.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bn := &benchNode{n: parts.Node, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(bn.done)
		defer cl.Close()
		parts.Node.Run(ctx) //nolint:errcheck // nil after ctx
	}()
	b.Cleanup(bn.stop)
	return bn
}

// waitReady waits for the role with the socket up.
func (bn *benchNode) waitReady(b *testing.B, role string) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s := bn.n.Status(); s.Role != role || !s.SocketUp; s = bn.n.Status() {
		if time.Now().After(deadline) {
			b.Fatalf("node not %s with its socket up after 20s: %+v", role, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// config returns node name's configuration: the lab's addresses and the
// production defaults.
func (l *benchLab) config(name string) *config.Config {
	c := &config.Config{Node: name, HTTPAddr: "127.0.0.1:0", LogLevel: "error"}
	c.Etcd.Endpoints = l.etcd.Endpoints()
	c.Etcd.Cluster = "bench-lab"
	c.Zoom.TokenURL = l.zoomTS.URL + "/oauth/token"
	c.Zoom.AccountID, c.Zoom.ClientID, c.Zoom.ClientSecret = "acct-bench", "bench-client", benchLabSecret
	c.Zoom.SubscriptionURL = "ws" + strings.TrimPrefix(l.zoomTS.URL, "http") + "/ws?subscriptionId=sub-" + name
	c.Recorder.URL = l.recTS.URL
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.b.Fatal(err)
	}
	return c
}

// startForwarder starts the latency reference: a subscription client on
// sub-ref (the same events.Client the nodes use) whose delivery function sends, for
// every event, one tag command to the recorder over the same HTTP sink, at
// once, on the read goroutine: the transport floor, with no rules, no
// cluster and no standby. Its commands carry node "ref" and go to a
// recorder of their own.
func (l *benchLab) startForwarder() {
	b := l.b
	c := l.config("ref")
	cl, err := cluster.Connect(context.Background(), assemble.ClusterConfig(c, c.Etcd.Endpoints), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := assemble.TokenSource(c.Zoom, cl, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	sink, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: l.recTS.URL, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var seq int64
	client, err := events.NewClient(events.ClientConfig{URL: c.Zoom.SubscriptionURL, Tokens: tokens,
		HeartbeatInterval: c.Zoom.HeartbeatInterval, WatchdogTimeout: c.Zoom.WatchdogTimeout, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	forward := func(ev *events.Event) {
		seq++
		id := adapter.EngagementID(ev)
		sink.Send(ctx, rcapi.Command{ID: fmt.Sprintf("ref-%d", seq), Epoch: 1, Node: "ref", Action: rcapi.ActionTag, //nolint:errcheck // refused or not, it was received
			EngagementID: id, SegmentID: id + "/ref", At: ev.Time, Event: ev.Name})
	}
	done := make(chan struct{})
	go func() { defer close(done); client.Run(ctx, forward) }() //nolint:errcheck // ctx's error
	b.Cleanup(func() { cancel(); <-done; cl.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !client.Status().Connected {
		if time.Now().After(deadline) {
			b.Fatal("reference subscription not connected after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRawWatch watches the cluster's prefix with a bare etcd client, for
// the mirror lag's reference: how soon etcd itself delivers each commit.
func (l *benchLab) startRawWatch() {
	b := l.b
	cl, err := cluster.Connect(context.Background(), cluster.Config{Endpoints: l.etcd.Endpoints(), Cluster: "bench-lab", Node: "w"}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	kit.TimeWatch(cl.Client(), cl.Keys().Root(), &l.raw)
	ctx, cancel := context.WithCancel(context.Background())
	wch := cl.Client().Watch(ctx, cl.Keys().Root(), clientv3.WithPrefix())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range wch { //nolint:revive // drained: the wrapper times each response
		}
	}()
	b.Cleanup(func() { cancel(); <-done; cl.Close() })
}

// publish sends evs at rate to every subscription through the simulated
// Zoom, noting each one's send time, and returns when the last is sent.
func (l *benchLab) publish(evs []kit.Event, rate float64, subs []string) {
	kit.Pace(context.Background(), len(evs), rate, func(i int) {
		e := evs[i]
		l.mu.Lock()
		if _, dup := l.sentAt[kit.Key(e.EngagementID, e.AtMS)]; !dup {
			l.sentAt[kit.Key(e.EngagementID, e.AtMS)] = time.Now()
		}
		l.mu.Unlock()
		l.zoom.PublishTo(subs, e.Raw)
	})
}

// latencies returns the event→command latencies of the commands received
// in [from, to): those that act at once (start, pause, resume, tag) and the
// stops, which the leader holds back by design; and the commands whose
// event was not found.
func (l *benchLab) latencies(from, to time.Time, ref bool) (now, held []time.Duration, unmatched int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cmds {
		if c.at.Before(from) || !c.at.Before(to) || (c.node == "ref") != ref {
			continue
		}
		sent, ok := l.sentAt[c.key]
		if !ok || sent.Before(from) {
			unmatched++
			continue
		}
		if c.action == rcapi.ActionStop {
			held = append(held, c.at.Sub(sent))
		} else {
			now = append(now, c.at.Sub(sent))
		}
	}
	return now, held, unmatched
}

// BenchmarkLatency measures, on the in-process lab (leader a and hot
// standby b, each on its own subscription socket), the time from the
// simulated Zoom's send of an event to the recorder's receipt of the
// command it implies, at 100, 500 and 1,000 events/s of recorded call
// traffic (ZCC_BENCH_LATENCY_WINDOW each, default 10s), and the standby
// mirror's lag behind each leader commit (G5) at each rate.
//
// Reported per rate: p50, p99, p99.9 and max in ms of the commands that act
// at once (start, pause, resume, tag); the stops' p50 (held back by the
// leader for HandoffGrace + 1s = 3s by design, so that an earlier event a
// socket missed can still land before the stop); the mirror lag's p50, p99
// and max, and the share of commits mirrored within 100ms.
//
// References, measured in the same run: the transport floor (ref-*: for
// 3 s before each rate, a bare subscription client on a third
// subscription forwards every event as a command to the same recorder, no
// rules, no etcd, no standby), and a bare etcd watch of the same prefix
// (raw-*: how soon etcd itself delivers each leader commit).
func BenchmarkLatency(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark: skipped with -short")
	}
	window := benchEnvDuration("ZCC_BENCH_LATENCY_WINDOW", 10*time.Second)
	corpus := benchCorpusGet(b)
	l := newBenchLab(b)
	a := l.start("a")
	a.waitReady(b, adapter.RoleLeader)
	sb := l.start("b")
	sb.waitReady(b, adapter.RoleStandby)
	l.startForwarder()
	l.startRawWatch()
	next := 0
	take := func(b *testing.B, n int) []kit.Event {
		if next+n > len(corpus.Calls) {
			b.Fatalf("corpus exhausted: %d events left, %d needed", len(corpus.Calls)-next, n)
		}
		evs := corpus.Calls[next : next+n]
		next += n
		return evs
	}
	for _, rate := range []float64{100, 500, 1000} {
		b.Run(fmt.Sprintf("rate=%.0f", rate), func(b *testing.B) {
			n := int(rate * window.Seconds())
			// The reference first: the transport floor.
			refFrom := time.Now()
			l.publish(take(b, int(rate*benchRefWindow.Seconds())), rate, []string{"sub-ref"})
			time.Sleep(500 * time.Millisecond)
			refNow, _, _ := l.latencies(refFrom, time.Now(), true)
			ref := kit.NewDist(refNow)

			evs := take(b, n)
			from := time.Now()
			stopProfile := benchProfile(b, fmt.Sprintf("latency-rate-%.0f", rate))
			l.publish(evs, rate, []string{"sub-a", "sub-b"})
			sentEnd := time.Now()
			stopProfile()
			// Wait for the held-back stops (3s) and the tail.
			time.Sleep(3500 * time.Millisecond)
			to := time.Now()
			now, held, unmatched := l.latencies(from, to, false)
			d, h := kit.NewDist(now), kit.NewDist(held)
			commits := l.commits.Since(from)
			lags, missing := kit.Lags(commits, l.mirror.Since(from))
			rawLags, _ := kit.Lags(commits, l.raw.Since(from))
			lag, raw := kit.NewDist(lags), kit.NewDist(rawLags)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(n)/sentEnd.Sub(from).Seconds(), "events/s")
			b.ReportMetric(kit.MS(d.Q(.5)), "p50-ms")
			b.ReportMetric(kit.MS(d.Q(.99)), "p99-ms")
			b.ReportMetric(kit.MS(d.Q(.999)), "p99.9-ms")
			b.ReportMetric(kit.MS(d.Max()), "max-ms")
			b.ReportMetric(float64(len(d)), "commands")
			b.ReportMetric(kit.MS(h.Q(.5)), "stop-p50-ms")
			b.ReportMetric(kit.MS(ref.Q(.5)), "ref-p50-ms")
			b.ReportMetric(kit.MS(ref.Q(.99)), "ref-p99-ms")
			b.ReportMetric(kit.MS(ref.Q(.999)), "ref-p99.9-ms")
			b.ReportMetric(float64(len(lag)), "commits")
			b.ReportMetric(kit.MS(lag.Q(.5)), "mirror-p50-ms")
			b.ReportMetric(kit.MS(lag.Q(.99)), "mirror-p99-ms")
			b.ReportMetric(kit.MS(lag.Max()), "mirror-max-ms")
			b.ReportMetric(100*lag.Within(100*time.Millisecond), "mirror-within-100ms-%")
			b.ReportMetric(kit.MS(raw.Q(.99)), "raw-watch-p99-ms")
			b.ReportMetric(kit.MS(raw.Max()), "raw-watch-max-ms")
			b.Logf("%d events at %.0f/s: commands acting at once %s; stops (held back) %s; %d unmatched", n, rate, d, h, unmatched)
			b.Logf("transport floor (bare subscription client → recorder): %s", ref)
			b.Logf("standby mirror lag behind %d leader commits: %s; %.2f%% within 100ms; %d not mirrored; bare watch %s",
				len(lags), lag, 100*lag.Within(100*time.Millisecond), missing, raw)
		})
	}
	if s := sb.n.Status(); s.HandedOff > 0 {
		b.Logf("standby handed off %d events", s.HandedOff)
	}
}
