// Package drill runs a failover drill against a real cluster of local OS
// processes: one etcd member, the simulated Zoom, the reference recorder and
// RIS nodes A and B, each on its own subscription. It runs call traffic,
// SIGKILLs the leader mid-traffic and restarts it as standby, later SIGTERMs
// the new leader, then verifies the guarantees of DESIGN §3 from the
// recorder's ledger and the simulator's ground truth:
//
//	G1 no lost command      every recording action of the truth reached the recorder
//	G2 no duplicate effect  no segment got an action twice; repeats were absorbed by id
//	G3 fencing              no command was applied with an epoch lower than one applied before it
//	G4 failover time        graceful takeover < 250ms, crash takeover < session TTL + 1s
//	G6 order                the recorder refused no command as out of order
//
// Times are measured on one machine clock: the fault's moment in the drill,
// the election's in the node's status, the takeover's at the recorder (the
// new leader's epoch claim).
package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/verify"
)

// Options configure a drill. Zero values take the defaults shown.
type Options struct {
	// Binary is the zccadapter executable to run. Default: this executable.
	Binary string
	// WorkDir receives configs, data and logs. Default: a new temporary
	// directory, removed after a passing run unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// Traffic is how long calls arrive. Default 45s.
	Traffic time.Duration
	// Agents, CallsPerSecond, MinCall, MaxCall, Seed shape the traffic.
	// Defaults 80 agents, 2 calls/s, calls 5s–60s, seed 1.
	Agents         int
	CallsPerSecond float64
	MinCall        time.Duration
	MaxCall        time.Duration
	Seed           int64
	// SessionTTL of the nodes. Default 5s.
	SessionTTL time.Duration
	// CrashAt and GracefulAt are when, after traffic starts, the leader is
	// SIGKILLed and the (new) leader SIGTERMed. Defaults: 25% and 60% of
	// Traffic.
	CrashAt, GracefulAt time.Duration
	// Settle bounds the wait for the ledger to match the truth after the
	// traffic drains. Default 30s.
	Settle time.Duration
	// Progress receives human-readable progress lines (nil: none).
	Progress io.Writer
	Logger   zerolog.Logger
}

func (o *Options) defaults() error {
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("drill: find own executable: %w", err)
		}
		o.Binary = exe
	}
	if o.Traffic == 0 {
		o.Traffic = 45 * time.Second
	}
	if o.Agents == 0 {
		o.Agents = 80
	}
	if o.CallsPerSecond == 0 {
		o.CallsPerSecond = 2
	}
	if o.MinCall == 0 {
		o.MinCall = 5 * time.Second
	}
	if o.MaxCall == 0 {
		o.MaxCall = 60 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 5 * time.Second
	}
	if o.CrashAt == 0 {
		o.CrashAt = o.Traffic / 4
	}
	if o.GracefulAt == 0 {
		o.GracefulAt = o.Traffic * 6 / 10
	}
	if o.Settle == 0 {
		o.Settle = 30 * time.Second
	}
	switch {
	case o.MaxCall < o.MinCall:
		return fmt.Errorf("drill: max call %s is below min call %s", o.MaxCall, o.MinCall)
	case o.CrashAt >= o.GracefulAt || o.GracefulAt >= o.Traffic:
		return fmt.Errorf("drill: need crash-at (%s) < graceful-at (%s) < traffic (%s)", o.CrashAt, o.GracefulAt, o.Traffic)
	case o.GracefulAt-o.CrashAt < o.SessionTTL+3*time.Second:
		return fmt.Errorf("drill: graceful-at must come at least session TTL + 3s after crash-at, to let the first failover finish")
	}
	return nil
}

// Report is the drill's result, written as JSON by --report.
type Report struct {
	Verdict    string             `json:"verdict"` // "pass" or "fail"
	StartedAt  time.Time          `json:"started_at"`
	DurationMS int64              `json:"duration_ms"`
	WorkDir    string             `json:"work_dir"`
	Settings   map[string]any     `json:"settings"`
	Failovers  []Failover         `json:"failovers"`
	Invariants []verify.Invariant `json:"invariants"`
	Counts     Counts             `json:"counts"`
	Errors     []string           `json:"errors,omitempty"`
}

// Failover is one injected leader fault and its measured takeover.
type Failover struct {
	Kind string `json:"kind"` // crash (SIGKILL) or graceful (SIGTERM)
	From string `json:"from"`
	To   string `json:"to"`
	// FromEpoch and ToEpoch are the fencing tokens of the two terms.
	FromEpoch int64 `json:"from_epoch"`
	ToEpoch   int64 `json:"to_epoch"`
	// FaultAt is when the signal was sent.
	FaultAt time.Time `json:"fault_at"`
	// DetectMS: fault → the successor won the election.
	DetectMS float64 `json:"detect_ms"`
	// TakeoverMS: fault → the recorder accepted the successor's epoch.
	TakeoverMS float64 `json:"takeover_ms"`
	// FirstCommandMS: fault → the first command of the new epoch applied
	// (0 if the term sent none).
	FirstCommandMS float64 `json:"first_command_ms"`
	// BudgetMS is the G4 limit for this kind.
	BudgetMS float64 `json:"budget_ms"`
	// ExitMS: signal → the old process exited; ExitCode its status.
	ExitMS   float64 `json:"exit_ms"`
	ExitCode int     `json:"exit_code"`
	Pass     bool    `json:"pass"`
}

// Counts summarise the run.
type Counts struct {
	Calls             int              `json:"calls"`
	Answered          int              `json:"answered"`
	Transfers         int              `json:"transfers"`
	Holds             int              `json:"holds"`
	EventsSent        int              `json:"events_sent"`
	EventsUndelivered int              `json:"events_undelivered"`
	Segments          int              `json:"segments"`
	LedgerEntries     int              `json:"ledger_entries"`
	CommandsApplied   int              `json:"commands_applied"`
	Duplicates        int              `json:"duplicates_absorbed"`
	StaleRejected     int              `json:"stale_epoch_rejected"`
	Invalid           int              `json:"invalid_transitions"`
	EventsPerNode     map[string]int64 `json:"events_received_per_node"`
	HandedOffPerNode  map[string]int64 `json:"events_handed_off_per_node"`
}

type node struct {
	name string
	p    *proc
	http string
}

type drill struct {
	o        Options
	rep      *Report
	etcd     *proc
	zoom     *proc
	recorder *proc
	nodes    map[string]*node
	zoomURL  string
	recURL   string
	hc       *http.Client
	log      zerolog.Logger
}

// Run runs the drill. It blocks until the drill has finished and every
// process it started has exited, also when ctx ends early (Ctrl-C): then it
// returns ctx's error with the partial report. The report's Verdict says
// whether every guarantee held; err is only for a drill that could not run.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "zccadapter-drill-")
		if err != nil {
			return nil, fmt.Errorf("drill: work dir: %w", err)
		}
		o.WorkDir = dir
	}
	d := &drill{o: o, nodes: map[string]*node{}, hc: &http.Client{Timeout: 3 * time.Second}, log: o.Logger,
		rep: &Report{StartedAt: time.Now().UTC(), WorkDir: o.WorkDir, Settings: map[string]any{
			"traffic": o.Traffic.String(), "agents": o.Agents, "calls_per_second": o.CallsPerSecond,
			"min_call": o.MinCall.String(), "max_call": o.MaxCall.String(), "seed": o.Seed,
			"session_ttl": o.SessionTTL.String(), "crash_at": o.CrashAt.String(), "graceful_at": o.GracefulAt.String(),
		}}}
	err := d.run(ctx)
	d.shutdown()
	d.rep.DurationMS = time.Since(d.rep.StartedAt).Milliseconds()
	if err != nil {
		d.rep.Errors = append(d.rep.Errors, err.Error())
	}
	d.rep.Verdict = "pass"
	if err != nil || len(d.rep.Invariants) == 0 {
		d.rep.Verdict = "fail"
	}
	for _, inv := range d.rep.Invariants {
		if !inv.Pass {
			d.rep.Verdict = "fail"
		}
	}
	if d.rep.Verdict == "pass" && !o.KeepWorkDir {
		os.RemoveAll(o.WorkDir)
		d.rep.WorkDir = ""
	}
	if ctx.Err() != nil {
		return d.rep, ctx.Err()
	}
	return d.rep, nil
}

func (d *drill) progress(format string, args ...any) {
	if d.o.Progress != nil {
		fmt.Fprintf(d.o.Progress, "%7.1fs  %s\n", time.Since(d.rep.StartedAt).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (d *drill) run(ctx context.Context) error {
	if err := d.startAll(ctx); err != nil {
		return err
	}
	d.progress("cluster up: etcd, simulated zoom, recorder, nodes a and b")
	leader, _, err := d.waitLeader(ctx, "", 0, 30*time.Second)
	if err != nil {
		return err
	}
	d.progress("leader is %s; starting traffic (%d agents, %.1f calls/s, calls %s–%s) for %s",
		leader, d.o.Agents, d.o.CallsPerSecond, d.o.MinCall, d.o.MaxCall, d.o.Traffic)
	tcfg := traffic.Config{Seed: d.o.Seed, Agents: d.o.Agents, CallsPerSecond: d.o.CallsPerSecond,
		MinCall: traffic.Duration(d.o.MinCall), MaxCall: traffic.Duration(d.o.MaxCall), AccountID: "acct-drill"}
	if err := d.postJSON(ctx, d.zoomURL+"/sim/traffic/start", tcfg, nil); err != nil {
		return fmt.Errorf("start traffic: %w", err)
	}
	t0 := time.Now()

	for _, f := range []struct {
		kind string
		sig  syscall.Signal
		at   time.Duration
	}{{"crash", syscall.SIGKILL, d.o.CrashAt}, {"graceful", syscall.SIGTERM, d.o.GracefulAt}} {
		if err := sleepCtx(ctx, time.Until(t0.Add(f.at))); err != nil {
			return err
		}
		fo, err := d.failover(ctx, f.kind, f.sig)
		if err != nil {
			return err
		}
		d.rep.Failovers = append(d.rep.Failovers, fo)
		d.progress("%s failover %s → %s: detected %.0f ms, takeover %.0f ms (budget %.0f ms)",
			fo.Kind, fo.From, fo.To, fo.DetectMS, fo.TakeoverMS, fo.BudgetMS)
	}
	if err := sleepCtx(ctx, time.Until(t0.Add(d.o.Traffic))); err != nil {
		return err
	}
	d.progress("traffic stops; every active call ends")
	var truth traffic.Truth
	if err := d.postJSON(ctx, d.zoomURL+"/sim/traffic/stop", struct{}{}, &truth); err != nil {
		return fmt.Errorf("stop traffic: %w", err)
	}
	// Wait for the ledger to settle on the truth (handoffs, retries).
	deadline := time.Now().Add(d.o.Settle)
	var ledger rcapi.Ledger
	for {
		if err := d.getJSON(ctx, d.recURL+"/v1/ledger", &ledger); err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		if g1, _ := verify.CompareTruth(truth, ledger); g1.Pass || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	d.progress("verifying %d segments against %d ledger entries", len(truth.Segments), len(ledger.Entries))
	d.verify(ctx, truth, ledger)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *drill) startAll(ctx context.Context) error {
	dir := d.o.WorkDir
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	ports := map[string]int{}
	for _, k := range []string{"etcd", "etcd-peer", "zoom", "recorder", "a", "b"} {
		p, err := freePort()
		if err != nil {
			return fmt.Errorf("drill: free port: %w", err)
		}
		ports[k] = p
	}
	secret := randomHex(24)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd"])
	d.etcd = newProc("etcd", d.o.Binary, logDir, nil, "etcd", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-url", etcdURL, "--listen-peer-url", fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-peer"]))
	d.zoomURL = fmt.Sprintf("http://127.0.0.1:%d", ports["zoom"])
	d.zoom = newProc("zoom", d.o.Binary, logDir, []string{"ZCC_SIM_CLIENT_SECRET=" + secret}, "sim", "zoom",
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports["zoom"]), "--account-id", "acct-drill", "--client-id", "drill-client",
		"--subscriptions", "sub-a,sub-b")
	d.recURL = fmt.Sprintf("http://127.0.0.1:%d", ports["recorder"])
	d.recorder = newProc("recorder", d.o.Binary, logDir, nil, "sim", "recorder", "--listen", fmt.Sprintf("127.0.0.1:%d", ports["recorder"]))
	for _, p := range []*proc{d.etcd, d.zoom, d.recorder} {
		if err := p.start(); err != nil {
			return err
		}
	}
	if err := d.waitHTTP(ctx, d.zoomURL+"/healthz", d.zoom); err != nil {
		return err
	}
	if err := d.waitHTTP(ctx, d.recURL+"/v1/ledger", d.recorder); err != nil {
		return err
	}
	if err := d.waitHTTP(ctx, etcdURL+"/health", d.etcd); err != nil {
		return err
	}
	for _, name := range []string{"a", "b"} {
		cfgPath := filepath.Join(dir, "node-"+name+".yaml")
		cfg := fmt.Sprintf(`node: %s
data_dir: %s
http_addr: 127.0.0.1:%d
log_level: debug
etcd:
  endpoints: ["127.0.0.1:%d"]
  cluster: drill
  session_ttl: %s
zoom:
  token_url: %s/oauth/token
  account_id: acct-drill
  client_id: drill-client
  subscription_url: ws://127.0.0.1:%d/ws?subscriptionId=sub-%s
  heartbeat_interval: 5s
  watchdog_timeout: 15s
recorder:
  url: %s
rules:
  pause_on_hold: true
`, name, filepath.Join(dir, name), ports[name], ports["etcd"], d.o.SessionTTL, d.zoomURL, ports["zoom"], name, d.recURL)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("drill: %w", err)
		}
		n := &node{name: name, http: fmt.Sprintf("http://127.0.0.1:%d", ports[name]),
			p: newProc("node-"+name, d.o.Binary, logDir, []string{"ZCC_ZOOM_CLIENT_SECRET=" + secret}, "run", "--config", cfgPath)}
		d.nodes[name] = n
		if err := n.p.start(); err != nil {
			return err
		}
	}
	for _, n := range d.nodes {
		if err := d.waitReady(ctx, n, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitHTTP polls url until it answers 200 or the process exits.
func (d *drill) waitHTTP(ctx context.Context, url string, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s exited during start-up; see %s", p.name, p.logs)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := d.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready after 30s; see %s", p.name, p.logs)
}

// waitReady waits until a node is leader or standby with its socket up.
func (d *drill) waitReady(ctx context.Context, n *node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !n.p.running() {
			return fmt.Errorf("node %s exited; see %s", n.name, n.p.logs)
		}
		if s, err := d.status(ctx, n); err == nil && s.SocketUp && (s.Role == adapter.RoleLeader || s.Role == adapter.RoleStandby) {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("node %s not ready after %s; see %s", n.name, limit, n.p.logs)
}

func (d *drill) status(ctx context.Context, n *node) (adapter.NodeStatus, error) {
	var s adapter.NodeStatus
	err := d.getJSON(ctx, n.http+"/status", &s)
	return s, err
}

// waitLeader waits for a live leader other than `not` with an epoch above
// minEpoch.
func (d *drill) waitLeader(ctx context.Context, not string, minEpoch int64, limit time.Duration) (string, adapter.NodeStatus, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for name, n := range d.nodes {
			if name == not || !n.p.running() {
				continue
			}
			s, err := d.status(ctx, n)
			if err == nil && s.Role == adapter.RoleLeader && s.Epoch > minEpoch {
				return name, s, nil
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return "", adapter.NodeStatus{}, err
		}
	}
	return "", adapter.NodeStatus{}, fmt.Errorf("no leader after %s", limit)
}

func (d *drill) failover(ctx context.Context, kind string, sig syscall.Signal) (Failover, error) {
	from, fs, err := d.waitLeader(ctx, "", 0, 10*time.Second)
	if err != nil {
		return Failover{}, err
	}
	fo := Failover{Kind: kind, From: from, FromEpoch: fs.Epoch, BudgetMS: 250}
	if kind == "crash" {
		fo.BudgetMS = float64((d.o.SessionTTL + time.Second).Milliseconds())
	}
	old := d.nodes[from]
	fo.FaultAt = time.Now()
	if err := old.p.signal(sig); err != nil {
		return fo, err
	}
	to, ts, err := d.waitLeader(ctx, from, fs.Epoch, d.o.SessionTTL+15*time.Second)
	if err != nil {
		return fo, fmt.Errorf("%s failover from %s: %w", kind, from, err)
	}
	fo.To, fo.ToEpoch = to, ts.Epoch
	fo.DetectMS = ms(ts.ElectedAt.Sub(fo.FaultAt))
	select {
	case <-old.p.exited():
	case <-time.After(15 * time.Second):
		return fo, fmt.Errorf("node %s did not exit 15s after %s", from, sig)
	}
	fo.ExitMS = ms(time.Since(fo.FaultAt))
	fo.ExitCode = old.p.exitCode()
	var ledger rcapi.Ledger
	if err := d.getJSON(ctx, d.recURL+"/v1/ledger", &ledger); err != nil {
		return fo, err
	}
	for _, e := range ledger.Entries {
		if e.Kind == "epoch" && e.Claim != nil && e.Claim.Epoch == ts.Epoch && e.Result == rcapi.ResultApplied {
			fo.TakeoverMS = ms(e.ReceivedAt.Sub(fo.FaultAt))
		}
	}
	fo.Pass = fo.TakeoverMS > 0 && fo.TakeoverMS <= fo.BudgetMS
	if kind == "graceful" && fo.ExitCode != 0 {
		fo.Pass = false
	}
	// Restart the old leader as a standby.
	if err := old.p.start(); err != nil {
		return fo, err
	}
	if err := d.waitReady(ctx, old, 30*time.Second); err != nil {
		return fo, err
	}
	d.progress("node %s restarted as standby", from)
	return fo, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (d *drill) shutdown() {
	for _, n := range d.nodes {
		n.p.stop(10 * time.Second)
	}
	for _, p := range []*proc{d.zoom, d.recorder, d.etcd} {
		if p != nil {
			p.stop(5 * time.Second)
		}
	}
}

func (d *drill) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return d.do(req, out)
}

func (d *drill) postJSON(ctx context.Context, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return d.do(req, out)
}

func (d *drill) do(req *http.Request, out any) error {
	hc := d.hc
	if req.Method == http.MethodPost {
		hc = &http.Client{Timeout: 2 * time.Minute} // traffic stop drains every call
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
