package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/faultnet"
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

// labEvent returns one literal engagement event as Zoom frames it: user
// may be "" (no agent on the event); extra fields are added to, or replace,
// those of the object.
func labEvent(name, eng, user string, at time.Time, extra map[string]any) []byte {
	obj := map[string]any{"engagement_id": eng, "engagement_direction": "inbound", "channel": "voice",
		"date_time_ms": at.Format("2006-01-02T15:04:05.000Z"), "consumer_number": "+15550100001"}
	if user != "" {
		obj["user_id"], obj["user_display_name"] = user, "Agent "+user
	}
	for k, v := range extra {
		obj[k] = v
	}
	raw, _ := json.Marshal(map[string]any{"event": name, "event_ts": at.UnixMilli(),
		"payload": map[string]any{"account_id": labtest.AccountID, "object": obj}})
	return raw
}

// parsedEvent is labEvent parsed, for Node.Deliver.
func parsedEvent(t *testing.T, name, eng, user string, at time.Time, extra map[string]any) *events.Event {
	t.Helper()
	ev, err := events.Parse(labEvent(name, eng, user, at, extra))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// sendEvent publishes labEvent to some subscriptions.
func (l *lab) sendEvent(name, eng, user string, subs []string, at time.Time, extra map[string]any) {
	l.T.Helper()
	raw := labEvent(name, eng, user, at, extra)
	l.post("/sim/events", map[string]any{"subscriptions": subs, "event": json.RawMessage(raw)}, nil)
}

// proxy starts a fault proxy to target (host:port). It passes traffic
// until told otherwise, and is closed after the lab's nodes have stopped
// (passing again first, so that no stopping node waits on it).
func (l *lab) proxy(t *testing.T, target string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.Listen("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	l.OnClose(func() { p.SetMode(faultnet.Pass); p.Close() })
	return p
}

// etcdBehindProxy routes node's etcd link through a fault proxy, by adding
// to l.Tune (so set Tune first).
func (l *lab) etcdBehindProxy(t *testing.T, node string) *faultnet.Proxy {
	t.Helper()
	p := l.proxy(t, strings.TrimPrefix(l.Etcd.Endpoints()[0], "http://"))
	prev := l.Tune
	l.Tune = func(c *config.Config) {
		if prev != nil {
			prev(c)
		}
		if c.Node == node {
			c.Etcd.Endpoints = []string{"http://" + p.Addr()}
		}
	}
	return p
}

// etcdKVs returns the lab etcd's key-values whose key contains substr.
func (l *lab) etcdKVs(t *testing.T, substr string) []*mvccpb.KeyValue {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: l.Etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []*mvccpb.KeyValue
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key), substr) {
			out = append(out, kv)
		}
	}
	return out
}

// queuedKeys returns the keys of the lab cluster's handoff queue.
func (l *lab) queuedKeys(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, kv := range l.etcdKVs(t, "/handoff/") {
		out = append(out, string(kv.Key))
	}
	return out
}

// electionValues returns the values (node names) of the election keys.
func (l *lab) electionValues(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, kv := range l.etcdKVs(t, "/election/") {
		out = append(out, string(kv.Value))
	}
	return out
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
