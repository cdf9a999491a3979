package wait

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context = %v, want context.Canceled", err)
	}
	if err := Sleep(t.Context(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v, want nil", err)
	}
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v, want nil", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep cancelled midway = %v, want context.Canceled", err)
	}
}

func TestBackoffCeiling(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{-1, 100 * time.Millisecond}, {0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {4, 1600 * time.Millisecond}, {5, 2 * time.Second}, {1000, 2 * time.Second}} {
		if got := b.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	huge := Backoff{Min: time.Duration(1 << 62), Max: time.Duration(1<<63 - 1)}
	if got := huge.Ceiling(10); got != huge.Max {
		t.Errorf("overflowing Ceiling = %v, want Max %v", got, huge.Max)
	}
	if got := (Backoff{}).Delay(3); got != 0 {
		t.Errorf("zero Backoff Delay = %v, want 0", got)
	}
}

func TestBackoffJitterWithinRange(t *testing.T) {
	b := Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, Jitter: true, Floor: 250 * time.Millisecond}
	for n := range 12 {
		for range 200 {
			d := b.Delay(n)
			if d < b.Floor || d > b.Ceiling(n) {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", n, d, b.Floor, b.Ceiling(n))
			}
		}
	}
	nofloor := Backoff{Min: 50 * time.Millisecond, Max: time.Second, Jitter: true}
	for range 200 {
		if d := nofloor.Delay(0); d < time.Nanosecond || d > 50*time.Millisecond {
			t.Fatalf("Delay(0) = %v outside [1ns, 50ms]", d)
		}
	}
}
