package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/config"
)

// TestFinding1_PlausibleTimeAndQuarantineSettings: rules.max_event_future
// and rules.max_event_past default to 24h and 30 days, and every new
// setting out of range is named.
func TestFinding1_PlausibleTimeAndQuarantineSettings(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s3cret")
	c, err := config.Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rules.MaxEventFuture != 24*time.Hour || c.Rules.MaxEventPast != 30*24*time.Hour {
		t.Fatalf("defaults: max_event_future %s, max_event_past %s; want 24h, 720h", c.Rules.MaxEventFuture, c.Rules.MaxEventPast)
	}
	bad := good + "rules:\n  max_event_future: -1s\n  max_event_age: 2h\n  max_event_past: 1h\n" +
		"etcd:\n  quarantine_ttl: 10s\n  quarantine_max: -1\n"
	bad = strings.Replace(bad, "etcd:\n  endpoints: [\"127.0.0.1:2379\"]\n", "", 1)
	_, err = config.Load(write(t, bad))
	if err == nil {
		t.Fatal("out-of-range settings accepted")
	}
	for _, key := range []string{"rules.max_event_future", "rules.max_event_past", "etcd.quarantine_ttl", "etcd.quarantine_max"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}
