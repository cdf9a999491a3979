package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/config"
)

// TestFinding7_ContradictorySettingsAreRefused: settings valid alone but
// contradicting each other are refused by Load with an error naming both
// keys, their values and the file; the settings just inside each bound
// load.
func TestFinding7_ContradictorySettingsAreRefused(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s3cr3t")
	cases := []struct {
		name      string
		bad, ok   map[string]string // env overrides
		wantInBad []string
	}{
		{"dedup window below max event age",
			map[string]string{"ZCC_ETCD_DEDUP_WINDOW": "5m", "ZCC_RULES_MAX_EVENT_AGE": "10m"},
			map[string]string{"ZCC_ETCD_DEDUP_WINDOW": "10m", "ZCC_RULES_MAX_EVENT_AGE": "10m"},
			[]string{"etcd.dedup_window", "5m0s", "rules.max_event_age", "10m0s"}},
		{"default dedup window below max event age",
			map[string]string{"ZCC_RULES_MAX_EVENT_AGE": "30m"},
			map[string]string{"ZCC_RULES_MAX_EVENT_AGE": "20m"},
			[]string{"etcd.dedup_window", "20m0s", "rules.max_event_age", "30m0s"}},
		{"handoff grace at half the dedup window",
			map[string]string{"ZCC_ETCD_DEDUP_WINDOW": "20m", "ZCC_RULES_HANDOFF_GRACE": "10m"},
			map[string]string{"ZCC_ETCD_DEDUP_WINDOW": "20m", "ZCC_RULES_HANDOFF_GRACE": "9m59s"},
			[]string{"rules.handoff_grace", "10m0s", "etcd.dedup_window", "20m0s"}},
		{"idle timeout below max event age",
			map[string]string{"ZCC_RULES_ENGAGEMENT_IDLE_TIMEOUT": "5m", "ZCC_RULES_MAX_EVENT_AGE": "10m"},
			map[string]string{"ZCC_RULES_ENGAGEMENT_IDLE_TIMEOUT": "10m", "ZCC_RULES_MAX_EVENT_AGE": "10m"},
			[]string{"rules.engagement_idle_timeout", "5m0s", "rules.max_event_age", "10m0s"}},
		{"fence margin not below the session ttl less a keepalive period",
			map[string]string{"ZCC_ETCD_SESSION_TTL": "6s", "ZCC_ETCD_FENCE_MARGIN": "4s"},
			map[string]string{"ZCC_ETCD_SESSION_TTL": "6s", "ZCC_ETCD_FENCE_MARGIN": "3900ms"},
			[]string{"etcd.fence_margin", "4s", "etcd.session_ttl", "6s"}},
		{"watchdog not above the heartbeat",
			map[string]string{"ZCC_ZOOM_HEARTBEAT_INTERVAL": "30s", "ZCC_ZOOM_WATCHDOG_TIMEOUT": "30s"},
			map[string]string{"ZCC_ZOOM_HEARTBEAT_INTERVAL": "30s", "ZCC_ZOOM_WATCHDOG_TIMEOUT": "31s"},
			[]string{"zoom.watchdog_timeout", "30s", "zoom.heartbeat_interval"}},
		{"negative idle timeout",
			map[string]string{"ZCC_RULES_ENGAGEMENT_IDLE_TIMEOUT": "-1h"},
			map[string]string{"ZCC_RULES_ENGAGEMENT_IDLE_TIMEOUT": "1h"},
			[]string{"rules.engagement_idle_timeout", "-1h0m0s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, good)
			for k, v := range tc.ok {
				t.Setenv(k, v)
			}
			if _, err := config.Load(p); err != nil {
				t.Fatalf("settings just inside the bound: Load = %v, want nil", err)
			}
			for k, v := range tc.bad {
				t.Setenv(k, v)
			}
			_, err := config.Load(p)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			msg := err.Error()
			for _, want := range append([]string{p}, tc.wantInBad...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not mention %q:\n%s", want, msg)
				}
			}
		})
	}
}

// TestIdleTimeoutDefault: a configuration without the setting gets 12h.
func TestIdleTimeoutDefault(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s3cr3t")
	c, err := config.Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Rules.EngagementIdleTimeout.String(), "12h0m0s"; got != want {
		t.Errorf("rules.engagement_idle_timeout = %s, want %s", got, want)
	}
}
