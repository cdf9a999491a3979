package zoom

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Message-frame header names (PROTOCOL §1).
const (
	HeaderTimestamp = "x-zm-request-timestamp"
	HeaderSignature = "x-zm-signature"
)

// envelope is an event as Zoom sends it (PROTOCOL §3).
type envelope struct {
	Event   string  `json:"event"`
	EventTS int64   `json:"event_ts"`
	Payload payload `json:"payload"`
}

type payload struct {
	AccountID string         `json:"account_id"`
	Object    map[string]any `json:"object"`
}

// Publish wraps object in Zoom's envelope — {"event":name,"event_ts":at in
// unix ms,"payload":{"account_id":Config.AccountID,"object":object}} — and
// queues one message frame to every subscription with an open socket (to each
// socket under SecondConnectionAllow). It returns the number of subscriptions
// the event was queued to: 0 when nobody is connected, or after Close, or if
// object cannot be encoded as JSON (logged). It never blocks on a socket: a
// socket whose queue is full is closed as a slow consumer instead. object is
// encoded before Publish returns and not retained.
//
// Publish has the signature of traffic.Emitter and is safe for concurrent
// use; events published by one goroutine reach each socket in order.
func (s *Server) Publish(name string, at time.Time, object map[string]any) (delivered int) {
	raw, err := json.Marshal(envelope{
		Event:   name,
		EventTS: at.UnixMilli(),
		Payload: payload{AccountID: s.cfg.AccountID, Object: object},
	})
	if err != nil {
		s.log.Error().Err(err).Str("event", name).Msg("cannot encode event")
		return 0
	}
	return s.PublishTo(nil, raw)
}

// PublishTo queues raw, verbatim, as the content of one message frame to each
// listed subscription that has an open socket; nil subs means every
// subscription. Unknown ids and repeats are ignored. raw need not be valid
// JSON (to test a client's handling of bad content). It returns the number
// of subscriptions the frame was queued to, and is otherwise like Publish.
func (s *Server) PublishTo(subs []string, raw json.RawMessage) int {
	if subs == nil {
		subs = s.cfg.Subscriptions
	}
	content := string(raw)
	// Frames are built outside the lock; each subscription gets its own copy,
	// timestamped and signed on its own.
	type target struct {
		sub   *subscription
		frame []byte
	}
	var targets []target
	for i, id := range subs {
		sub := s.subs[id] // keys are fixed: no lock needed to look up
		if sub == nil || slices.Contains(subs[:i], id) {
			continue
		}
		targets = append(targets, target{sub, s.messageFrame(content)})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	delivered := 0
	for _, t := range targets {
		queued := false
		for _, c := range slices.Clone(t.sub.conns) {
			if s.enqueueLocked(c, t.frame) {
				queued = true
			}
		}
		if queued {
			t.sub.st.EventsSent++
			delivered++
		}
	}
	return delivered
}

// messageFrame builds a message frame holding content as a string, with the
// timestamp header and, when Config.SecretToken is set, the signature.
func (s *Server) messageFrame(content string) []byte {
	ts := strconv.FormatInt(s.now().UnixMilli(), 10)
	h := map[string]string{HeaderTimestamp: ts}
	if s.cfg.SecretToken != "" {
		h[HeaderSignature] = Sign(s.cfg.SecretToken, ts, content)
	}
	return mustFrame(frame{Module: "message", Header: h, Content: content})
}

// Sign returns the x-zm-signature of a message frame: "v0=" +
// hex(HMAC-SHA256(secretToken, "v0:"+timestamp+":"+content)).
func Sign(secretToken, timestamp, content string) string {
	m := hmac.New(sha256.New, []byte(secretToken))
	m.Write([]byte("v0:" + timestamp + ":" + content))
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}
