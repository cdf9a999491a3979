package events

import (
	"cmp"
	"time"
)

// Defaults of [Limits].
const (
	// DefaultMaxFuture is how far ahead of now an event time may lie: Zoom's
	// clock and ours may disagree, by seconds, not by days.
	DefaultMaxFuture = 24 * time.Hour
	// DefaultMaxPast is how far behind now an event time may lie. Zoom
	// delivers late, by hours (PROTOCOL.md §1), and a handoff may be parsed
	// again at a promotion; a month covers both with room to spare.
	DefaultMaxPast = 30 * 24 * time.Hour
	// DefaultMaxDepth is how deep objects and arrays may nest in one event,
	// the envelope counting as 1 (so payload.object is at depth 3). Zoom's
	// objects nest three or four levels.
	DefaultMaxDepth = 64
	// DefaultMaxSkew is how far an object's own time (date_time_ms, …) may
	// lie after the envelope's event_ts: an event is sent after its fact,
	// and Zoom's services agree on the time to within seconds.
	DefaultMaxSkew = 5 * time.Minute
)

// Limits bounds what [ParseWith] accepts. The zero value means every default;
// [Parse] uses it.
//
// Whatever the limits, a time must also be representable: a UTC year from 1
// to 9999, as json.Marshal needs it.
type Limits struct {
	// MaxFuture is how far after Now an event time may lie. Zero or
	// negative means DefaultMaxFuture (24 h).
	MaxFuture time.Duration
	// MaxPast is how far before Now an event time may lie. Zero or negative
	// means DefaultMaxPast (30 days).
	MaxPast time.Duration
	// Now returns the current time; read once per call. Nil means
	// time.Now. Tests that parse recorded events set it near their times.
	Now func() time.Time
	// MaxDepth is how deep objects and arrays may nest in the whole event,
	// the outermost object counting as 1. Zero or negative means
	// DefaultMaxDepth (64).
	MaxDepth int
	// MaxSkew is how far an object time may lie after event_ts before the
	// two contradict each other (the event would have been sent before it
	// happened). Zero or negative means DefaultMaxSkew (5 min).
	MaxSkew time.Duration
}

// withDefaults returns l with every zero or negative field set to its
// default.
func (l Limits) withDefaults() Limits {
	l.MaxFuture = cmp.Or(max(l.MaxFuture, 0), DefaultMaxFuture)
	l.MaxPast = cmp.Or(max(l.MaxPast, 0), DefaultMaxPast)
	l.MaxDepth = cmp.Or(max(l.MaxDepth, 0), DefaultMaxDepth)
	l.MaxSkew = cmp.Or(max(l.MaxSkew, 0), DefaultMaxSkew)
	if l.Now == nil {
		l.Now = time.Now
	}
	return l
}

// window is the span of plausible event times: [from, to].
type window struct{ from, to time.Time }

// window returns the plausible span around l.Now() (l with defaults).
func (l Limits) window() window {
	now := l.Now()
	return window{from: now.Add(-l.MaxPast), to: now.Add(l.MaxFuture)}
}

// plausible reports whether t lies in w and is representable (a UTC year
// from 1 to 9999).
func (w window) plausible(t time.Time) bool {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return false
	}
	return !t.Before(w.from) && !t.After(w.to)
}
