package drill

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/verify"
	"github.com/zccadapter/zccadapter/wait"
)

// Options configure a drill.
type Options struct {
	// Scenario to run. Default: DefaultScenario().
	Scenario *Scenario
	// Binary is the zccadapter executable for the local backend. Default:
	// this executable.
	Binary string
	// Backend to run against. Default: a Local backend in WorkDir.
	Backend Backend
	// WorkDir receives configs, data and logs. Default: a new temporary
	// directory, removed after a passing run unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// Progress receives human-readable progress lines (nil: none).
	Progress io.Writer
	// Live, when set (a terminal), also gets a live status line, redrawn
	// every second: elapsed, roles, events, commands, failovers.
	Live bool
	// Timeline, when set, is the path of an HTML timeline written at the
	// end: roles per node, faults, and every segment.
	Timeline string
	// NodeClient reads the nodes' /status: the bearer token and https when
	// the nodes require them (doctor.NewNodeClient). It must not set
	// Timeout. nil: plain HTTP, no token.
	NodeClient *http.Client
	Logger     zerolog.Logger
}

// Report is the drill's result, written as JSON by --report.
type Report struct {
	Scenario   string             `json:"scenario"`
	Verdict    string             `json:"verdict"` // "pass", "fail" or "interrupted"
	StartedAt  time.Time          `json:"started_at"`
	DurationMS int64              `json:"duration_ms"`
	WorkDir    string             `json:"work_dir,omitempty"`
	Logs       string             `json:"logs,omitempty"`
	Settings   map[string]any     `json:"settings"`
	Failovers  []Failover         `json:"failovers"`
	Invariants []verify.Invariant `json:"invariants"`
	Counts     Counts             `json:"counts"`
	Errors     []string           `json:"errors,omitempty"`
	// Roles are the role changes of every node, sampled every 100ms.
	Roles []RoleSample `json:"roles,omitempty"`
	// Markers are the injected faults and other actions, in order.
	Markers []Marker `json:"markers,omitempty"`
	// RecorderRestarts are the reference recorder's restarts
	// (restart-recorder), in order.
	RecorderRestarts []RecorderRestart `json:"recorder_restarts,omitempty"`
}

// RecorderRestart is one stop and start of the reference recorder on its
// state file.
type RecorderRestart struct {
	Signal string    `json:"signal"` // term or kill
	StopAt time.Time `json:"stop_at"`
	// DownMS: signal → the recorder answers again.
	DownMS   float64 `json:"down_ms"`
	ExitCode int     `json:"exit_code"` // -1 for death by signal
	// EntriesBefore is the ledger's length read just before the signal;
	// EntriesAfter its length once the recorder answered again, replayed
	// from the state file. Pass: the ledger came back whole (every entry
	// read before, in place) and a SIGTERM exited 0.
	EntriesBefore int  `json:"entries_before"`
	EntriesAfter  int  `json:"entries_after"`
	Pass          bool `json:"pass"`
}

// Failover is one injected leader fault and its measured takeover.
type Failover struct {
	Kind string `json:"kind"` // crash (SIGKILL), graceful (SIGTERM), pause (SIGSTOP), partition, etcd-restart
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
	// MalformedPerNode, QuarantinedPerNode and BadSignaturePerNode are
	// what each node refused or kept aside, summed over all of its runs
	// (sampled every 100 ms, and at the end): its /status
	// events_malformed, quarantine.put (what it put in the quarantine) and
	// events_bad_signature.
	MalformedPerNode    map[string]int64 `json:"events_malformed_per_node"`
	QuarantinedPerNode  map[string]int64 `json:"events_quarantined_per_node,omitempty"`
	BadSignaturePerNode map[string]int64 `json:"events_bad_signature_per_node"`
}

type drill struct {
	o   Options
	sc  *Scenario
	be  Backend
	rep *Report
	hc  *http.Client
	log zerolog.Logger
	t0  time.Time
	bg  sync.WaitGroup // scheduled resumes and heals
	mu  sync.Mutex     // guards rep.Errors from background work
	smp *sampler
	// ledger is the recorder's final ledger (for the timeline).
	ledger rcapi.Ledger
}

// Run runs the scenario. It blocks until the drill has finished and
// everything the backend started has stopped, also when ctx ends early
// (Ctrl-C): then it returns ctx's error with the partial report. The
// report's Verdict says whether every expectation held; err is only for a
// drill that could not run.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Scenario == nil {
		o.Scenario = DefaultScenario()
	}
	sc := o.Scenario
	if o.Backend == nil {
		if o.Binary == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("drill: find own executable: %w", err)
			}
			o.Binary = exe
		}
		if o.WorkDir == "" {
			dir, err := os.MkdirTemp("", "zccadapter-drill-")
			if err != nil {
				return nil, fmt.Errorf("drill: work dir: %w", err)
			}
			o.WorkDir = dir
		}
		o.Backend = NewLocal(o.Binary, o.WorkDir, sc)
	}
	t := sc.Traffic
	d := &drill{o: o, sc: sc, be: o.Backend, hc: &http.Client{Timeout: 3 * time.Second}, log: o.Logger,
		rep: &Report{Scenario: sc.Name, StartedAt: time.Now().UTC(), WorkDir: o.WorkDir, Settings: map[string]any{
			"nodes": sc.Nodes, "traffic": t.Duration.String(), "agents": t.Agents, "calls_per_second": t.CallsPerSecond,
			"min_call": t.MinCall.String(), "max_call": t.MaxCall.String(), "seed": t.Seed,
			"session_ttl": sc.SessionTTL.String(), "pause_on_hold": *sc.PauseOnHold,
		}}}
	d.smp = &sampler{d: d, last: map[string]string{}, bad: map[string]*badInput{}}
	err := d.run(ctx)
	d.be.Shutdown()
	d.bg.Wait()
	d.rep.Roles, d.rep.Markers = d.smp.changes, d.smp.markers
	d.rep.DurationMS = time.Since(d.rep.StartedAt).Milliseconds()
	if err != nil {
		d.rep.Errors = append(d.rep.Errors, err.Error())
	}
	d.rep.Logs = d.be.Logs()
	d.rep.Verdict = "pass"
	if len(d.rep.Errors) > 0 || len(d.rep.Invariants) == 0 {
		d.rep.Verdict = "fail"
	}
	for _, inv := range d.rep.Invariants {
		if !inv.Pass {
			d.rep.Verdict = "fail"
		}
	}
	if ctx.Err() != nil {
		d.rep.Verdict = "interrupted"
		d.rep.Errors = []string{"interrupted before the checks ran"}
	}
	if o.Timeline != "" {
		// Written once the verdict and the duration are known.
		if terr := WriteTimeline(o.Timeline, d.rep, d.ledger); terr != nil {
			d.rep.Errors = append(d.rep.Errors, terr.Error())
			d.rep.Verdict = "fail"
		}
	}
	if d.rep.Verdict == "pass" && !o.KeepWorkDir && o.WorkDir != "" {
		os.RemoveAll(o.WorkDir)
		d.rep.WorkDir, d.rep.Logs = "", ""
	}
	if ctx.Err() != nil {
		return d.rep, ctx.Err()
	}
	return d.rep, nil
}

func (d *drill) progress(format string, args ...any) {
	if d.o.Progress != nil {
		clear := ""
		if d.o.Live {
			clear = "\r\033[K"
		}
		fmt.Fprintf(d.o.Progress, "%s%7.1fs  %s\n", clear, time.Since(d.rep.StartedAt).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (d *drill) fail(err error) {
	d.mu.Lock()
	d.rep.Errors = append(d.rep.Errors, err.Error())
	d.mu.Unlock()
}

func (d *drill) run(ctx context.Context) error {
	sc := d.sc
	d.progress("scenario %s: %s", sc.Name, sc.Description)
	for _, a := range sc.Actions {
		if _, ok := d.be.(recorderRestarter); a.Do == ActRestartRec && !ok {
			return fmt.Errorf("%s at %s: not supported by the %T backend (it cannot stop and start the reference recorder on its state file); run this scenario on the local backend", a.Do, a.At, d.be)
		}
	}
	if err := d.be.Start(ctx); err != nil {
		return err
	}
	for _, n := range sc.NodeNames() {
		if err := d.waitReady(ctx, n, 30*time.Second); err != nil {
			return err
		}
	}
	leader, _, err := d.waitLeader(ctx, "", 0, 30*time.Second)
	if err != nil {
		return err
	}
	d.progress("cluster up: etcd, simulated zoom, recorder, %d nodes; leader is %s", sc.Nodes, leader)
	sctx, stopSampler := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		var live io.Writer
		if d.o.Live {
			live = d.o.Progress
		}
		d.smp.run(sctx, live)
	}()
	defer func() { stopSampler(); sampling.Wait() }()
	if len(sc.Zoom) > 0 {
		if err := d.postJSON(ctx, d.be.ZoomURL()+"/sim/settings", sc.Zoom, nil); err != nil {
			return fmt.Errorf("zoom settings: %w", err)
		}
	}
	t := sc.Traffic
	tcfg := traffic.Config{Seed: t.Seed, Agents: t.Agents, CallsPerSecond: t.CallsPerSecond,
		MinCall: traffic.Duration(t.MinCall), MaxCall: traffic.Duration(t.MaxCall),
		HoldProbability: t.HoldProbability, TransferProbability: t.TransferProbability, OutboundFraction: t.OutboundFraction,
		AccountID: "acct-drill"}
	d.progress("traffic: %d agents, %.1f calls/s, calls %s–%s, for %s", t.Agents, t.CallsPerSecond, t.MinCall, t.MaxCall, t.Duration)
	if err := d.postJSON(ctx, d.be.ZoomURL()+"/sim/traffic/start", tcfg, nil); err != nil {
		return fmt.Errorf("start traffic: %w", err)
	}
	d.t0 = time.Now()
	for _, a := range sc.Actions {
		if err := wait.Sleep(ctx, time.Until(d.t0.Add(a.At))); err != nil {
			return err
		}
		if err := d.act(ctx, a); err != nil {
			return fmt.Errorf("%s %s at %s: %w", a.Do, a.Node, a.At, err)
		}
	}
	if err := wait.Sleep(ctx, time.Until(d.t0.Add(t.Duration))); err != nil {
		return err
	}
	d.bg.Wait()
	d.progress("traffic stops; every active call ends")
	var truth traffic.Truth
	if err := d.postJSON(ctx, d.be.ZoomURL()+"/sim/traffic/stop", struct{}{}, &truth); err != nil {
		return fmt.Errorf("stop traffic: %w", err)
	}
	deadline := time.Now().Add(sc.Settle)
	var ledger rcapi.Ledger
	for {
		var err error
		if ledger, err = readLedger(ctx, d.hc, d.be.RecorderURL()); err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		if g1, g2 := verify.CompareTruth(truth, ledger); g1.Pass && g2.Pass || time.Now().After(deadline) {
			break
		}
		if err := wait.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	d.ledger = ledger
	if d.o.WorkDir != "" {
		// Evidence for a failed run: the recorder's ledger and the truth.
		for name, v := range map[string]any{"ledger.json": ledger, "truth.json": truth} {
			if b, err := json.MarshalIndent(v, "", " "); err == nil {
				_ = os.WriteFile(filepath.Join(d.o.WorkDir, name), b, 0o644)
			}
		}
	}
	d.progress("verifying %d segments against %d ledger entries", len(truth.Segments), len(ledger.Entries))
	d.verify(ctx, truth, ledger)
	return nil
}

// resolve turns "leader"/"standby" into a node name.
func (d *drill) resolve(ctx context.Context, n string) (string, adapter.NodeStatus, error) {
	switch n {
	case "leader":
		return d.waitLeader(ctx, "", 0, d.sc.SessionTTL+15*time.Second)
	case "standby":
		for _, name := range d.sc.NodeNames() {
			if s, err := d.status(ctx, name); err == nil && s.Role == adapter.RoleStandby {
				return name, s, nil
			}
		}
		return "", adapter.NodeStatus{}, fmt.Errorf("no standby")
	}
	s, _ := d.status(ctx, n)
	return n, s, nil
}

func (d *drill) act(ctx context.Context, a Action) error {
	switch a.Do {
	case ActKill, ActStop, ActPause, ActPartition:
		return d.fault(ctx, a)
	case ActResume, ActHeal:
		node, _, err := d.resolve(ctx, a.Node)
		if err != nil {
			return err
		}
		d.smp.mark(a.Do + " " + node)
		d.progress("%s %s", a.Do, node)
		return d.be.Fault(ctx, node, a.Do)
	case ActRestart:
		node, _, err := d.resolve(ctx, a.Node)
		if err != nil {
			return err
		}
		if err := d.be.Restart(ctx, node); err != nil {
			return err
		}
		d.progress("node %s restarted", node)
		return d.waitReady(ctx, node, 30*time.Second)
	case ActRestartEtcd:
		return d.restartEtcd(ctx, a)
	case ActZoomSettings:
		d.progress("zoom settings %v", a.Settings)
		return d.postJSON(ctx, d.be.ZoomURL()+"/sim/settings", a.Settings, nil)
	case ActZoomFaults:
		sub, err := d.subscription(ctx, a.Subscription)
		if err != nil {
			return err
		}
		d.smp.mark("zoom faults " + sub)
		d.progress("zoom faults on %s: %v", sub, a.Settings)
		return d.postJSON(ctx, d.be.ZoomURL()+"/sim/subscriptions/"+url.PathEscape(sub)+"/faults", a.Settings, nil)
	case ActZoomDrop:
		sub, err := d.subscription(ctx, a.Subscription)
		if err != nil {
			return err
		}
		d.progress("zoom drops the socket of %s", sub)
		return d.postJSON(ctx, d.be.ZoomURL()+"/sim/subscriptions/"+url.PathEscape(sub)+"/drop", struct{}{}, nil)
	case ActRecorder:
		d.smp.mark("recorder faults")
		d.progress("recorder faults: %v", a.Settings)
		return d.postJSON(ctx, d.be.RecorderURL()+"/sim/faults", a.Settings, nil)
	case ActRestartRec:
		return d.restartRecorder(ctx, a)
	case ActEvents:
		for _, ev := range a.Events {
			raw, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			body := map[string]any{"event": json.RawMessage(raw)}
			if len(a.Subscriptions) > 0 {
				body["subscriptions"] = a.Subscriptions
			}
			if err := d.postJSON(ctx, d.be.ZoomURL()+"/sim/events", body, nil); err != nil {
				return err
			}
		}
		var notes []string
		for _, r := range a.Raw {
			content, err := r.Content(time.Now())
			if err != nil {
				return err
			}
			body := map[string]any{}
			if utf8.Valid(content) {
				body["content"] = string(content)
			} else {
				body["content_base64"] = base64.StdEncoding.EncodeToString(content)
			}
			if len(a.Subscriptions) > 0 {
				body["subscriptions"] = a.Subscriptions
			}
			if err := d.postJSON(ctx, d.be.ZoomURL()+"/sim/events", body, nil); err != nil {
				return fmt.Errorf("raw event %q: %w", r.Note, err)
			}
			notes = append(notes, fmt.Sprintf("%s (%d bytes)", cmp.Or(r.Note, "raw"), len(content)))
		}
		if len(a.Raw) > 0 {
			d.smp.mark(fmt.Sprintf("%d raw events", len(a.Raw)))
			d.progress("sent %d raw events: %s", len(a.Raw), strings.Join(notes, ", "))
		}
		if len(a.Events) > 0 {
			d.progress("sent %d literal events", len(a.Events))
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", a.Do)
}

// subscription resolves "leader"/"standby" to that node's subscription.
func (d *drill) subscription(ctx context.Context, sub string) (string, error) {
	if sub != "leader" && sub != "standby" {
		return sub, nil
	}
	node, _, err := d.resolve(ctx, sub)
	if err != nil {
		return "", err
	}
	return "sub-" + node, nil
}

// fault injects kill, stop, pause or partition; when the node led, it
// measures the failover; kill and stop restart the node unless told not to.
func (d *drill) fault(ctx context.Context, a Action) error {
	node, st, err := d.resolve(ctx, a.Node)
	if err != nil {
		return err
	}
	wasLeader := st.Role == adapter.RoleLeader
	faultAt := time.Now()
	if err := d.be.Fault(ctx, node, a.Do); err != nil {
		return err
	}
	d.smp.mark(a.Do + " " + node)
	d.progress("%s %s (%s)", a.Do, node, st.Role)
	if a.For > 0 && (a.Do == ActPause || a.Do == ActPartition) {
		undo := map[string]string{ActPause: ActResume, ActPartition: ActHeal}[a.Do]
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if wait.Sleep(ctx, time.Until(faultAt.Add(a.For))) != nil {
				return
			}
			if err := d.be.Fault(ctx, node, undo); err != nil {
				d.fail(fmt.Errorf("%s %s: %w", undo, node, err))
				return
			}
			d.smp.mark(undo + " " + node)
			d.progress("%s %s after %s", undo, node, a.For)
		}()
	}
	if wasLeader {
		fo, err := d.measure(ctx, a.Do, node, st.Epoch, faultAt)
		d.rep.Failovers = append(d.rep.Failovers, fo)
		if err != nil {
			return err
		}
		d.progress("%s failover %s → %s: detected %.0f ms, takeover %.0f ms (budget %.0f ms)",
			fo.Kind, fo.From, fo.To, fo.DetectMS, fo.TakeoverMS, fo.BudgetMS)
	}
	if a.Do != ActKill && a.Do != ActStop {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	code, err := d.be.WaitExit(wctx, node)
	cancel()
	if err != nil {
		return fmt.Errorf("node %s did not exit 15s after %s", node, a.Do)
	}
	if wasLeader {
		fo := &d.rep.Failovers[len(d.rep.Failovers)-1]
		fo.ExitMS, fo.ExitCode = ms(time.Since(faultAt)), code
		if a.Do == ActStop && code != 0 {
			fo.Pass = false
		}
	}
	if a.Restart != nil && !*a.Restart {
		return nil
	}
	if err := d.be.Restart(ctx, node); err != nil {
		return err
	}
	if err := d.waitReady(ctx, node, 30*time.Second); err != nil {
		return err
	}
	d.progress("node %s restarted as standby", node)
	return nil
}

// failoverKinds maps a fault to its failover kind and G4 budget.
func (d *drill) budget(action string) (string, float64) {
	crash := float64((d.sc.SessionTTL + time.Second).Milliseconds())
	switch action {
	case ActStop:
		return "graceful", 250
	case ActKill:
		return "crash", crash
	case ActPause:
		return "pause", crash
	case ActPartition:
		return "partition", crash
	}
	return action, crash
}

// measure waits for a leader other than from with a higher epoch and times
// the takeover at the recorder.
func (d *drill) measure(ctx context.Context, action, from string, fromEpoch int64, faultAt time.Time) (Failover, error) {
	kind, budget := d.budget(action)
	fo := Failover{Kind: kind, From: from, FromEpoch: fromEpoch, FaultAt: faultAt, BudgetMS: budget}
	to, ts, err := d.waitLeader(ctx, from, fromEpoch, d.sc.SessionTTL+15*time.Second)
	if err != nil {
		return fo, fmt.Errorf("%s failover from %s: %w", kind, from, err)
	}
	fo.To, fo.ToEpoch = to, ts.Epoch
	fo.DetectMS = ms(ts.ElectedAt.Sub(faultAt))
	d.takeover(ctx, &fo)
	return fo, nil
}

// takeover reads when the recorder accepted fo.ToEpoch.
func (d *drill) takeover(ctx context.Context, fo *Failover) {
	ledger, err := readLedger(ctx, d.hc, d.be.RecorderURL())
	if err != nil {
		d.fail(err)
		return
	}
	for _, e := range ledger.Entries {
		if e.Kind == "epoch" && e.Claim != nil && e.Claim.Epoch == fo.ToEpoch && e.Result == rcapi.ResultApplied {
			fo.TakeoverMS = ms(e.ReceivedAt.Sub(fo.FaultAt))
		}
	}
	fo.Pass = fo.TakeoverMS > 0 && fo.TakeoverMS <= fo.BudgetMS
}
