package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const samplesDir = "testdata/samples"

// samplesNow is a clock reading near the sample events' times
// (2025-11-29T10:00Z to 10:07Z) and the times the tests derive from them.
var samplesNow = time.Date(2025, 11, 30, 0, 0, 0, 0, time.UTC)

// samplesTS is samplesNow as event_ts, for hand-written events.
var samplesTS = samplesNow.UnixMilli()

// nearSamples is the default Limits with the clock at samplesNow: the
// window checks stay on, around the samples' day.
var nearSamples = Limits{Now: func() time.Time { return samplesNow }}

// parseNearSamples parses raw as Parse does, with the clock at samplesNow.
func parseNearSamples(raw []byte) (*Event, error) {
	return ParseWith(raw, nearSamples)
}

// loadSample returns the sample of event name.
func loadSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name+".json"))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return b
}

// sampleNames lists the event names that have a sample file.
func sampleNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f[:len(f)-len(".json")]))
	}
	return names
}

// decodeGeneric decodes JSON into maps and slices, numbers kept exact.
func decodeGeneric(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// objectOf returns payload.object of a generic event.
func objectOf(m map[string]any) map[string]any {
	return m["payload"].(map[string]any)["object"].(map[string]any)
}
