// Package zoom is a simulated Zoom for tests, drills and `zccadapter sim
// zoom`: the Server-to-Server token endpoint, the event-subscription WebSocket
// with Zoom's frames (PROTOCOL §1–§2), per-subscription fan-out of events, a
// traffic model (package sim/traffic) driving those events, and control
// endpoints to inject events and faults.
//
// # Routes
//
//	POST /oauth/token                     S2S token (HTTP Basic client auth, form body)
//	GET  /ws?subscriptionId=S&access_token=T   event-subscription WebSocket
//	POST /sim/traffic/start               body traffic.Config; 400 if invalid, 409 if running
//	POST /sim/traffic/stop                stop generating, end every call, reply traffic.Truth;
//	                                      409 if not running, 500 if the drain did not finish
//	GET  /sim/truth                       current traffic.Truth; 404 before any traffic
//	GET  /sim/subscriptions               []SubscriptionStatus
//	POST /sim/subscriptions/{id}/drop     close that subscription's sockets now (no close frame)
//	POST /sim/events                      {"subscriptions":[..]?, "event":{..}} or {"content":"raw"}: PublishTo
//	GET  /sim/tokens                      TokenStats
//	GET  /healthz                         200
//
// # WebSocket behaviour
//
// The first frame on every socket is build_connection. A missing
// access_token query parameter (an Authorization header is ignored) gets
// success:false "token is empty"; an unknown or expired token "Invalid Token";
// an unknown subscription, or a second socket under SecondConnectionReject,
// another failure text. Each failure is followed by a close (1008). On success
// (content "connected") the socket receives a heartbeat reply for each
// {"module":"heartbeat"} it sends, and a message frame for each event.
//
// Each socket has its own send queue (8192 frames) drained by its own writer;
// a full queue closes that socket at once, without a close frame (a slow
// consumer: counted and logged).
// The server keeps a reader on every socket and never reads with a timeout;
// liveness is the optional heartbeat watchdog (Config.HeartbeatTimeout, close
// 1008 "heartbeat timeout"). A kicked socket is closed with 1008 "kicked";
// Close closes every socket with 1001. Zoom's real close codes are unknown
// (PROTOCOL §1): a client must not depend on these.
//
// # Not simulated
//
// The authorization-code and refresh-token grants, the "legacy-invalidate"
// token mode and token caps, token revocation, closing an open socket when
// its token expires, the REST subset, 429/5xx on the token endpoint, and
// per-subscription delay, reorder, duplication or half-open faults.
package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// Errors returned by the Server's methods.
var (
	// ErrClosed is returned by StartTraffic after Close.
	ErrClosed = errors.New("zoom: server closed")
	// ErrUnknownSubscription is returned by Drop for an id not in
	// Config.Subscriptions.
	ErrUnknownSubscription = errors.New("zoom: unknown subscription")
	// ErrTrafficRunning is returned by StartTraffic while traffic runs.
	ErrTrafficRunning = errors.New("zoom: traffic already running")
	// ErrTrafficNotRunning is returned by StopTraffic when no traffic runs.
	ErrTrafficNotRunning = errors.New("zoom: traffic not running")
)

const (
	// defaultQueueSize is each socket's send queue, in frames.
	defaultQueueSize = 8192
	// writeTimeout bounds one frame write; on expiry the socket is closed.
	writeTimeout = 10 * time.Second
	// closeBudget is how long Close waits for sockets to close gracefully
	// (and for traffic to drain) before it forces them.
	closeBudget = 3 * time.Second
	// maxClientFrame is the read limit for frames from clients: they send
	// only heartbeats.
	maxClientFrame = 64 << 10
	// maxControlBody limits the body of the control endpoints.
	maxControlBody = 4 << 20
)

// trafficModel is what the server needs of a *traffic.Model.
type trafficModel interface {
	Run(ctx context.Context) error
	Drain(ctx context.Context) error
	Truth() traffic.Truth
}

// trafficRun is a started model.
type trafficRun struct {
	model  trafficModel
	cancel context.CancelFunc // ends Run
	done   chan struct{}      // closed when Run has returned
}

// Server is a simulated Zoom. Create it with New, serve Handler, and Close it
// when done. All methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	handler http.Handler

	// Test hooks, set before the server is used.
	now       func() time.Time
	queueSize int
	newModel  func(traffic.Config, traffic.Emitter, zerolog.Logger) (trafficModel, error)

	ctx        context.Context // ends when sockets must close at once
	cancel     context.CancelFunc
	stopCtx    context.Context // ends when Close begins; stops traffic
	stopCancel context.CancelFunc
	wg         sync.WaitGroup // socket handlers and the traffic Run goroutine
	closeOnce  sync.Once

	trafficOp sync.Mutex // serialises StartTraffic, StopTraffic and Close's stop

	mu       sync.Mutex
	closed   bool
	subs     map[string]*subscription // keys fixed by New
	tokens   map[string]time.Time     // access token -> expiry
	issued   int64
	rejected int64
	nextConn uint64
	run      *trafficRun  // running (or not yet drained) traffic
	model    trafficModel // the latest model, for Truth
}

// subscription is one subscription's sockets and counters, guarded by
// Server.mu.
type subscription struct {
	id    string
	conns []*conn // open sockets, oldest first
	st    SubscriptionStatus
}

// SubscriptionStatus is one subscription's state (GET /sim/subscriptions).
type SubscriptionStatus struct {
	// ID is the subscription id.
	ID string `json:"id"`
	// Connected reports at least one open socket; Open counts them (more
	// than one only under SecondConnectionAllow).
	Connected bool `json:"connected"`
	Open      int  `json:"open"`
	// Connections counts successful build_connections so far.
	Connections int64 `json:"connections"`
	// EventsSent counts events queued to the subscription (once per event,
	// whatever the number of sockets).
	EventsSent int64 `json:"events_sent"`
	// Kicked, Rejected, Dropped, SlowConsumers and HeartbeatTimeouts count
	// sockets closed by the kick policy, refused by the reject policy, closed
	// by the drop fault, closed for a full send queue, and closed by the
	// heartbeat watchdog.
	Kicked            int64 `json:"kicked"`
	Rejected          int64 `json:"rejected"`
	Dropped           int64 `json:"dropped"`
	SlowConsumers     int64 `json:"slow_consumers"`
	HeartbeatTimeouts int64 `json:"heartbeat_timeouts"`
}

// TokenStats counts the token endpoint's work (GET /sim/tokens).
type TokenStats struct {
	// Issued counts access tokens issued; Rejected counts requests refused
	// for any reason; Live counts issued tokens not yet expired.
	Issued   int64 `json:"issued"`
	Rejected int64 `json:"rejected"`
	Live     int   `json:"live"`
}

// New validates cfg (errors wrap ErrInvalidConfig and name the field) and
// returns a server with no tokens, no sockets and no traffic. It starts no
// goroutine; sockets and traffic start with requests.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With().Str("component", "zoomsim").Logger(),
		now:       time.Now,
		queueSize: defaultQueueSize,
		newModel: func(c traffic.Config, e traffic.Emitter, l zerolog.Logger) (trafficModel, error) {
			m, err := traffic.New(c, e, l)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		subs:   make(map[string]*subscription, len(cfg.Subscriptions)),
		tokens: make(map[string]time.Time),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	for _, id := range cfg.Subscriptions {
		s.subs[id] = &subscription{id: id, st: SubscriptionStatus{ID: id}}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("POST /sim/traffic/start", s.handleTrafficStart)
	mux.HandleFunc("POST /sim/traffic/stop", s.handleTrafficStop)
	mux.HandleFunc("GET /sim/truth", s.handleTruth)
	mux.HandleFunc("GET /sim/subscriptions", s.handleSubscriptions)
	mux.HandleFunc("POST /sim/subscriptions/{id}/drop", s.handleDrop)
	mux.HandleFunc("POST /sim/events", s.handleEvents)
	mux.HandleFunc("GET /sim/tokens", s.handleTokens)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.handler = mux
	return s, nil
}

// Handler returns the HTTP handler for every route (see the package doc). The
// same handler is returned on every call. After Close, /ws answers 503.
func (s *Server) Handler() http.Handler { return s.handler }

// Subscriptions returns the state of every subscription, in Config order.
func (s *Server) Subscriptions() []SubscriptionStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SubscriptionStatus, 0, len(s.cfg.Subscriptions))
	for _, id := range s.cfg.Subscriptions {
		sub := s.subs[id]
		st := sub.st
		st.Open = len(sub.conns)
		st.Connected = st.Open > 0
		out = append(out, st)
	}
	return out
}

// TokenFetches returns the number of access tokens issued so far.
func (s *Server) TokenFetches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Tokens returns the token endpoint's counters.
func (s *Server) Tokens() TokenStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	live := 0
	for _, exp := range s.tokens {
		if now.Before(exp) {
			live++
		}
	}
	return TokenStats{Issued: s.issued, Rejected: s.rejected, Live: live}
}

// Close stops the traffic (without waiting for calls to end naturally: Drain
// ends them), closes every socket with 1001 "server closing", and waits for
// every goroutine the server started, including socket handlers. Sockets
// that do not finish the close handshake within a few seconds are closed
// without it, so Close is bounded. After Close, Publish and PublishTo deliver
// nothing and /ws answers 503. Close is idempotent and always returns nil.
// It does not close the net/http server serving Handler.
func (s *Server) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	for _, sub := range s.subs {
		for _, c := range append([]*conn(nil), sub.conns...) {
			s.closeConnLocked(c, closeServer)
		}
	}
	s.mu.Unlock()
	s.stopCancel()

	budget, cancel := context.WithTimeout(context.Background(), closeBudget)
	defer cancel()
	s.trafficOp.Lock()
	if _, err := s.stopTrafficLocked(budget); err != nil && !errors.Is(err, ErrTrafficNotRunning) {
		s.log.Warn().Err(err).Msg("traffic did not drain on close")
	}
	s.trafficOp.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-budget.Done():
		s.log.Warn().Msg("sockets did not close in time; closing them without handshake")
		s.cancel()
		<-done
	}
	s.cancel()
	s.log.Info().Msg("closed")
}

// enter registers a request goroutine with the server's wait group, unless
// the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// writeJSON writes v as the JSON body of a reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// controlError is the body of a failed control request.
type controlError struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}
