package drill

import (
	"encoding/json"
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
		"actions: [{at: 1s, do: explode, node: a}]\n":                           "actions[0].do",
		"actions: [{at: 1s, do: kill, node: z}]\n":                              "node \"z\"",
		"actions: [{at: 99m, do: kill, node: leader}]\n":                        "traffic.duration",
		"traffic: {calls_per_second: -1}\n":                                     "calls_per_second",
		"expect: {invariants: [G9]}\n":                                          "expect.invariants",
		"bogus: 1\n":                                                            "bogus",
		"actions: [{at: 1s, do: zoom-faults}]\n":                                "subscription is required",
		"actions: [{at: 1s, do: events}]\n":                                     "events and raw are empty",
		"actions: [{at: 1s, do: events, raw: [{text: '{now_ms+3parsecs}'}]}]\n": "raw[0]: placeholder",
		"actions: [{at: 1s, do: events, raw: [{text: '{}', pad: 9}]}]\n":        "non-empty JSON object",
		"actions: [{at: 1s, do: restart-recorder, signal: hup}]\n":              "signal \"hup\"",
		"expect: {malformed_at_least: -1}\n":                                    "expect.malformed_at_least",
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

func TestRawEventContent(t *testing.T) {
	now := time.UnixMilli(1_764_410_410_123)
	got, err := RawEvent{Text: `{"ts":{now_ms},"later":{now_ms+3h},"earlier":{now_ms-1s},"us":{now_us},"id":"x{byte:ff}{byte:41}"}`}.Content(now)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"ts\":1764410410123,\"later\":1764421210123,\"earlier\":1764410409123,\"us\":1764410410123000,\"id\":\"x\xffA\"}"
	if string(got) != want {
		t.Errorf("content %q, want %q", got, want)
	}
	deep, err := RawEvent{Text: `{"a":1}`, Deep: 3}.Content(now)
	if err != nil || string(deep) != `{"_deep":{"d":{"d":{}}},"a":1}` {
		t.Errorf("deep: %s, %v", deep, err)
	}
	big, err := RawEvent{Text: ` {"a":1}`, Pad: 1 << 20}.Content(now)
	if err != nil || len(big) != 1<<20 || !json.Valid(big) {
		t.Errorf("pad: %d bytes, valid %t, %v", len(big), json.Valid(big), err)
	}
}
