package main

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestBuildVersion(t *testing.T) {
	info := func(main string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/zccadapter/zccadapter", Version: main}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, c := range []struct {
		name string
		set  string
		read func() (*debug.BuildInfo, bool)
		want string
	}{
		{"linked", "v1.2.3", info("v9.9.9"), "v1.2.3"},
		{"go install at a version", "dev", info("v1.4.0"), "v1.4.0"},
		{"git checkout", "dev", info("(devel)", "vcs.revision", "82f37c583a66c0ffee", "vcs.time", "2026-11-29T21:03:37Z", "vcs.modified", "false"),
			"dev-82f37c583a66 (2026-11-29T21:03:37Z)"},
		{"dirty checkout", "dev", info("(devel)", "vcs.revision", "82f37c583a66c0ffee", "vcs.modified", "true"), "dev-82f37c583a66+dirty"},
		{"go run", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", none, "dev"},
	} {
		if got := buildVersion(c.set, c.read); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseRetention(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5m", 5 * time.Minute, false},
		{"1", time.Hour, false},
		{"0.5", 30 * time.Minute, false},
		{"0", -1, false},
		{"0s", -1, false},
		{"-1", 0, true},
		{"-5m", 0, true},
		{"five", 0, true},
	} {
		got, err := parseRetention(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("parseRetention(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}
