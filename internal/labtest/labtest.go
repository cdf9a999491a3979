package labtest

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// The lab's Zoom account: the simulated Zoom serves it and Config puts it
// in every node configuration.
const (
	AccountID = "acct-lab"
	ClientID  = "lab-client"
	// DefaultSecret is the client secret of a lab whose Options.Secret is
	// empty.
	DefaultSecret = "lab-client-secret-3f9a71c2"
)

// StopLimit bounds how long Node.Stop waits for the node's Run to return.
const StopLimit = 15 * time.Second

// LeakOptions are the goleak options of a test binary that runs labs:
// etcd's embedded server and gRPC keep a few process-wide workers, which
// are not leaks. Use them as goleak.VerifyTestMain(m, LeakOptions()...).
// Each call returns a fresh slice.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("go.etcd.io/etcd/pkg/v3/schedule.(*fifo).run"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	}
}

// VerifyTestMain runs the tests of m, then fails the binary if goroutines
// other than those LeakOptions names are left running (goleak). Call it as
// the whole of a package's TestMain; it does not return.
func VerifyTestMain(m *testing.M) { goleak.VerifyTestMain(m, LeakOptions()...) }

// Options configure NewLab. The zero value is a lab with DefaultSecret,
// subscriptions sub-a and sub-b, and no adjustments.
type Options struct {
	// Secret is the client secret the simulated Zoom accepts and Config
	// puts in every node configuration; "" means DefaultSecret.
	Secret string
	// Subscriptions are the simulated Zoom's subscription ids; nil means
	// sub-a and sub-b. Config subscribes node N to sub-N.
	Subscriptions []string
	// Zoom, when set, adjusts the simulated Zoom's configuration before it
	// starts.
	Zoom func(*zoom.Config)
	// Configure, when set, adjusts every node configuration Config builds,
	// before Lab.Tune: a test package's standing differences from the
	// lab's configuration.
	Configure func(*config.Config)
}

// Lab is one in-process redundancy lab and the nodes a test starts in it.
// NewLab sets its fields. A test may replace Log, Tune, Rec and RecTS
// before it starts a node or calls Config: they are read then (Close
// closes only the RecTS NewLab started). A Lab is for one goroutine, the
// test's.
type Lab struct {
	// T is the test the lab belongs to; the lab fails it on any setup
	// error.
	T testing.TB
	// Etcd is the embedded etcd member, on a loopback port.
	Etcd *cluster.Embedded
	// Zoom is the simulated Zoom, served by ZoomTS.
	Zoom   *zoom.Server
	ZoomTS *httptest.Server
	// Rec is the reference recorder, served by RecTS; Config points every
	// node at RecTS.
	Rec   *recorder.Recorder
	RecTS *httptest.Server
	// Secret is the client secret (see Options.Secret).
	Secret string
	// Log is the logger of the nodes started from now on, each with its
	// node name; NewLab's logs at info level to the test, as do the
	// simulators, whose loggers are fixed at NewLab.
	Log zerolog.Logger
	// Tune, when set, adjusts each node configuration Config builds, after
	// Options.Configure and before defaults and validation.
	Tune func(*config.Config)

	configure func(*config.Config)
	closers   []func() // run in reverse order by Close
	closed    bool
}

// NewLab starts a lab: embedded etcd in t.TempDir(), the simulated Zoom and
// the reference recorder. It blocks until etcd serves clients, and fails
// the test on any error. Close (also run by t.Cleanup) stops every node the
// lab started, then the simulators and etcd.
func NewLab(t testing.TB, o Options) *Lab {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	l := &Lab{T: t, Secret: o.Secret, Log: log, configure: o.Configure}
	l.Secret = cmp.Or(l.Secret, DefaultSecret)
	t.Cleanup(l.Close)
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l.Etcd = e
	l.OnClose(e.Close)
	subs := o.Subscriptions
	if subs == nil {
		subs = []string{"sub-a", "sub-b"}
	}
	zc := zoom.Config{AccountID: AccountID, ClientID: ClientID, ClientSecret: l.Secret,
		Subscriptions: subs, Logger: log.With().Str("component", "sim-zoom").Logger()}
	if o.Zoom != nil {
		o.Zoom(&zc)
	}
	z, err := zoom.New(zc)
	if err != nil {
		t.Fatal(err)
	}
	l.Zoom, l.ZoomTS = z, httptest.NewServer(z.Handler())
	l.OnClose(func() { z.Close(); l.ZoomTS.Close() })
	l.Rec = recorder.New(log.With().Str("component", "sim-recorder").Logger())
	l.RecTS = httptest.NewServer(l.Rec.Handler())
	l.OnClose(l.RecTS.Close)
	return l
}

// Close stops every node the lab started (most recent first), then the
// simulators and etcd. It blocks until each node's Run has returned (see
// Node.Stop). Idempotent; NewLab registers it with t.Cleanup.
func (l *Lab) Close() {
	if l.closed {
		return
	}
	l.closed = true
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
}

// OnClose registers f to run at Close before everything registered
// earlier: a node started before it, the simulators and etcd outlive f;
// a node started after it is stopped first. It does not block.
func (l *Lab) OnClose(f func()) { l.closers = append(l.closers, f) }

// Config returns node name's configuration: the lab's etcd (cluster "lab",
// 2 s sessions), Zoom (subscription sub-name, 1 s heartbeats, 3 s
// watchdog) and recorder, a 300 ms handoff grace, then Options.Configure
// and Tune, then the defaults. It fails the test if the result does not
// validate.
func (l *Lab) Config(name string) *config.Config {
	c := &config.Config{Node: name, HTTPAddr: "127.0.0.1:0", LogLevel: "info"}
	c.Etcd.Endpoints = l.Etcd.Endpoints()
	c.Etcd.Cluster = "lab"
	c.Etcd.SessionTTL = 2 * time.Second
	c.Etcd.FenceMargin = 500 * time.Millisecond
	c.Zoom.TokenURL = l.ZoomTS.URL + "/oauth/token"
	c.Zoom.AccountID, c.Zoom.ClientID, c.Zoom.ClientSecret = AccountID, ClientID, l.Secret
	c.Zoom.SubscriptionURL = "ws" + strings.TrimPrefix(l.ZoomTS.URL, "http") + "/ws?subscriptionId=sub-" + name
	c.Zoom.HeartbeatInterval = time.Second
	c.Zoom.WatchdogTimeout = 3 * time.Second
	c.Recorder.URL = l.RecTS.URL
	c.Rules.HandoffGrace = 300 * time.Millisecond
	if l.configure != nil {
		l.configure(c)
	}
	if l.Tune != nil {
		l.Tune(c)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		l.T.Fatal(err)
	}
	return c
}

// NodeOptions adjust how Start runs a node. The zero value runs it
// in-process: nothing served, "in-process" published as its address, and
// assemble.Build's default client for token requests.
type NodeOptions struct {
	// Serve, when true, serves the node's Parts.Handler on a loopback
	// listener whose host:port is published as the node's address in its
	// membership record, as `zccadapter run` does.
	Serve bool
	// HTTPClient carries the node's token requests; nil means the default.
	HTTPClient *http.Client
}

// Node is one node runtime a lab started.
type Node struct {
	// Name is the node's name (cfg.Node).
	Name string
	// Parts are what assemble.Build assembled.
	Parts *assemble.Parts
	// Addr is the address published in the membership record: the
	// listener's host:port when served, else "in-process".
	Addr string
	// URL is the base URL of the served endpoints; "" when not served.
	URL string

	cancel context.CancelFunc
	done   chan struct{}
	srv    *httptest.Server // nil when not served
}

// Start connects to the lab's etcd, builds the node cfg describes with
// assemble.Build and runs it on a goroutine until Stop or Close; it does not
// wait for a role (see WaitRole). cfg is usually Config's, possibly
// adjusted: Start validates it again. It fails the test on any error.
func (l *Lab) Start(cfg *config.Config, o NodeOptions) *Node {
	l.T.Helper()
	if err := cfg.Validate(); err != nil {
		l.T.Fatal(err)
	}
	name := cfg.Node
	log := l.Log.With().Str("node", name).Logger()
	cl, err := cluster.Connect(l.T.Context(), assemble.ClusterConfig(cfg, cfg.Etcd.Endpoints), log)
	if err != nil {
		l.T.Fatal(err)
	}
	n := &Node{Name: name, Addr: "in-process", done: make(chan struct{})}
	var ln net.Listener
	if o.Serve {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			cl.Close()
			l.T.Fatal(err)
		}
		n.Addr = ln.Addr().String()
	}
	parts, err := assemble.Build(cfg, cl, n.Addr, o.HTTPClient, log)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		cl.Close()
		l.T.Fatal(err)
	}
	n.Parts = parts
	if ln != nil {
		n.srv = httptest.NewUnstartedServer(parts.Handler())
		n.srv.Listener.Close()
		n.srv.Listener = ln
		n.srv.Start()
		n.URL = n.srv.URL
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.done)
		defer cl.Close()
		parts.Node.Run(ctx) //nolint:errcheck // nil after ctx
	}()
	l.OnClose(n.Stop)
	return n
}

// Stop cancels the node, blocks until its Run has returned, then stops
// serving its endpoints. It panics if Run has not returned within
// StopLimit. Idempotent; Close runs it for every node still running.
func (n *Node) Stop() {
	n.cancel()
	select {
	case <-n.done:
	case <-time.After(StopLimit):
		panic("node " + n.Name + " did not stop within " + StopLimit.String())
	}
	if n.srv != nil {
		n.srv.Close()
	}
}

// Status is the node's status now.
func (n *Node) Status() adapter.NodeStatus { return n.Parts.Node.Status() }

// WaitRole blocks until the node has role with its socket up, and returns
// that status; it fails the test after limit.
func (n *Node) WaitRole(t testing.TB, role string, limit time.Duration) adapter.NodeStatus {
	t.Helper()
	var s adapter.NodeStatus
	WaitFor(t, limit, "node "+n.Name+" to be "+role, func() bool {
		s = n.Status()
		return s.Role == role && s.SocketUp
	})
	return s
}

// WaitFor polls cond until it holds or limit passes; then it fails the
// test, naming what it waited for. It blocks at most about limit.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a correctness wait
	}
}
