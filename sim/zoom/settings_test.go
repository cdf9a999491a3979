package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

func TestSettingsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	st, b, _ := e.do(http.MethodGet, "/sim/settings", nil, nil)
	var got Settings
	if err := json.Unmarshal(b, &got); st != 200 || err != nil || !reflect.DeepEqual(got, DefaultSettings()) {
		t.Fatalf("GET /sim/settings: %d %s, want the defaults", st, b)
	}
	if !strings.Contains(string(b), `"token_ttl":"1h0m0s"`) {
		t.Errorf("durations are not strings: %s", b)
	}

	got = e.settings(`{"token_mode":"capped","token_cap":4,"heartbeat_timeout":"45s","faults":{"sub-a":{"drop":0.1}}}`)
	if got.TokenMode != "capped" || got.TokenCap != 4 || got.HeartbeatTimeout != Duration(45*time.Second) ||
		got.Faults["sub-a"].Drop != 0.1 || got.TokenTTL != Duration(time.Hour) {
		t.Errorf("after a subset: %+v", got)
	}
	got = e.settings(`{"faults":{"sub-b":{"duplicate":1}}}`) // keeps sub-a's
	if got.Faults["sub-a"].Drop != 0.1 || got.Faults["sub-b"].Duplicate != 1 {
		t.Errorf("faults merge per subscription: %+v", got.Faults)
	}
	got = e.settings(`{"token_cap":0}`) // zero means the default
	if got.TokenCap != DefaultTokenCap {
		t.Errorf("token_cap 0 = %d, want %d", got.TokenCap, DefaultTokenCap)
	}

	for _, tt := range []struct{ body, want string }{
		{`{"token_mode":"solo"}`, "token_mode"},
		{`{"faults":{"sub-zzz":{"drop":1}}}`, "faults.sub-zzz"},
		{`{"faults":{"sub-a":{"drop":-1}}}`, "faults.sub-a.drop"},
		{`{"rate_limit_qps":{"extreme":1}}`, "rate_limit_qps.extreme"},
		{`{"heartbeat_timeout":"-1s"}`, "heartbeat_timeout"},
		{`{"no_such_setting":1}`, "no_such_setting"},
		{`{"token_ttl":"an hour"}`, "duration"},
		{`[1]`, "settings"},
		{``, "settings"},
		{`{"seed":1} {"seed":2}`, "trailing"},
	} {
		st, b, _ := e.do(http.MethodPost, "/sim/settings", tt.body, nil)
		if st != http.StatusBadRequest || !strings.Contains(string(b), tt.want) {
			t.Errorf("POST %s: %d %s, want 400 naming %s", tt.body, st, b, tt.want)
		}
	}
	if cur := e.s.Settings(); cur.TokenMode != "capped" || cur.Faults["sub-a"].Drop != 0.1 || cur.Seed != 0 {
		t.Errorf("a refused change altered the settings: %+v", cur)
	}
	got = e.settings(`{"faults":null,"token_mode":"multi"}`)
	if len(got.Faults) != 0 || got.TokenMode != "multi" {
		t.Errorf("null faults: %+v", got)
	}
}

func TestUpdateSettings(t *testing.T) {
	e := newEnv(t, nil)
	boom := errors.New("boom")
	if _, err := e.s.UpdateSettings(func(s *Settings) error { s.Seed = 9; return boom }); !errors.Is(err, boom) {
		t.Errorf("change error: %v", err)
	}
	if _, err := e.s.UpdateSettings(func(s *Settings) error { s.TokenCap = -3; return nil }); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid change: %v, want ErrInvalidConfig", err)
	}
	if e.s.Settings().Seed != 0 {
		t.Error("a failed update changed the settings")
	}
	if _, err := e.s.SetFaults("nope", Faults{}); !errors.Is(err, ErrUnknownSubscription) {
		t.Errorf("SetFaults unknown: %v", err)
	}
	if _, err := e.s.Faults("nope"); !errors.Is(err, ErrUnknownSubscription) {
		t.Errorf("Faults unknown: %v", err)
	}
	// The countdowns keep their live value across an unrelated update.
	e.settings(`{"token_fault":"429","token_fault_next":3}`)
	e.grant(s2sForm)
	got := e.settings(`{"seed":5}`)
	if got.TokenFaultNext != 2 {
		t.Errorf("token_fault_next = %d after one use and an unrelated update, want 2", got.TokenFaultNext)
	}
	// Concurrent updates are serialised and all take effect.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := e.s.UpdateSettings(func(s *Settings) error {
				if s.RateLimitQPS == nil {
					s.RateLimitQPS = map[string]int{}
				}
				s.RateLimitQPS[[]string{"light", "medium", "heavy"}[i%3]] += 1
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if q := e.s.Settings().RateLimitQPS; q["light"]+q["medium"]+q["heavy"] != 8 {
		t.Errorf("concurrent updates: %v, want 8 increments", q)
	}
}

// TestFlagsCoverSettings checks that every setting has a flag named after
// its JSON name, and that flags and JSON give the same settings.
func TestFlagsCoverSettings(t *testing.T) {
	st := DefaultSettings()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	st.RegisterFlags(fs)
	typ := reflect.TypeFor[Settings]()
	names := map[string]bool{}
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			t.Errorf("field %s has no json tag", typ.Field(i).Name)
			continue
		}
		name := strings.ReplaceAll(tag, "_", "-")
		names[name] = true
		if fs.Lookup(name) == nil {
			t.Errorf("setting %s has no flag -%s", tag, name)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !names[f.Name] {
			t.Errorf("flag -%s is no setting", f.Name)
		}
	})

	args := []string{
		"-seed=9", "-token-mode=capped", "-token-cap=3", "-token-ttl=30m", "-token-expiry=close-at-expiry",
		"-failure-wordings=A, b", "-failure-wordings=C", "-scopes=s1,s2", "-invalid-client-status=400",
		"-token-query-params", "-token-fault=5xx", "-token-fault-next=2", "-token-fault-probability=0.5",
		"-token-fault-status=502", "-token-retry-after=3s", "-token-delay=2s", "-refresh-token-ttl=24h",
		"-refresh-reuse-tolerance=1", "-lose-refresh-reply=1", "-connected-content=hi", "-close-code=4000",
		"-second-connection=allow", "-heartbeat-timeout=45s", `-faults={"sub-a":{"delay":"1s","half_open":true}}`,
		`-faults={"sub-b":{"event_ts_skew":-5,"shuffle_keys":true,"volatile_field":"download_url"}}`,
		"-scope-error-status=403", "-rate-limit-qps=light=20,heavy=5", "-rate-limit-daily=heavy=100",
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var fromJSON Settings
	if err := decodeStrict([]byte(`{"seed":9,"token_mode":"capped","token_cap":3,"token_ttl":"30m",
		"token_expiry":"close-at-expiry","failure_wordings":["A, b","C"],"scopes":["s1","s2"],
		"invalid_client_status":400,"token_query_params":true,"token_fault":"5xx","token_fault_next":2,
		"token_fault_probability":0.5,"token_fault_status":502,"token_retry_after":"3s","token_delay":"2s",
		"refresh_token_ttl":"24h","refresh_reuse_tolerance":1,"lose_refresh_reply":1,"connected_content":"hi",
		"close_code":4000,"second_connection":"allow","heartbeat_timeout":"45s",
		"faults":{"sub-a":{"delay":"1s","half_open":true},"sub-b":{"event_ts_skew":-5,"shuffle_keys":true,"volatile_field":"download_url"}},
		"scope_error_status":403,"rate_limit_qps":{"light":20,"heavy":5},"rate_limit_daily":{"heavy":100}}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, fromJSON) {
		t.Errorf("flags and JSON differ:\nflags %+v\n json %+v", st, fromJSON)
	}
	cfg := Config{AccountID: "a", ClientID: "c", ClientSecret: "s", Subscriptions: []string{"sub-a", "sub-b"}, Settings: st}
	if err := cfg.Validate(); err != nil {
		t.Errorf("flag settings invalid: %v", err)
	}
	for _, bad := range [][]string{{"-rate-limit-qps=light"}, {"-faults={bad"}, {"-failure-wordings="}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		s := DefaultSettings()
		s.RegisterFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v: parsed", bad)
		}
	}
}

// TestTruthAfterFaults checks that the traffic model's ground truth counts an
// event whose every copy was dropped as undelivered.
func TestTruthAfterFaults(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Faults = map[string]Faults{"sub-a": {Drop: 1}} })
	e.connect("sub-a")
	if err := e.s.StartTraffic(traffic.Config{Seed: 1, Agents: 2, CallsPerSecond: 50,
		MinCall: traffic.Duration(20 * time.Millisecond), MaxCall: traffic.Duration(50 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a call", func() bool { tr, _ := e.s.Truth(); return tr.Calls > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	truth, err := e.s.StopTraffic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if truth.Events == 0 || truth.Undelivered != truth.Events {
		t.Errorf("truth = %+v, want every event undelivered", truth)
	}
	for _, s := range truth.Segments {
		if !s.Undelivered {
			t.Errorf("segment %s delivered", s.SegmentID)
		}
	}
	if st := e.status("sub-a"); st.FramesDropped != int64(truth.Events) || st.EventsSent != 0 {
		t.Errorf("status = %+v, want all %d frames dropped", st, truth.Events)
	}
}
