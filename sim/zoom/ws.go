package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
)

// Texts of build_connection failure frames other than the invalid-token
// wordings (Settings.FailureWordings).
const (
	reasonTokenEmpty    = "token is empty"
	reasonUnknownSub    = "Invalid subscriptionId"
	reasonAlreadyOpen   = "subscription already has an open connection"
	reasonServerClosing = "server closing"
)

// frame is a WebSocket frame of Zoom's protocol (PROTOCOL §1). Success is a
// pointer so that message frames omit it.
type frame struct {
	Module  string            `json:"module"`
	Success *bool             `json:"success,omitempty"`
	Content string            `json:"content"`
	Header  map[string]string `json:"header"`
}

func mustFrame(f frame) []byte {
	if f.Header == nil {
		f.Header = map[string]string{}
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(fmt.Sprintf("zoom: encode frame: %v", err)) // cannot happen: strings only
	}
	return b
}

func buildConnectionFrame(ok bool, content string) []byte {
	return mustFrame(frame{Module: "build_connection", Success: &ok, Content: content})
}

var heartbeatReply = func() []byte {
	ok := true
	return mustFrame(frame{Module: "heartbeat", Success: &ok, Content: "live"})
}()

// closeKind is why a socket is being closed.
type closeKind int

const (
	closePeer      closeKind = iota // the client closed it, or it failed
	closeKicked                     // a newer socket took the subscription
	closeDropped                    // the drop fault
	closeSlow                       // its send queue was full
	closeHeartbeat                  // no heartbeat within HeartbeatTimeout
	closeServer                     // Server.Close
	closeRefused                    // build_connection failed
	closeToken                      // its token expired or was cancelled (close-at-expiry)
	closeHalfOpen                   // the half-open fault was cleared
)

// String returns the close reason sent in the close frame and logged.
func (k closeKind) String() string {
	return [...]string{"peer", "kicked", "dropped", "slow consumer", "heartbeat timeout", "server closing",
		"refused", "token expired", "half-open cleared"}[k]
}

// conn is one accepted socket. Its writer goroutine is the only writer; the
// handler goroutine is its reader.
type conn struct {
	id  uint64
	ws  *websocket.Conn
	log zerolog.Logger
	// ctx bounds every read and write; cancelling it closes the socket at
	// once (the websocket library closes a connection whose read or write
	// context ends). Derived from Server.ctx.
	ctx    context.Context
	cancel context.CancelFunc

	// Set under Server.mu before the writer starts, then read-only.
	sub      string    // subscription id once registered or blackholed
	token    string    // the access token it connected with; never logged
	tokenExp time.Time // that token's expiry

	send       chan []byte   // frames to write, in order
	retime     chan struct{} // the heartbeat timeout changed (latest wins, capacity 1)
	lastBeat   atomic.Int64  // unix nanoseconds (server clock) of the last heartbeat or connect
	blackholed atomic.Bool   // half-open: write nothing, ignore reads

	once   sync.Once
	done   chan struct{} // closed when the socket must close
	code   websocket.StatusCode
	reason string
	flush  bool // write the queued frames before closing
	abrupt bool // close without a close handshake
}

// shutdown asks the writer to close the socket; only the first call counts.
// An abrupt shutdown also aborts a read or write in progress. It never
// blocks.
func (c *conn) shutdown(code websocket.StatusCode, reason string, flush, abrupt bool) bool {
	first := false
	c.once.Do(func() {
		first = true
		c.code, c.reason, c.flush, c.abrupt = code, reason, flush, abrupt
		close(c.done)
		if abrupt {
			c.cancel()
		}
	})
	return first
}

// handleWS serves GET /ws. The handler goroutine is the socket's reader and
// joins its writer before returning.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, reasonServerClosing, http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	// The query holds the access token: never log r.URL.
	q := r.URL.Query()
	subID, token := q.Get("subscriptionId"), q.Get("access_token")

	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("websocket upgrade failed")
		return
	}
	ws.SetReadLimit(maxClientFrame)

	s.mu.Lock()
	s.nextConn++
	id := s.nextConn
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c := &conn{
		ctx:    ctx,
		cancel: cancel,
		id:     id,
		ws:     ws,
		log:    s.log.With().Uint64("conn", id).Str("subscription", subID).Str("remote", r.RemoteAddr).Logger(),
		send:   make(chan []byte, s.queueSize),
		retime: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}

	switch reason, code, blackholed := s.register(c, subID, token); {
	case blackholed:
		c.log.Info().Msg("connected to a half-open subscription: sending nothing")
	case reason != "":
		c.log.Info().Str("reason", reason).Msg("build_connection refused")
		c.send <- buildConnectionFrame(false, reason) // the queue is empty
		c.shutdown(code, reason, true, false)
	default:
		c.log.Info().Msg("connected")
	}

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(c)
	}()
	s.readLoop(c)
	s.mu.Lock()
	s.closeConnLocked(c, closePeer)
	s.mu.Unlock()
	<-writerDone
	c.log.Debug().Msg("socket closed")
}

// register checks c's token and adds c to subscription subID under the
// second-connection policy, queueing the build_connection success frame. It
// returns why it cannot (and the close code), or blackholed when the
// subscription is half-open: then c is kept, silent, until the fault clears.
func (s *Server) register(c *conn, subID, token string) (reason string, code websocket.StatusCode, blackholed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code = websocket.StatusCode(s.set.CloseCode)
	sub := s.subs[subID]
	if s.closed {
		return reasonServerClosing, websocket.StatusGoingAway, false
	}
	if sub != nil && s.set.Faults[subID].HalfOpen {
		c.sub = subID
		c.blackholed.Store(true)
		sub.halfOpen = append(sub.halfOpen, c)
		return "", code, true
	}
	if token == "" {
		return reasonTokenEmpty, code, false
	}
	at := s.accessLocked(token)
	switch {
	case at == nil:
		return s.failureWordingLocked(), code, false
	case sub == nil:
		return reasonUnknownSub, code, false
	case len(sub.conns) > 0 && s.set.SecondConnection == SecondConnectionReject:
		sub.st.Rejected++
		return reasonAlreadyOpen, code, false
	case len(sub.conns) > 0 && s.set.SecondConnection == SecondConnectionKick:
		for _, old := range slices.Clone(sub.conns) {
			s.closeConnLocked(old, closeKicked)
		}
	}
	c.sub, c.token, c.tokenExp = subID, token, at.expires
	c.lastBeat.Store(s.clock.Now().UnixNano())
	sub.conns = append(sub.conns, c)
	sub.st.Connections++
	c.send <- buildConnectionFrame(true, s.set.ConnectedContent) // first frame; the queue is empty
	return "", code, false
}

// registered reports whether c is an open, non-blackholed socket of its
// subscription. Called with Server.mu held.
func (s *Server) registeredLocked(c *conn) bool {
	sub := s.subs[c.sub]
	return sub != nil && slices.Contains(sub.conns, c)
}

// closeConnLocked removes c from its subscription (counting why) and asks its
// writer to close it. Idempotent; never blocks.
func (s *Server) closeConnLocked(c *conn, why closeKind) {
	if sub := s.subs[c.sub]; sub != nil {
		if i := slices.Index(sub.conns, c); i >= 0 {
			sub.conns = slices.Delete(sub.conns, i, i+1)
			switch why {
			case closeKicked:
				sub.st.Kicked++
			case closeDropped:
				sub.st.Dropped++
			case closeSlow:
				sub.st.SlowConsumers++
			case closeHeartbeat:
				sub.st.HeartbeatTimeouts++
			case closeToken:
				sub.st.TokenCloses++
			}
		}
		if i := slices.Index(sub.halfOpen, c); i >= 0 {
			sub.halfOpen = slices.Delete(sub.halfOpen, i, i+1)
			if why == closeDropped {
				sub.st.Dropped++
			}
		}
	}
	code := websocket.StatusCode(s.set.CloseCode)
	switch why {
	case closeServer:
		code = websocket.StatusGoingAway
	case closePeer:
		code = websocket.StatusNormalClosure
	}
	// A dropped socket fails like a lost connection; a slow consumer cannot
	// take a close frame behind its full pipe; a blackholed one sends
	// nothing: all close without handshake.
	abrupt := why == closeDropped || why == closeSlow || why == closeHalfOpen || c.blackholed.Load()
	flush := why == closeToken // the failure frame goes out first
	if c.shutdown(code, why.String(), flush, abrupt) && why != closePeer && why != closeRefused {
		c.log.Info().Str("reason", why.String()).Msg("closing socket")
	}
}

// tokenCloseLocked sends c a build_connection failure frame and closes it:
// its token expired or was cancelled under close-at-expiry.
func (s *Server) tokenCloseLocked(c *conn) {
	if !s.registeredLocked(c) {
		return
	}
	select {
	case c.send <- buildConnectionFrame(false, s.failureWordingLocked()):
	default: // a full queue: close without the frame
	}
	s.closeConnLocked(c, closeToken)
}

// enqueueLocked queues a frame for c without blocking; a full queue closes c
// as a slow consumer. It reports whether the frame was queued.
func (s *Server) enqueueLocked(c *conn, b []byte) bool {
	select {
	case c.send <- b:
		return true
	default:
		s.closeConnLocked(c, closeSlow)
		return false
	}
}

// readLoop reads until the socket fails or closes. It answers heartbeats and
// ignores every other frame; a blackholed socket ignores everything. It
// reads with c.ctx, never with a timeout.
func (s *Server) readLoop(c *conn) {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				c.log.Debug().Int("code", int(st)).Msg("peer closed")
			} else if !errors.Is(err, context.Canceled) {
				c.log.Debug().Err(err).Msg("read ended")
			}
			return
		}
		if c.blackholed.Load() {
			s.mu.Lock()
			if sub := s.subs[c.sub]; sub != nil {
				sub.st.Ignored++
			}
			s.mu.Unlock()
			continue
		}
		var f struct {
			Module string `json:"module"`
		}
		if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil || f.Module != "heartbeat" {
			c.log.Debug().Int("bytes", len(data)).Msg("ignored client frame")
			continue
		}
		s.mu.Lock()
		if s.registeredLocked(c) && !c.blackholed.Load() {
			c.lastBeat.Store(s.clock.Now().UnixNano())
			s.enqueueLocked(c, heartbeatReply)
		}
		s.mu.Unlock()
	}
}

// writeLoop writes c's queued frames until c is shut down, then closes the
// socket. It also owns c's timers: the heartbeat watchdog (deadline: last
// heartbeat + Settings.HeartbeatTimeout, re-read on each firing and on
// retime) and the token-expiry check (Settings.TokenExpiry is read when the
// token expires).
func (s *Server) writeLoop(c *conn) {
	var hb, exp timer
	defer func() { stopTimer(hb); stopTimer(exp) }()
	var hbC, expC <-chan time.Time
	s.mu.Lock()
	live := s.registeredLocked(c)
	s.mu.Unlock()
	armHeartbeat := func() {
		stopTimer(hb)
		hb, hbC = nil, nil
		s.mu.Lock()
		timeout := time.Duration(s.set.HeartbeatTimeout)
		s.mu.Unlock()
		if timeout > 0 && live {
			hb = s.clock.TimerAt(time.Unix(0, c.lastBeat.Load()).Add(timeout))
			hbC = hb.C()
		}
	}
	if live {
		armHeartbeat()
		exp = s.clock.TimerAt(c.tokenExp)
		expC = exp.C()
	}
	for {
		select {
		case <-c.done:
			s.closeSocket(c)
			return
		case b := <-c.send:
			if c.blackholed.Load() {
				s.mu.Lock()
				if sub := s.subs[c.sub]; sub != nil {
					sub.st.Blackholed++
				}
				s.mu.Unlock()
				continue
			}
			if err := s.write(c, b); err != nil {
				c.log.Debug().Err(err).Msg("write failed")
				s.mu.Lock()
				s.closeConnLocked(c, closePeer)
				s.mu.Unlock()
				_ = c.ws.CloseNow() // already closed by the failed write
				return
			}
		case <-c.retime:
			armHeartbeat()
		case <-hbC:
			s.mu.Lock()
			timeout := time.Duration(s.set.HeartbeatTimeout)
			deadline := time.Unix(0, c.lastBeat.Load()).Add(timeout)
			rearm := false
			switch {
			case timeout == 0 || c.blackholed.Load():
				// no watchdog now; a retime re-arms it
			case s.clock.Now().Before(deadline):
				rearm = true // a heartbeat came meanwhile
			default:
				s.closeConnLocked(c, closeHeartbeat)
			}
			s.mu.Unlock()
			hbC = nil
			if rearm {
				armHeartbeat()
			}
		case <-expC:
			expC = nil
			s.mu.Lock()
			if s.set.TokenExpiry == TokenExpiryCloseAtExpiry && !c.blackholed.Load() {
				s.tokenCloseLocked(c)
			}
			s.mu.Unlock()
		}
	}
}

// closeSocket closes c's socket as c.shutdown asked: at once, or after
// writing the queued frames, with a close handshake (bounded by the
// websocket library's 5 s + 5 s, and by c.ctx).
func (s *Server) closeSocket(c *conn) {
	if c.abrupt {
		_ = c.ws.CloseNow()
		return
	}
	for drained := !c.flush; !drained; {
		select {
		case b := <-c.send:
			if err := s.write(c, b); err != nil {
				_ = c.ws.CloseNow()
				return
			}
		default:
			drained = true
		}
	}
	if err := c.ws.Close(c.code, c.reason); err != nil && !errors.Is(err, net.ErrClosed) {
		c.log.Debug().Err(err).Msg("close handshake failed")
	}
}

// write writes one text frame, bounded by writeTimeout and c.ctx. On error
// the websocket library has closed the socket.
func (s *Server) write(c *conn, b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Drop closes every open socket of subscription id at once, half-open ones
// included, without a close handshake (a fault: the client sees the
// connection fail), and returns how many it closed. It returns
// ErrUnknownSubscription for an id not in Config.Subscriptions. It does not
// wait for the sockets' handlers to end.
func (s *Server) Drop(id string) (int, error) {
	s.mu.Lock()
	sub := s.subs[id]
	if sub == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %q", ErrUnknownSubscription, id)
	}
	conns := append(slices.Clone(sub.conns), sub.halfOpen...)
	for _, c := range conns {
		s.closeConnLocked(c, closeDropped)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.CloseNow() // now, even if its writer is mid-write
	}
	return len(conns), nil
}

// setHalfOpenLocked switches subscription sub's half-open fault: on, its open
// sockets become blackholed; off, the blackholed sockets are closed abruptly.
func (s *Server) setHalfOpenLocked(sub *subscription, on bool) {
	if on {
		for _, c := range sub.conns {
			c.blackholed.Store(true)
		}
		sub.halfOpen = append(sub.halfOpen, sub.conns...)
		sub.conns = nil
		s.log.Info().Str("subscription", sub.id).Int("sockets", len(sub.halfOpen)).Msg("subscription half-open")
		return
	}
	n := len(sub.halfOpen)
	for _, c := range slices.Clone(sub.halfOpen) {
		s.closeConnLocked(c, closeHalfOpen)
	}
	s.log.Info().Str("subscription", sub.id).Int("closed", n).Msg("half-open cleared")
}
