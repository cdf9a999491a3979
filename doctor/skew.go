package doctor

import (
	"fmt"
	"net/http"
	"time"
)

// dateSample is a server's HTTP Date header and the local times around the
// request that produced it.
type dateSample struct {
	sent, recv time.Time // local clock, before the request and after the reply
	date       time.Time // the server's Date: its clock truncated to the second
}

// sampleDate reads resp's Date header; ok is false without a valid one.
func sampleDate(resp *http.Response, sent, recv time.Time) (dateSample, bool) {
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return dateSample{}, false
	}
	return dateSample{sent: sent, recv: recv, date: d}, true
}

// offset bounds the server's clock minus ours. The server read its clock at
// some instant in [sent, recv] of ours, and that reading lies in
// [date, date+1s). So the offset lies in [date−recv, date+1s−sent].
func (s dateSample) offset() (lo, hi time.Duration) {
	return s.date.Sub(s.recv), s.date.Add(time.Second).Sub(s.sent)
}

// atLeast is the smallest absolute offset consistent with the sample: 0
// when the interval contains 0.
func (s dateSample) atLeast() time.Duration {
	lo, hi := s.offset()
	switch {
	case lo > 0:
		return lo
	case hi < 0:
		return -hi
	}
	return 0
}

// describe renders the estimate, e.g. "+2.4s ±0.5s (server ahead)".
func (s dateSample) describe() string {
	lo, hi := s.offset()
	mid, half := (lo+hi)/2, (hi-lo)/2
	side := "in step within the resolution"
	if s.atLeast() > 0 {
		side = "server behind"
		if mid > 0 {
			side = "server ahead"
		}
	}
	return fmt.Sprintf("offset %+.1fs ±%.1fs (%s)", mid.Seconds(), half.Seconds(), side)
}

// skewResult judges a sample against max.
func skewResult(s dateSample, max time.Duration, against, fix string) Result {
	if at := s.atLeast(); at > max {
		return fail(fix, "clock differs from %s by at least %.1fs (limit %s): %s", against, at.Seconds(), max, s.describe())
	}
	return pass("clock agrees with %s within %s: %s", against, max, s.describe())
}

const fixClock = "synchronise this host's clock with NTP (timedatectl set-ntp true, or w32tm /resync on Windows)"
