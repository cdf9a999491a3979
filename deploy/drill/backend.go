package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/wait"
)

// Backend is the deployment a drill runs against: local processes (this
// file) or the compose lab. Methods that take ctx block at most until it
// ends.
type Backend interface {
	// Start brings up etcd, the simulated Zoom, the recorder and the
	// nodes, and returns when each answers.
	Start(ctx context.Context) error
	// NodeURL is the base URL of a node's HTTP endpoints.
	NodeURL(node string) string
	// ZoomURL and RecorderURL are the simulators' base URLs.
	ZoomURL() string
	RecorderURL() string
	// Fault applies kill, stop, pause, resume, partition or heal to a node.
	Fault(ctx context.Context, node, action string) error
	// Running reports whether the node's process or container runs.
	Running(node string) bool
	// WaitExit blocks until the node has exited (after kill or stop) and
	// returns its exit code; -1 for death by signal.
	WaitExit(ctx context.Context, node string) (int, error)
	// Restart starts a node that has exited.
	Restart(ctx context.Context, node string) error
	// StopEtcd stops an etcd member ("" = the leader) and returns its name;
	// StartEtcd starts it again.
	StopEtcd(ctx context.Context, member string) (string, error)
	StartEtcd(ctx context.Context, member string) error
	// Shutdown stops everything the backend started. Idempotent.
	Shutdown()
	// Logs says where the logs are.
	Logs() string
}

// Local runs every part as an OS process on 127.0.0.1 with free ports:
// one etcd member (`zccadapter etcd`), the simulated Zoom, the reference
// recorder and the nodes. Each node reaches etcd through its own
// faultnet.Proxy, so a partition cuts that node alone.
type Local struct {
	bin     string
	dir     string
	nodes   []string
	ttl     time.Duration
	pause   bool
	secret  string
	signing string
	etcdURL string

	etcd     *proc
	zoom     *proc
	recorder *proc
	mu       sync.Mutex // guards procs and urls: a restart replaces them while the drill samples
	procs    map[string]*proc
	proxies  map[string]*faultnet.Proxy
	urls     map[string]string
	zoomURL  string
	recURL   string
	hc       *http.Client
	once     sync.Once
}

// NewLocal returns a local-process backend. bin is the zccadapter
// executable; dir receives configs, data and logs.
func NewLocal(bin, dir string, s *Scenario) *Local {
	return &Local{bin: bin, dir: dir, nodes: s.NodeNames(), ttl: s.SessionTTL, pause: *s.PauseOnHold,
		procs: map[string]*proc{}, proxies: map[string]*faultnet.Proxy{}, urls: map[string]string{},
		hc: &http.Client{Timeout: 3 * time.Second}}
}

// Logs implements Backend.
func (l *Local) Logs() string { return filepath.Join(l.dir, "logs") }

// NodeURL implements Backend.
func (l *Local) NodeURL(node string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.urls[node]
}

// proc returns a node's current process (nil if none).
func (l *Local) proc(node string) *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[node]
}

// ZoomURL implements Backend.
func (l *Local) ZoomURL() string { return l.zoomURL }

// RecorderURL implements Backend.
func (l *Local) RecorderURL() string { return l.recURL }

// Start implements Backend.
func (l *Local) Start(ctx context.Context) error {
	logDir := l.Logs()
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	port := func() (int, error) { return freePort() }
	ep, err1 := port()
	pp, err2 := port()
	zp, err3 := port()
	rp, err4 := port()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return fmt.Errorf("drill: free port: %w", err)
		}
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	l.secret = hex.EncodeToString(b)
	_, _ = rand.Read(b)
	l.signing = hex.EncodeToString(b) // the app's secret token: frames are signed and verified
	signing := l.signing
	l.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ep)
	l.etcd = newProc("etcd", l.bin, logDir, nil, "etcd", "--data-dir", filepath.Join(l.dir, "etcd"),
		"--listen-client-url", l.etcdURL, "--listen-peer-url", fmt.Sprintf("http://127.0.0.1:%d", pp))
	l.zoomURL = fmt.Sprintf("http://127.0.0.1:%d", zp)
	subs := make([]string, len(l.nodes))
	for i, n := range l.nodes {
		subs[i] = "sub-" + n
	}
	l.zoom = newProc("zoom", l.bin, logDir, []string{"ZCC_SIM_CLIENT_SECRET=" + l.secret, "ZCC_SIM_SECRET_TOKEN=" + signing}, "sim", "zoom",
		"--listen", fmt.Sprintf("127.0.0.1:%d", zp), "--account-id", "acct-drill", "--client-id", "drill-client",
		"--subscriptions", strings.Join(subs, ","))
	l.recURL = fmt.Sprintf("http://127.0.0.1:%d", rp)
	l.recorder = newProc("recorder", l.bin, logDir, nil, "sim", "recorder", "--listen", fmt.Sprintf("127.0.0.1:%d", rp),
		"--state", filepath.Join(l.dir, "recorder.state"))
	for _, p := range []*proc{l.etcd, l.zoom, l.recorder} {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, w := range []struct {
		url string
		p   *proc
	}{{l.zoomURL + "/healthz", l.zoom}, {l.recURL + "/v1/ledger", l.recorder}, {l.etcdURL + "/health", l.etcd}} {
		if err := l.waitHTTP(ctx, w.url, w.p); err != nil {
			return err
		}
	}
	for _, name := range l.nodes {
		px, err := faultnet.Listen("127.0.0.1:0", strings.TrimPrefix(l.etcdURL, "http://"))
		if err != nil {
			return err
		}
		l.proxies[name] = px
		// A port that was free a moment ago can be taken before the node
		// binds it: try again with another one.
		for attempt := 1; ; attempt++ {
			err := l.startNode(ctx, name, signing)
			if err == nil {
				break
			}
			if attempt == 3 || ctx.Err() != nil {
				return err
			}
		}
	}
	return nil
}

// startNode writes a node's config with a fresh HTTP port, starts it and
// waits until its /healthz answers or it exits (a port taken meanwhile).
func (l *Local) startNode(ctx context.Context, name, signing string) error {
	px := l.proxies[name]
	logDir := l.Logs()
	hp, err := freePort()
	if err != nil {
		return fmt.Errorf("drill: free port: %w", err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", hp)
	cfgPath := filepath.Join(l.dir, "node-"+name+".yaml")
	cfg := fmt.Sprintf(`node: %s
data_dir: %s
http_addr: 127.0.0.1:%d
log_level: debug
etcd:
  endpoints: [%q]
  cluster: drill
  session_ttl: %s
zoom:
  token_url: %s/oauth/token
  account_id: acct-drill
  client_id: drill-client
  subscription_url: ws://%s/ws?subscriptionId=sub-%s
  heartbeat_interval: 5s
  watchdog_timeout: 15s
recorder:
  url: %s
rules:
  pause_on_hold: %t
`, name, filepath.Join(l.dir, name), hp, px.Addr(), l.ttl, l.zoomURL, strings.TrimPrefix(l.zoomURL, "http://"), name, l.recURL, l.pause)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	p := newProc("node-"+name, l.bin, logDir, []string{"ZCC_ZOOM_CLIENT_SECRET=" + l.secret, "ZCC_ZOOM_SECRET_TOKEN=" + signing},
		"run", "--config", cfgPath)
	if err := p.start(); err != nil {
		return err
	}
	l.mu.Lock()
	l.procs[name], l.urls[name] = p, url
	l.mu.Unlock()
	return l.waitHTTP(ctx, url+"/healthz", p)
}

// waitHTTP polls url until it answers 200 or the process exits.
func (l *Local) waitHTTP(ctx context.Context, url string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s exited during start-up; see %s", p.name, p.logs)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := l.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := wait.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready after 30s; see %s", p.name, p.logs)
}

// Fault implements Backend.
func (l *Local) Fault(_ context.Context, node, action string) error {
	p := l.proc(node)
	if p == nil {
		return fmt.Errorf("drill: no node %q", node)
	}
	switch action {
	case ActKill:
		return p.signal(syscall.SIGKILL)
	case ActStop:
		return p.signal(syscall.SIGTERM)
	case ActPause:
		return p.signal(sigPause)
	case ActResume:
		return p.signal(sigResume)
	case ActPartition:
		l.proxies[node].SetMode(faultnet.Blackhole)
		return nil
	case ActHeal:
		l.proxies[node].SetMode(faultnet.Pass)
		return nil
	}
	return fmt.Errorf("drill: unknown fault %q", action)
}

// Running implements Backend.
func (l *Local) Running(node string) bool {
	p := l.proc(node)
	return p != nil && p.running()
}

// WaitExit implements Backend.
func (l *Local) WaitExit(ctx context.Context, node string) (int, error) {
	p := l.proc(node)
	select {
	case <-p.exited():
		return p.exitCode(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Restart implements Backend: the node starts again on a fresh HTTP port
// (its old one may have been taken meanwhile), with its data kept.
func (l *Local) Restart(ctx context.Context, node string) error {
	p := l.proc(node)
	if p.running() {
		return fmt.Errorf("drill: node %s is still running", node)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = l.startNode(ctx, node, l.signing); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// StopRecorder stops the reference recorder with SIGKILL (kill) or SIGTERM
// and returns its exit code (-1 for death by signal) once it has exited,
// or ctx's error.
func (l *Local) StopRecorder(ctx context.Context, kill bool) (int, error) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := l.recorder.signal(sig); err != nil {
		return 0, err
	}
	select {
	case <-l.recorder.exited():
		return l.recorder.exitCode(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("recorder did not exit: %w", ctx.Err())
	}
}

// StartRecorder starts the reference recorder again, on the same address
// and state file (it replays its journal), and returns once its ledger
// answers.
func (l *Local) StartRecorder(ctx context.Context) error {
	if l.recorder.running() {
		return errors.New("drill: the recorder is still running")
	}
	if err := l.recorder.start(); err != nil {
		return err
	}
	return l.waitHTTP(ctx, l.recURL+"/v1/ledger", l.recorder)
}

// StopEtcd implements Backend: the single local member stops gracefully.
func (l *Local) StopEtcd(_ context.Context, _ string) (string, error) {
	l.etcd.stop(10 * time.Second)
	return "etcd", nil
}

// StartEtcd implements Backend.
func (l *Local) StartEtcd(ctx context.Context, _ string) error {
	if err := l.etcd.start(); err != nil {
		return err
	}
	return l.waitHTTP(ctx, l.etcdURL+"/health", l.etcd)
}

// Shutdown implements Backend: nodes first (SIGCONT in case one is paused),
// then the simulators and etcd.
func (l *Local) Shutdown() {
	l.once.Do(func() {
		var wg sync.WaitGroup
		l.mu.Lock()
		procs := make([]*proc, 0, len(l.procs))
		for _, p := range l.procs {
			procs = append(procs, p)
		}
		l.mu.Unlock()
		for _, p := range procs {
			wg.Add(1)
			go func(p *proc) {
				defer wg.Done()
				_ = p.signal(sigResume)
				p.stop(10 * time.Second)
			}(p)
		}
		wg.Wait()
		for _, p := range []*proc{l.zoom, l.recorder, l.etcd} {
			if p != nil {
				p.stop(5 * time.Second)
			}
		}
		for _, px := range l.proxies {
			px.Close()
		}
	})
}
