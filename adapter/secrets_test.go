package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

const secretsRedirect = "https://ops.example.com/zoom/callback"

// logCapture is a goroutine-safe buffer every log line also goes to.
type logCapture struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// captureLogs makes every node the lab starts from now on log at debug
// level to the test and to the returned capture.
func captureLogs(t *testing.T, l *lab) *logCapture {
	c := &logCapture{}
	l.log = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), c)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	return c
}

// tokenTap is an http.RoundTripper for token requests that records every
// access and refresh token the token endpoint hands out.
type tokenTap struct {
	mu     sync.Mutex
	tokens []string
}

func (tp *tokenTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var v struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &v) == nil {
		tp.add(v.AccessToken, v.RefreshToken)
	}
	return resp, nil
}

func (tp *tokenTap) add(toks ...string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, t := range toks {
		if t != "" {
			tp.tokens = append(tp.tokens, t)
		}
	}
}

func (tp *tokenTap) all() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.tokens...)
}

// tapNode is a node started with the token tap (a local variant of
// lab.start that keeps the Parts and sets the token HTTP client).
type tapNode struct {
	name   string
	parts  *adapter.Parts
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *lab) startTapped(name string, tap *tokenTap, mutate func(*config.Config)) *tapNode {
	l.t.Helper()
	cfg := l.config(name)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		l.t.Fatal(err)
	}
	log := l.log.With().Str("node", name).Logger()
	cl, err := cluster.Connect(l.t.Context(), adapter.ClusterConfig(cfg, cfg.Etcd.Endpoints), log)
	if err != nil {
		l.t.Fatal(err)
	}
	parts, err := adapter.Build(cfg, cl, "in-process", &http.Client{Transport: tap}, log)
	if err != nil {
		cl.Close()
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &tapNode{name: name, parts: parts, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		defer cl.Close()
		parts.Node.Run(ctx) //nolint:errcheck // nil after ctx
	}()
	l.t.Cleanup(n.stop)
	return n
}

func (n *tapNode) stop() {
	n.cancel()
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		panic("node " + n.name + " did not stop within 15s")
	}
}

func (n *tapNode) up() bool { return n.parts.Node.Status().SocketUp }

// connects counts the node's accepted subscription connections.
func (n *tapNode) connects() int64 { return n.parts.Client.Status().Connects }

// dropAndWait drops both lab subscriptions and waits (bounded) until each
// node has connected again, on a new connection.
func (l *lab) dropAndWait(limit time.Duration, nodes ...*tapNode) {
	l.t.Helper()
	before := make([]int64, len(nodes))
	for i, n := range nodes {
		before[i] = n.connects()
	}
	for _, sub := range []string{"sub-a", "sub-b"} {
		if _, err := l.zoom.Drop(sub); err != nil {
			l.t.Fatal(err)
		}
	}
	waitFor(l.t, limit, "every node reconnected", func() bool {
		for i, n := range nodes {
			if !n.parts.Client.Status().Connected || n.connects() <= before[i] {
				return false
			}
		}
		return true
	})
}

// get serves one request on the node's handler.
func (n *tapNode) get(path string) string {
	rec := httptest.NewRecorder()
	n.parts.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Body.String()
}

// tokenStore opens the lab cluster's token store, as a node would.
func (l *lab) tokenStore() *cluster.TokenStore {
	l.t.Helper()
	cfg := l.config("ops")
	cl, err := cluster.Connect(l.t.Context(), adapter.ClusterConfig(cfg, cfg.Etcd.Endpoints), zerolog.Nop())
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cl.Close() })
	s, err := cl.NewTokenStore(l.secret)
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

// authExchange does what `zccadapter auth exchange` does against the lab's
// Zoom: a fresh code, the exchange, and the store write. expire makes the
// stored access token already stale, so the first node to need it refreshes.
func (l *lab) authExchange(store *cluster.TokenStore, tap *tokenTap, expire bool) *oauth2.Token {
	l.t.Helper()
	code, _, err := l.zoom.IssueAuthCode(secretsRedirect)
	if err != nil {
		l.t.Fatal(err)
	}
	tap.add(code)
	tok, err := auth.Exchange(l.t.Context(), auth.ClientConfig{TokenURL: l.zoomTS.URL + "/oauth/token", ClientID: "lab-client",
		ClientSecret: l.secret, HTTPClient: &http.Client{Transport: tap}}, code, secretsRedirect)
	if err != nil {
		l.t.Fatal(err)
	}
	stored := tok
	if expire {
		cp := *tok
		cp.Expiry = time.Now().Add(-time.Minute)
		stored = &cp
	}
	if _, err := store.Update(l.t.Context(), func(*oauth2.Token) (*oauth2.Token, error) { return stored, nil }); err != nil {
		l.t.Fatal(err)
	}
	return tok
}

func refreshGrant(c *config.Config) { c.Zoom.GrantType = auth.GrantRefreshToken; c.Zoom.AccountID = "" }

// TestSecretsNeverLogged runs the pair with call traffic at debug level,
// forces a token revocation and reconnect mid-run, and fails if the client
// secret, any access token or refresh token the token endpoint issued, or an
// authorization code appears in any log line or in /status or /metrics
// (G8). Both grant families run: Server-to-Server and refresh-token.
func TestSecretsNeverLogged(t *testing.T) {
	for _, grant := range []string{auth.GrantAccountCredentials, auth.GrantRefreshToken} {
		t.Run(grant, func(t *testing.T) {
			l := newLab(t)
			logs := captureLogs(t, l)
			tap := &tokenTap{}
			var mutate func(*config.Config)
			if grant == auth.GrantRefreshToken {
				mutate = refreshGrant
				l.authExchange(l.tokenStore(), tap, true)
			}
			a := l.startTapped("a", tap, mutate)
			b := l.startTapped("b", tap, mutate)
			waitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })

			l.startTraffic(traffic.Config{Seed: 11, Agents: 12, CallsPerSecond: 8,
				MinCall: traffic.Duration(200 * time.Millisecond), MaxCall: traffic.Duration(time.Second),
				QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
			waitFor(t, 20*time.Second, "20 applied commands", func() bool { return l.appliedSince(0) >= 20 })
			// Every token revoked and both sockets dropped: failure frames,
			// invalidation and a new fetch (or a rotation) on the log path.
			l.zoom.RevokeTokens()
			l.dropAndWait(30*time.Second, a, b)
			waitFor(t, 10*time.Second, "more commands", func() bool { return l.appliedSince(0) >= 30 })
			l.stopTraffic()

			pages := map[string]string{}
			for _, n := range []*tapNode{a, b} {
				pages[n.name+" /status"] = n.get("/status")
				pages[n.name+" /metrics"] = n.get("/metrics")
			}
			a.stop()
			b.stop()

			secrets := tap.all()
			wantTokens := 2 // S2S: the first access token and the one after the revocation
			if grant == auth.GrantRefreshToken {
				wantTokens = 7 // the code, the exchange's pair, two rotations' pairs
			}
			if len(secrets) < wantTokens {
				t.Fatalf("only %d tokens issued; the test proves little", len(secrets))
			}
			out := logs.String()
			if !strings.Contains(out, `"level":"debug"`) || !strings.Contains(out, `"node":"b"`) {
				t.Fatalf("captured %d bytes of logs without debug lines or node b: the capture is broken", len(out))
			}
			secrets = append(secrets, labSecret)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("the logs hold a secret (%s)", auth.Tail(s))
				}
				for page, body := range pages {
					if strings.Contains(body, s) {
						t.Errorf("%s holds a secret (%s)", page, auth.Tail(s))
					}
				}
			}
			if strings.Contains(out, "access_token=") && !strings.Contains(out, "access_token=REDACTED") {
				t.Error("a log line holds an access_token parameter")
			}
			if s := pages["a /status"]; !strings.Contains(s, `"node":"a"`) {
				t.Errorf("/status is not the node's status: %.200s", s)
			}
		})
	}
}

// TestC06_LegacyInvalidateBothNodesStartAtOnce: simulated Zoom in legacy
// mode (each new token cancels the previous, and cancelled tokens close
// their sockets). Both nodes start at once and later reconnect at once: they
// share one token through etcd, so one token is ever issued, none is
// cancelled, and no socket is refused (no "Invalid Token"/code 124 loop).
func TestC06_LegacyInvalidateBothNodesStartAtOnce(t *testing.T) {
	l := newLab(t)
	if _, err := l.zoom.UpdateSettings(func(s *zoom.Settings) error {
		s.TokenMode, s.TokenExpiry = zoom.TokenModeLegacyInvalidate, zoom.TokenExpiryCloseAtExpiry
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tap := &tokenTap{}
	a := l.startTapped("a", tap, nil)
	b := l.startTapped("b", tap, nil)
	waitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })
	l.dropAndWait(15*time.Second, a, b)
	st := l.zoom.Tokens()
	if st.Issued != 1 || st.Cancelled != 0 || st.Rejected != 0 {
		t.Fatalf("tokens: %+v; want one issued, none cancelled or rejected", st)
	}
	if f := a.parts.Tokens.Fetches() + b.parts.Tokens.Fetches(); f != 1 {
		t.Fatalf("%d fetches by the pair, want 1", f)
	}
	for _, n := range []*tapNode{a, b} {
		if s := n.parts.Client.Status(); s.AuthFailures != 0 {
			t.Errorf("node %s: %d auth failures", n.name, s.AuthFailures)
		}
	}
}

// TestC07_LostRefreshReplyPair: refresh-token grant; Zoom processes a
// refresh but the reply is lost. The pair never stores a half-rotated token
// (etcd keeps the refresh token it had), each node gets invalid_grant once
// and raises one alert naming `auth exchange`, nobody asks Zoom again in a
// loop, and a new `auth exchange` brings both sockets back.
func TestC07_LostRefreshReplyPair(t *testing.T) {
	l := newLab(t)
	logs := captureLogs(t, l)
	tap := &tokenTap{}
	store := l.tokenStore()
	first := l.authExchange(store, tap, false)
	a := l.startTapped("a", tap, refreshGrant)
	b := l.startTapped("b", tap, refreshGrant)
	waitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })
	if st := l.zoom.Tokens(); st.Refreshes != 0 {
		t.Fatalf("refreshed a fresh token: %+v", st)
	}

	if _, err := l.zoom.UpdateSettings(func(s *zoom.Settings) error { s.LoseRefreshReply = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	l.zoom.RevokeTokens()
	for _, sub := range []string{"sub-a", "sub-b"} {
		if _, err := l.zoom.Drop(sub); err != nil {
			t.Fatal(err)
		}
	}
	alerts := func() int { return strings.Count(logs.String(), `"alert":true`) }
	waitFor(t, 20*time.Second, "an alert from each node", func() bool { return alerts() >= 2 })
	before := l.zoom.Tokens()
	// No loop: a bounded quiet period with the sockets retrying; nobody
	// asks Zoom again. (Correctness does not depend on its length.)
	time.Sleep(2 * time.Second)
	after := l.zoom.Tokens()
	if after.Rejected != before.Rejected || after.Issued != before.Issued || alerts() != 2 {
		t.Fatalf("token requests went on after the alert: before %+v, after %+v, %d alerts", before, after, alerts())
	}
	if after.RepliesLost != 1 || after.Refreshes != 1 || after.Rejected != 2 {
		t.Errorf("tokens: %+v; want one lost reply, one processed refresh, one invalid_grant per node", after)
	}
	if stored, err := store.Load(t.Context()); err != nil || stored.RefreshToken != first.RefreshToken {
		t.Fatalf("etcd's refresh token changed after a lost reply: %v", err)
	}
	for _, n := range []*tapNode{a, b} {
		if err := n.parts.Tokens.Reauthorize(); !errors.Is(err, auth.ErrReauthorize) ||
			!strings.Contains(err.Error(), "zccadapter auth exchange --config FILE --code CODE --redirect-uri URI") {
			t.Errorf("node %s: Reauthorize() = %v", n.name, err)
		}
	}

	// The operator re-authorises; the nodes pick the new token up on their
	// next attempt (backoff-bound) without a refresh.
	ca, cb := a.connects(), b.connects()
	l.authExchange(store, tap, false)
	waitFor(t, 45*time.Second, "both sockets up after auth exchange", func() bool {
		return a.up() && b.up() && a.connects() > ca && b.connects() > cb
	})
	if st := l.zoom.Tokens(); st.Refreshes != 1 {
		t.Errorf("tokens after re-authorisation: %+v", st)
	}
	a.stop()
	b.stop()
	for _, s := range append(tap.all(), labSecret) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold a secret (%s)", auth.Tail(s))
		}
	}
}

// TestTokenFetcherFollowsGrantType: zoom.grant_type picks the fetcher, and
// the configuration asks for account_id only where the grant needs it; the
// client secret is required by every grant.
func TestTokenFetcherFollowsGrantType(t *testing.T) {
	base := func(grant string) *config.Config {
		c := &config.Config{Node: "a"}
		c.Etcd.Endpoints = []string{"127.0.0.1:2379"}
		c.Zoom.ClientID, c.Zoom.ClientSecret, c.Zoom.GrantType = "cid", "secret", grant
		c.Zoom.SubscriptionURL = "wss://ws.zoom.us/ws?subscriptionId=s"
		c.Recorder.URL = "http://127.0.0.1:8090"
		c.SetDefaults()
		return c
	}
	cases := []struct {
		grant     string
		secret    string
		refresher bool
		problem   string // "" when valid
	}{
		{"", "secret", false, "zoom.account_id"},
		{auth.GrantAccountCredentials, "secret", false, "zoom.account_id"},
		{auth.GrantClientCredentials, "secret", false, ""},
		{auth.GrantRefreshToken, "secret", true, ""},
		{auth.GrantRefreshToken, "", true, "zoom.client_secret"},
		{"password", "secret", false, "zoom.grant_type"},
	}
	for _, c := range cases {
		cfg := base(c.grant)
		cfg.Zoom.ClientSecret = c.secret
		err := cfg.Validate()
		if c.problem != "" {
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("grant %q secret %q: Validate = %v, want a problem with %s", c.grant, c.secret, err, c.problem)
			}
			continue
		}
		if err != nil {
			t.Errorf("grant %q: Validate = %v", c.grant, err)
			continue
		}
		f, err := adapter.TokenFetcher(cfg.Zoom, nil)
		if err != nil {
			t.Errorf("grant %q: TokenFetcher = %v", c.grant, err)
			continue
		}
		if _, ok := f.(auth.Refresher); ok != c.refresher {
			t.Errorf("grant %q: fetcher is a Refresher = %v, want %v", c.grant, ok, c.refresher)
		}
	}
	if cfg := base(""); cfg.Zoom.GrantType != auth.GrantAccountCredentials {
		t.Errorf("default grant_type = %q", cfg.Zoom.GrantType)
	}
}
