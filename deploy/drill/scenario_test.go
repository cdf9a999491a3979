package drill

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScenarioLibraryParses keeps every shipped scenario valid.
func TestScenarioLibraryParses(t *testing.T) {
	files, _ := filepath.Glob("../scenarios/*.yaml")
	if len(files) < 10 {
		t.Fatalf("found %d scenarios, want ≥ 10", len(files))
	}
	for _, f := range files {
		s, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if s.Name != strings.TrimSuffix(filepath.Base(f), ".yaml") {
			t.Errorf("%s: name %q differs from the file name", f, s.Name)
		}
	}
}

func TestScenarioErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"nodes: 1\n":        "nodes",
		"session_ttl: 1s\n": "session_ttl",
		"actions: [{at: 1s, do: explode, node: a}]\n":    "actions[0].do",
		"actions: [{at: 1s, do: kill, node: z}]\n":       "node \"z\"",
		"actions: [{at: 99m, do: kill, node: leader}]\n": "traffic.duration",
		"traffic: {calls_per_second: -1}\n":              "calls_per_second",
		"expect: {invariants: [G9]}\n":                   "expect.invariants",
		"bogus: 1\n":                                     "bogus",
		"actions: [{at: 1s, do: zoom-faults}]\n":         "subscription is required",
	}
	for text, want := range cases {
		_, err := ParseScenario("t.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v does not mention %q", text, err, want)
		}
	}
	if s := DefaultScenario(); len(s.Actions) != 2 || s.Traffic.Duration != 45*time.Second || s.Validate() != nil {
		t.Fatalf("default scenario: %+v", s)
	}
}
