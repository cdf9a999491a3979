package adapter_test

import (
	"bytes"
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

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/redact"
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

// lines returns the captured lines that contain substr.
func (c *logCapture) lines(substr string) []string {
	var out []string
	for _, ln := range strings.Split(c.String(), "\n") {
		if strings.Contains(ln, substr) {
			out = append(out, ln)
		}
	}
	return out
}

// captureLogs makes every node the lab starts from now on log at debug
// level to the test and to the returned capture.
func captureLogs(t *testing.T, l *lab) *logCapture {
	c := &logCapture{}
	l.Log = zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), c)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
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

// tapNode is a lab node whose token requests go through a token tap.
type tapNode struct{ *labtest.Node }

// startTapped runs node name in-process with its token requests through
// tap; mutate (may be nil) adjusts its configuration.
func (l *lab) startTapped(name string, tap *tokenTap, mutate func(*config.Config)) *tapNode {
	l.T.Helper()
	cfg := l.Config(name)
	if mutate != nil {
		mutate(cfg)
	}
	return &tapNode{l.Start(cfg, labtest.NodeOptions{HTTPClient: &http.Client{Transport: tap}})}
}

func (n *tapNode) up() bool { return n.Status().SocketUp }

// connects counts the node's accepted subscription connections.
func (n *tapNode) connects() int64 { return n.Parts.Client.Status().Connects }

// dropAndWait drops both lab subscriptions and waits (bounded) until each
// node has connected again, on a new connection.
func (l *lab) dropAndWait(limit time.Duration, nodes ...*tapNode) {
	l.T.Helper()
	before := make([]int64, len(nodes))
	for i, n := range nodes {
		before[i] = n.connects()
	}
	for _, sub := range []string{"sub-a", "sub-b"} {
		if _, err := l.Zoom.Drop(sub); err != nil {
			l.T.Fatal(err)
		}
	}
	labtest.WaitFor(l.T, limit, "every node reconnected", func() bool {
		for i, n := range nodes {
			if !n.Parts.Client.Status().Connected || n.connects() <= before[i] {
				return false
			}
		}
		return true
	})
}

// get serves one request on the node's handler.
func (n *tapNode) get(path string) string {
	rec := httptest.NewRecorder()
	n.Parts.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Body.String()
}

// tokenStore opens the lab cluster's token store, as a node would.
func (l *lab) tokenStore() *cluster.TokenStore {
	l.T.Helper()
	cfg := l.Config("ops")
	cl, err := cluster.Connect(l.T.Context(), assemble.ClusterConfig(cfg, cfg.Etcd.Endpoints), zerolog.Nop())
	if err != nil {
		l.T.Fatal(err)
	}
	l.T.Cleanup(func() { cl.Close() })
	s, err := cl.NewTokenStore(l.Secret)
	if err != nil {
		l.T.Fatal(err)
	}
	return s
}

// authExchange does what `zccadapter auth exchange` does against the lab's
// Zoom: a fresh code, the exchange, and the store write. expire makes the
// stored access token already stale, so the first node to need it refreshes.
func (l *lab) authExchange(store *cluster.TokenStore, tap *tokenTap, expire bool) *oauth2.Token {
	l.T.Helper()
	code, _, err := l.Zoom.IssueAuthCode(secretsRedirect)
	if err != nil {
		l.T.Fatal(err)
	}
	tap.add(code)
	tok, err := auth.Exchange(l.T.Context(), auth.ClientConfig{TokenURL: l.ZoomTS.URL + "/oauth/token", ClientID: labtest.ClientID,
		ClientSecret: l.Secret, HTTPClient: &http.Client{Transport: tap}}, code, secretsRedirect)
	if err != nil {
		l.T.Fatal(err)
	}
	stored := tok
	if expire {
		cp := *tok
		cp.Expiry = time.Now().Add(-time.Minute)
		stored = &cp
	}
	if _, err := store.Update(l.T.Context(), func(*oauth2.Token) (*oauth2.Token, error) { return stored, nil }); err != nil {
		l.T.Fatal(err)
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
			labtest.WaitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })

			l.startTraffic(traffic.Config{Seed: 11, Agents: 12, CallsPerSecond: 8,
				MinCall: traffic.Duration(200 * time.Millisecond), MaxCall: traffic.Duration(time.Second),
				QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
			labtest.WaitFor(t, 20*time.Second, "20 applied commands", func() bool { return l.appliedSince(0) >= 20 })
			// Every token revoked and both sockets dropped: failure frames,
			// invalidation and a new fetch (or a rotation) on the log path.
			l.Zoom.RevokeTokens()
			l.dropAndWait(30*time.Second, a, b)
			labtest.WaitFor(t, 10*time.Second, "more commands", func() bool { return l.appliedSince(0) >= 30 })
			l.stopTraffic()

			pages := map[string]string{}
			for _, n := range []*tapNode{a, b} {
				pages[n.Name+" /status"] = n.get("/status")
				pages[n.Name+" /metrics"] = n.get("/metrics")
			}
			a.Stop()
			b.Stop()

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
					t.Errorf("the logs hold a secret (%s)", redact.Tail(s))
				}
				for page, body := range pages {
					if strings.Contains(body, s) {
						t.Errorf("%s holds a secret (%s)", page, redact.Tail(s))
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
	if _, err := l.Zoom.UpdateSettings(func(s *zoom.Settings) error {
		s.TokenMode, s.TokenExpiry = zoom.TokenModeLegacyInvalidate, zoom.TokenExpiryCloseAtExpiry
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tap := &tokenTap{}
	a := l.startTapped("a", tap, nil)
	b := l.startTapped("b", tap, nil)
	labtest.WaitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })
	l.dropAndWait(15*time.Second, a, b)
	st := l.Zoom.Tokens()
	if st.Issued != 1 || st.Cancelled != 0 || st.Rejected != 0 {
		t.Fatalf("tokens: %+v; want one issued, none cancelled or rejected", st)
	}
	if f := a.Parts.Tokens.Fetches() + b.Parts.Tokens.Fetches(); f != 1 {
		t.Fatalf("%d fetches by the pair, want 1", f)
	}
	for _, n := range []*tapNode{a, b} {
		if s := n.Parts.Client.Status(); s.AuthFailures != 0 {
			t.Errorf("node %s: %d auth failures", n.Name, s.AuthFailures)
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
	labtest.WaitFor(t, 15*time.Second, "both sockets up", func() bool { return a.up() && b.up() })
	if st := l.Zoom.Tokens(); st.Refreshes != 0 {
		t.Fatalf("refreshed a fresh token: %+v", st)
	}

	if _, err := l.Zoom.UpdateSettings(func(s *zoom.Settings) error { s.LoseRefreshReply = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	l.Zoom.RevokeTokens()
	for _, sub := range []string{"sub-a", "sub-b"} {
		if _, err := l.Zoom.Drop(sub); err != nil {
			t.Fatal(err)
		}
	}
	alerts := func() int { return strings.Count(logs.String(), `"alert":true`) }
	labtest.WaitFor(t, 20*time.Second, "an alert from each node", func() bool { return alerts() >= 2 })
	before := l.Zoom.Tokens()
	// No loop: a bounded quiet period with the sockets retrying; nobody
	// asks Zoom again. (Correctness does not depend on its length.)
	time.Sleep(2 * time.Second)
	after := l.Zoom.Tokens()
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
		if err := n.Parts.Tokens.Reauthorize(); !errors.Is(err, auth.ErrReauthorize) ||
			!strings.Contains(err.Error(), "zccadapter auth exchange --config FILE --code CODE --redirect-uri URI") {
			t.Errorf("node %s: Reauthorize() = %v", n.Name, err)
		}
	}

	// The operator re-authorises; the nodes pick the new token up on their
	// next attempt (backoff-bound) without a refresh.
	ca, cb := a.connects(), b.connects()
	l.authExchange(store, tap, false)
	labtest.WaitFor(t, 45*time.Second, "both sockets up after auth exchange", func() bool {
		return a.up() && b.up() && a.connects() > ca && b.connects() > cb
	})
	if st := l.Zoom.Tokens(); st.Refreshes != 1 {
		t.Errorf("tokens after re-authorisation: %+v", st)
	}
	a.Stop()
	b.Stop()
	for _, s := range append(tap.all(), labSecret) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs hold a secret (%s)", redact.Tail(s))
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
		f, err := assemble.TokenFetcher(cfg.Zoom, nil)
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
