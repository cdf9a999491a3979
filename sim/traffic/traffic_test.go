package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// simulate runs m for runFor (fake time inside a synctest bubble, real time outside), then
// lets calls in progress go on for settle, then drains. It fails the test if Run or Drain
// misbehave.
func simulate(t *testing.T, m *Model, runFor, settle time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runFor)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if settle > 0 {
		time.Sleep(settle) // only inside a bubble: lets fake time pass for calls to end on their own
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer dcancel()
	if err := m.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

func newModel(t *testing.T, cfg Config, r *recorder) *Model {
	t.Helper()
	m, err := New(cfg, r.emit, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// storyMix counts kinds of calls seen in the events, to show a scenario covered them.
type storyMix struct {
	outbound, agentEnded, consumerHungUp, drainedInHold int
}

func mix(events []recorded, truth Truth) storyMix {
	var s storyMix
	groups, _ := byEngagement(events)
	for _, evs := range groups {
		if evs[0].object["engagement_direction"] == "outbound" {
			s.outbound++
		}
		for i, e := range evs {
			if e.name != evConsumerEnded || i == 0 {
				continue
			}
			switch evs[i-1].name {
			case evUserEnded:
				s.agentEnded++
			case evUserHold:
				s.drainedInHold++
			default:
				if _, ok := e.object["user_id"]; ok {
					s.consumerHungUp++
				}
			}
		}
	}
	return s
}

func TestStoriesNaturalEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		cfg := Config{
			Seed: 42, Agents: 20, CallsPerSecond: 1.5,
			MinCall: Duration(2 * time.Second), MaxCall: Duration(20 * time.Second),
			HoldProbability: 0.5, TransferProbability: 0.5, OutboundFraction: 0.2,
			QueueTimeout: Duration(4 * time.Second),
		}
		m := newModel(t, cfg, r)
		// Settle long enough for every call to end on its own: the longest story is a queue
		// wait, the talk, and the wrap-ups.
		simulate(t, m, 3*time.Minute, time.Minute)
		truth := checkAll(t, m, r)
		for _, s := range truth.Segments {
			if !s.Complete {
				t.Errorf("segment %s not complete", s.SegmentID)
			}
		}
		mx := mix(r.snapshot(), truth)
		t.Logf("truth: calls=%d answered=%d abandoned=%d transfers=%d holds=%d events=%d segments=%d mix=%+v",
			truth.Calls, truth.Answered, truth.Abandoned, truth.Transfers, truth.Holds, truth.Events, len(truth.Segments), mx)
		if truth.Transfers == 0 || truth.Holds == 0 || truth.Abandoned == 0 || mx.outbound == 0 ||
			mx.agentEnded == 0 || mx.consumerHungUp == 0 {
			t.Errorf("scenario did not cover every story: truth counters %+v, mix %+v", withoutSegments(truth), mx)
		}
		if mx.drainedInHold != 0 {
			t.Errorf("calls ended in hold without Drain: %d", mx.drainedInHold)
		}
		// Roster: every agent logged in with four events, and is free at the end.
		roster := 0
		for _, e := range r.snapshot() {
			if strings.HasPrefix(e.name, "user.") || e.name == evUserLogin || e.name == evUserStatusChanged {
				roster++
			}
		}
		if roster != 4*cfg.Agents {
			t.Errorf("roster events = %d, want %d", roster, 4*cfg.Agents)
		}
		for _, a := range m.Agents() {
			if a.Status != "ready" {
				t.Errorf("agent %s status %q after all calls ended, want ready", a.UserID, a.Status)
			}
		}
	})
}

func TestDrainEndsEveryCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		cfg := Config{
			Seed: 7, Agents: 40, CallsPerSecond: 10,
			MinCall: Duration(8 * time.Second), MaxCall: Duration(8 * time.Second),
			HoldProbability: 1, TransferProbability: 0.3, OutboundFraction: 0.2,
			QueueTimeout: Duration(time.Minute), // only Drain makes callers abandon
		}
		m := newModel(t, cfg, r)
		simulate(t, m, 20*time.Second, 0)
		truth := checkAll(t, m, r)
		if len(truth.Segments) == 0 {
			t.Fatal("no segments")
		}
		for _, s := range truth.Segments {
			if !s.Complete {
				t.Errorf("segment %s not complete after Drain: %v", s.SegmentID, s.Actions)
			}
		}
		mx := mix(r.snapshot(), truth)
		t.Logf("truth: calls=%d answered=%d abandoned=%d transfers=%d holds=%d mix=%+v",
			truth.Calls, truth.Answered, truth.Abandoned, truth.Transfers, truth.Holds, mx)
		if truth.Abandoned == 0 {
			t.Error("Drain made no queued caller abandon")
		}
		if mx.drainedInHold == 0 {
			t.Error("Drain ended no call in hold")
		}
		pausedStop := false
		for _, s := range truth.Segments {
			n := len(s.Actions)
			if n >= 2 && s.Actions[n-2] == "pause" && s.Actions[n-1] == "stop" {
				pausedStop = true
			}
		}
		if !pausedStop {
			t.Error("no paused segment was stopped by Drain")
		}

		// After Drain: nothing more happens, Drain again is a no-op, Run is refused.
		before := m.Truth()
		time.Sleep(time.Minute)
		if err := m.Drain(t.Context()); err != nil {
			t.Errorf("second Drain: %v", err)
		}
		if after := m.Truth(); !reflect.DeepEqual(before, after) {
			t.Error("Truth changed after Drain returned")
		}
		if err := m.Run(t.Context()); !errors.Is(err, ErrAlreadyRun) {
			t.Errorf("Run after Run: %v, want ErrAlreadyRun", err)
		}
	})
}

// TestRealTime runs with wall-clock time and short durations, as the simulated server does.
func TestRealTime(t *testing.T) {
	r := &recorder{}
	cfg := Config{
		Seed: 3, Agents: 4, CallsPerSecond: 40,
		MinCall: Duration(50 * time.Millisecond), MaxCall: Duration(300 * time.Millisecond),
		HoldProbability: 0.5, TransferProbability: 0.5,
		QueueTimeout: Duration(200 * time.Millisecond),
	}
	m := newModel(t, cfg, r)
	simulate(t, m, 1500*time.Millisecond, 0)
	truth := checkAll(t, m, r)
	for _, s := range truth.Segments {
		if !s.Complete {
			t.Errorf("segment %s not complete after Drain", s.SegmentID)
		}
	}
	if truth.Answered == 0 || truth.Abandoned == 0 {
		t.Errorf("want answered and abandoned calls, got %+v", truth)
	}
	t.Logf("truth: calls=%d answered=%d abandoned=%d transfers=%d holds=%d events=%d",
		truth.Calls, truth.Answered, truth.Abandoned, truth.Transfers, truth.Holds, truth.Events)
}

func TestUndeliveredMarking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{deliver: func(name string, object map[string]any) int {
			switch name {
			case evUserHold, evTaskCreated:
				return 0 // nobody subscribed to these
			}
			return 2
		}}
		cfg := Config{
			Seed: 11, Agents: 5, CallsPerSecond: 1,
			MinCall: Duration(2 * time.Second), MaxCall: Duration(10 * time.Second),
			HoldProbability: 0.5, QueueTimeout: Duration(5 * time.Second),
		}
		m := newModel(t, cfg, r)
		simulate(t, m, time.Minute, time.Minute)
		truth := checkAll(t, m, r) // the replay derives Undelivered on its own
		marked, clean := 0, 0
		for _, s := range truth.Segments {
			hasPause := slices.Contains(s.Actions, "pause")
			if s.Undelivered != hasPause {
				t.Errorf("segment %s: undelivered=%v, actions %v", s.SegmentID, s.Undelivered, s.Actions)
			}
			if s.Undelivered {
				marked++
			} else {
				clean++
			}
		}
		if marked == 0 || clean == 0 {
			t.Errorf("want both marked and clean segments, got %d marked, %d clean", marked, clean)
		}
		if truth.Undelivered != truth.Holds+truth.Calls-countOutbound(r.snapshot()) {
			t.Errorf("Undelivered = %d, want holds %d + inbound calls", truth.Undelivered, truth.Holds)
		}
	})
}

func withoutSegments(t Truth) Truth {
	t.Segments = nil
	return t
}

func countOutbound(events []recorded) int {
	n := 0
	for _, e := range events {
		if e.name == evEngagementStarted && e.object["engagement_direction"] == "outbound" {
			n++
		}
	}
	return n
}

func TestSameSeedSameStories(t *testing.T) {
	cfg := Config{
		Seed: 99, Agents: 4, CallsPerSecond: 3,
		MinCall: Duration(time.Second), MaxCall: Duration(10 * time.Second),
		QueueTimeout: Duration(3 * time.Second), OutboundFraction: 0.3,
	}
	type outcome struct {
		plans   map[int]callPlan
		agents  []Agent
		engIDs  map[string]bool
		started int
	}
	runOnce := func(t *testing.T, cfg Config) (o outcome) {
		synctest.Test(t, func(t *testing.T) {
			r := &recorder{}
			m := newModel(t, cfg, r)
			simulate(t, m, time.Minute, 0)
			checkAll(t, m, r)
			m.mu.Lock()
			o.plans = make(map[int]callPlan)
			for _, p := range m.plans {
				o.plans[p.Index] = p
			}
			m.mu.Unlock()
			o.agents = m.Agents()
			o.engIDs = map[string]bool{}
			for _, e := range r.snapshot() {
				if e.name == evEngagementStarted {
					o.engIDs[e.object["engagement_id"].(string)] = true
					o.started++
				}
			}
		})
		return o
	}
	a, b := runOnce(t, cfg), runOnce(t, cfg)
	if len(a.plans) < 50 {
		t.Fatalf("only %d calls planned", len(a.plans))
	}
	common := 0
	for i, pa := range a.plans {
		pb, ok := b.plans[i]
		if !ok {
			continue // an outbound arrival skipped in one run only (timing)
		}
		common++
		if !reflect.DeepEqual(pa, pb) {
			t.Errorf("call %d: plans differ:\n%+v\n%+v", i, pa, pb)
		}
		if want := planCall(cfg.withDefaults(), 3, i); !reflect.DeepEqual(pa, want) {
			t.Errorf("call %d: plan %+v, want planCall's %+v", i, pa, want)
		}
	}
	if common < len(a.plans)*9/10 {
		t.Errorf("only %d of %d calls in both runs", common, len(a.plans))
	}
	if !reflect.DeepEqual(a.agents, b.agents) {
		t.Errorf("agents differ:\n%v\n%v", a.agents, b.agents)
	}
	shared := 0
	for id := range a.engIDs {
		if b.engIDs[id] {
			shared++
		}
	}
	if shared < a.started*9/10 {
		t.Errorf("only %d of %d engagement ids shared between runs", shared, a.started)
	}

	cfg.Seed = 100
	c := runOnce(t, cfg)
	same := 0
	for i, pa := range a.plans {
		if pc, ok := c.plans[i]; ok && reflect.DeepEqual(pa, pc) {
			same++
		}
	}
	if same > len(a.plans)/10 {
		t.Errorf("another seed gave %d identical stories of %d", same, len(a.plans))
	}
	if a.agents[0].UserID == c.agents[0].UserID {
		t.Errorf("another seed gave the same agent id %s", a.agents[0].UserID)
	}
}

func TestPlanShape(t *testing.T) {
	for _, cfg := range []Config{
		{Seed: 1},
		{Seed: 2, MinCall: Duration(50 * time.Millisecond), MaxCall: Duration(300 * time.Millisecond), HoldProbability: 1, TransferProbability: 1},
		{Seed: 3, HoldProbability: -1, TransferProbability: -1, OutboundFraction: -1},
		{Seed: 4, OutboundFraction: 1, HoldProbability: 1, TransferProbability: 1},
	} {
		cfg = cfg.withDefaults()
		var holds, transfers, outbound int
		for i := range 2000 {
			p := planCall(cfg, 3, i)
			if q := planCall(cfg, 3, i); !reflect.DeepEqual(p, q) {
				t.Fatalf("planCall not deterministic: %+v vs %+v", p, q)
			}
			if p.Talk < time.Duration(cfg.MinCall) || p.Talk > time.Duration(cfg.MaxCall) {
				t.Errorf("talk %v outside [%v, %v]", p.Talk, cfg.MinCall, cfg.MaxCall)
			}
			if p.Queue == p.ToQueue {
				t.Errorf("transfer queue = call queue %d", p.Queue)
			}
			if p.WrapUp < time.Second || p.WrapUp > 2*time.Second {
				t.Errorf("wrap-up %v outside 1-2s", p.WrapUp)
			}
			if p.Hold {
				holds++
				if p.HoldFor <= 0 || p.HoldFor > 5*time.Second || p.HoldAt < 0 || p.HoldAt+p.HoldFor > p.Talk {
					t.Errorf("hold at %v for %v in a %v call", p.HoldAt, p.HoldFor, p.Talk)
				}
				if p.Transfer && p.HoldAt < p.TransferAt && p.HoldAt+p.HoldFor > p.TransferAt {
					t.Errorf("hold %v+%v overlaps the transfer at %v", p.HoldAt, p.HoldFor, p.TransferAt)
				}
			}
			if p.Transfer {
				transfers++
				if p.Outbound {
					t.Error("outbound call planned with a transfer")
				}
				if p.TransferAt <= 0 || p.TransferAt >= p.Talk {
					t.Errorf("transfer at %v in a %v call", p.TransferAt, p.Talk)
				}
			}
			if p.Outbound {
				outbound++
				if !p.AgentEnds {
					t.Error("outbound call not ended by the agent")
				}
			}
		}
		wantRate := func(name string, n int, p float64) {
			got := float64(n) / 2000
			if math.Abs(got-p) > 0.05 {
				t.Errorf("seed %d: %s rate %.3f, want about %.2f", cfg.Seed, name, got, p)
			}
		}
		wantRate("outbound", outbound, prob(cfg.OutboundFraction))
		wantRate("hold", holds, prob(cfg.HoldProbability))
		wantRate("transfer", transfers, (1-prob(cfg.OutboundFraction))*prob(cfg.TransferProbability))
	}
}

func TestNoDoubleBookingUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		cfg := Config{
			Seed: 5, Agents: 4, CallsPerSecond: 1,
			MinCall: Duration(500 * time.Millisecond), MaxCall: Duration(3 * time.Second),
			HoldProbability: 0.5, TransferProbability: 1, OutboundFraction: 0.3,
			QueueTimeout: Duration(2 * time.Second),
		}
		m := newModel(t, cfg, r)
		simulate(t, m, 2*time.Minute, 0)
		truth := checkAll(t, m, r) // includes checkNoDoubleBooking
		t.Logf("truth: %+v", withoutSegments(truth))
		if truth.Transfers == 0 || truth.Abandoned == 0 || countOutbound(r.snapshot()) == 0 {
			t.Error("want transfers, abandoned and outbound calls under contention")
		}
	})
}

func TestDrainWaitIsBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		r := &recorder{deliver: func(name string, _ map[string]any) int {
			if name == evUserAnswered {
				<-release // a stuck subscriber
			}
			return 1
		}}
		cfg := Config{Seed: 1, Agents: 2, CallsPerSecond: 5}
		m := newModel(t, cfg, r)
		runCtx, stopRun := context.WithCancel(t.Context())
		runDone := make(chan error, 1)
		go func() { runDone <- m.Run(runCtx) }()
		time.Sleep(10 * time.Second) // fake time: calls arrive and block in emit
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := m.Drain(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain with a stuck emitter: %v, want context.DeadlineExceeded", err)
		}
		if err := <-runDone; err != nil { // Drain also ends Run
			t.Errorf("Run: %v", err)
		}
		stopRun()
		close(release)
		if err := m.Drain(t.Context()); err != nil {
			t.Errorf("Drain after release: %v", err)
		}
		checkAll(t, m, r)
	})
}

func TestRunAfterDrainAndEmptyDrain(t *testing.T) {
	r := &recorder{}
	m := newModel(t, Config{}, r)
	if err := m.Drain(t.Context()); err != nil {
		t.Fatalf("Drain without calls: %v", err)
	}
	if err := m.Run(t.Context()); !errors.Is(err, ErrDrained) {
		t.Fatalf("Run after Drain: %v, want ErrDrained", err)
	}
	if got := m.Truth(); got.Events != 0 || len(got.Segments) != 0 {
		t.Errorf("Truth after nothing ran: %+v", got)
	}
}

func TestNewDefaults(t *testing.T) {
	m, err := New(Config{HoldProbability: -1}, func(string, time.Time, map[string]any) int { return 1 }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Agents: 20, CallsPerSecond: 2, MinCall: Duration(5 * time.Second), MaxCall: Duration(time.Minute),
		HoldProbability: -1, TransferProbability: 0.2, OutboundFraction: 0.1,
		QueueTimeout: Duration(20 * time.Second), AccountID: "acct-sim",
	}
	if got := m.Config(); got != want {
		t.Errorf("Config()\n got %+v\nwant %+v", got, want)
	}
	agents := m.Agents()
	if len(agents) != 20 {
		t.Fatalf("%d agents, want 20", len(agents))
	}
	ids, emails := map[string]bool{}, map[string]bool{}
	for _, a := range agents {
		if a.Status != "offline" || !strings.HasPrefix(a.UserID, "usr-") || ids[a.UserID] || emails[a.Email] {
			t.Errorf("bad or duplicate agent %+v", a)
		}
		ids[a.UserID], emails[a.Email] = true, true
	}
}

func TestConfigValidation(t *testing.T) {
	emit := func(string, time.Time, map[string]any) int { return 1 }
	tests := []struct {
		name  string
		cfg   Config
		emit  Emitter
		field string
	}{
		{"negative agents", Config{Agents: -1}, emit, "agents"},
		{"too many agents", Config{Agents: MaxAgents + 1}, emit, "agents"},
		{"negative rate", Config{CallsPerSecond: -1}, emit, "calls_per_second"},
		{"NaN rate", Config{CallsPerSecond: math.NaN()}, emit, "calls_per_second"},
		{"infinite rate", Config{CallsPerSecond: math.Inf(1)}, emit, "calls_per_second"},
		{"negative min_call", Config{MinCall: -1}, emit, "min_call"},
		{"negative max_call", Config{MaxCall: -1}, emit, "max_call"},
		{"max below min", Config{MinCall: Duration(time.Second), MaxCall: Duration(time.Millisecond)}, emit, "max_call"},
		{"default min above max", Config{MaxCall: Duration(300 * time.Millisecond)}, emit, "max_call"},
		{"hold above 1", Config{HoldProbability: 1.5}, emit, "hold_probability"},
		{"hold NaN", Config{HoldProbability: math.NaN()}, emit, "hold_probability"},
		{"transfer above 1", Config{TransferProbability: 2}, emit, "transfer_probability"},
		{"outbound above 1", Config{OutboundFraction: 1.1}, emit, "outbound_fraction"},
		{"negative queue timeout", Config{QueueTimeout: -1}, emit, "queue_timeout"},
		{"nil emitter", Config{}, nil, "emit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg, tt.emit, zerolog.Nop())
			if err == nil {
				t.Fatalf("New = %v, nil; want an error naming %s", m, tt.field)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Errorf("error %v: field %v, want %s", err, ce, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"5s"`, 5 * time.Second, false},
		{`"1m30s"`, 90 * time.Second, false},
		{`"250ms"`, 250 * time.Millisecond, false},
		{`5000000000`, 5 * time.Second, false},
		{`1e9`, time.Second, false},
		{`"five"`, 0, true},
		{`1.5`, 0, true},
		{`true`, 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err != nil) != tt.wantErr || (err == nil && time.Duration(d) != tt.want) {
			t.Errorf("unmarshal %s = %v, %v; want %v, err %v", tt.in, time.Duration(d), err, tt.want, tt.wantErr)
		}
	}
	d := Duration(7 * time.Second)
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || d != Duration(7*time.Second) {
		t.Errorf("null changed the duration: %v, %v", d, err)
	}

	in := `{"seed":5,"agents":3,"calls_per_second":4.5,"min_call":"50ms","max_call":300000000,` +
		`"hold_probability":0.5,"transfer_probability":-1,"outbound_fraction":0.25,"queue_timeout":"200ms","account_id":"acct-x"}`
	var cfg Config
	if err := json.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{Seed: 5, Agents: 3, CallsPerSecond: 4.5, MinCall: Duration(50 * time.Millisecond),
		MaxCall: Duration(300 * time.Millisecond), HoldProbability: 0.5, TransferProbability: -1,
		OutboundFraction: 0.25, QueueTimeout: Duration(200 * time.Millisecond), AccountID: "acct-x"}
	if cfg != want {
		t.Errorf("Config from JSON\n got %+v\nwant %+v", cfg, want)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"min_call":"50ms"`) || !strings.Contains(string(out), `"max_call":"300ms"`) {
		t.Errorf("Config to JSON: %s", out)
	}
	var back Config
	if err := json.Unmarshal(out, &back); err != nil || back != cfg {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestTruthJSON(t *testing.T) {
	tr := Truth{Calls: 1, Segments: []Segment{{SegmentID: "e/u", EngagementID: "e", UserID: "u", Actions: []string{"start"}}}}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"calls"`, `"answered"`, `"abandoned"`, `"transfers"`, `"holds"`, `"events"`,
		`"undelivered"`, `"segments"`, `"segment_id"`, `"engagement_id"`, `"user_id"`, `"actions"`, `"complete"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("Truth JSON %s lacks %s", b, k)
		}
	}
}
