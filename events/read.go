package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"github.com/zccadapter/zccadapter/redact"
)

// readLoop is the connection's only reader. It reads with the
// connection-lifetime ctx (never a per-read timeout, C-13) until the socket
// fails or a frame ends the session.
func (c *Client) readLoop(ctx context.Context, conn *websocket.Conn, cs *connState) readResult {
	first := true
	for {
		data, err := c.readMessage(ctx, conn, cs)
		if err != nil {
			return readResult{err: err}
		}
		cs.touch()
		c.noteFrame()
		if data == nil { // oversize, dropped
			if first {
				return readResult{protocol: "first frame is oversize, not build_connection"}
			}
			continue
		}
		f, err := ParseFrame(data)
		if err != nil {
			c.malformed("frame", err)
			if first {
				return readResult{protocol: "first frame is not a valid build_connection"}
			}
			continue
		}
		if first && f.Module != ModuleBuildConnection {
			return readResult{protocol: "first frame is " + redact.Truncate(f.Module, 32) + ", not build_connection"}
		}
		first = false
		switch f.Module {
		case ModuleBuildConnection:
			if f.Success != nil && !*f.Success {
				return readResult{authFailure: true, content: f.Content}
			}
			if cs.established.CompareAndSwap(false, true) {
				now := time.Now()
				var gap time.Duration
				c.update(func(s *ClientStatus) {
					s.Connected, s.ConnectedSince = true, now
					s.Connects++
					gap = s.gapEnded(now)
				})
				ev := c.log.Info()
				if gap > 0 {
					ev = ev.Dur("gap", gap)
				}
				ev.Msg("subscription connected")
			}
		case ModuleHeartbeat:
			if f.Success != nil && !*f.Success {
				c.once(zerolog.WarnLevel, "heartbeat-failed").Msg("heartbeat reply with success:false")
			}
		case ModuleMessage:
			c.handleMessage(f, cs)
		default:
			c.update(func(s *ClientStatus) { s.UnknownFrames++ })
			c.once(zerolog.WarnLevel, "module:"+redact.Truncate(f.Module, 64)).Str("module", redact.Truncate(f.Module, 64)).
				Msg("ignoring frame of unknown module")
		}
	}
}

// errEndlessFrame ends a connection whose frame exceeded the drain limit.
var errEndlessFrame = errors.New("frame larger than the drain limit")

// readMessage reads the next data message. It keeps at most ReadLimit
// bytes: a larger message is read to its end into io.Discard, counted and
// logged with its size, and returned as nil data with a nil error (the
// socket stays usable). A message larger than the drain limit is counted
// too and returns errEndlessFrame. Any read error is returned as is. Bytes
// arriving count as life for the watchdog, so a large frame on a slow link
// is not taken for silence.
func (c *Client) readMessage(ctx context.Context, conn *websocket.Conn, cs *connState) ([]byte, error) {
	_, r, err := conn.Reader(ctx)
	if err != nil {
		return nil, err
	}
	r = &liveReader{r: r, cs: cs}
	data, err := io.ReadAll(io.LimitReader(r, c.cfg.ReadLimit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) <= c.cfg.ReadLimit {
		return data, nil
	}
	n := int64(len(data))
	data = nil // dropped: memory stays bounded by ReadLimit
	limit := c.cfg.drainLimit()
	rest, err := io.Copy(io.Discard, io.LimitReader(r, limit-n+1))
	n += rest
	if err != nil {
		return nil, err
	}
	endless := n > limit
	c.oversize(n, endless)
	if endless {
		return nil, errEndlessFrame
	}
	return nil, nil
}

// oversize counts and logs a dropped frame of n bytes (at least n when
// atLeast): the first of the Client as an error, as it most likely needs a
// larger ReadLimit, the rest as warnings; never its content.
func (c *Client) oversize(n int64, atLeast bool) {
	size := fmt.Sprintf("%d bytes", n)
	if atLeast {
		size = "at least " + size
	}
	c.update(func(s *ClientStatus) {
		s.Oversize++
		s.LastOversizeBytes = n
		s.LastError = fmt.Sprintf("oversize: frame of %s over ReadLimit (%d bytes)", size, c.cfg.ReadLimit)
	})
	ev := c.log.Warn()
	if c.oversizeLogged.CompareAndSwap(false, true) {
		ev = c.log.Error()
	}
	ev.Str("kind", "oversize").Int64("read_limit", c.cfg.ReadLimit).Int64("frame_bytes", n).Bool("frame_bytes_at_least", atLeast).
		Msg("dropped a frame of " + size + ", over the read limit: its event is lost on this socket; raise the read limit if Zoom sends such frames")
}

// liveReader marks the connection alive on every read that returns data.
type liveReader struct {
	r  io.Reader
	cs *connState
}

func (l *liveReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.cs.touch()
	}
	return n, err
}

// handleMessage verifies (when a secret token is configured) and parses a
// message frame's event and hands it to the connection's deliver.
func (c *Client) handleMessage(f Frame, cs *connState) {
	if c.cfg.SecretToken != "" {
		if err := CheckSignature(c.cfg.SecretToken, f, time.Now(), c.cfg.SignatureMaxAge); err != nil {
			c.badSignature(err)
			return
		}
	}
	ev, err := ParseWith([]byte(f.Content), c.cfg.Limits)
	if err != nil {
		c.malformed("event", err)
		var pe *ParseError
		if c.cfg.OnMalformed != nil && errors.As(err, &pe) {
			c.cfg.OnMalformed([]byte(f.Content), pe)
		}
		return
	}
	now := time.Now()
	c.update(func(s *ClientStatus) {
		s.Events++
		s.LastEventAt = now
		if !ev.Known {
			s.Unknown++
		}
	})
	cs.events.Add(1)
	if !ev.Known {
		name := redact.Truncate(ev.Name, 128)
		c.once(zerolog.InfoLevel, "unknown:"+name).Str("event", name).Msg("unknown event name; delivered with Known=false")
	}
	if cs.deliver != nil {
		cs.deliver(ev)
	}
}

// badSignature counts and logs a message frame dropped by the signature
// check: the first of each reason at Warn, the rest at Debug.
func (c *Client) badSignature(err error) {
	c.update(func(s *ClientStatus) { s.BadSignatures++ })
	reason, hint := "mismatch", "check zoom.secret_token"
	switch {
	case errors.Is(err, ErrSignatureMissing):
		reason, hint = "missing", "the frame carries no x-zm-signature or x-zm-request-timestamp"
	case errors.Is(err, ErrTimestampInvalid):
		reason, hint = "bad_timestamp", "x-zm-request-timestamp is not a Unix time"
	case errors.Is(err, ErrTimestampStale):
		reason, hint = "stale", "a replayed frame, or this host's clock is off (zoom.signature_max_age)"
	case errors.Is(err, ErrTimestampFuture):
		reason, hint = "future", "this host's clock is behind (zoom.signature_max_age)"
	}
	ev := c.once(zerolog.WarnLevel, "bad-signature:"+reason).Str("kind", "signature").Str("reason", reason)
	var se *SignatureError
	if errors.As(err, &se) && se.Skew != 0 {
		ev = ev.Dur("skew", se.Skew).Dur("max_age", c.cfg.SignatureMaxAge)
	}
	ev.Msg("dropping a message frame that fails the signature check (" + hint + "; further ones are counted)")
}

// malformed counts and logs a frame or event that failed to parse: the first
// of each (kind, event, field) at Warn, the rest at Debug.
func (c *Client) malformed(kind string, err error) {
	c.update(func(s *ClientStatus) { s.Malformed++ })
	var pe *ParseError
	if !errors.As(err, &pe) {
		pe = &ParseError{Reason: "unparsable"}
	}
	c.once(zerolog.WarnLevel, kind+"|"+pe.Event+"|"+pe.Field+"|"+pe.Reason).
		Str("kind", kind).Str("event", pe.Event).Str("field", pe.Field).Str("reason", pe.Reason).
		Msg("dropping malformed " + kind)
}
