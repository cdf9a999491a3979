package zoom

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testAccount = "acct-7Qw2LmZ0Tn"
	testClient  = "client-id-1"
	testSecret  = "client-secret-DO-NOT-LOG"
	// wait bounds every wait for something the server should do promptly.
	wait = 5 * time.Second
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a simulated Zoom behind an httptest server.
type env struct {
	t    *testing.T
	s    *Server
	srv  *httptest.Server
	logs *syncBuffer
}

func newEnv(t *testing.T, mutate func(*Config), hooks ...func(*Server)) *env {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		AccountID:     testAccount,
		ClientID:      testClient,
		ClientSecret:  testSecret,
		Subscriptions: []string{"sub-a", "sub-b"},
		Logger:        zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.DebugLevel),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, h := range hooks {
		h(s)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		start := time.Now()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > closeBudget+time.Second {
			t.Errorf("Close took %v", d)
		}
		srv.Close()
	})
	return &env{t: t, s: s, srv: srv, logs: logs}
}

// tokenRequest posts a token request and returns the status and JSON body.
func (e *env) tokenRequest(user, pass string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST /oauth/token: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		e.t.Fatalf("token reply: %v", err)
	}
	return resp.StatusCode, body
}

// token fetches a valid access token.
func (e *env) token() string {
	e.t.Helper()
	st, body := e.tokenRequest(testClient, testSecret, url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}})
	tok, _ := body["access_token"].(string)
	if st != http.StatusOK || tok == "" {
		e.t.Fatalf("token: got %d %v", st, body)
	}
	return tok
}

func (e *env) wsURL(sub, token string) string {
	q := url.Values{}
	if sub != "" {
		q.Set("subscriptionId", sub)
	}
	if token != "" {
		q.Set("access_token", token)
	}
	return strings.Replace(e.srv.URL, "http://", "ws://", 1) + "/ws?" + q.Encode()
}

// dial opens a client socket; it is closed when the test ends.
func (e *env) dial(sub, token string, opts *websocket.DialOptions) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.wsURL(sub, token), opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(4 << 20)
	e.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// connect dials and expects build_connection success.
func (e *env) connect(sub string) *websocket.Conn {
	e.t.Helper()
	c := e.dial(sub, e.token(), nil)
	f := readFrame(e.t, c)
	if f.Module != "build_connection" || f.Success == nil || !*f.Success {
		e.t.Fatalf("first frame = %+v, want build_connection success", f)
	}
	return c
}

type clientFrame struct {
	Module  string            `json:"module"`
	Success *bool             `json:"success"`
	Content json.RawMessage   `json:"content"`
	Header  map[string]string `json:"header"`
}

// content returns the frame's content, which must be a JSON string.
func (f clientFrame) content(t *testing.T) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(f.Content, &s); err != nil {
		t.Fatalf("content %s is not a JSON string: %v", f.Content, err)
	}
	return s
}

func readFrame(t *testing.T, c *websocket.Conn) clientFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text", typ)
	}
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	if f.Header == nil {
		t.Errorf("frame %s has no header object", data)
	}
	return f
}

// expectClosed reads until the socket ends and returns the close error.
func expectClosed(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("socket still open after %v", wait)
			}
			return err
		}
		t.Logf("frame before close: %s", data)
	}
}

// expectFailure expects a build_connection failure with the given content,
// then a close.
func expectFailure(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	f := readFrame(t, c)
	if f.Module != "build_connection" || f.Success == nil || *f.Success || f.content(t) != want {
		t.Errorf("frame = %+v (content %s), want build_connection success:false %q", f, f.Content, want)
	}
	err := expectClosed(t, c)
	if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
		t.Errorf("close: %v, want status 1008", err)
	}
}

func send(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) status(sub string) SubscriptionStatus {
	for _, st := range e.s.Subscriptions() {
		if st.ID == sub {
			return st
		}
	}
	e.t.Fatalf("no subscription %q", sub)
	return SubscriptionStatus{}
}

func TestNewValidates(t *testing.T) {
	valid := Config{AccountID: "a", ClientID: "c", ClientSecret: "s", Subscriptions: []string{"x"}}
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"AccountID", func(c *Config) { c.AccountID = "" }},
		{"ClientID", func(c *Config) { c.ClientID = "" }},
		{"ClientSecret", func(c *Config) { c.ClientSecret = "" }},
		{"Subscriptions", func(c *Config) { c.Subscriptions = nil }},
		{"Subscriptions[1]", func(c *Config) { c.Subscriptions = []string{"x", ""} }},
		{"Subscriptions[1]", func(c *Config) { c.Subscriptions = []string{"x", "x"} }},
		{"TokenTTL (token_ttl)", func(c *Config) { c.TokenTTL = Duration(-time.Second) }},
		{"TokenTTL (token_ttl)", func(c *Config) { c.TokenTTL = Duration(time.Millisecond) }},
		{"HeartbeatTimeout (heartbeat_timeout)", func(c *Config) { c.HeartbeatTimeout = -1 }},
		{"SecondConnection (second_connection)", func(c *Config) { c.SecondConnection = "share" }},
		{"TokenMode (token_mode)", func(c *Config) { c.TokenMode = "single" }},
		{"TokenCap (token_cap)", func(c *Config) { c.TokenCap = -1 }},
		{"TokenExpiry (token_expiry)", func(c *Config) { c.TokenExpiry = "never" }},
		{"FailureWordings[1] (failure_wordings[1])", func(c *Config) { c.FailureWordings = []string{"x", ""} }},
		{"Scopes[0] (scopes[0])", func(c *Config) { c.Scopes = []string{""} }},
		{"InvalidClientStatus (invalid_client_status)", func(c *Config) { c.InvalidClientStatus = 500 }},
		{"TokenFault (token_fault)", func(c *Config) { c.TokenFault = "418" }},
		{"TokenFault (token_fault)", func(c *Config) { c.TokenFaultNext = 2 }},
		{"TokenFaultNext (token_fault_next)", func(c *Config) { c.TokenFault, c.TokenFaultNext = TokenFault429, -1 }},
		{"TokenFaultProbability (token_fault_probability)", func(c *Config) { c.TokenFault, c.TokenFaultProbability = TokenFault429, 1.5 }},
		{"TokenFaultStatus (token_fault_status)", func(c *Config) { c.TokenFaultStatus = 429 }},
		{"TokenRetryAfter (token_retry_after)", func(c *Config) { c.TokenRetryAfter = -1 }},
		{"TokenDelay (token_delay)", func(c *Config) { c.TokenDelay = -1 }},
		{"RefreshTokenTTL (refresh_token_ttl)", func(c *Config) { c.RefreshTokenTTL = Duration(time.Millisecond) }},
		{"RefreshReuseTolerance (refresh_reuse_tolerance)", func(c *Config) { c.RefreshReuseTolerance = -1 }},
		{"LoseRefreshReply (lose_refresh_reply)", func(c *Config) { c.LoseRefreshReply = -1 }},
		{"CloseCode (close_code)", func(c *Config) { c.CloseCode = 1006 }},
		{"CloseCode (close_code)", func(c *Config) { c.CloseCode = 2000 }},
		{"ScopeErrorStatus (scope_error_status)", func(c *Config) { c.ScopeErrorStatus = 200 }},
		{"RateLimitQPS[huge] (rate_limit_qps.huge)", func(c *Config) { c.RateLimitQPS = map[string]int{"huge": 1} }},
		{"RateLimitDaily[heavy] (rate_limit_daily.heavy)", func(c *Config) { c.RateLimitDaily = map[string]int{"heavy": -1} }},
		{"Faults[y] (faults.y)", func(c *Config) { c.Faults = map[string]Faults{"y": {Drop: 1}} }},
		{"Faults[x].Drop (faults.x.drop)", func(c *Config) { c.Faults = map[string]Faults{"x": {Drop: 2}} }},
		{"Faults[x].Reorder (faults.x.reorder)", func(c *Config) { c.Faults = map[string]Faults{"x": {Reorder: -0.1}} }},
		{"Faults[x].Duplicate (faults.x.duplicate)", func(c *Config) { c.Faults = map[string]Faults{"x": {Duplicate: 1.1}} }},
		{"Faults[x].Delay (faults.x.delay)", func(c *Config) { c.Faults = map[string]Faults{"x": {Delay: -1}} }},
		{"Faults[x].Jitter (faults.x.jitter)", func(c *Config) { c.Faults = map[string]Faults{"x": {Jitter: -1}} }},
		{"Faults[x].ReorderWindow (faults.x.reorder_window)", func(c *Config) { c.Faults = map[string]Faults{"x": {ReorderWindow: -1}} }},
		{"Faults[x].ReorderMaxHold (faults.x.reorder_max_hold)", func(c *Config) { c.Faults = map[string]Faults{"x": {ReorderMaxHold: -1}} }},
	}
	for _, tt := range tests {
		c := valid
		tt.mutate(&c)
		_, err := New(c)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming %s", tt.field, err, tt.field)
		}
	}
	s, err := New(valid)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	got := s.Settings()
	want := Settings{TokenMode: "multi", TokenCap: 2, TokenTTL: Duration(time.Hour), TokenExpiry: "connect-only",
		FailureWordings: []string{"Invalid Token", "Token is invalid"}, Scopes: defaultScopes, InvalidClientStatus: 401,
		TokenFaultStatus: 503, TokenRetryAfter: Duration(time.Second), TokenDelay: Duration(5 * time.Second),
		RefreshTokenTTL: Duration(90 * 24 * time.Hour), ConnectedContent: "connected", CloseCode: 1008,
		SecondConnection: "kick", ScopeErrorStatus: 400}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	_ = s.Close()
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name       string
		user, pass string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"account_credentials", testClient, testSecret, url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}}, 200, ""},
		{"client_credentials", testClient, testSecret, url.Values{"grant_type": {"client_credentials"}}, 200, ""},
		{"bad secret", testClient, "wrong", url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}}, 401, "invalid_client"},
		{"bad client id", "other", testSecret, url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}}, 401, "invalid_client"},
		{"no client auth", "", "", url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}}, 401, "invalid_client"},
		{"unsupported grant", testClient, testSecret, url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{"missing grant", testClient, testSecret, url.Values{}, 400, "unsupported_grant_type"},
		{"wrong account", testClient, testSecret, url.Values{"grant_type": {"account_credentials"}, "account_id": {"acct-other"}}, 400, "invalid_request"},
		{"missing account", testClient, testSecret, url.Values{"grant_type": {"account_credentials"}}, 400, "invalid_request"},
		{"client_credentials wrong account", testClient, testSecret, url.Values{"grant_type": {"client_credentials"}, "account_id": {"x"}}, 400, "invalid_request"},
	}
	issued := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := e.tokenRequest(tt.user, tt.pass, tt.form)
			if st != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %v)", st, tt.wantStatus, body)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError || body["reason"] == "" || body["reason"] == nil {
					t.Errorf("body = %v, want error %q with a reason", body, tt.wantError)
				}
				return
			}
			issued++
			if tok, _ := body["access_token"].(string); len(tok) < 32 {
				t.Errorf("access_token = %q, want a long random string", tok)
			}
			if body["token_type"] != "bearer" || body["expires_in"] != float64(3600) {
				t.Errorf("token_type/expires_in = %v/%v, want bearer/3600", body["token_type"], body["expires_in"])
			}
			scope, _ := body["scope"].(string)
			if !strings.Contains(scope, "contact_center:read:task:admin") || !strings.Contains(scope, " user:read:user:admin") {
				t.Errorf("scope = %q, want the space-separated PROTOCOL §4 scopes", scope)
			}
			if body["api_url"] != e.srv.URL {
				t.Errorf("api_url = %v, want %s", body["api_url"], e.srv.URL)
			}
		})
	}
	if got := e.s.TokenFetches(); got != int64(issued) {
		t.Errorf("TokenFetches = %d, want %d", got, issued)
	}
	st := e.s.Tokens()
	if st.Issued != int64(issued) || st.Live != issued || st.Rejected != int64(len(tests)-issued) {
		t.Errorf("Tokens = %+v, want %d issued and live, %d rejected", st, issued, len(tests)-issued)
	}

	// Query-string parameters are not read.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost,
		e.srv.URL+"/oauth/token?grant_type=account_credentials&account_id="+testAccount, nil)
	req.SetBasicAuth(testClient, testSecret)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("query-string grant: status %d, want 400", resp.StatusCode)
	}
}

func TestMultipleTokensStayValid(t *testing.T) {
	e := newEnv(t, nil)
	first, second := e.token(), e.token()
	if first == second {
		t.Fatal("two fetches returned the same token")
	}
	for _, tok := range []string{first, second} {
		c := e.dial("sub-a", tok, nil)
		if f := readFrame(t, c); f.Success == nil || !*f.Success {
			t.Errorf("token %d: frame %+v, want success", len(tok), f)
		}
	}
}

func TestBuildConnection(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sub-a", e.token(), nil)
	f := readFrame(t, c)
	if f.Module != "build_connection" || f.Success == nil || !*f.Success || f.content(t) != "connected" {
		t.Errorf("frame = %+v, want build_connection success", f)
	}
	if st := e.status("sub-a"); !st.Connected || st.Open != 1 || st.Connections != 1 {
		t.Errorf("status = %+v, want connected once", st)
	}
	if st := e.status("sub-b"); st.Connected {
		t.Errorf("sub-b status = %+v, want not connected", st)
	}
}

func TestBuildConnectionFailures(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, func(c *Config) { c.TokenTTL = Duration(time.Minute) }, clock.use)
	tok := e.token()

	t.Run("token in header only", func(t *testing.T) {
		c := e.dial("sub-a", "", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		expectFailure(t, c, "token is empty")
	})
	t.Run("unknown token", func(t *testing.T) {
		expectFailure(t, e.dial("sub-a", "not-a-token", nil), "Invalid Token") // the first wording
	})
	t.Run("unknown subscription", func(t *testing.T) {
		expectFailure(t, e.dial("sub-zzz", tok, nil), reasonUnknownSub)
	})
	t.Run("no subscription", func(t *testing.T) {
		expectFailure(t, e.dial("", tok, nil), reasonUnknownSub)
	})
	t.Run("expired token", func(t *testing.T) {
		clock.Advance(time.Minute)
		expectFailure(t, e.dial("sub-a", tok, nil), "Token is invalid") // the second wording
		fresh := e.token()
		c := e.dial("sub-a", fresh, nil)
		if f := readFrame(t, c); f.Success == nil || !*f.Success {
			t.Errorf("fresh token: frame %+v, want success", f)
		}
	})
	if st := e.status("sub-a"); st.Connections != 1 {
		t.Errorf("connections = %d, want 1 (refused sockets do not count)", st.Connections)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect("sub-a")
	for range 3 {
		send(t, c, `{"module":"heartbeat"}`)
		f := readFrame(t, c)
		if f.Module != "heartbeat" || f.Success == nil || !*f.Success || f.content(t) != "live" {
			t.Errorf("reply = %+v, want heartbeat success live", f)
		}
	}
	// Anything else is ignored, and the socket stays up.
	send(t, c, `{"module":"something"}`)
	send(t, c, `not json`)
	send(t, c, `{"module":"heartbeat"}`)
	if f := readFrame(t, c); f.Module != "heartbeat" {
		t.Errorf("reply = %+v, want heartbeat", f)
	}
}

type event struct {
	Event   string `json:"event"`
	EventTS int64  `json:"event_ts"`
	Payload struct {
		AccountID string         `json:"account_id"`
		Object    map[string]any `json:"object"`
	} `json:"payload"`
}

func parseEvent(t *testing.T, f clientFrame) event {
	t.Helper()
	if f.Module != "message" {
		t.Fatalf("frame = %+v, want a message", f)
	}
	var ev event
	if err := json.Unmarshal([]byte(f.content(t)), &ev); err != nil {
		t.Fatalf("content is not an event: %v", err)
	}
	return ev
}

func TestPublishFanOut(t *testing.T) {
	e := newEnv(t, nil)
	if n := e.s.Publish("contact_center.user_login", time.Now(), map[string]any{"user_id": "u"}); n != 0 {
		t.Errorf("nobody connected: delivered %d, want 0", n)
	}
	a, b := e.connect("sub-a"), e.connect("sub-b")
	at := time.Date(2025, 11, 29, 10, 0, 15, 123e6, time.UTC)
	obj := map[string]any{"engagement_id": "eng-1", "user_id": "usr-1", "date_time_ms": "2025-11-29T10:00:15.123Z"}
	if n := e.s.Publish("contact_center.engagement_user_answered", at, obj); n != 2 {
		t.Errorf("delivered = %d, want 2", n)
	}
	for name, c := range map[string]*websocket.Conn{"sub-a": a, "sub-b": b} {
		f := readFrame(t, c)
		if ts := f.Header[HeaderTimestamp]; ts == "" {
			t.Errorf("%s: no %s header", name, HeaderTimestamp)
		}
		if _, signed := f.Header[HeaderSignature]; signed {
			t.Errorf("%s: signature without a secret token", name)
		}
		ev := parseEvent(t, f)
		if ev.Event != "contact_center.engagement_user_answered" || ev.EventTS != at.UnixMilli() ||
			ev.Payload.AccountID != testAccount || ev.Payload.Object["engagement_id"] != "eng-1" ||
			ev.Payload.Object["date_time_ms"] != "2025-11-29T10:00:15.123Z" {
			t.Errorf("%s: event = %+v", name, ev)
		}
		if st := e.status(name); st.EventsSent != 1 {
			t.Errorf("%s: events_sent = %d, want 1", name, st.EventsSent)
		}
	}

	// Events reach each socket in publish order.
	for i := range 50 {
		e.s.Publish("contact_center.user_status_changed", at, map[string]any{"i": i})
	}
	for i := range 50 {
		if ev := parseEvent(t, readFrame(t, a)); ev.Payload.Object["i"] != float64(i) {
			t.Fatalf("event %d: got %v", i, ev.Payload.Object["i"])
		}
	}

	// When a client goes away, its subscription stops counting.
	if err := b.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Logf("client close: %v", err)
	}
	waitFor(t, "sub-b to disconnect", func() bool { return !e.status("sub-b").Connected })
	if n := e.s.Publish("contact_center.user_logout", at, nil); n != 1 {
		t.Errorf("after sub-b left: delivered %d, want 1", n)
	}
}

func TestPublishTo(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.connect("sub-a"), e.connect("sub-b")
	raw := json.RawMessage(`{"event":"x.y","event_ts":1,"payload":{"account_id":"a","object":{}}}`)
	if n := e.s.PublishTo([]string{"sub-b", "sub-b", "sub-zzz"}, raw); n != 1 {
		t.Errorf("delivered = %d, want 1", n)
	}
	if got := readFrame(t, b).content(t); got != string(raw) {
		t.Errorf("content = %q, want %q", got, raw)
	}

	// Over HTTP: an event to one subscription, then raw bad content to all.
	post := func(body string) (int, string) {
		resp, err := e.srv.Client().Post(e.srv.URL+"/sim/events", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if st, body := post(`{"subscriptions":["sub-a"],"event":{"event":"e1"}}`); st != 200 || body != `{"delivered":1}` {
		t.Errorf("POST /sim/events: %d %s", st, body)
	}
	if got := readFrame(t, a).content(t); got != `{"event":"e1"}` {
		t.Errorf("content = %q", got)
	}
	if st, body := post(`{"content":"{not json"}`); st != 200 || body != `{"delivered":2}` {
		t.Errorf("POST raw content: %d %s", st, body)
	}
	for _, c := range []*websocket.Conn{a, b} {
		if got := readFrame(t, c).content(t); got != "{not json" {
			t.Errorf("raw content = %q", got)
		}
	}
	for _, bad := range []string{`{}`, `{"subscriptions":["nope"],"event":{}}`, `{"event":{},"content":"x"}`, `{"evnt":{}}`} {
		if st, body := post(bad); st == 200 {
			t.Errorf("POST %s: got 200 %s, want an error", bad, body)
		}
	}
}

func TestSignedFrames(t *testing.T) {
	const secret = "whsec-test-token"
	e := newEnv(t, func(c *Config) { c.SecretToken = secret })
	c := e.connect("sub-a")
	e.s.Publish("contact_center.engagement_started", time.Now(), map[string]any{"engagement_id": "eng-1"})
	f := readFrame(t, c)
	ts, sig := f.Header[HeaderTimestamp], f.Header[HeaderSignature]
	if ms, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		t.Errorf("timestamp %q is not a current unix-ms time", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + f.content(t)))
	if want := "v0=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature = %q, want %q", sig, want)
	}
	if Sign(secret, ts, f.content(t)) != sig {
		t.Error("Sign disagrees with the frame")
	}
}

func TestSecondConnection(t *testing.T) {
	t.Run("kick", func(t *testing.T) {
		e := newEnv(t, nil)
		old := e.connect("sub-a")
		c := e.connect("sub-a")
		err := expectClosed(t, old)
		if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
			t.Errorf("old socket: %v, want close 1008", err)
		}
		if n := e.s.Publish("e", time.Now(), nil); n != 1 {
			t.Errorf("delivered = %d, want 1", n)
		}
		parseEvent(t, readFrame(t, c))
		if st := e.status("sub-a"); st.Kicked != 1 || st.Open != 1 || st.Connections != 2 {
			t.Errorf("status = %+v, want 1 kicked, 1 open, 2 connections", st)
		}
	})
	t.Run("reject", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.SecondConnection = SecondConnectionReject })
		old := e.connect("sub-a")
		expectFailure(t, e.dial("sub-a", e.token(), nil), reasonAlreadyOpen)
		if n := e.s.Publish("e", time.Now(), nil); n != 1 {
			t.Errorf("delivered = %d, want 1", n)
		}
		parseEvent(t, readFrame(t, old))
		if st := e.status("sub-a"); st.Rejected != 1 || st.Open != 1 {
			t.Errorf("status = %+v, want 1 rejected, 1 open", st)
		}
	})
	t.Run("allow", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.SecondConnection = SecondConnectionAllow })
		first, second := e.connect("sub-a"), e.connect("sub-a")
		if n := e.s.Publish("e", time.Now(), nil); n != 1 {
			t.Errorf("delivered = %d, want 1 (one subscription)", n)
		}
		parseEvent(t, readFrame(t, first))
		parseEvent(t, readFrame(t, second))
		if st := e.status("sub-a"); st.Open != 2 || st.EventsSent != 1 {
			t.Errorf("status = %+v, want 2 open, 1 event sent", st)
		}
	})
}

func TestDrop(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.connect("sub-a"), e.connect("sub-b")
	resp, err := e.srv.Client().Post(e.srv.URL+"/sim/subscriptions/sub-a/drop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"dropped":1}` {
		t.Errorf("drop: %d %s", resp.StatusCode, body)
	}
	err = expectClosed(t, a)
	if st := websocket.CloseStatus(err); st != -1 {
		t.Errorf("dropped socket got a close frame (%v); want an abrupt failure", err)
	}
	if n := e.s.Publish("e", time.Now(), nil); n != 1 {
		t.Errorf("delivered = %d, want 1", n)
	}
	parseEvent(t, readFrame(t, b))
	if st := e.status("sub-a"); st.Dropped != 1 || st.Connected {
		t.Errorf("status = %+v, want dropped once, disconnected", st)
	}
	// The subscription can reconnect.
	e.connect("sub-a")

	resp, err = e.srv.Client().Post(e.srv.URL+"/sim/subscriptions/nope/drop", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown subscription: %d, want 404", resp.StatusCode)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	const timeout = 10 * time.Second
	t.Run("silent client is closed", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, func(c *Config) { c.HeartbeatTimeout = Duration(timeout) }, clock.use)
		c := e.connect("sub-a")
		clock.waitTimerAt(t, "the watchdog", clock.Now().Add(timeout))
		clock.Advance(timeout - time.Millisecond)
		heartbeat(t, c) // still open just before the deadline: the heartbeat restarts it
		clock.Advance(timeout)
		err := expectClosed(t, c)
		if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
			t.Errorf("close: %v, want 1008", err)
		}
		if st := e.status("sub-a"); st.HeartbeatTimeouts != 1 {
			t.Errorf("heartbeat_timeouts = %d, want 1", st.HeartbeatTimeouts)
		}
	})
	t.Run("heartbeats keep it open", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, func(c *Config) { c.HeartbeatTimeout = Duration(timeout) }, clock.use)
		c := e.connect("sub-b")
		for range 5 {
			clock.Advance(timeout - time.Second)
			heartbeat(t, c) // a watchdog that ignored heartbeats would have closed it by now
		}
		if st := e.status("sub-b"); !st.Connected || st.HeartbeatTimeouts != 0 {
			t.Errorf("status = %+v, want connected without timeouts", st)
		}
	})
	t.Run("changed while running", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, nil, clock.use)
		c := e.connect("sub-a")
		clock.Advance(time.Hour)
		heartbeat(t, c) // no timeout by default
		e.settings(`{"heartbeat_timeout":"10s"}`)
		clock.waitTimerAt(t, "the re-armed watchdog", clock.Now().Add(timeout))
		clock.Advance(timeout)
		expectClosed(t, c)
		waitFor(t, "the timeout to be counted", func() bool { return e.status("sub-a").HeartbeatTimeouts == 1 })
	})
}

func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.queueSize = 4 })
	e.connect("sub-a") // and never read again
	big := map[string]any{"blob": strings.Repeat("x", 256<<10)}
	for i := 0; e.status("sub-a").SlowConsumers == 0; i++ {
		if i == 1000 {
			t.Fatal("socket never closed as a slow consumer")
		}
		e.s.Publish("e", time.Now(), big)
	}
	if st := e.status("sub-a"); st.Connected {
		t.Errorf("status = %+v, want disconnected", st)
	}
	if n := e.s.Publish("e", time.Now(), nil); n != 0 {
		t.Errorf("delivered = %d after slow-consumer close, want 0", n)
	}
}

func TestCloseClosesSockets(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect("sub-a")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, _, err := c.Read(ctx)
		done <- err
	}()
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("client read: %v, want close 1001", err)
	}
	if n := e.s.Publish("e", time.Now(), nil); n != 0 {
		t.Errorf("Publish after Close delivered %d", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, e.wsURL("sub-a", "x"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: err %v, want a 503", err)
	}
	if err := e.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string) (int, string) {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, _ := get("/healthz"); st != 200 {
		t.Errorf("/healthz: %d", st)
	}
	e.connect("sub-b")
	st, body := get("/sim/subscriptions")
	var subs []SubscriptionStatus
	if err := json.Unmarshal([]byte(body), &subs); st != 200 || err != nil || len(subs) != 2 ||
		subs[0].ID != "sub-a" || subs[0].Connected || !subs[1].Connected || subs[1].Connections != 1 {
		t.Errorf("/sim/subscriptions: %d %s", st, body)
	}
	if st, body := get("/sim/tokens"); st != 200 || !strings.Contains(body, `"issued":1`) {
		t.Errorf("/sim/tokens: %d %s", st, body)
	}
	if st, _ := get("/oauth/token"); st != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth/token: %d, want 405", st)
	}
}

func TestSecretsNotLogged(t *testing.T) {
	const secretToken = "whsec-never-logged"
	e := newEnv(t, func(c *Config) {
		c.SecretToken = secretToken
		c.HeartbeatTimeout = Duration(time.Minute)
		c.TokenExpiry = TokenExpiryCloseAtExpiry
	})
	tok := e.token()
	e.tokenRequest(testClient, "wrong-secret-attempt", url.Values{"grant_type": {"account_credentials"}})
	c := e.dial("sub-a", tok, nil)
	readFrame(t, c)
	send(t, c, `{"module":"heartbeat"}`)
	readFrame(t, c)
	expectFailure(t, e.dial("sub-zzz", tok, nil), reasonUnknownSub)
	expectFailure(t, e.dial("sub-a", "bogus-token-in-url", nil), "Invalid Token")
	e.s.Publish("e", time.Now(), nil)
	readFrame(t, c)
	e.do(http.MethodGet, "/v2/contact_center/users", nil, bearer(tok))
	e.do(http.MethodGet, "/v2/contact_center/users", nil, bearer("bogus-bearer"))

	// Authorization code, refresh (one reply lost), revocation.
	code := e.issueCode(redirect)
	e.exchange(code, "https://other.example/cb")
	_, body := e.exchange(code, redirect)
	rt, _ := body["refresh_token"].(string)
	at, _ := body["access_token"].(string)
	_, body = e.refresh(rt)
	rt2, _ := body["refresh_token"].(string)
	e.refresh(rt)
	e.settings(`{"lose_refresh_reply":1}`)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClient, testSecret)
	if resp, err := e.srv.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	e.s.RevokeTokens()
	expectFailure(t, c, "Token is invalid")
	waitFor(t, "socket handlers to finish", func() bool { return strings.Count(e.logs.String(), "socket closed") == 3 })
	logs := e.logs.String()
	if rt == "" || rt2 == "" || at == "" {
		t.Fatal("grants failed")
	}
	for _, secret := range []string{testSecret, "wrong-secret-attempt", tok, secretToken, "access_token",
		"bogus-token-in-url", "bogus-bearer", code, rt, rt2, at} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}
