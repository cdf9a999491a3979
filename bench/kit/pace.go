package kit

import (
	"context"
	"time"
)

// Pace calls send(i) for i in [0, n) open loop at rate per second: call i is
// due at start + i/rate. When it falls behind (send blocked) it catches up
// without waiting, so the offered load does not drop because the system
// under test is slow. It returns the number of calls made, fewer than n when
// ctx ended first. rate <= 0 means as fast as send returns.
func Pace(ctx context.Context, n int, rate float64, send func(i int)) int {
	start := time.Now()
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return i
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				// Sleep in steps of at least 1ms: the timer's resolution;
				// the events due meanwhile go out back to back.
				time.Sleep(max(d, time.Millisecond))
			}
		}
		send(i)
	}
	return n
}
