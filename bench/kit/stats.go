package kit

import (
	"fmt"
	"slices"
	"time"
)

// Dist is a sorted sample of durations.
type Dist []time.Duration

// NewDist sorts a copy of ds.
func NewDist(ds []time.Duration) Dist {
	d := slices.Clone(ds)
	slices.Sort(d)
	return d
}

// Q returns the q-quantile (0 ≤ q ≤ 1) by the nearest-rank method; 0 for an
// empty sample.
func (d Dist) Q(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// Max is the largest value (0 when empty).
func (d Dist) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// Within is the fraction of the sample at or below limit.
func (d Dist) Within(limit time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	n, _ := slices.BinarySearch(d, limit+1)
	return float64(n) / float64(len(d))
}

// MS converts a duration to milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String is "n=… p50=… p99=… p99.9=… max=…" in ms.
func (d Dist) String() string {
	return fmt.Sprintf("n=%d p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms",
		len(d), MS(d.Q(.5)), MS(d.Q(.99)), MS(d.Q(.999)), MS(d.Max()))
}
