package adapter_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func TestMain(m *testing.M) { labtest.VerifyTestMain(m) }

// lab is the shared in-process redundancy lab (labtest.Lab) with three
// subscriptions, pause-on-hold rules, and the adapter tests' helpers.
type lab struct{ *labtest.Lab }

const labSecret = labtest.DefaultSecret

// newLab starts a lab; opts adjust the simulated Zoom's configuration.
func newLab(t *testing.T, opts ...func(*zoom.Config)) *lab {
	t.Helper()
	return &lab{labtest.NewLab(t, labtest.Options{
		Subscriptions: []string{"sub-a", "sub-b", "sub-c"},
		Zoom: func(zc *zoom.Config) {
			for _, o := range opts {
				o(zc)
			}
		},
		Configure: func(c *config.Config) { c.Rules.PauseOnHold = true },
	})}
}

// start runs node name in-process with the lab's configuration.
func (l *lab) start(name string) *labtest.Node {
	l.T.Helper()
	return l.Start(l.Config(name), labtest.NodeOptions{})
}

func (l *lab) post(path string, in, out any) {
	l.T.Helper()
	b, _ := json.Marshal(in)
	resp, err := http.Post(l.ZoomTS.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		l.T.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		l.T.Fatalf("POST %s: HTTP %d", path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			l.T.Fatal(err)
		}
	}
}

// sendEvent publishes one literal engagement event to some subscriptions.
// user may be "" (no agent on the event).
func (l *lab) sendEvent(name, eng, user string, subs []string, at time.Time, extra map[string]any) {
	l.T.Helper()
	obj := map[string]any{"engagement_id": eng, "engagement_direction": "inbound", "channel": "voice",
		"date_time_ms": at.Format("2006-01-02T15:04:05.000Z"), "consumer_number": "+15550100001"}
	if user != "" {
		obj["user_id"], obj["user_display_name"] = user, "Agent "+user
	}
	for k, v := range extra {
		obj[k] = v
	}
	ev := map[string]any{"event": name, "event_ts": at.UnixMilli(), "payload": map[string]any{"account_id": labtest.AccountID, "object": obj}}
	raw, _ := json.Marshal(ev)
	l.post("/sim/events", map[string]any{"subscriptions": subs, "event": json.RawMessage(raw)}, nil)
}

// applied returns the recording actions the recorder applied to a segment.
func (l *lab) applied(segment string) []string {
	var out []string
	for _, e := range l.Rec.Ledger().Entries {
		if e.Kind == "command" && e.Result == rcapi.ResultApplied && e.Command.SegmentID == segment {
			out = append(out, e.Command.Action)
		}
	}
	return out
}

// appliedSince counts applied commands at the recorder with epoch ≥ min.
func (l *lab) appliedSince(min int64) int {
	n := 0
	for _, e := range l.Rec.Ledger().Entries {
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
