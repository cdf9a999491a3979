package adapter_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/sim/traffic"
)

const labBearer = "recorder-bearer-9d2c61f0"

// serve runs node name built like `zccadapter run` builds one: its
// endpoints served by Parts.Handler on a loopback listener whose address
// is published in the membership record, with the recorder bearer and
// version v-test; mutate adjusts the configuration further.
func (l *lab) serve(name string, mutate ...func(*config.Config)) *labtest.Node {
	l.T.Helper()
	cfg := l.Config(name)
	cfg.Recorder.BearerToken = labBearer
	cfg.Version = "v-test"
	for _, f := range mutate {
		f(cfg)
	}
	return l.Start(cfg, labtest.NodeOptions{Serve: true})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// samples parses the text exposition format into "name{labels}" → value.
func samples(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsReadNodeStatusAtScrape(t *testing.T) {
	l := newLab(t)
	a := l.serve("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)

	l.startTraffic(traffic.Config{Seed: 11, Agents: 10, CallsPerSecond: 8,
		MinCall: traffic.Duration(200 * time.Millisecond), MaxCall: traffic.Duration(600 * time.Millisecond),
		QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
	labtest.WaitFor(t, 20*time.Second, "10 commands from a", func() bool { return l.appliedSince(sa.Epoch) >= 10 })
	l.stopTraffic()

	s := a.Status() // before the scrape: the scrape's counts are at least these
	code, body := get(t, a.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", code)
	}
	m := samples(t, body)
	for _, c := range []struct {
		sample string
		want   func(float64) bool
		what   string
	}{
		{`zccadapter_role{node="a",role="leader"}`, eq(1), "1"},
		{`zccadapter_role{node="a",role="standby"}`, eq(0), "0"},
		{`zccadapter_epoch{node="a"}`, eq(float64(sa.Epoch)), strconv.FormatInt(sa.Epoch, 10)},
		{`zccadapter_terms_total{node="a"}`, eq(1), "1"},
		{`zccadapter_socket_up{node="a"}`, eq(1), "1"},
		{`zccadapter_node_info{node="a",subscription="sub-a",version="v-test"}`, eq(1), "1"},
		{`zccadapter_events_received_total{node="a"}`, atLeast(float64(s.Received)), "≥ the status's count before the scrape"},
		{`zccadapter_events_applied_total{node="a"}`, atLeast(1), "≥ 1"},
		{`zccadapter_commands_total{node="a",result="applied"}`, atLeast(10), "≥ 10"},
		{`zccadapter_commands_total{node="a",result="duplicate"}`, atLeast(0), "present"},
		{`zccadapter_commands_total{node="a",result="invalid"}`, eq(0), "0"},
		{`zccadapter_events_handed_off_total{node="a"}`, atLeast(0), "present"},
		{`zccadapter_events_pending{node="a"}`, atLeast(0), "present"},
		{`zccadapter_last_event_age_seconds{node="a"}`, atLeast(0), "present after events"},
		{`zccadapter_socket_connects_total{node="a"}`, atLeast(1), "≥ 1"},
		{`zccadapter_socket_reconnects_total{node="a"}`, atLeast(0), "present"},
		{`zccadapter_token_fetches_total{node="a"}`, atLeast(1), "≥ 1 (this node fetched the shared token)"},
		{`zccadapter_leader_since_timestamp_seconds{node="a"}`, atLeast(1), "a Unix time"},
		{`zccadapter_events_by_name_total{event="contact_center.engagement_user_answered",node="a",outcome="applied"}`, atLeast(1), "≥ 1"},
		{`zccadapter_events_by_name_total{event="contact_center.engagement_started",node="a",outcome="received"}`, atLeast(1), "≥ 1"},
		{`zccadapter_etcd_txn_duration_seconds_count{node="a"}`, atLeast(1), "≥ 1 leader txn timed"},
		{`zccadapter_etcd_txn_duration_seconds_bucket{node="a",le="+Inf"}`, atLeast(1), "≥ 1"},
	} {
		v, ok := m[c.sample]
		if !ok {
			t.Errorf("%s: missing from /metrics", c.sample)
			continue
		}
		if !c.want(v) {
			t.Errorf("%s = %v, want %s", c.sample, v, c.what)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("go_goroutines missing: the Go collector is not registered")
	}

	problems, err := testutil.CollectAndLint(adapter.NewCollector(a.Parts.Node, adapter.MetricsOptions{TokenFetches: a.Parts.Tokens.Fetches}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestStatusAndMetricsCarryNoSecret(t *testing.T) {
	l := newLab(t)
	a := l.serve("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	tok, err := a.Parts.Tokens.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"client secret": labSecret, "access token": tok.AccessToken, "recorder bearer": labBearer,
		"access_token parameter": "access_token"}
	for _, path := range []string{"/status", "/metrics", "/healthz", "/readyz"} {
		code, body := get(t, a.URL+path)
		if code != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", path, code)
		}
		for what, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s: the body holds the %s", path, what)
			}
		}
	}
	_, body := get(t, a.URL+"/status")
	for _, want := range []string{`"role":"leader"`, `"subscription":"sub-a"`, `"version":"v-test"`, `"socket_up":true`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status = %s, want it to contain %s", body, want)
		}
	}
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }
