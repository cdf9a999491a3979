package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// reorderedJSON writes m with its keys in reverse order at every depth, and
// odd whitespace, so the bytes differ from json.Marshal's while the content is
// the same.
func reorderedJSON(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slices.Reverse(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s :\t%s", mustJSON(t, k), reorderedJSON(t, x[k])))
		}
		return "{ " + strings.Join(parts, " ,\n ") + " }"
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, reorderedJSON(t, e))
		}
		return "[" + strings.Join(parts, " , ") + "]"
	default:
		return string(mustJSON(t, x))
	}
}

func TestC02_DedupKeyStableAcrossCopies(t *testing.T) {
	for _, name := range sampleNames(t) {
		t.Run(name, func(t *testing.T) {
			a := loadSample(t, name)
			evA, err := parseNearSamples(a)
			if err != nil {
				t.Fatal(err)
			}

			// Copy B: keys in another order, other whitespace, volatile fields
			// added at several depths, a different event_ts.
			m := decodeGeneric(t, a)
			obj := objectOf(m)
			obj["download_url"] = "https://zoom.us/rec/download/abc?access_token=zzz"
			obj["recording_URL"] = "https://example.com/other"
			obj["signature"] = "v0=deadbeef"
			obj["access_token"] = "tok-B"
			obj["nested"] = map[string]any{"x-zm-signature": "v0=1", "play_url": "u", "keep": "k"}
			obj["list"] = []any{map[string]any{"token": "t", "keep": 1}}
			m["event_ts"] = json.Number("1764499999999")
			b := []byte(reorderedJSON(t, m))
			if string(b) == string(a) {
				t.Fatal("copy B is byte-identical; the test proves nothing")
			}

			// Copy A also gets the non-volatile nested/list fields, with its own
			// volatile values.
			mA := decodeGeneric(t, a)
			objA := objectOf(mA)
			objA["nested"] = map[string]any{"x-zm-signature": "v0=2", "keep": "k"}
			objA["list"] = []any{map[string]any{"keep": 1}}
			evA, err = parseNearSamples(mustJSON(t, mA))
			if err != nil {
				t.Fatal(err)
			}
			evB, err := parseNearSamples(b)
			if err != nil {
				t.Fatalf("Parse copy B: %v", err)
			}
			_, hasOwnTime := objectOf(decodeGeneric(t, a))["date_time_ms"]
			if !hasOwnTime {
				_, hasOwnTime = objectOf(decodeGeneric(t, a))["date_time"]
			}
			if !hasOwnTime {
				_, hasOwnTime = objectOf(decodeGeneric(t, a))["last_modified_time_ms"]
			}
			if !hasOwnTime {
				t.Fatalf("sample has no time of its own; event_ts would rightly change the key")
			}
			if evA.Key != evB.Key {
				t.Errorf("keys differ for copies of one event: %s vs %s", evA.Key, evB.Key)
			}

			// Any change to a stable field changes the key.
			for field, v := range objectOf(decodeGeneric(t, a)) {
				if isVolatile(field) {
					continue
				}
				mC := decodeGeneric(t, mustJSON(t, mA))
				switch x := v.(type) {
				case string:
					objectOf(mC)[field] = x + "X"
				case json.Number:
					objectOf(mC)[field] = json.Number(x.String() + "1")
				case bool:
					objectOf(mC)[field] = !x
				default:
					objectOf(mC)[field] = "changed"
				}
				evC, err := parseNearSamples(mustJSON(t, mC))
				if err != nil {
					// Changing a time field to an invalid value is an error; skip.
					continue
				}
				if evC.Key == evA.Key {
					t.Errorf("changing %s kept the key", field)
				}
			}
			for _, change := range []func(map[string]any){
				func(m map[string]any) { m["event"] = "contact_center.something_else" },
				func(m map[string]any) { m["payload"].(map[string]any)["account_id"] = "acct-other" },
				func(m map[string]any) { delete(objectOf(m), "nested") },
				func(m map[string]any) { objectOf(m)["nested"].(map[string]any)["keep"] = "K" },
				func(m map[string]any) { objectOf(m)["list"] = []any{} },
				func(m map[string]any) { objectOf(m)["extra"] = nil },
			} {
				mD := decodeGeneric(t, mustJSON(t, mA))
				change(mD)
				evD, err := parseNearSamples(mustJSON(t, mD))
				if err != nil {
					t.Fatal(err)
				}
				if evD.Key == evA.Key {
					t.Errorf("change %s kept the key", mustJSON(t, mD))
				}
			}
		})
	}
}

func TestDedupKeyEventTSOnlyWithoutOwnTime(t *testing.T) {
	obj := json.RawMessage(`{"engagement_id":"e1","user_id":"u1"}`)
	k1, _ := DedupKey(EngagementUserAnswered, "a", obj, 1000)
	k2, _ := DedupKey(EngagementUserAnswered, "a", obj, 2000)
	k3, _ := DedupKey(EngagementUserAnswered, "a", obj, 1000)
	if k1 == k2 || k1 != k3 {
		t.Errorf("without an own time: keys %s, %s, %s; want event_ts to count", k1, k2, k3)
	}
	for _, f := range objectTimeFields {
		obj := json.RawMessage(fmt.Sprintf(`{"engagement_id":"e1",%q:"2025-11-29T10:00:00Z"}`, f))
		k1, _ := DedupKey(EngagementUserAnswered, "a", obj, 1000)
		k2, _ := DedupKey(EngagementUserAnswered, "a", obj, 2000)
		if k1 != k2 {
			t.Errorf("with %s: event_ts changed the key", f)
		}
	}
	// An empty time field is no time of its own.
	objEmpty := json.RawMessage(`{"engagement_id":"e1","date_time_ms":""}`)
	k4, _ := DedupKey(EngagementUserAnswered, "a", objEmpty, 1000)
	k5, _ := DedupKey(EngagementUserAnswered, "a", objEmpty, 2000)
	if k4 == k5 {
		t.Error("empty date_time_ms counted as an own time")
	}
}

func TestDedupKeyExact(t *testing.T) {
	key := func(obj string) string {
		t.Helper()
		k, err := DedupKey("n", "a", json.RawMessage(obj), 1)
		if err != nil {
			t.Fatalf("DedupKey(%s): %v", obj, err)
		}
		if len(k) != 32 || strings.Trim(k, "0123456789abcdef") != "" {
			t.Fatalf("key %q is not 32 lowercase hex chars", k)
		}
		return k
	}
	pairs := [][2]string{
		{`{"n":12345678901234567890}`, `{"n":12345678901234567891}`}, // equal as float64
		{`{"n":1}`, `{"n":1.0}`},
		{`{"a":"b","c":"d"}`, `{"a":"bc","":"d"}`},
		{`{"a":["b","c"]}`, `{"a":["bc"]}`},
		{`{"a":null}`, `{}`},
		{`{"a":"1"}`, `{"a":1}`},
	}
	for _, p := range pairs {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s share a key", p[0], p[1])
		}
	}
	// Field boundaries: ("ab","c") and ("a","bc") differ.
	k1, _ := DedupKey("ab", "c", json.RawMessage(`{}`), 1)
	k2, _ := DedupKey("a", "bc", json.RawMessage(`{}`), 1)
	if k1 == k2 {
		t.Error("name/account boundary is ambiguous")
	}
	if key(`{"a":"é<>&"}`) != key(`{"a":"\u00e9\u003c\u003e\u0026"}`) {
		t.Error("equal strings with different escapes have different keys")
	}
	for _, bad := range []string{``, `{`, `{} {}`, `{"a":}`} {
		_, err := DedupKey("n", "a", json.RawMessage(bad), 1)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Field != "payload.object" {
			t.Errorf("DedupKey(%q) err = %v; want a ParseError on payload.object", bad, err)
		}
	}
}
