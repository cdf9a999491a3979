package zoom

import "time"

// clock is the server's source of time: token and code expiry, the heartbeat
// watchdog, delivery delays, rate-limit windows and the slow token fault all
// read it, so a test can replace it and move time by hand.
type clock interface {
	Now() time.Time
	// TimerAt returns a timer that fires once at or after at (at once if at
	// is not in the future). Deadlines are absolute, so a timer made after
	// the clock moved past at still fires.
	TimerAt(at time.Time) timer
}

// timer is a one-shot timer of a clock.
type timer interface {
	// C delivers the firing time once.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) TimerAt(at time.Time) timer {
	return realTimer{time.NewTimer(time.Until(at))}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// stopTimer stops t if it is not nil.
func stopTimer(t timer) {
	if t != nil {
		t.Stop()
	}
}
