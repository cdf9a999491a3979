package drill

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is a drill: the cluster's shape, traffic, a timed list of faults
// and what must hold afterwards. Written as YAML; see
// deploy/scenarios/README.md for the reference and the named scenarios.
type Scenario struct {
	// Name and Description appear in the report.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Nodes is how many RIS nodes run (2–10). Default 2: a, b (then c, …).
	Nodes int `yaml:"nodes"`
	// SessionTTL of the nodes. Default 5s.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// PauseOnHold of the nodes' rules. Default true (the truth counts
	// pauses).
	PauseOnHold *bool `yaml:"pause_on_hold"`
	// Traffic shapes the simulated calls.
	Traffic Traffic `yaml:"traffic"`
	// Zoom holds simulated-Zoom settings applied before traffic starts
	// (POST /sim/settings; json names of sim/zoom.Config).
	Zoom map[string]any `yaml:"zoom"`
	// Actions run in order of At.
	Actions []Action `yaml:"actions"`
	// Settle bounds the wait for the ledger to match the truth after the
	// calls end. Default 30s.
	Settle time.Duration `yaml:"settle"`
	// Expect says what must hold.
	Expect Expect `yaml:"expect"`
}

// Traffic shapes the simulated calls (sim/traffic.Config).
type Traffic struct {
	// Duration of new calls arriving. Default 45s.
	Duration time.Duration `yaml:"duration"`
	// Agents logged in. Default 80.
	Agents int `yaml:"agents"`
	// CallsPerSecond arriving (Poisson). Default 2.
	CallsPerSecond float64 `yaml:"calls_per_second"`
	// MinCall and MaxCall bound a call's talk time. Defaults 5s and 60s.
	MinCall time.Duration `yaml:"min_call"`
	MaxCall time.Duration `yaml:"max_call"`
	// Seed of the call stories. Default 1.
	Seed int64 `yaml:"seed"`
	// HoldProbability, TransferProbability, OutboundFraction per call;
	// 0 takes the model's defaults (0.3, 0.2, 0.1), negative means never.
	HoldProbability     float64 `yaml:"hold_probability"`
	TransferProbability float64 `yaml:"transfer_probability"`
	OutboundFraction    float64 `yaml:"outbound_fraction"`
}

// Action kinds.
const (
	ActKill         = "kill"             // SIGKILL a node (crash); a failover if it led
	ActStop         = "stop"             // SIGTERM a node (graceful); a failover if it led
	ActPause        = "pause"            // SIGSTOP a node; resumed after For, if set
	ActResume       = "resume"           // SIGCONT a paused node
	ActPartition    = "partition"        // cut a node off etcd; healed after For, if set
	ActHeal         = "heal"             // reconnect a node to etcd
	ActRestart      = "restart"          // start a node that was killed or stopped
	ActRestartEtcd  = "restart-etcd"     // stop an etcd member (the leader by default) for For, then start it
	ActZoomSettings = "zoom-settings"    // change simulated-Zoom settings
	ActZoomFaults   = "zoom-faults"      // set delivery faults of one subscription
	ActZoomDrop     = "zoom-drop"        // close one subscription's socket now
	ActEvents       = "events"           // send literal events to some or all subscriptions
	ActRecorder     = "recorder-faults"  // set the reference recorder's faults
	ActRestartRec   = "restart-recorder" // stop the reference recorder (Signal) for For, then start it on its state file
)

var actionKinds = []string{ActKill, ActStop, ActPause, ActResume, ActPartition, ActHeal, ActRestart,
	ActRestartEtcd, ActZoomSettings, ActZoomFaults, ActZoomDrop, ActEvents, ActRecorder, ActRestartRec}

// Action is one timed step of a scenario.
type Action struct {
	// At is the time after traffic starts.
	At time.Duration `yaml:"at"`
	// Do is the action kind (kill, stop, pause, resume, partition, heal,
	// restart, restart-etcd, zoom-settings, zoom-faults, zoom-drop, events,
	// recorder-faults, restart-recorder).
	Do string `yaml:"do"`
	// Node is a node name, or "leader" / "standby" (resolved when the
	// action runs).
	Node string `yaml:"node"`
	// Restart, for kill and stop: start the node again as standby once its
	// successor leads. Default true.
	Restart *bool `yaml:"restart"`
	// For: how long a pause, partition, etcd stop or recorder stop lasts
	// (0: until a later resume/heal; for restart-etcd and
	// restart-recorder, 0 means 1s).
	For time.Duration `yaml:"for"`
	// Signal for restart-recorder: "term" (SIGTERM, the default: it
	// closes its state file) or "kill" (SIGKILL: a crash).
	Signal string `yaml:"signal"`
	// Member of etcd for restart-etcd ("" = the etcd leader).
	Member string `yaml:"member"`
	// Subscription for zoom-faults and zoom-drop: a subscription id such as
	// sub-a, or "leader" / "standby" for that node's subscription (node x
	// has subscription sub-x).
	Subscription string `yaml:"subscription"`
	// Settings for zoom-settings and zoom-faults (json names of sim/zoom),
	// and recorder-faults ({"fail_next": n, "status": 503}).
	Settings map[string]any `yaml:"settings"`
	// Subscriptions and Events for events: literal Zoom events (the
	// envelope as in the samples) sent to these subscriptions (all if
	// empty).
	Subscriptions []string         `yaml:"subscriptions"`
	Events        []map[string]any `yaml:"events"`
	// Raw for events: frame contents sent verbatim after Events, each
	// through POST /sim/events "content" (or "content_base64" when its
	// bytes are not valid UTF-8). Nothing is recorded for Zoom's REST.
	Raw []RawEvent `yaml:"raw"`
}

// RawEvent is one frame content of an events action, sent verbatim: it
// may be malformed, implausible or oversized on purpose.
type RawEvent struct {
	// Note names the event in the progress lines.
	Note string `yaml:"note"`
	// Text is the content. These placeholders are replaced when the action
	// runs: {now_ms} (the clock in Unix milliseconds), {now_ms+DUR} and
	// {now_ms-DUR} (DUR a Go duration such as 3h), {now_us} (Unix
	// microseconds) and {byte:HH} (the byte 0xHH, raw: {byte:ff} makes
	// invalid UTF-8).
	Text string `yaml:"text"`
	// Pad, when positive, grows the content to at least this many bytes
	// with a filler field, "_pad":"xxx…", put first in Text's outer
	// object (Text must then be a non-empty JSON object).
	Pad int `yaml:"pad"`
	// Deep, when positive, puts a field "_deep" first in Text's outer
	// object holding objects nested Deep levels deep (the event then nests
	// Deep+1 deep).
	Deep int `yaml:"deep"`
}

// Expect is what must hold after a scenario.
type Expect struct {
	// Invariants to check. Default G1, G2, G3, G4, G6.
	Invariants []string `yaml:"invariants"`
	// Failovers is the least number of measured failovers. Default: the
	// number of kill/stop/pause/partition actions aimed at the leader.
	Failovers *int `yaml:"failovers"`
	// NoStartFor lists engagement ids that must have no start command.
	NoStartFor []string `yaml:"no_start_for"`
	// StartFor lists segment ids that must have been started.
	StartFor []string `yaml:"start_for"`
	// MalformedAtLeast, when set, adds invariant G7 (bad input counted):
	// every node must have counted at least this many events as malformed
	// or quarantined (the larger of its /status events_malformed and
	// quarantine.put: a malformed event is counted in both), summed over
	// all of its runs in the drill. A node that counted fewer fails it:
	// poison that was neither refused nor kept was taken for an event.
	MalformedAtLeast *int `yaml:"malformed_at_least"`
}

// LoadScenario reads a scenario file; errors name the file and the field.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return ParseScenario(path, b)
}

// ParseScenario parses YAML scenario text; name is used in errors.
func ParseScenario(name string, b []byte) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := s.setDefaults(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return &s, nil
}

// DefaultScenario is the drill run with no --scenario: traffic for 45s, the
// leader SIGKILLed at 25% and restarted, the new leader SIGTERMed at 60%
// and restarted.
func DefaultScenario() *Scenario {
	s := &Scenario{Name: "default", Description: "SIGKILL the leader mid-traffic and restart it as standby, later SIGTERM the new leader"}
	s.setDefaults() //nolint:errcheck // the defaults are valid
	s.Actions = []Action{
		{At: s.Traffic.Duration / 4, Do: ActKill, Node: "leader"},
		{At: s.Traffic.Duration * 6 / 10, Do: ActStop, Node: "leader"},
	}
	return s
}

func (s *Scenario) setDefaults() error {
	s.Name = cmp.Or(s.Name, "unnamed")
	s.Nodes = cmp.Or(s.Nodes, 2)
	s.SessionTTL = cmp.Or(s.SessionTTL, 5*time.Second)
	if s.PauseOnHold == nil {
		t := true
		s.PauseOnHold = &t
	}
	t := &s.Traffic
	t.Duration = cmp.Or(t.Duration, 45*time.Second)
	t.Agents = cmp.Or(t.Agents, 80)
	t.CallsPerSecond = cmp.Or(t.CallsPerSecond, 2)
	t.MinCall = cmp.Or(t.MinCall, 5*time.Second)
	t.MaxCall = cmp.Or(t.MaxCall, 60*time.Second)
	t.Seed = cmp.Or(t.Seed, 1)
	s.Settle = cmp.Or(s.Settle, 30*time.Second)
	if len(s.Expect.Invariants) == 0 {
		s.Expect.Invariants = []string{"G1", "G2", "G3", "G4", "G6"}
	}
	return s.Validate()
}

// Validate reports every problem of the scenario, each naming its field.
func (s *Scenario) Validate() error {
	var errs []error
	if s.Nodes < 2 || s.Nodes > 10 {
		errs = append(errs, fmt.Errorf("nodes: %d is not between 2 and 10", s.Nodes))
	}
	if s.SessionTTL < 2*time.Second {
		errs = append(errs, fmt.Errorf("session_ttl: %s is below the 2s minimum", s.SessionTTL))
	}
	if t := s.Traffic; t.Agents < 1 || t.CallsPerSecond <= 0 || t.MinCall <= 0 || t.Duration <= 0 {
		errs = append(errs, fmt.Errorf("traffic: agents (%d), calls_per_second (%g), min_call (%s) and duration (%s) must be positive",
			t.Agents, t.CallsPerSecond, t.MinCall, t.Duration))
	}
	if s.Traffic.MaxCall < s.Traffic.MinCall {
		errs = append(errs, fmt.Errorf("traffic.max_call %s is below traffic.min_call %s", s.Traffic.MaxCall, s.Traffic.MinCall))
	}
	names := s.NodeNames()
	for i, a := range s.Actions {
		where := fmt.Sprintf("actions[%d] (%s at %s)", i, a.Do, a.At)
		if !slices.Contains(actionKinds, a.Do) {
			errs = append(errs, fmt.Errorf("actions[%d].do: %q is not one of %s", i, a.Do, strings.Join(actionKinds, ", ")))
			continue
		}
		if a.At < 0 || a.At > s.Traffic.Duration {
			errs = append(errs, fmt.Errorf("%s: at must be within traffic.duration %s", where, s.Traffic.Duration))
		}
		switch a.Do {
		case ActKill, ActStop, ActPause, ActResume, ActPartition, ActHeal, ActRestart:
			if a.Node != "leader" && a.Node != "standby" && !slices.Contains(names, a.Node) {
				errs = append(errs, fmt.Errorf("%s: node %q is not leader, standby or one of %v", where, a.Node, names))
			}
		case ActZoomFaults, ActZoomDrop:
			if a.Subscription == "" {
				errs = append(errs, fmt.Errorf("%s: subscription is required", where))
			}
		case ActEvents:
			if len(a.Events) == 0 && len(a.Raw) == 0 {
				errs = append(errs, fmt.Errorf("%s: events and raw are empty", where))
			}
			for j, r := range a.Raw {
				if _, err := r.Content(time.Now()); err != nil {
					errs = append(errs, fmt.Errorf("%s: raw[%d]: %w", where, j, err))
				}
			}
		case ActRestartRec:
			if a.Signal != "" && a.Signal != "term" && a.Signal != "kill" {
				errs = append(errs, fmt.Errorf("%s: signal %q is not term or kill", where, a.Signal))
			}
			if a.For < 0 {
				errs = append(errs, fmt.Errorf("%s: for %s is negative", where, a.For))
			}
		}
		if i > 0 && a.At < s.Actions[i-1].At {
			errs = append(errs, fmt.Errorf("%s: actions must be in time order", where))
		}
	}
	if m := s.Expect.MalformedAtLeast; m != nil && *m < 0 {
		errs = append(errs, fmt.Errorf("expect.malformed_at_least: %d is negative", *m))
	}
	for _, inv := range s.Expect.Invariants {
		if !slices.Contains([]string{"G1", "G2", "G3", "G4", "G6"}, inv) {
			errs = append(errs, fmt.Errorf("expect.invariants: %q is not one of G1, G2, G3, G4, G6", inv))
		}
	}
	return errors.Join(errs...)
}

// NodeNames are the scenario's node names: a, b, c, …
func (s *Scenario) NodeNames() []string {
	var out []string
	for i := 0; i < s.Nodes; i++ {
		out = append(out, string(rune('a'+i)))
	}
	return out
}

var placeholder = regexp.MustCompile(`\{(now_ms|now_us|byte:[0-9a-fA-F]{2}|now_ms[+-][0-9a-zµ.]+)\}`)

// Content returns the event's bytes with its placeholders replaced for the
// time now, and its filler and nesting added. Errors name a placeholder
// that is not one, or a Pad or Deep without an object to put them in.
func (r RawEvent) Content(now time.Time) ([]byte, error) {
	if r.Text == "" {
		return nil, errors.New("text is empty")
	}
	var bad error
	out := placeholder.ReplaceAllStringFunc(r.Text, func(m string) string {
		p := m[1 : len(m)-1]
		switch {
		case p == "now_ms":
			return strconv.FormatInt(now.UnixMilli(), 10)
		case p == "now_us":
			return strconv.FormatInt(now.UnixMicro(), 10)
		case strings.HasPrefix(p, "byte:"):
			b, err := strconv.ParseUint(p[5:], 16, 8)
			if err != nil {
				bad = fmt.Errorf("placeholder %s: %w", m, err)
				return m
			}
			return string([]byte{byte(b)})
		}
		d, err := time.ParseDuration(p[len("now_ms"):])
		if err != nil {
			bad = fmt.Errorf("placeholder %s: %w", m, err)
			return m
		}
		return strconv.FormatInt(now.Add(d).UnixMilli(), 10)
	})
	if bad != nil {
		return nil, bad
	}
	if r.Pad <= 0 && r.Deep <= 0 {
		return []byte(out), nil
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(out), "{")
	if !ok || strings.HasPrefix(strings.TrimSpace(body), "}") {
		return nil, errors.New("pad and deep need text to be a non-empty JSON object")
	}
	var b strings.Builder
	b.WriteString("{")
	if r.Deep > 0 {
		b.WriteString(`"_deep":`)
		b.WriteString(strings.Repeat(`{"d":`, r.Deep-1))
		b.WriteString(`{}`)
		b.WriteString(strings.Repeat(`}`, r.Deep-1))
		b.WriteString(",")
	}
	if r.Pad > 0 {
		fill := max(r.Pad-b.Len()-len(body)-len(`"_pad":"",`), 0)
		b.WriteString(`"_pad":"`)
		b.WriteString(strings.Repeat("x", fill))
		b.WriteString(`",`)
	}
	b.WriteString(body)
	return []byte(b.String()), nil
}
