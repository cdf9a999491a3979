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
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
)

// Texts of build_connection frames.
const (
	contentConnected    = "connected"
	reasonTokenEmpty    = "token is empty"
	reasonInvalidToken  = "Invalid Token"
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
)

// String returns the close reason sent in the close frame and logged.
func (k closeKind) String() string {
	return [...]string{"peer", "kicked", "dropped", "slow consumer", "heartbeat timeout", "server closing", "refused"}[k]
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

	sub  string        // subscription id once registered; set before the writer starts
	send chan []byte   // frames to write, in order
	beat chan struct{} // a heartbeat arrived (latest wins, capacity 1)

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
		beat:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}

	reason := ""
	switch {
	case token == "":
		reason = reasonTokenEmpty
	case !s.tokenValid(token):
		reason = reasonInvalidToken
	default:
		reason = s.register(c, subID)
	}
	if reason != "" {
		c.log.Info().Str("reason", reason).Msg("build_connection refused")
		c.send <- buildConnectionFrame(false, reason) // the queue is empty
		c.shutdown(websocket.StatusPolicyViolation, reason, true, false)
	} else {
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

// register adds c to subscription subID under the second-connection policy
// and queues the build_connection success frame, or returns why it cannot.
func (s *Server) register(c *conn, subID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[subID]
	switch {
	case s.closed:
		return reasonServerClosing
	case sub == nil:
		return reasonUnknownSub
	case len(sub.conns) > 0 && s.cfg.SecondConnection == SecondConnectionReject:
		sub.st.Rejected++
		return reasonAlreadyOpen
	case len(sub.conns) > 0 && s.cfg.SecondConnection == SecondConnectionKick:
		for _, old := range slices.Clone(sub.conns) {
			s.closeConnLocked(old, closeKicked)
		}
	}
	c.sub = subID
	sub.conns = append(sub.conns, c)
	sub.st.Connections++
	c.send <- buildConnectionFrame(true, contentConnected) // first frame; the queue is empty
	return ""
}

// closeConnLocked removes c from its subscription (counting why) and asks its
// writer to close it. Idempotent; never blocks.
func (s *Server) closeConnLocked(c *conn, why closeKind) {
	if sub := s.subs[c.sub]; sub != nil && c.sub != "" {
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
			}
		}
	}
	code := websocket.StatusPolicyViolation
	switch why {
	case closeServer:
		code = websocket.StatusGoingAway
	case closePeer:
		code = websocket.StatusNormalClosure
	}
	// A dropped socket fails like a lost connection; a slow consumer cannot
	// take a close frame behind its full pipe: both close without handshake.
	abrupt := why == closeDropped || why == closeSlow
	if c.shutdown(code, why.String(), false, abrupt) && why != closePeer && why != closeRefused {
		c.log.Info().Str("reason", why.String()).Msg("closing socket")
	}
}

// enqueue queues a frame for c without blocking; a full queue closes c as a
// slow consumer. It reports whether the frame was queued.
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
// ignores every other frame. It reads with c.ctx, never with a timeout.
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
		if c.sub == "" {
			continue // refused socket: only waiting for the close handshake
		}
		var f struct {
			Module string `json:"module"`
		}
		if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil || f.Module != "heartbeat" {
			c.log.Debug().Int("bytes", len(data)).Msg("ignored client frame")
			continue
		}
		select {
		case c.beat <- struct{}{}:
		default:
		}
		s.mu.Lock()
		s.enqueueLocked(c, heartbeatReply)
		s.mu.Unlock()
	}
}

// writeLoop writes c's queued frames until c is shut down, then closes the
// socket. It also owns the heartbeat watchdog timer, reset by each heartbeat.
func (s *Server) writeLoop(c *conn) {
	var expired <-chan time.Time
	var timer *time.Timer
	if s.cfg.HeartbeatTimeout > 0 && c.sub != "" {
		timer = time.NewTimer(s.cfg.HeartbeatTimeout)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		select {
		case <-c.done:
			s.closeSocket(c)
			return
		case b := <-c.send:
			if err := s.write(c, b); err != nil {
				c.log.Debug().Err(err).Msg("write failed")
				s.mu.Lock()
				s.closeConnLocked(c, closePeer)
				s.mu.Unlock()
				_ = c.ws.CloseNow() // already closed by the failed write
				return
			}
		case <-c.beat:
			if timer != nil {
				timer.Reset(s.cfg.HeartbeatTimeout)
			}
		case <-expired:
			select {
			case <-c.beat: // a heartbeat arrived as the timer fired: it counts
				timer.Reset(s.cfg.HeartbeatTimeout)
				continue
			default:
			}
			s.mu.Lock()
			s.closeConnLocked(c, closeHeartbeat)
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

// write writes one text frame, bounded by writeTimeout and c.ctx. On error the websocket library has closed the socket.
func (s *Server) write(c *conn, b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Drop closes every open socket of subscription id at once, without a close
// handshake (a fault: the client sees the connection fail), and returns how
// many it closed. It returns ErrUnknownSubscription for an id not in
// Config.Subscriptions. It does not wait for the sockets' handlers to end.
func (s *Server) Drop(id string) (int, error) {
	s.mu.Lock()
	sub := s.subs[id]
	if sub == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %q", ErrUnknownSubscription, id)
	}
	conns := slices.Clone(sub.conns)
	for _, c := range conns {
		s.closeConnLocked(c, closeDropped)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.CloseNow() // now, even if its writer is mid-write
	}
	return len(conns), nil
}
