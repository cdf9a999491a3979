package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/redact"

	// Named so: the package's tests declare a constant wait.
	waitpkg "github.com/zccadapter/zccadapter/wait"
)

// Defaults of ClientConfig, applied to zero fields by NewClient.
const (
	DefaultHeartbeatInterval = 30 * time.Second // PROTOCOL.md §1: every 30 s
	DefaultWatchdogTimeout   = 45 * time.Second // PROTOCOL.md §1: 45 s of silence is dead
	DefaultReadLimit         = 1 << 20          // 1 MiB; C-12
	DefaultMinBackoff        = 250 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
	DefaultCloseTimeout      = time.Second // C-14
	DefaultDialTimeout       = 15 * time.Second
)

// drainLimit is the largest frame the client drains to its end when it is
// over ReadLimit: past it the connection is closed instead, so that an
// endless frame cannot hold the reader. At least 256 MiB and 4×ReadLimit.
func (c ClientConfig) drainLimit() int64 {
	if c.drainMax > 0 {
		return c.drainMax
	}
	return max(256<<20, 4*c.ReadLimit)
}

// stableConnection is how long a connection must live for the backoff to
// start over after it ends (unless it delivered an event first).
const stableConnection = time.Minute

// Errors of NewClient and Run.
var (
	// ErrInvalidConfig is wrapped by every NewClient validation error; the
	// message names the ClientConfig field and its (redacted) value.
	ErrInvalidConfig = errors.New("events: invalid client config")
	// ErrRunning is returned by Run when another Run of the same Client has not
	// returned yet.
	ErrRunning = errors.New("events: client is already running")
)

// ClientConfig configures a [Client]. Zero fields take the Default constants.
type ClientConfig struct {
	// URL is the subscription URL WITHOUT a token, e.g.
	// wss://ws.zoom.us/ws?subscriptionId=ID (ws:// is allowed for simulators).
	// Required: scheme ws or wss, a host, a non-empty subscriptionId query
	// parameter, and no access_token (the client appends a fresh one to each
	// dial, PROTOCOL.md §1). Once a token is appended the URL is a secret: the
	// client logs SubscriptionID only.
	URL string
	// Tokens yields the access token of each dial; required. On a rejected
	// token (build_connection success:false, or HTTP 401/403 on the handshake)
	// the client calls Tokens.Invalidate with that token before backing off.
	Tokens auth.TokenSource
	// HeartbeatInterval is the period of the {"module":"heartbeat"} text frames
	// the client sends. Default 30 s; must be less than WatchdogTimeout.
	HeartbeatInterval time.Duration
	// WatchdogTimeout is the longest silence (no frame of any kind, heartbeat
	// replies included) before the client force-closes the socket and
	// reconnects (C-05). Default 45 s; must exceed HeartbeatInterval.
	WatchdogTimeout time.Duration
	// ReadLimit is the largest frame the client keeps, in bytes. Default
	// 1 MiB (coder/websocket's own default of 32 KiB is too small for Zoom,
	// C-12). A larger frame is read to its end without being kept (memory
	// stays bounded by ReadLimit whatever the frame's size) and dropped: its
	// event is lost, the socket stays open, Status counts it with its size
	// (Oversize, LastOversizeBytes) and it is logged with its size, never its
	// content (the first as an error, the rest as warnings). Only a frame
	// larger than max(256 MiB, 4×ReadLimit) ends the connection; its size is
	// then logged as "at least". Must not be negative.
	ReadLimit int64
	// MinBackoff and MaxBackoff bound the delay between connection attempts:
	// after the n-th consecutive failure the delay is uniform in
	// [MinBackoff, min(MaxBackoff, MinBackoff·2^n)], so there are always at
	// least MinBackoff between dials. The count starts over after a connection
	// that was accepted and either lived a minute or delivered an event.
	// Defaults 250 ms and 30 s; MinBackoff <= MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout is the budget of a clean close (close frame and the peer's
	// reply); after it the socket is closed at once (C-14). Default 1 s.
	CloseTimeout time.Duration
	// DialTimeout bounds each token fetch and each WebSocket handshake.
	// Default 15 s.
	DialTimeout time.Duration
	// HTTPClient performs the handshake; nil means a client of the package's
	// own. A *http.Transport (or nil Transport) is cloned with keep-alives
	// off, so the client can close the raw connection when a close overruns
	// CloseTimeout; with any other RoundTripper, a close may take up to
	// coder/websocket's own 5 s handshake wait in rare cases.
	HTTPClient *http.Client
	// SecretToken, when set, is the app's secret token: every message
	// frame's x-zm-signature must equal "v0=" + hex(HMAC-SHA256(SecretToken,
	// "v0:" + x-zm-request-timestamp + ":" + content)) (PROTOCOL.md §1, the
	// webhook scheme, M), and its x-zm-request-timestamp must lie within
	// SignatureMaxAge of now (see [CheckSignature]); any other frame is
	// counted in Status.BadSignatures, logged with its reason and dropped.
	// Empty: no verification. A secret: never logged.
	SecretToken string
	// SignatureMaxAge is how far a signed frame's x-zm-request-timestamp may
	// lie from the local clock, either way, before the frame is dropped as a
	// replay (stale) or as from the future. Default 5 min
	// (DefaultSignatureMaxAge); negative: the timestamp is not checked. Used
	// only with SecretToken.
	SignatureMaxAge time.Duration
	// Logger receives the client's logs, with a "subscription" field added.
	// The zero Logger discards them.
	Logger zerolog.Logger
	// Limits bound what an event may hold (ParseWith): plausible times,
	// nesting depth. The zero value means every default.
	Limits Limits
	// OnMalformed, when set, is called with the content of each message
	// frame whose event failed to parse (the event is dropped and counted
	// in Malformed) and the *ParseError, on the read goroutine: it must not
	// block. raw is the client's copy, the callee's to keep.
	OnMalformed func(raw []byte, err *ParseError)

	drainMax int64 // tests: overrides drainLimit when positive
}

// withDefaults returns c with zero fields set to their defaults.
func (c ClientConfig) withDefaults() ClientConfig {
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.WatchdogTimeout = cmp.Or(c.WatchdogTimeout, DefaultWatchdogTimeout)
	c.ReadLimit = cmp.Or(c.ReadLimit, DefaultReadLimit)
	c.MinBackoff = cmp.Or(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, DefaultCloseTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.SignatureMaxAge = cmp.Or(c.SignatureMaxAge, DefaultSignatureMaxAge)
	return c
}

// Validate reports the first problem of c after defaults are applied, as an
// error wrapping ErrInvalidConfig that names the field. URL values are
// redacted.
func (c ClientConfig) Validate() error {
	_, err := c.withDefaults().validate()
	return err
}

// validate checks c (defaults applied) and returns the subscription id.
func (c ClientConfig) validate() (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if c.URL == "" {
		return bad("URL is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return bad("URL %q is not a URL", redact.URL(c.URL))
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
	default:
		return bad("URL %q: scheme must be ws or wss", redact.URL(c.URL))
	}
	if u.Host == "" {
		return bad("URL %q has no host", redact.URL(c.URL))
	}
	q := u.Query()
	for name := range q {
		if redact.IsSecretParam(name) {
			return bad("URL %q must not carry %s: the client appends a fresh access_token to each dial", redact.URL(c.URL), name)
		}
	}
	sub := q.Get("subscriptionId")
	if sub == "" {
		return bad("URL %q has no subscriptionId query parameter", redact.URL(c.URL))
	}
	if c.Tokens == nil {
		return bad("Tokens is nil")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatInterval", c.HeartbeatInterval},
		{"WatchdogTimeout", c.WatchdogTimeout},
		{"MinBackoff", c.MinBackoff},
		{"MaxBackoff", c.MaxBackoff},
		{"CloseTimeout", c.CloseTimeout},
		{"DialTimeout", c.DialTimeout},
	} {
		if d.v < 0 {
			return bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.WatchdogTimeout <= c.HeartbeatInterval {
		return bad("WatchdogTimeout %v must exceed HeartbeatInterval %v", c.WatchdogTimeout, c.HeartbeatInterval)
	}
	if c.MinBackoff > c.MaxBackoff {
		return bad("MinBackoff %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff)
	}
	if c.ReadLimit < 0 {
		return bad("ReadLimit %d is negative", c.ReadLimit)
	}
	return sub, nil
}

// Client keeps one event-subscription WebSocket open (PROTOCOL.md §1): it
// dials with a token in the query string, checks build_connection, sends
// heartbeats, force-closes a silent socket and reconnects with backoff, and
// hands each event to the deliver function its caller passed to Run. Run
// does the work; Status and SubscriptionID are safe for concurrent use at
// any time.
type Client struct {
	cfg       ClientConfig
	base      *url.URL // cfg.URL parsed; carries no token, and always a query
	subID     string
	log       zerolog.Logger
	http      *http.Client
	transport *http.Transport // ours, or nil when the caller's RoundTripper is not one

	running atomic.Bool

	mu sync.Mutex
	st ClientStatus

	logs           logLimiter
	oversizeLogged atomic.Bool
}

// NewClient validates cfg (see [ClientConfig.Validate]), applies defaults and
// returns a Client that is not yet connected; call Run.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.withDefaults()
	sub, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.URL)
	if err != nil { // validate parsed it already
		return nil, fmt.Errorf("%w: URL is not a URL", ErrInvalidConfig)
	}
	base.Fragment, base.RawFragment = "", ""
	c := &Client{
		cfg:   cfg,
		base:  base,
		subID: sub,
		log:   cfg.Logger.With().Str("subscription", sub).Logger(),
	}
	c.http, c.transport = trackingHTTPClient(cfg.HTTPClient)
	return c, nil
}

// SubscriptionID returns the subscriptionId of the configured URL: the only
// part of the URL that is logged.
func (c *Client) SubscriptionID() string { return c.subID }

// Run connects and keeps the subscription connected until ctx ends: it dials,
// reads, sends heartbeats, watches liveness and reconnects after any failure,
// with backoff. It blocks; ending ctx closes the socket within CloseTimeout
// (plus a moment to join goroutines) and Run returns ctx.Err(). Failures are
// never returned: they are logged (redacted), counted in Status and retried.
// Run joins every goroutine it starts before it returns. One Run at a time:
// a concurrent call returns ErrRunning; a Client may be Run again afterwards.
//
// deliver is called for each parsed message event, unknown names included
// (Event.Known false), in arrival order, on the read goroutine, never after
// Run returned: while it runs no frame is read, so a deliver that blocks
// holds the socket's reader (the watchdog counts the time, and a long block
// ends the connection). nil means events are only counted.
func (c *Client) Run(ctx context.Context, deliver func(*Event)) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	// A gap still open when Run returns ends there: the socket is down
	// because the client stopped, not for lack of Zoom.
	defer c.update(func(s *ClientStatus) { s.gapEnded(time.Now()) })
	if c.transport != nil {
		defer c.transport.CloseIdleConnections()
	}

	failures := 0
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt > 0 {
			c.update(func(s *ClientStatus) { s.Reconnects++ })
		}
		res := c.session(ctx, deliver)
		if err := ctx.Err(); err != nil {
			return err
		}
		if res.established && (res.lived >= stableConnection || res.events > 0) {
			failures = 0
		}
		delay := c.backoff(failures)
		failures++
		c.log.Debug().Dur("delay", delay).Int("failures", failures).Msg("reconnecting after backoff")
		if err := waitpkg.Sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// backoff returns the delay after n consecutive failed attempts: full jitter
// over [MinBackoff, min(MaxBackoff, MinBackoff·2^n)].
func (c *Client) backoff(n int) time.Duration {
	return waitpkg.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff, Jitter: true, Floor: c.cfg.MinBackoff}.Delay(n)
}

// sessionResult is what Run needs to know about one connection attempt.
type sessionResult struct {
	established bool          // build_connection success arrived
	lived       time.Duration // from dial to close
	events      int64         // events delivered
}

// connState is the state of one connection shared by its goroutines.
type connState struct {
	start       time.Time
	last        atomic.Int64 // time.Duration since start of the last frame
	established atomic.Bool
	events      atomic.Int64
	deliver     func(*Event) // Run's deliver; may be nil
}

func (s *connState) touch()              { s.last.Store(int64(time.Since(s.start))) }
func (s *connState) idle() time.Duration { return time.Since(s.start) - time.Duration(s.last.Load()) }

// readResult is how the read goroutine ended.
type readResult struct {
	err         error  // the read error; nil when the reader decided to stop
	authFailure bool   // build_connection success:false
	content     string // its content
	protocol    string // a protocol violation (first frame not build_connection)
}

// session runs one connection attempt to its end. It returns when the
// connection is over and every goroutine it started has ended.
func (c *Client) session(ctx context.Context, deliver func(*Event)) sessionResult {
	tctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	tok, err := c.cfg.Tokens.Token(tctx)
	cancel()
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("token source returned an empty token")
	}
	if err != nil {
		if ctx.Err() == nil {
			c.fail(c.log.Warn(), "token", redact.Text(err.Error()), "cannot get an access token")
		}
		return sessionResult{}
	}
	secret := tok.AccessToken

	// Appended, so the configured parameters keep their order (PROTOCOL.md §1).
	u := *c.base
	u.RawQuery += "&access_token=" + url.QueryEscape(secret)
	dialURL := u.String()

	cs := &connState{start: time.Now(), deliver: deliver}
	onControl := func(context.Context, []byte) { cs.touch(); c.noteFrame() }
	raw := &rawConns{}
	dctx, cancel := context.WithTimeout(context.WithValue(ctx, rawConnsKey{}, raw), c.cfg.DialTimeout)
	conn, resp, err := websocket.Dial(dctx, dialURL, &websocket.DialOptions{
		HTTPClient:     c.http,
		OnPingReceived: func(ctx context.Context, p []byte) bool { onControl(ctx, p); return true },
		OnPongReceived: onControl,
	})
	cancel()
	if err != nil {
		raw.closeAll()
		if ctx.Err() != nil {
			return sessionResult{}
		}
		msg := redact.Text(redact.Secrets(err.Error(), secret))
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			c.cfg.Tokens.Invalidate(tok)
			c.update(func(s *ClientStatus) { s.AuthFailures++ })
			c.fail(c.log.Error().Int("status", resp.StatusCode), "auth", msg,
				"handshake rejected the token; invalidated it, will reconnect with a fresh one")
			return sessionResult{}
		}
		c.fail(c.log.Warn(), "dial", msg, "cannot connect")
		return sessionResult{}
	}
	// The library's limit is off: readMessage enforces ReadLimit itself and
	// drops an oversize frame without closing the socket.
	conn.SetReadLimit(-1)
	cs.touch()

	// The connection's goroutines run on connCtx, which outlives ctx: ending
	// ctx starts a clean close, and connCtx is cancelled only after it (a
	// cancelled read context closes the socket at once, C-13).
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConn()
	var wg sync.WaitGroup // joined below, on every path
	readDone := make(chan readResult, 1)
	stopHeartbeat := make(chan struct{})
	wg.Go(func() { readDone <- c.readLoop(connCtx, conn, cs) })
	wg.Go(func() { c.heartbeatLoop(connCtx, conn, stopHeartbeat, secret) })

	watchdog := time.NewTimer(c.cfg.WatchdogTimeout)
	defer watchdog.Stop()
	var rr readResult
	readerEnded, silent := false, false
wait:
	for {
		select {
		case rr = <-readDone:
			readerEnded = true
			break wait
		case <-ctx.Done():
			break wait
		case <-watchdog.C:
			idle := cs.idle()
			if idle < c.cfg.WatchdogTimeout {
				watchdog.Reset(c.cfg.WatchdogTimeout - idle)
				continue
			}
			silent = true
			break wait
		}
	}
	close(stopHeartbeat)

	code, reason := websocket.StatusNormalClosure, ""
	switch {
	case silent:
		c.update(func(s *ClientStatus) { s.WatchdogCloses++ })
		c.fail(c.log.Warn().Dur("silence", cs.idle()).Dur("watchdog_timeout", c.cfg.WatchdogTimeout),
			"watchdog", "no frame within WatchdogTimeout", "socket silent; force-closing and reconnecting")
		c.forceClose(conn, raw, cancelConn)
	case readerEnded:
		c.reportReadEnd(rr, tok, secret, cs)
		switch {
		case rr.protocol != "":
			code, reason = websocket.StatusPolicyViolation, "protocol violation"
		case errors.Is(rr.err, errEndlessFrame):
			code, reason = websocket.StatusMessageTooBig, "message too big"
		}
		c.closeWithBudget(conn, raw, cancelConn, code, reason)
	default: // ctx ended
		c.closeWithBudget(conn, raw, cancelConn, websocket.StatusGoingAway, "client shutting down")
	}
	cancelConn()
	wg.Wait()
	raw.closeAll()

	lived := time.Since(cs.start)
	if cs.established.Load() {
		now := time.Now()
		c.update(func(s *ClientStatus) {
			s.Connected, s.ConnectedSince = false, time.Time{}
			if ctx.Err() == nil { // a shutdown is no gap
				s.DownSince = now
			}
		})
		c.log.Info().Dur("lived", lived).Msg("subscription disconnected")
	}
	return sessionResult{established: cs.established.Load(), lived: lived, events: cs.events.Load()}
}

// reportReadEnd logs, counts and acts on the way the read goroutine ended.
func (c *Client) reportReadEnd(rr readResult, tok *oauth2.Token, secret string, cs *connState) {
	switch {
	case rr.authFailure:
		// Classified by frame kind and success:false, never by wording (C-04).
		c.cfg.Tokens.Invalidate(tok)
		c.update(func(s *ClientStatus) { s.AuthFailures++ })
		content := redact.Truncate(redact.Text(redact.Secrets(rr.content, secret)), 256) // redact first: a cut token would escape
		c.fail(c.log.Error().Str("server_content", content), "auth", "build_connection failed: "+content,
			"subscription rejected the connection (build_connection success:false); invalidated the token, will reconnect with a fresh one after backoff")
	case rr.protocol != "":
		c.fail(c.log.Error(), "protocol", rr.protocol, "subscription broke the protocol; reconnecting")
	case errors.Is(rr.err, errEndlessFrame):
		c.fail(c.log.Error().Int64("drain_limit", c.cfg.drainLimit()), "oversize", rr.err.Error(),
			"a frame exceeded the drain limit; closing the socket and reconnecting")
	default:
		ev := c.log.Warn().Bool("accepted", cs.established.Load())
		if code := websocket.CloseStatus(rr.err); code != -1 {
			ev = ev.Int("close_code", int(code))
		}
		c.fail(ev, "read", redact.Text(redact.Secrets(rr.err.Error(), secret)), "socket ended; reconnecting")
	}
}

// heartbeatLoop sends {"module":"heartbeat"} every HeartbeatInterval until stop
// is closed or ctx ends. A write that takes longer than an interval closes the
// socket (the peer is not reading); the reader then ends the session.
func (c *Client) heartbeatLoop(ctx context.Context, conn *websocket.Conn, stop <-chan struct{}, secret string) {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wctx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
		err := conn.Write(wctx, websocket.MessageText, HeartbeatFrame())
		cancel()
		if err != nil {
			c.log.Debug().Str("error", redact.Text(redact.Secrets(err.Error(), secret))).Msg("heartbeat not sent")
			return
		}
	}
}
