package wait

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep blocks for d or until ctx ends, whichever comes first. It returns
// nil after the full d, and ctx.Err() when ctx ended first (also when ctx
// had already ended on entry: it never sleeps then). A d of zero or less
// returns at once with ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is an exponential backoff policy. Attempt n (0 for the first
// retry) has the ceiling min(Max, Min·2^n). Without Jitter the delay is the
// ceiling; with Jitter it is drawn uniformly from [Floor, ceiling] ("full
// jitter" over the range, so two peers that failed together do not retry in
// lockstep).
//
// The zero Backoff waits nothing. Max below Min is treated as Min.
type Backoff struct {
	// Min is the first delay (the ceiling of attempt 0).
	Min time.Duration
	// Max caps every delay.
	Max time.Duration
	// Jitter draws each delay at random between Floor and the ceiling.
	Jitter bool
	// Floor is the least jittered delay. Zero means 1 ns (a retry never
	// happens in the same instant); set it to Min to keep at least Min
	// between attempts.
	Floor time.Duration
}

// Ceiling returns the largest delay of attempt n: min(Max, Min·2^n), never
// overflowing. A negative n counts as 0.
func (b Backoff) Ceiling(n int) time.Duration {
	hi := max(b.Max, b.Min)
	c := b.Min
	for i := 0; i < n && c < hi; i++ {
		c *= 2
		if c <= 0 { // overflow
			c = hi
		}
	}
	return min(c, hi)
}

// Delay returns the delay before retry n (0-based): Ceiling(n), or with
// Jitter a uniform draw in [Floor, Ceiling(n)] (Floor clamped to 1 ns and to
// the ceiling).
func (b Backoff) Delay(n int) time.Duration {
	c := b.Ceiling(n)
	if !b.Jitter || c <= 0 {
		return c
	}
	lo := min(max(b.Floor, time.Nanosecond), c)
	return lo + time.Duration(rand.Int64N(int64(c-lo)+1))
}
