package events

import "time"

// ClientStatus is a snapshot of a [Client]'s state and counters. Counters
// count from NewClient and never reset.
type ClientStatus struct {
	// Connected is true from an accepted build_connection until the socket ends.
	Connected bool
	// ConnectedSince is when the current connection was accepted; zero when
	// not connected.
	ConnectedSince time.Time
	// LastFrameAt is when the last frame of any kind arrived; zero before any.
	LastFrameAt time.Time
	// LastEventAt is when the last message event was delivered; zero before any.
	LastEventAt time.Time
	// Connects counts accepted connections (build_connection success).
	Connects int64
	// Reconnects counts connection attempts after the first.
	Reconnects int64
	// AuthFailures counts rejected tokens (build_connection success:false,
	// HTTP 401/403 on the handshake).
	AuthFailures int64
	// Events counts events handed to Run's deliver, unknown names included.
	Events int64
	// Malformed counts frames and events that failed to parse.
	Malformed int64
	// BadSignatures counts message frames dropped by the signature check
	// (only with a SecretToken): a missing or mismatched x-zm-signature, or
	// an x-zm-request-timestamp outside SignatureMaxAge.
	BadSignatures int64
	// Unknown counts delivered events whose name is not known (Event.Known false).
	Unknown int64
	// Oversize counts frames larger than ReadLimit (dropped; the socket stays
	// open unless the frame exceeded the drain limit, see ReadLimit).
	Oversize int64
	// LastOversizeBytes is the size of the last oversize frame in bytes (a
	// lower bound when it exceeded the drain limit); 0 before any.
	LastOversizeBytes int64
	// UnknownFrames counts well-formed frames of an unknown module.
	UnknownFrames int64
	// WatchdogCloses counts sockets force-closed for silence.
	WatchdogCloses int64
	// DownSince is when the current socket gap began: when the last
	// accepted connection ended. Zero while connected, before the first
	// accepted connection, and after Run returned.
	DownSince time.Time
	// Gaps counts socket gaps that have ended: from the end of an accepted
	// connection to the next accepted one (or to the return of Run). The
	// time before the first accepted connection is not a gap.
	Gaps int64
	// DownTotal is the total length of all socket gaps, the current one
	// included up to the snapshot, on the monotonic clock.
	DownTotal time.Duration
	// LastGap is the length of the last gap that ended; 0 before any.
	LastGap time.Duration
	// LastError describes the last failure (dial, token, auth, read,
	// protocol, oversize), redacted; "" before any.
	LastError string
}

// Status returns a snapshot of the client's state. Safe for concurrent use.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	if !st.DownSince.IsZero() {
		st.DownTotal += time.Since(st.DownSince)
	}
	return st
}

// gapEnded closes the current socket gap, if any, at now: it is counted,
// added to DownTotal and becomes LastGap, which is returned (0: no gap was
// open). Called with c.mu held.
func (s *ClientStatus) gapEnded(now time.Time) time.Duration {
	if s.DownSince.IsZero() {
		return 0
	}
	gap := max(0, now.Sub(s.DownSince))
	s.Gaps++
	s.DownTotal += gap
	s.LastGap = gap
	s.DownSince = time.Time{}
	return gap
}

func (c *Client) update(f func(*ClientStatus)) {
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
}

func (c *Client) noteFrame() {
	now := time.Now()
	c.update(func(s *ClientStatus) { s.LastFrameAt = now })
}
