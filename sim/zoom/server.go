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
	// ErrUnknownSubscription is returned by Drop, SetFaults and Faults for an
	// id not in Config.Subscriptions.
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
	Agents() []traffic.Agent
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
	cfg     Config // identity fields; the live settings are in set
	log     zerolog.Logger
	handler http.Handler

	// Test hooks, set before the server is used.
	clock     clock
	queueSize int
	newModel  func(traffic.Config, traffic.Emitter, zerolog.Logger) (trafficModel, error)

	ctx        context.Context // ends when sockets must close at once
	cancel     context.CancelFunc
	stopCtx    context.Context // ends when Close begins; stops traffic, the scheduler, slow requests
	stopCancel context.CancelFunc
	wg         sync.WaitGroup // socket handlers, the scheduler and the traffic Run goroutine
	closeOnce  sync.Once

	trafficOp sync.Mutex // serialises StartTraffic, StopTraffic and Close's stop
	setOp     sync.Mutex // serialises UpdateSettings and SetFaults

	mu       sync.Mutex
	closed   bool
	set      Settings                 // current settings, defaults applied
	subs     map[string]*subscription // keys fixed by New
	nextConn uint64
	run      *trafficRun  // running (or not yet drained) traffic
	model    trafficModel // the latest model, for Truth and the users endpoint

	tok   tokenState // access tokens, codes, refresh tokens
	sched scheduler  // delayed and held-back frames
	rest  restState  // engagement records and rate-limit windows
}

// subscription is one subscription's sockets, pending frames and counters,
// guarded by Server.mu.
type subscription struct {
	id       string
	conns    []*conn // open sockets, oldest first
	halfOpen []*conn // blackholed sockets (Faults.HalfOpen)
	frames   uint64  // frames planned so far: the next frame's number
	delayed  int     // frames waiting in the scheduler
	held     []*heldFrame
	st       SubscriptionStatus
}

// SubscriptionStatus is one subscription's state (GET /sim/subscriptions).
type SubscriptionStatus struct {
	// ID is the subscription id.
	ID string `json:"id"`
	// Connected reports at least one open socket; Open counts them (more
	// than one only under SecondConnectionAllow). Half-open sockets are not
	// counted here but in HalfOpenSockets.
	Connected bool `json:"connected"`
	Open      int  `json:"open"`
	// HalfOpen reports the half-open fault; HalfOpenSockets counts the
	// sockets it blackholes.
	HalfOpen        bool `json:"half_open"`
	HalfOpenSockets int  `json:"half_open_sockets"`
	// Connections counts successful build_connections so far.
	Connections int64 `json:"connections"`
	// EventsSent counts frames queued to the subscription's sockets (once per
	// frame, whatever the number of sockets; a duplicate counts once).
	EventsSent int64 `json:"events_sent"`
	// Pending counts frames delayed or held back, not yet sent.
	Pending int `json:"pending"`
	// FramesDropped, Duplicated, Delayed and Reordered count frames hit by
	// each delivery fault. Blackholed counts frames not sent because of the
	// half-open fault. Lost counts delayed or held-back frames that found no
	// open socket when their time came (Publish had counted them delivered).
	FramesDropped int64 `json:"frames_dropped"`
	Duplicated    int64 `json:"duplicated"`
	Delayed       int64 `json:"delayed"`
	Reordered     int64 `json:"reordered"`
	Blackholed    int64 `json:"blackholed"`
	Lost          int64 `json:"lost"`
	// Ignored counts frames read from half-open sockets and ignored (a
	// client that still sends heartbeats into the void).
	Ignored int64 `json:"ignored"`
	// Kicked, Rejected, Dropped, SlowConsumers, HeartbeatTimeouts and
	// TokenCloses count sockets closed by the kick policy, refused by the
	// reject policy, closed by the drop fault, closed for a full send queue,
	// closed by the heartbeat watchdog, and closed because their token
	// expired or was cancelled (close-at-expiry).
	Kicked            int64 `json:"kicked"`
	Rejected          int64 `json:"rejected"`
	Dropped           int64 `json:"dropped"`
	SlowConsumers     int64 `json:"slow_consumers"`
	HeartbeatTimeouts int64 `json:"heartbeat_timeouts"`
	TokenCloses       int64 `json:"token_closes"`
	// Faults are the subscription's current faults (zero: none).
	Faults Faults `json:"faults"`
}

// TokenStats counts the token endpoint's work (GET /sim/tokens).
type TokenStats struct {
	// Issued counts access tokens issued by any grant; Rejected counts
	// requests refused with an OAuth error; Live counts issued tokens not
	// yet expired or cancelled; Cancelled counts tokens cancelled by the
	// token mode, the cap or a revoke.
	Issued    int64 `json:"issued"`
	Rejected  int64 `json:"rejected"`
	Live      int   `json:"live"`
	Cancelled int64 `json:"cancelled"`
	// Faulted counts requests answered by a token-endpoint fault (429, 5xx)
	// and Delayed those held by the slow fault.
	Faulted int64 `json:"faulted"`
	Delayed int64 `json:"delayed"`
	// CodesIssued counts authorization codes issued, CodesExchanged those
	// exchanged; Refreshes counts refresh-grant successes (rotations and
	// tolerated reuses); RepliesLost counts refresh replies dropped by
	// Settings.LoseRefreshReply.
	CodesIssued    int64 `json:"codes_issued"`
	CodesExchanged int64 `json:"codes_exchanged"`
	Refreshes      int64 `json:"refreshes"`
	RepliesLost    int64 `json:"replies_lost"`
}

// New validates cfg (errors wrap ErrInvalidConfig and name the field) and
// returns a server with no tokens, no sockets and no traffic. It starts no
// goroutine; sockets, the delivery scheduler and traffic start with use.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		set:       cfg.Settings,
		log:       cfg.Logger.With().Str("component", "zoomsim").Logger(),
		clock:     realClock{},
		queueSize: defaultQueueSize,
		newModel: func(c traffic.Config, e traffic.Emitter, l zerolog.Logger) (trafficModel, error) {
			m, err := traffic.New(c, e, l)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		subs:  make(map[string]*subscription, len(cfg.Subscriptions)),
		tok:   newTokenState(),
		sched: scheduler{wake: make(chan struct{}, 1)},
		rest:  newRestState(),
	}
	s.cfg.Settings = Settings{} // the live copy is s.set
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	for _, id := range cfg.Subscriptions {
		sub := &subscription{id: id, st: SubscriptionStatus{ID: id}}
		s.subs[id] = sub
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /v2/contact_center/engagements", s.restRoute(RateLimitHeavy, engagementScopes, s.handleListEngagements))
	mux.HandleFunc("GET /v2/contact_center/engagements/{id}", s.restRoute(RateLimitLight, engagementScopes, s.handleGetEngagement))
	mux.HandleFunc("GET /v2/contact_center/users", s.restRoute(RateLimitMedium, userScopes, s.handleListUsers))
	mux.HandleFunc("GET /sim/settings", s.handleGetSettings)
	mux.HandleFunc("POST /sim/settings", s.handlePostSettings)
	mux.HandleFunc("GET /sim/subscriptions", s.handleSubscriptions)
	mux.HandleFunc("GET /sim/subscriptions/{id}/faults", s.handleGetFaults)
	mux.HandleFunc("POST /sim/subscriptions/{id}/faults", s.handlePostFaults)
	mux.HandleFunc("DELETE /sim/subscriptions/{id}/faults", s.handleDeleteFaults)
	mux.HandleFunc("POST /sim/subscriptions/{id}/drop", s.handleDrop)
	mux.HandleFunc("POST /sim/events", s.handleEvents)
	mux.HandleFunc("POST /sim/oauth/codes", s.handleIssueCode)
	mux.HandleFunc("GET /sim/tokens", s.handleTokens)
	mux.HandleFunc("POST /sim/tokens/revoke", s.handleRevoke)
	mux.HandleFunc("POST /sim/traffic/start", s.handleTrafficStart)
	mux.HandleFunc("POST /sim/traffic/stop", s.handleTrafficStop)
	mux.HandleFunc("GET /sim/truth", s.handleTruth)
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
		st.HalfOpenSockets = len(sub.halfOpen)
		st.Pending = sub.delayed + len(sub.held)
		st.Faults = s.set.Faults[id]
		st.HalfOpen = st.Faults.HalfOpen
		out = append(out, st)
	}
	return out
}

// Close stops the traffic (without waiting for calls to end naturally: Drain
// ends them), closes every socket with 1001 "server closing" (half-open ones
// without a close frame), drops delayed frames, and waits for every goroutine
// the server started, including socket handlers. Sockets that do not finish
// the close handshake within a few seconds are closed without it, so Close is
// bounded. After Close, Publish and PublishTo deliver nothing and /ws answers
// 503. Close is idempotent and always returns nil. It does not close the
// net/http server serving Handler.
func (s *Server) Close() error {
	s.closeOnce.Do(s.close)
	return nil
}

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	for _, sub := range s.subs {
		for _, c := range append(append([]*conn(nil), sub.conns...), sub.halfOpen...) {
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
