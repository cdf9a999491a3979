package adapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// labRoot is the key prefix of the lab cluster (etcd.prefix default,
// cluster "lab").
const labRoot = "/zccadapter/lab/"

// putEtcd writes key-values straight into the lab's etcd, as a peer that
// is not to be trusted (another version, a bug, an operator) might.
func (l *lab) putEtcd(t *testing.T, kvs map[string]string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: l.Etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for k, v := range kvs {
		if _, err := cli.Put(ctx, labRoot+k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// quarantined returns the lab cluster's quarantine entries.
func (l *lab) quarantined(t *testing.T) []protocol.QuarantineEntry {
	t.Helper()
	var out []protocol.QuarantineEntry
	for _, kv := range l.etcdKVs(t, "/quarantine/") {
		var e protocol.QuarantineEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			t.Fatalf("quarantine entry %s does not decode: %v", kv.Key, err)
		}
		out = append(out, e)
	}
	return out
}

// poisonEvents are events no node may apply, one per class the parser
// refuses, as literal frame contents (engagement eng-poison).
func poisonEvents(now time.Time) map[string]string {
	env := func(ts int64, object string) string {
		return fmt.Sprintf(`{"event":"contact_center.engagement_user_answered","event_ts":%d,"payload":{"account_id":%q,"object":%s}}`,
			ts, labtest.AccountID, object)
	}
	obj := func(eng, at string) string {
		return fmt.Sprintf(`{"engagement_id":"%s","user_id":"usr-poison","date_time_ms":%s}`, eng, at)
	}
	deep := strings.Repeat(`{"x":`, 200) + `1` + strings.Repeat(`}`, 200)
	ms := now.UnixMilli()
	return map[string]string{
		"year 10000":       env(253402300800000, obj("eng-poison", `"10000-01-01T00:00:00.000Z"`)),
		"year 0":           env(ms, obj("eng-poison", `"0000-01-01T00:00:00.000Z"`)),
		"µs as ms":         env(now.UnixMicro(), obj("eng-poison", fmt.Sprint(now.UnixMicro()))),
		"deep nesting":     env(ms, fmt.Sprintf(`{"engagement_id":"eng-poison","user_id":"usr-poison","date_time_ms":%d,"flow":%s}`, ms, deep)),
		"invalid UTF-8 id": env(ms, obj(`eng-\ud800`, fmt.Sprint(ms))),
	}
}

// TestFinding1_PoisonEventDoesNotStopThePair: events with impossible times
// (year 10000, year 0, microseconds sent as milliseconds), deep nesting and
// an invalid identifier arrive on both subscriptions; poison handoff
// entries and undecodable state records sit in etcd before the first
// promotion and appear again while a node leads. Neither the first
// promotion nor the failover may fail on them: they are quarantined (never
// applied), the pair keeps a leader, and an ordinary call on another
// engagement is recorded exactly.
func TestFinding1_PoisonEventDoesNotStopThePair(t *testing.T) {
	l := newLab(t)
	now := time.Now().UTC()
	poison := poisonEvents(now)
	// Before any node runs: what an earlier, buggier version left behind.
	l.putEtcd(t, map[string]string{
		"handoff/poison-h1":  poison["year 10000"],
		"handoff/poison-h2":  `{"event":`,
		"state/eng-poison-1": `{"id":"eng-poison-1","segments":"not a list"}`,
		"state/eng-poison-2": `{"id":"eng-poison-2","closed_at":"10000-01-01T00:00:00Z"}`,
	})
	a := l.serve("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.serve("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	// On both sockets: every class the parser refuses.
	both := []string{"sub-a", "sub-b"}
	classes := len(poison)
	for what, content := range poison {
		l.post("/sim/events", map[string]any{"subscriptions": both, "content": content}, nil)
		t.Logf("sent %s", what)
	}
	// While a leads: a poison handoff (its watch takes it live) and an
	// undecodable state record (read only by the next promotion).
	l.putEtcd(t, map[string]string{
		"handoff/poison-h3":  poison["µs as ms"],
		"state/eng-poison-3": `not json`,
	})
	// 2 nodes × the socket classes, 3 handoffs, 2 state records at a's
	// promotion.
	wantSocket := 2 * classes
	labtest.WaitFor(t, 10*time.Second, "the poison in the quarantine", func() bool {
		bySource := map[string]int{}
		for _, e := range l.quarantined(t) {
			bySource[e.Source]++
		}
		return bySource[protocol.QuarantineSocket] >= wantSocket && bySource[protocol.QuarantineHandoff] >= 3 &&
			bySource[protocol.QuarantineState] >= 2
	})

	// Failover: b reads every state record, the poisoned ones included.
	a.Stop()
	sb := b.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	if sb.Epoch <= sa.Epoch {
		t.Fatalf("b's epoch %d is not above a's %d", sb.Epoch, sa.Epoch)
	}
	labtest.WaitFor(t, 10*time.Second, "b to quarantine the 3 state records", func() bool {
		n := 0
		for _, e := range l.quarantined(t) {
			if e.Source == protocol.QuarantineState && e.Node == "b" {
				n++
			}
		}
		return n >= 3
	})
	if keys := l.queuedKeys(t); len(keys) != 0 {
		t.Errorf("handoff queue still holds %v; poison entries must be unqueued", keys)
	}

	// An ordinary call on another engagement is recorded exactly.
	at := time.Now().UTC()
	l.sendEvent("contact_center.engagement_started", "eng-f1", "", both, at, nil)
	l.sendEvent("contact_center.engagement_user_answered", "eng-f1", "usr-f1", both, at.Add(time.Second), nil)
	l.sendEvent("contact_center.engagement_user_ended", "eng-f1", "usr-f1", both, at.Add(2*time.Second), nil)
	want := []string{rcapi.ActionStart, rcapi.ActionStop}
	var got []string
	labtest.WaitFor(t, 15*time.Second, "the ordinary call at the recorder", func() bool {
		got = l.applied("eng-f1/usr-f1")
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("segment eng-f1/usr-f1: got %v, want %v", got, want)
	}
	if s := b.Status(); s.Role != adapter.RoleLeader || s.PromotionFailures != 0 {
		t.Errorf("b: role %s, %d failed promotions (%s); want leader, none", s.Role, s.PromotionFailures, s.LastPromotionError)
	}
	// Nothing of the poison reached the recorder.
	for _, e := range l.Rec.Ledger().Entries {
		if e.Command != nil && strings.Contains(e.Command.SegmentID, "poison") {
			t.Errorf("the recorder got a command for poison: %+v", *e.Command)
		}
	}
	// Visible to the operator: /status and the metrics.
	labtest.WaitFor(t, 5*time.Second, "b's status to show the quarantine", func() bool {
		q := b.Status().Quarantine
		return q.Count >= wantSocket+6 && q.Put >= 3 && len(q.Recent) > 0
	})
	_, body := get(t, b.URL+"/metrics")
	m := samples(t, body)
	implausible := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "zccadapter_events_malformed_total{") && strings.Contains(k, `node="b"`) {
			implausible += v
		}
	}
	if implausible < float64(classes) {
		t.Errorf("b's zccadapter_events_malformed_total sums to %v, want ≥ %d:\n%s", implausible, classes, body)
	}
	if _, ok := m[`zccadapter_events_malformed_total{event="contact_center.engagement_user_answered",field="payload.object.date_time_ms",node="b"}`]; !ok {
		t.Errorf("no malformed count labelled with the event and field of an implausible time")
	}
}

// TestFinding1_FailedPromotionBacksOffAndReadyzSaysNoLeader: a node whose
// promotion fails every time (the recorder refuses its epoch claim as
// malformed) must not win and lose terms as fast as etcd allows: it backs
// off (200 ms doubling, jittered), says why in /status and the metrics,
// and while no node leads its /readyz answers 503 "no leader in the pair".
func TestFinding1_FailedPromotionBacksOffAndReadyzSaysNoLeader(t *testing.T) {
	l := newLab(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"malformed","message":"refused by the test"}`))
	}))
	l.OnClose(refusing.Close)
	l.Tune = func(c *config.Config) { c.Recorder.URL = refusing.URL }
	a := l.serve("a")

	var first time.Time
	labtest.WaitFor(t, 10*time.Second, "a's first failed promotion", func() bool {
		if a.Status().PromotionFailures >= 1 {
			first = time.Now()
			return true
		}
		return false
	})
	// A window of 3 s: the holds after failures 1 to 5 are at least 100,
	// 200, 400, 800 and 1600 ms, so at most 5 more terms begin in it;
	// without a backoff a term takes tens of milliseconds.
	labtest.WaitFor(t, 10*time.Second, "3 s after the first failure", func() bool { return time.Since(first) >= 3*time.Second })
	s := a.Status()
	t.Logf("%d failed promotions, %d terms in %s", s.PromotionFailures, s.Terms, time.Since(first))
	if s.PromotionFailures > 6 || s.PromotionFailures < 3 {
		t.Errorf("%d failed promotions within 3 s of the first; want 3 to 6 (backing off, still retrying)", s.PromotionFailures)
	}
	if !strings.Contains(s.LastPromotionError, "recorder did not take the epoch") {
		t.Errorf("last_promotion_error = %q, want the cause", s.LastPromotionError)
	}
	if s.Terms > s.PromotionFailures+1 {
		t.Errorf("%d terms for %d failed promotions", s.Terms, s.PromotionFailures)
	}
	labtest.WaitFor(t, 10*time.Second, `/readyz to answer "no leader in the pair"`, func() bool {
		code, body := get(t, a.URL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no leader in the pair")
	})
	_, body := get(t, a.URL+"/metrics")
	if v := samples(t, body)[`zccadapter_promotion_failures_total{node="a"}`]; v < 4 {
		t.Errorf("zccadapter_promotion_failures_total = %v, want ≥ 4", v)
	}
	_, body = get(t, a.URL+"/status")
	for _, want := range []string{`"promotion_failures":`, `"last_promotion_error":"recorder did not take the epoch`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status = %s, want it to contain %s", body, want)
		}
	}
}
