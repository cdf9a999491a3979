package events

import (
	"sync"

	"github.com/rs/zerolog"
)

// fail records a failure in Status.LastError and logs it on ev. detail must
// already be redacted.
func (c *Client) fail(ev *zerolog.Event, kind, detail, msg string) {
	c.update(func(s *ClientStatus) { s.LastError = kind + ": " + detail })
	ev.Str("kind", kind).Str("error", detail).Msg(msg)
}

// once returns a log event at level the first time key is seen, and at Debug
// after, so that a flood of one problem is logged once with context (G7).
func (c *Client) once(level zerolog.Level, key string) *zerolog.Event {
	if c.logs.first(key) {
		return c.log.WithLevel(level)
	}
	return c.log.Debug()
}

// logLimiter remembers which log keys were seen, up to a bound.
type logLimiter struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

const logLimiterMax = 1024

func (l *logLimiter) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = make(map[string]struct{})
	}
	if _, ok := l.seen[key]; ok || len(l.seen) >= logLimiterMax {
		return false
	}
	l.seen[key] = struct{}{}
	return true
}
