package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// wait bounds every wait of these tests: generous, so a slow CI machine does
// not flake, while a hang still fails.
const wait = 10 * time.Second

// recv receives from ch within wait, or fails the test.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// ---- logs ----

// logBuf collects log output for assertions; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger logs at every level to t.Log and to the returned buffer.
func testLogger(t *testing.T) (zerolog.Logger, *logBuf) {
	buf := &logBuf{}
	return zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), buf)).Level(zerolog.TraceLevel), buf
}

// ---- token source fake ----

// fakeTokens hands out tok-1, tok-2, … : a new token only after the current
// one was invalidated. It fails the test on an Invalidate it was not told to
// expect, or on an Invalidate of a token it never issued.
type fakeTokens struct {
	t               *testing.T
	prefix          string
	allowInvalidate bool
	calls           chan string // every token handed out, in order (buffered)

	mu          sync.Mutex
	n           int
	cur         *oauth2.Token
	invalidated []string
}

func newFakeTokens(t *testing.T, prefix string, allowInvalidate bool) *fakeTokens {
	return &fakeTokens{t: t, prefix: prefix, allowInvalidate: allowInvalidate, calls: make(chan string, 1000)}
}

func (f *fakeTokens) Token(ctx context.Context) (*oauth2.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		f.n++
		f.cur = &oauth2.Token{AccessToken: fmt.Sprintf("%s-%d", f.prefix, f.n), TokenType: "bearer", Expiry: time.Now().Add(time.Hour)}
	}
	select {
	case f.calls <- f.cur.AccessToken:
	default:
		f.t.Errorf("fakeTokens: more than %d Token calls: a hot loop?", cap(f.calls))
	}
	return f.cur, nil
}

func (f *fakeTokens) Invalidate(tok *oauth2.Token) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.allowInvalidate {
		f.t.Errorf("fakeTokens: unexpected Invalidate(%q)", tok.AccessToken)
	}
	if tok == nil || !strings.HasPrefix(tok.AccessToken, f.prefix) {
		f.t.Errorf("fakeTokens: Invalidate of a token it never issued")
		return
	}
	f.invalidated = append(f.invalidated, tok.AccessToken)
	if f.cur == tok {
		f.cur = nil
	}
}

func (f *fakeTokens) Invalidated() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.invalidated...)
}

// ---- fake Zoom ----

// dialInfo is what the fake server saw of one handshake.
type dialInfo struct {
	n      int // 1-based
	at     time.Time
	query  url.Values
	header http.Header
}

// zoomConn is one accepted connection of the fake server.
type zoomConn struct {
	t *testing.T
	*websocket.Conn
	dialInfo
	token string
	ctx   context.Context // ends at test cleanup
}

func (z *zoomConn) send(s string) error {
	return z.Write(z.ctx, websocket.MessageText, []byte(s))
}

func (z *zoomConn) accept() error {
	return z.send(`{"module":"build_connection","success":true,"content":"success","header":{}}`)
}

func (z *zoomConn) reject(content string) error {
	return z.send(string(mustJSON(z.t, map[string]any{"module": "build_connection", "success": false, "content": content, "header": map[string]any{}})))
}

// sendEvent sends event JSON in a message frame, content as a string.
func (z *zoomConn) sendEvent(event []byte) error {
	return z.Write(z.ctx, websocket.MessageText, mustJSON(z.t, map[string]any{
		"module":  "message",
		"header":  map[string]string{"x-zm-request-timestamp": "1764410415", "x-zm-signature": "v0=" + fmt.Sprint(rand.Int())},
		"content": string(event),
	}))
}

// serveHeartbeats reads frames until the connection ends, answering every
// replyEvery-th heartbeat with Zoom's reply (0: none) and reporting each on hb.
// It returns the read error.
func (z *zoomConn) serveHeartbeats(replyEvery int, hb chan<- time.Time) error {
	for n := 1; ; n++ {
		typ, b, err := z.Read(z.ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText || string(b) != `{"module":"heartbeat"}` {
			z.t.Errorf("fake zoom: unexpected frame from client: type %v %q", typ, b)
			continue
		}
		if hb != nil {
			select {
			case hb <- time.Now():
			default:
			}
		}
		if replyEvery > 0 && n%replyEvery == 0 {
			if err := z.send(`{"module":"heartbeat","success":true,"content":"live","header":{}}`); err != nil {
				return err
			}
		}
	}
}

// fakeZoom is a tiny stand-in for Zoom's subscription endpoint: like Zoom, a
// dial without an access_token query parameter (an Authorization header is
// ignored) gets build_connection success:false "token is empty" and a close
// (PROTOCOL.md §1); every other connection goes to serve.
type fakeZoom struct {
	t     *testing.T
	srv   *httptest.Server
	ctx   context.Context
	pre   func(w http.ResponseWriter, r *http.Request) bool // answers the handshake itself when it returns true
	serve func(*zoomConn)
	dials chan dialInfo // every handshake, in order (buffered)

	mu sync.Mutex
	n  int
}

func newFakeZoom(t *testing.T, serve func(*zoomConn)) *fakeZoom {
	return newFakeZoomPre(t, nil, serve)
}

// newFakeZoomPre is newFakeZoom with a hook that may answer a handshake
// before the WebSocket upgrade (with an HTTP error, say).
func newFakeZoomPre(t *testing.T, pre func(w http.ResponseWriter, r *http.Request) bool, serve func(*zoomConn)) *fakeZoom {
	ctx, cancel := context.WithCancel(context.Background())
	fz := &fakeZoom{t: t, ctx: ctx, pre: pre, serve: serve, dials: make(chan dialInfo, 1000)}
	fz.srv = httptest.NewServer(http.HandlerFunc(fz.handle))
	t.Cleanup(func() {
		cancel() // ends every handler's reads and writes
		fz.srv.Close()
	})
	return fz
}

func (fz *fakeZoom) handle(w http.ResponseWriter, r *http.Request) {
	fz.mu.Lock()
	fz.n++
	di := dialInfo{n: fz.n, at: time.Now(), query: r.URL.Query(), header: r.Header.Clone()}
	fz.mu.Unlock()
	select {
	case fz.dials <- di:
	default:
		fz.t.Errorf("fake zoom: more than %d dials: a hot loop?", cap(fz.dials))
	}
	if fz.pre != nil && fz.pre(w, r) {
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	zc := &zoomConn{t: fz.t, Conn: conn, dialInfo: di, token: di.query.Get("access_token"), ctx: fz.ctx}
	if zc.token == "" {
		_ = zc.reject("token is empty")
		_ = conn.Close(websocket.StatusPolicyViolation, "")
		return
	}
	fz.serve(zc)
}

func (fz *fakeZoom) url() string {
	return "ws" + strings.TrimPrefix(fz.srv.URL, "http") + "/ws?subscriptionId=sub-1"
}

// ---- client harness ----

func baseConfig(t *testing.T, rawURL string, tokens *fakeTokens, log zerolog.Logger) ClientConfig {
	return ClientConfig{
		URL:               rawURL,
		Tokens:            tokens,
		HeartbeatInterval: 50 * time.Millisecond,
		WatchdogTimeout:   5 * time.Second,
		MinBackoff:        10 * time.Millisecond,
		MaxBackoff:        50 * time.Millisecond,
		CloseTimeout:      500 * time.Millisecond,
		DialTimeout:       5 * time.Second,
		Logger:            log,
	}
}

// runClient starts Run and returns a stop function that cancels it and
// returns Run's error and how long it took to return. stop also runs at
// cleanup.
func runClient(t *testing.T, cfg ClientConfig, deliver func(*Event)) (*Client, func() (error, time.Duration)) {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, deliver) }()
	var once sync.Once
	var runErr error
	var took time.Duration
	stop := func() (error, time.Duration) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case runErr = <-done:
				took = time.Since(start)
			case <-time.After(wait):
				t.Errorf("Run did not return within %v of cancel", wait)
			}
		})
		return runErr, took
	}
	t.Cleanup(func() { stop() })
	return c, stop
}

// eventJSON returns an engagement_user_answered event numbered i, of now
// (the client parses with the default Limits, on the real clock).
func eventJSON(i int) []byte {
	at := time.Now().UTC()
	return fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered","event_ts":%d,"payload":{"account_id":"acct-1","object":{"engagement_id":"eng-%d","user_id":"usr-1","date_time_ms":%q}}}`,
		at.UnixMilli()+int64(i), i, at.Format("2006-01-02T15:04:05.000Z"))
}

// ---- tests ----

func TestNewClientValidation(t *testing.T) {
	tokens := newFakeTokens(t, "tok", false)
	good := ClientConfig{URL: "wss://ws.zoom.us/ws?subscriptionId=abc", Tokens: tokens}
	c, err := NewClient(good)
	if err != nil {
		t.Fatalf("NewClient(minimal) = %v", err)
	}
	if c.SubscriptionID() != "abc" {
		t.Errorf("SubscriptionID = %q; want abc", c.SubscriptionID())
	}
	if c.cfg.HeartbeatInterval != 30*time.Second || c.cfg.WatchdogTimeout != 45*time.Second || c.cfg.ReadLimit != 1<<20 ||
		c.cfg.MinBackoff != 250*time.Millisecond || c.cfg.MaxBackoff != 30*time.Second || c.cfg.CloseTimeout != time.Second {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}

	tests := []struct {
		name  string
		edit  func(*ClientConfig)
		field string // the message must name it
	}{
		{"empty URL", func(c *ClientConfig) { c.URL = "" }, "URL"},
		{"http scheme", func(c *ClientConfig) { c.URL = "https://ws.zoom.us/ws?subscriptionId=abc" }, "URL"},
		{"no host", func(c *ClientConfig) { c.URL = "wss:///ws?subscriptionId=abc" }, "URL"},
		{"bad URL", func(c *ClientConfig) { c.URL = "wss://%zz/ws" }, "URL"},
		{"no subscriptionId", func(c *ClientConfig) { c.URL = "wss://ws.zoom.us/ws" }, "subscriptionId"},
		{"token in URL", func(c *ClientConfig) { c.URL += "&access_token=SECRET-IN-URL" }, "access_token"},
		{"nil Tokens", func(c *ClientConfig) { c.Tokens = nil }, "Tokens"},
		{"watchdog <= heartbeat", func(c *ClientConfig) { c.HeartbeatInterval, c.WatchdogTimeout = time.Minute, 45*time.Second }, "WatchdogTimeout"},
		{"negative heartbeat", func(c *ClientConfig) { c.HeartbeatInterval = -1 }, "HeartbeatInterval"},
		{"min > max backoff", func(c *ClientConfig) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, "MinBackoff"},
		{"negative read limit", func(c *ClientConfig) { c.ReadLimit = -1 }, "ReadLimit"},
		{"negative close timeout", func(c *ClientConfig) { c.CloseTimeout = -1 }, "CloseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := NewClient(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewClient = %v; want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			if strings.Contains(err.Error(), "SECRET-IN-URL") {
				t.Errorf("error %q carries the token", err)
			}
			if cfg.Validate() == nil {
				t.Error("Validate accepts what NewClient rejects")
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	c, err := NewClient(ClientConfig{URL: "ws://h/ws?subscriptionId=s", Tokens: newFakeTokens(t, "t", false),
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.backoff(0); d != 100*time.Millisecond {
		t.Errorf("backoff(0) = %v; want MinBackoff", d)
	}
	for n := range 70 {
		ceil := min(time.Second, 100*time.Millisecond<<min(n, 20))
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(n)
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("backoff(%d) = %v; want in [100ms, %v]", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if n >= 4 && maxSeen < 700*time.Millisecond {
			t.Errorf("backoff(%d) never exceeded %v: no growth", n, maxSeen)
		}
	}
}

func TestC03_FakeZoomRejectsAuthorizationHeader(t *testing.T) {
	fz := newFakeZoom(t, func(z *zoomConn) { t.Error("a dial without a query token reached serve") })
	conn, _, err := websocket.Dial(t.Context(), fz.url(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer tok-header"}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	_, b, err := conn.Read(t.Context())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	f, err := ParseFrame(b)
	if err != nil || f.Module != ModuleBuildConnection || f.Success == nil || *f.Success || f.Content != "token is empty" {
		t.Fatalf("first frame = %+v, %v; want build_connection success:false \"token is empty\"", f, err)
	}
	if _, _, err := conn.Read(t.Context()); websocket.CloseStatus(err) == -1 {
		t.Errorf("after the failure frame: %v; want a close", err)
	}
}

func TestC03_TokenInQueryOnly(t *testing.T) {
	log, _ := testLogger(t)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil || z.sendEvent(eventJSON(1)) != nil {
			return
		}
		_ = z.serveHeartbeats(1, nil)
	})
	tokens := newFakeTokens(t, "tok", false)
	got := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url()+"&region=eu#frag", tokens, log)
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	di := recv(t, fz.dials, "the dial")
	if tok := di.query.Get("access_token"); tok != "tok-1" {
		t.Errorf("access_token query parameter = %q; want tok-1", tok)
	}
	if di.query.Get("subscriptionId") != "sub-1" || di.query.Get("region") != "eu" || len(di.query["access_token"]) != 1 {
		t.Errorf("query = %v; want the configured parameters plus one access_token", di.query)
	}
	for name, vals := range di.header {
		for _, v := range vals {
			if strings.Contains(v, "tok-1") {
				t.Errorf("header %s carries the token", name)
			}
		}
	}
	if di.header.Get("Authorization") != "" {
		t.Error("request has an Authorization header")
	}
	ev := recv(t, got, "the event")
	if ev.Name != EngagementUserAnswered || ev.Engagement.EngagementID != "eng-1" {
		t.Errorf("event = %+v", ev)
	}
	if st := c.Status(); !st.Connected || st.Connects != 1 || st.Events != 1 || st.ConnectedSince.IsZero() || st.LastFrameAt.IsZero() {
		t.Errorf("Status = %+v; want connected once with one event", st)
	}
}

func TestHeartbeatsAtInterval(t *testing.T) {
	log, _ := testLogger(t)
	hb := make(chan time.Time, 100)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		_ = z.serveHeartbeats(1, hb)
	})
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.HeartbeatInterval = 20 * time.Millisecond
	runClient(t, cfg, nil)

	var times []time.Time
	for range 5 {
		times = append(times, recv(t, hb, "a heartbeat"))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 10*time.Millisecond {
			t.Errorf("heartbeats %d and %d only %v apart; want about %v", i-1, i, gap, cfg.HeartbeatInterval)
		}
	}
}

func TestMessagesDeliveredInOrder(t *testing.T) {
	log, _ := testLogger(t)
	const n = 200
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		for i := range n {
			if i == 50 {
				_ = z.send(`{"module":"message","content":"{not json"}`)
				_ = z.send(`{"no module":1}`)
				_ = z.send(`{"module":"surprise"}`)
				_ = z.sendEvent([]byte(`{"event":"contact_center.engagement_user_answered","event_ts":1,"payload":{"account_id":"a","object":{"engagement_id":"e"}}}`))
				_ = z.sendEvent(fmt.Appendf(nil, `{"event":"contact_center.brand_new","event_ts":%d,"payload":{"account_id":"a","object":{}}}`, time.Now().UnixMilli()))
			}
			if z.sendEvent(eventJSON(i)) != nil {
				return
			}
		}
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 2*n)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	want := 0
	for want < n {
		ev := recv(t, got, fmt.Sprintf("event %d", want))
		if !ev.Known {
			if ev.Name != "contact_center.brand_new" {
				t.Errorf("unknown event %q", ev.Name)
			}
			continue
		}
		if id := ev.Engagement.EngagementID; id != fmt.Sprintf("eng-%d", want) {
			t.Fatalf("event %d: engagement %s; want eng-%d (order broken)", want, id, want)
		}
		want++
	}
	st := c.Status()
	if st.Events != n+1 || st.Unknown != 1 || st.Malformed != 3 || st.UnknownFrames != 1 || st.Connects != 1 {
		t.Errorf("Status = %+v; want Events %d, Unknown 1, Malformed 3, UnknownFrames 1, Connects 1", st, n+1)
	}
	if st.LastEventAt.IsZero() {
		t.Error("LastEventAt not set")
	}
}

func TestC04_FailureFrameInvalidatesToken(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(z *zoomConn, wording string) // on the first connection
		probe string                            // log text expected
	}{
		{"at connect then close", func(z *zoomConn, w string) {
			_ = z.reject(w)
			_ = z.Close(websocket.StatusNormalClosure, "")
		}, "build_connection success:false"},
		{"at connect, close 4xxx", func(z *zoomConn, w string) {
			_ = z.reject(w)
			_ = z.Close(websocket.StatusCode(4001), "bye")
		}, "build_connection success:false"},
		{"mid-session then close", func(z *zoomConn, w string) {
			_ = z.accept()
			_ = z.sendEvent(eventJSON(1))
			_ = z.reject(w)
			_ = z.Close(websocket.StatusPolicyViolation, "")
		}, "build_connection success:false"},
		{"at connect, server keeps socket open", func(z *zoomConn, w string) {
			_ = z.reject(w)
			_ = z.serveHeartbeats(0, nil) // returns when the client closes
		}, "build_connection success:false"},
		{"handshake 401", nil, "handshake rejected the token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testLogger(t)
			// Arbitrary wording: the client must not depend on it.
			wording := fmt.Sprintf("W%x says no", rand.Uint64())
			connected := make(chan string, 10)
			var pre func(w http.ResponseWriter, r *http.Request) bool
			if tt.fail == nil { // reject tok-1 at the HTTP handshake instead
				pre = func(w http.ResponseWriter, r *http.Request) bool {
					if r.URL.Query().Get("access_token") != "tok-1" {
						return false
					}
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return true
				}
			}
			fz := newFakeZoomPre(t, pre, func(z *zoomConn) {
				if z.token == "tok-1" {
					tt.fail(z, wording)
					return
				}
				if z.accept() != nil {
					return
				}
				connected <- z.token
				_ = z.serveHeartbeats(1, nil)
			})
			tokens := newFakeTokens(t, "tok", true)
			cfg := baseConfig(t, fz.url(), tokens, log)
			cfg.MinBackoff, cfg.MaxBackoff = 100*time.Millisecond, 200*time.Millisecond
			c, _ := runClient(t, cfg, nil)

			first := recv(t, fz.dials, "first dial")
			if tok := recv(t, connected, "the reconnect"); tok != "tok-2" {
				t.Fatalf("reconnected with %q; want the fresh tok-2", tok)
			}
			second := recv(t, fz.dials, "second dial")
			if second.query.Get("access_token") != "tok-2" {
				t.Errorf("second dial used %q", second.query.Get("access_token"))
			}
			if gap := second.at.Sub(first.at); gap < cfg.MinBackoff {
				t.Errorf("reconnected %v after the failure; want a backoff of at least %v", gap, cfg.MinBackoff)
			}
			if inv := tokens.Invalidated(); len(inv) != 1 || inv[0] != "tok-1" {
				t.Errorf("Invalidated = %v; want [tok-1]", inv)
			}
			st := c.Status()
			if st.AuthFailures != 1 || !strings.HasPrefix(st.LastError, "auth: ") {
				t.Errorf("Status = %+v; want one auth failure as LastError", st)
			}
			out := logs.String()
			if !strings.Contains(out, tt.probe) || !strings.Contains(out, `"level":"error"`) {
				t.Errorf("no error log with %q", tt.probe)
			}
			if tt.fail != nil && !strings.Contains(out, wording) {
				t.Errorf("the server's content %q is not logged", wording)
			}
		})
	}
}

func TestC04_RejectedTokenNoHotLoop(t *testing.T) {
	log, _ := testLogger(t)
	fz := newFakeZoom(t, func(z *zoomConn) {
		_ = z.reject("Token is invalid")
		_ = z.Close(websocket.StatusNormalClosure, "")
	})
	tokens := newFakeTokens(t, "tok", true)
	cfg := baseConfig(t, fz.url(), tokens, log)
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 160*time.Millisecond
	c, stop := runClient(t, cfg, nil)

	const dials = 8
	var at []time.Time
	for i := range dials {
		di := recv(t, fz.dials, fmt.Sprintf("dial %d", i+1))
		if want := fmt.Sprintf("tok-%d", i+1); di.query.Get("access_token") != want {
			t.Errorf("dial %d used %q; want a fresh %s", i+1, di.query.Get("access_token"), want)
		}
		at = append(at, di.at)
	}
	stop()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < cfg.MinBackoff {
			t.Errorf("dials %d and %d %v apart; want at least MinBackoff %v", i, i+1, gap, cfg.MinBackoff)
		}
	}
	// Over the window, no more dials than the backoff floor allows.
	window := at[len(at)-1].Sub(at[0])
	if maxDials := int(window/cfg.MinBackoff) + 1; dials > maxDials {
		t.Errorf("%d dials in %v; the backoff floor allows %d", dials, window, maxDials)
	}
	if st := c.Status(); st.AuthFailures < dials-1 || st.Connects != 0 || st.Connected {
		t.Errorf("Status = %+v; want ≥%d auth failures, never connected", st, dials-1)
	}
}

func TestC05_WatchdogClosesSilentServer(t *testing.T) {
	log, _ := testLogger(t)
	type silentEnd struct {
		accepted time.Time
		closed   time.Time
	}
	silent := make(chan silentEnd, 1)
	fz := newFakeZoom(t, func(z *zoomConn) {
		acc := time.Now() // before the frame is sent: the client cannot see it earlier
		if z.accept() != nil {
			return
		}
		if z.n == 1 {
			// Silent: reads the heartbeats, answers nothing, sends nothing.
			_ = z.serveHeartbeats(0, nil)
			silent <- silentEnd{acc, time.Now()}
			return
		}
		_ = z.sendEvent(eventJSON(2))
		_ = z.serveHeartbeats(1, nil)
	})
	healthy := make(chan *Event, 1)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.HeartbeatInterval, cfg.WatchdogTimeout = 30*time.Millisecond, 300*time.Millisecond
	c, _ := runClient(t, cfg, func(ev *Event) { healthy <- ev })

	end := recv(t, silent, "the client to close the silent socket")
	if held := end.closed.Sub(end.accepted); held < cfg.WatchdogTimeout {
		t.Errorf("silent socket closed after %v; want no sooner than WatchdogTimeout %v", held, cfg.WatchdogTimeout)
	} else if held > cfg.WatchdogTimeout+2*time.Second {
		t.Errorf("silent socket closed after %v; want within about WatchdogTimeout %v", held, cfg.WatchdogTimeout)
	}
	recv(t, healthy, "an event on the new connection")
	if st := c.Status(); st.WatchdogCloses != 1 || st.Connects != 2 || !strings.HasPrefix(st.LastError, "watchdog") {
		t.Errorf("Status = %+v; want one watchdog close and a second connection", st)
	}
}

func TestC12_LargeEventFrameIsRead(t *testing.T) {
	log, _ := testLogger(t)
	big := strings.Repeat("n", 200<<10)
	event := fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered","event_ts":%d,"payload":{"account_id":"a","object":{"engagement_id":"eng-big","user_id":"u","notes":%q}}}`, time.Now().UnixMilli(), big)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil || z.sendEvent(event) != nil {
			return
		}
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 1)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	ev := recv(t, got, "the 200 KiB event")
	if ev.Engagement.EngagementID != "eng-big" || !strings.Contains(string(ev.Object), big) {
		t.Errorf("large event not delivered intact")
	}
	if st := c.Status(); st.Oversize != 0 || st.Connects != 1 {
		t.Errorf("Status = %+v", st)
	}
}

func TestC12_OversizeFrameLoggedOnceAsConfigError(t *testing.T) {
	log, logs := testLogger(t)
	big := fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered","event_ts":1,"payload":{"account_id":"a","object":{"engagement_id":"e","user_id":"u","notes":%q}}}`, strings.Repeat("n", 200<<10))
	frameSize := make(chan int, 1)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		if z.n == 1 {
			f := messageFrame(t, big, "1764410415", "v0=x")
			frameSize <- len(f)
			for range 2 {
				if z.Write(z.ctx, websocket.MessageText, f) != nil {
					return
				}
			}
		}
		_ = z.sendEvent(eventJSON(3))
		_ = z.serveHeartbeats(1, nil)
	})
	done := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.ReadLimit = 64 << 10
	c, _ := runClient(t, cfg, func(ev *Event) { done <- ev })

	ev := recv(t, done, "the event after two oversize frames")
	if ev.Engagement.EngagementID != "eng-3" {
		t.Errorf("delivered %q; want eng-3", ev.Engagement.EngagementID)
	}
	size := int64(recv(t, frameSize, "the frame size"))
	st := c.Status()
	if st.Oversize != 2 || st.Connects != 1 || st.Reconnects != 0 || st.LastOversizeBytes != size {
		t.Errorf("Status = %+v; want Oversize 2 of %d bytes on one connection", st, size)
	}
	if n := strings.Count(logs.String(), fmt.Sprintf(`"level":"error","subscription":"sub-1","kind":"oversize","read_limit":65536,"frame_bytes":%d`, size)); n != 1 {
		t.Errorf("oversize logged %d times as an error with the limit and the size; want once:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), fmt.Sprintf(`"level":"warn","subscription":"sub-1","kind":"oversize","read_limit":65536,"frame_bytes":%d`, size)); n != 1 {
		t.Errorf("second oversize logged %d times as a warning with its size; want once:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "nnnnnnnn") {
		t.Errorf("an oversize frame's content reached the log")
	}
}

// messageFrame returns a message frame holding event as its content, with
// the given timestamp and signature headers.
func messageFrame(t *testing.T, event []byte, ts, sig string) []byte {
	return mustJSON(t, map[string]any{
		"module":  "message",
		"header":  map[string]string{"x-zm-request-timestamp": ts, "x-zm-signature": sig},
		"content": string(event),
	})
}

// TestFinding5_OversizeFrameKeepsTheSocket: a 3 MiB frame over the default 1 MiB
// limit is dropped and counted with its size; the socket stays up and the
// next event arrives on it (finding 5: both nodes receive the same frame,
// so closing on it dropped both sockets at once).
func TestFinding5_OversizeFrameKeepsTheSocket(t *testing.T) {
	log, logs := testLogger(t)
	huge := fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered","event_ts":1,"payload":{"account_id":"a","object":{"engagement_id":"e-huge","user_id":"u","notes":%q}}}`, strings.Repeat("h", 3<<20))
	frame := messageFrame(t, huge, "1764410415", "v0=x")
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil || z.Write(z.ctx, websocket.MessageText, frame) != nil || z.sendEvent(eventJSON(7)) != nil {
			return
		}
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	ev := recv(t, got, "the event after the 3 MiB frame")
	if ev.Engagement.EngagementID != "eng-7" {
		t.Errorf("delivered %q; want eng-7 (the oversize frame must not be delivered)", ev.Engagement.EngagementID)
	}
	st := c.Status()
	if !st.Connected || st.Connects != 1 || st.Reconnects != 0 {
		t.Errorf("Status = %+v; want the first connection still up", st)
	}
	if st.Oversize != 1 || st.LastOversizeBytes != int64(len(frame)) {
		t.Errorf("Oversize %d, LastOversizeBytes %d; want 1 frame of %d bytes", st.Oversize, st.LastOversizeBytes, len(frame))
	}
	want := fmt.Sprintf(`"frame_bytes":%d,"frame_bytes_at_least":false`, len(frame))
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log does not give the frame's size (%s):\n%s", want, logs)
	}
	if strings.Contains(logs.String(), "hhhhhhhh") {
		t.Errorf("the oversize frame's content reached the log")
	}
}

// TestEndlessFrameEndsTheConnection: a frame over the drain limit is not
// drained forever: it is counted with a lower bound of its size and the
// client reconnects.
func TestEndlessFrameEndsTheConnection(t *testing.T) {
	log, logs := testLogger(t)
	frame := messageFrame(t, []byte(strings.Repeat("x", 64<<10)), "1764410415", "v0=x")
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		if z.n == 1 {
			_ = z.Write(z.ctx, websocket.MessageText, frame)
		} else {
			_ = z.sendEvent(eventJSON(2))
		}
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.ReadLimit = 1 << 10
	cfg.drainMax = 8 << 10
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	recv(t, got, "the event on the second connection")
	st := c.Status()
	if st.Oversize != 1 || st.LastOversizeBytes != 8<<10+1 || st.Connects != 2 {
		t.Errorf("Status = %+v; want one oversize of at least %d bytes, then a second connection", st, 8<<10+1)
	}
	if !strings.Contains(logs.String(), `"frame_bytes":8193,"frame_bytes_at_least":true`) {
		t.Errorf("log does not give the lower bound of the frame's size:\n%s", logs)
	}
}

// TestSocketGapsRecorded: the time from the end of an accepted connection to
// the next accepted one is a gap, counted in Status while it lasts and
// after.
func TestSocketGapsRecorded(t *testing.T) {
	log, _ := testLogger(t)
	release := make(chan struct{})
	fz := newFakeZoom(t, func(z *zoomConn) {
		switch z.n {
		case 1:
			if z.accept() != nil {
				return
			}
			_ = z.Close(websocket.StatusGoingAway, "bye")
		default:
			select { // hold the next accept until the test saw the gap
			case <-release:
			case <-z.ctx.Done():
				return
			}
			if z.accept() != nil {
				return
			}
			_ = z.serveHeartbeats(1, nil)
		}
	})
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	c, _ := runClient(t, cfg, nil)

	var during ClientStatus
	waitFor(t, "the gap to open", func() bool { during = c.Status(); return !during.DownSince.IsZero() && during.DownTotal > 0 })
	if during.Connected || during.Gaps != 0 || during.LastGap != 0 {
		t.Errorf("during the gap: Status = %+v; want disconnected, no gap ended yet", during)
	}
	close(release)
	var after ClientStatus
	waitFor(t, "the reconnect", func() bool { after = c.Status(); return after.Connected })
	if after.Gaps != 1 || after.LastGap < during.DownTotal || after.DownTotal != after.LastGap || !after.DownSince.IsZero() {
		t.Errorf("after the gap: Status = %+v; want one gap of at least %v, all of DownTotal", after, during.DownTotal)
	}
	if st := c.Status(); st.DownTotal != after.DownTotal {
		t.Errorf("DownTotal moved while connected: %v then %v", after.DownTotal, st.DownTotal)
	}
}

// waitFor polls cond every few milliseconds until it holds, or fails the
// test after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestC13_IdleSocketStaysOpenWhileHeartbeatsFlow(t *testing.T) {
	log, _ := testLogger(t)
	hb := make(chan time.Time, 1000)
	sendNow := make(chan struct{})
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		errc := make(chan error, 1)
		// Replies to every 10th heartbeat only: frames arrive ~200 ms apart,
		// far apart for a per-read timeout, close enough for the watchdog.
		go func() { errc <- z.serveHeartbeats(10, hb) }()
		select {
		case <-sendNow:
			_ = z.sendEvent(eventJSON(7))
		case <-z.ctx.Done():
		}
		<-errc
	})
	got := make(chan *Event, 1)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	// Idle for many watchdog periods and far longer than the dial timeout (a
	// dial context that leaked into the connection would kill it).
	cfg.HeartbeatInterval, cfg.WatchdogTimeout, cfg.DialTimeout = 20*time.Millisecond, 600*time.Millisecond, 100*time.Millisecond
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	start := time.Now()
	for range 100 {
		recv(t, hb, "a heartbeat")
	}
	if idle := time.Since(start); idle < 2*cfg.WatchdogTimeout {
		t.Fatalf("only %v idle; the test needs longer", idle)
	}
	close(sendNow)
	if ev := recv(t, got, "the event after the idle time"); ev.Engagement.EngagementID != "eng-7" {
		t.Errorf("event = %+v", ev)
	}
	if st := c.Status(); st.Connects != 1 || st.Reconnects != 0 || st.WatchdogCloses != 0 || !st.Connected {
		t.Errorf("Status = %+v; want the one connection still up", st)
	}
	if n := len(fz.dials); n != 1 {
		t.Errorf("%d dials; want 1: the idle socket was dropped", n)
	}
}

func TestC14_CloseWithinBudgetWhenPeerStopsReading(t *testing.T) {
	log, _ := testLogger(t)
	accepted := make(chan struct{}, 1)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.accept() != nil {
			return
		}
		accepted <- struct{}{}
		<-z.ctx.Done() // never reads again: the close frame is never answered
	})
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.CloseTimeout = 200 * time.Millisecond
	cfg.WatchdogTimeout = time.Minute
	_, stop := runClient(t, cfg, nil)
	recv(t, accepted, "the connection")

	err, took := stop()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
	// coder/websocket alone would wait 5 s for the peer's close frame.
	if limit := cfg.CloseTimeout + time.Second; took > limit {
		t.Errorf("Run took %v to return; want within CloseTimeout %v (+1 s slack)", took, cfg.CloseTimeout)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	// A token with characters that change under query escaping.
	const secret = "SeCrEt/Tok+en=42.xyz"
	escaped := url.QueryEscape(secret)

	tests := []struct {
		name  string
		url   func(t *testing.T) string
		serve func(z *zoomConn)
	}{
		{"dial refused", func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			return "ws://" + addr + "/ws?subscriptionId=sub-1"
		}, nil},
		{"handshake 500 echoing the URL", nil, nil},
		{"failure frame echoing the token", nil, func(z *zoomConn) {
			_ = z.reject("token " + z.token + " is not valid; url " + z.query.Encode())
			_ = z.Close(websocket.StatusNormalClosure, "")
		}},
		{"close reason echoing the token", nil, func(z *zoomConn) {
			_ = z.accept()
			reason := z.token
			if len(reason) > 100 {
				reason = reason[:100]
			}
			_ = z.Close(websocket.StatusPolicyViolation, reason)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testLogger(t)
			var target string
			if tt.url != nil {
				target = tt.url(t)
			} else {
				var pre func(w http.ResponseWriter, r *http.Request) bool
				if tt.serve == nil {
					pre = func(w http.ResponseWriter, r *http.Request) bool {
						http.Error(w, "bad request to "+r.URL.String(), http.StatusInternalServerError)
						return true
					}
				}
				target = newFakeZoomPre(t, pre, tt.serve).url()
			}
			tokens := newFakeTokens(t, "x", true)
			tokens.prefix = secret // every token starts with the secret
			cfg := baseConfig(t, target, tokens, log)
			c, stop := runClient(t, cfg, nil)
			// Three token fetches = at least two failed attempts fully logged.
			for range 3 {
				recv(t, tokens.calls, "a token fetch")
			}
			stop()
			st := c.Status()
			if st.LastError == "" {
				t.Error("LastError is empty; the failure was not recorded")
			}
			for _, where := range []struct{ name, text string }{{"logs", logs.String()}, {"LastError", st.LastError}} {
				for _, s := range []string{secret, escaped, "SeCrEt"} {
					if strings.Contains(where.text, s) {
						t.Errorf("%s contain the secret (%q):\n%s", where.name, s, where.text)
					}
				}
			}
			if !strings.Contains(logs.String(), `"subscription":"sub-1"`) {
				t.Error("logs lack the subscription field")
			}
		})
	}
}

func TestRunTwiceReturnsErrRunning(t *testing.T) {
	log, _ := testLogger(t)
	accepted := make(chan struct{}, 1)
	fz := newFakeZoom(t, func(z *zoomConn) {
		_ = z.accept()
		accepted <- struct{}{}
		_ = z.serveHeartbeats(1, nil)
	})
	c, stop := runClient(t, baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log), nil)
	recv(t, accepted, "the connection")
	if err := c.Run(t.Context(), nil); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v; want ErrRunning", err)
	}
	if err, _ := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
	// A stopped Client may run again.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, nil) }()
	recv(t, accepted, "the second run's connection")
	cancel()
	if err := recv(t, done, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
}

func TestFirstFrameMustBeBuildConnection(t *testing.T) {
	log, _ := testLogger(t)
	fz := newFakeZoom(t, func(z *zoomConn) {
		if z.n == 1 {
			_ = z.sendEvent(eventJSON(1)) // no build_connection first
			_ = z.serveHeartbeats(1, nil)
			return
		}
		_ = z.accept()
		_ = z.sendEvent(eventJSON(2))
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })
	if ev := recv(t, got, "an event"); ev.Engagement.EngagementID != "eng-2" {
		t.Errorf("delivered %s from a connection that never sent build_connection", ev.Engagement.EngagementID)
	}
	if st := c.Status(); !strings.HasPrefix(st.LastError, "protocol") || st.Connects != 1 {
		t.Errorf("Status = %+v; want a protocol error then one connection", st)
	}
}

// opaqueRT is a RoundTripper the client cannot look inside.
type opaqueRT struct{ rt http.RoundTripper }

func (o opaqueRT) RoundTrip(r *http.Request) (*http.Response, error) { return o.rt.RoundTrip(r) }

func TestCallerHTTPClient(t *testing.T) {
	tests := []struct {
		name    string
		client  func() (*http.Client, func())
		tracked bool
	}{
		{"http.Transport", func() (*http.Client, func()) {
			tr := &http.Transport{}
			return &http.Client{Transport: tr}, tr.CloseIdleConnections
		}, true},
		{"opaque RoundTripper", func() (*http.Client, func()) {
			tr := &http.Transport{DisableKeepAlives: true}
			return &http.Client{Transport: opaqueRT{tr}}, tr.CloseIdleConnections
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := testLogger(t)
			fz := newFakeZoom(t, func(z *zoomConn) {
				if z.accept() != nil || z.sendEvent(eventJSON(1)) != nil {
					return
				}
				<-z.ctx.Done() // stops reading: the close needs the budget (C-14)
			})
			hc, closeIdle := tt.client()
			t.Cleanup(closeIdle)
			got := make(chan *Event, 1)
			cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
			cfg.HTTPClient = hc
			cfg.CloseTimeout = 200 * time.Millisecond
			c, stop := runClient(t, cfg, func(ev *Event) { got <- ev })
			if (c.transport != nil) != tt.tracked {
				t.Errorf("tracked = %v; want %v", c.transport != nil, tt.tracked)
			}
			if hc.Transport == c.http.Transport && tt.tracked {
				t.Error("the caller's transport was modified in place, not cloned")
			}
			recv(t, got, "the event")
			// The reader's context still forces the close without a raw conn.
			if _, took := stop(); took > cfg.CloseTimeout+time.Second {
				t.Errorf("Run took %v to return; want within CloseTimeout %v (+1 s)", took, cfg.CloseTimeout)
			}
		})
	}
}

// TestReplayedSignedFrameRejected: a frame correctly signed long ago (a
// recorded frame replayed) is dropped as stale, counted as a bad signature
// and logged with its reason; a fresh signed frame on the same socket is
// delivered.
func TestReplayedSignedFrameRejected(t *testing.T) {
	const secret = "app-secret-token"
	log, logs := testLogger(t)
	old, fresh := eventJSON(1), eventJSON(2)
	oldTS := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	fz := newFakeZoom(t, func(z *zoomConn) {
		newTS := strconv.FormatInt(time.Now().UnixMilli(), 10)
		if z.accept() != nil ||
			z.Write(z.ctx, websocket.MessageText, messageFrame(t, old, oldTS, Signature(secret, oldTS, string(old)))) != nil ||
			z.Write(z.ctx, websocket.MessageText, messageFrame(t, fresh, newTS, Signature(secret, newTS, string(fresh)))) != nil {
			return
		}
		_ = z.serveHeartbeats(1, nil)
	})
	got := make(chan *Event, 10)
	cfg := baseConfig(t, fz.url(), newFakeTokens(t, "tok", false), log)
	cfg.SecretToken = secret
	c, _ := runClient(t, cfg, func(ev *Event) { got <- ev })

	ev := recv(t, got, "the fresh event")
	if ev.Engagement.EngagementID != "eng-2" {
		t.Errorf("first delivered event is %q; want eng-2 (the replayed eng-1 must be dropped)", ev.Engagement.EngagementID)
	}
	if st := c.Status(); st.BadSignatures != 1 || st.Events != 1 {
		t.Errorf("Status = %+v; want 1 bad signature and 1 event", st)
	}
	if !strings.Contains(logs.String(), `"kind":"signature","reason":"stale"`) {
		t.Errorf("the replay is not logged with its reason:\n%s", logs)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the secret token reached the log")
	}
}
