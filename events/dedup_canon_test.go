package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// referenceDedupKey is DedupKey as first written: payload.object decoded
// whole into generic values (numbers as json.Number), then written as
// canonical JSON and hashed. DedupKey now canonicalises from the raw
// fields instead (one decode less per event); keys must not change, or a
// pair running two versions during an upgrade would apply events twice.
func referenceDedupKey(name, accountID string, object json.RawMessage, eventTS int64) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("data after the value")
	}
	var canon bytes.Buffer
	var write func(v any)
	write = func(v any) {
		switch t := v.(type) {
		case nil:
			canon.WriteString("null")
		case bool:
			canon.WriteString(strconv.FormatBool(t))
		case json.Number:
			canon.WriteString(t.String())
		case string:
			enc, _ := json.Marshal(t)
			canon.Write(enc)
		case []any:
			canon.WriteByte('[')
			for i, e := range t {
				if i > 0 {
					canon.WriteByte(',')
				}
				write(e)
			}
			canon.WriteByte(']')
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				if !isVolatile(k) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			canon.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					canon.WriteByte(',')
				}
				enc, _ := json.Marshal(k)
				canon.Write(enc)
				canon.WriteByte(':')
				write(t[k])
			}
			canon.WriteByte('}')
		}
	}
	write(v)
	own := false
	if m, ok := v.(map[string]any); ok {
		for _, k := range objectTimeFields {
			switch t := m[k].(type) {
			case nil:
			case string:
				own = own || strings.TrimSpace(t) != ""
			default:
				own = true
			}
		}
	}
	h := sha256.New()
	writeField(h, "zccadapter/events.DedupKey/v1")
	writeField(h, name)
	writeField(h, accountID)
	writeField(h, canon.String())
	if !own {
		writeField(h, strconv.FormatInt(eventTS, 10))
	}
	return hex.EncodeToString(h.Sum(nil))[:dedupKeyLen], nil
}

// jsonText draws JSON text: objects (with volatile keys, time fields and
// duplicate keys among the names), arrays, strings with escapes, HTML
// characters and non-ASCII, numbers in several spellings, literals, and
// insignificant whitespace between tokens.
func jsonText(depth int) *rapid.Generator[string] {
	ws := rapid.SampledFrom([]string{"", "", " ", "\n\t", "  "})
	str := rapid.OneOf(
		rapid.SampledFrom([]string{`"e1"`, `""`, `"  "`, `"a\"b"`, `"\u0041"`, `"<b>&"`, `"é"`, `"\u2028"`,
			`"tab\there"`, `"\/"`, `"2025-11-29T10:00:00Z"`, `"\ud83d\ude00"`, `"\u00e9"`}),
		rapid.Custom(func(t *rapid.T) string {
			b, _ := json.Marshal(rapid.String().Draw(t, "s"))
			return string(b)
		}),
	)
	num := rapid.SampledFrom([]string{"0", "-0", "1", "1764499999999", "1.50", "1e3", "1E+3", "-2.5e-7", "12345678901234567890"})
	lit := rapid.SampledFrom([]string{"true", "false", "null"})
	keys := rapid.SampledFrom([]string{"engagement_id", "user_id", "date_time_ms", "date_time", "date-time",
		"last_modified_time_ms", "created_time_ms", "download_url", "Play_URL", "x-zm-signature", "access_token",
		"nested", "list", "a", "b", "\u00e9", "k<>"})
	return rapid.Custom(func(t *rapid.T) string {
		kind := rapid.IntRange(0, 5).Draw(t, "kind")
		if depth <= 0 && kind >= 4 {
			kind = rapid.IntRange(0, 3).Draw(t, "leaf")
		}
		w := func() string { return ws.Draw(t, "ws") }
		switch kind {
		case 0, 1:
			return str.Draw(t, "string")
		case 2:
			return num.Draw(t, "number")
		case 3:
			return lit.Draw(t, "literal")
		case 4:
			n := rapid.IntRange(0, 3).Draw(t, "len")
			parts := make([]string, n)
			for i := range parts {
				parts[i] = w() + jsonText(depth-1).Draw(t, "elem") + w()
			}
			return "[" + strings.Join(parts, ",") + "]"
		default:
			n := rapid.IntRange(0, 5).Draw(t, "fields")
			parts := make([]string, n)
			for i := range parts {
				k, _ := json.Marshal(keys.Draw(t, "key"))
				parts[i] = w() + string(k) + w() + ":" + w() + jsonText(depth-1).Draw(t, "value") + w()
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
	})
}

// TestDedupKeyMatchesReference: on any JSON value (objects at the top, as
// Zoom sends them, and any other value), DedupKey and the key Parse gives
// equal the reference implementation's.
func TestDedupKeyMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		obj := jsonText(3).Draw(t, "object")
		ts := rapid.Int64Range(1, 1<<42).Draw(t, "event_ts")
		want, err := referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), ts)
		if err != nil {
			t.Fatalf("generated invalid JSON %q: %v", obj, err)
		}
		got, err := DedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), ts)
		if err != nil {
			t.Fatalf("DedupKey(%q): %v", obj, err)
		}
		if got != want {
			t.Fatalf("DedupKey(%q) = %s, reference %s", obj, got, want)
		}
		if !strings.HasPrefix(strings.TrimSpace(obj), "{") {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			t.Fatal(err)
		}
		if k := dedupKeyOfObject(EngagementUserAnswered, "acct", m, ts); k != want {
			t.Fatalf("dedupKeyOfObject(%q) = %s, reference %s", obj, k, want)
		}
	})
}

// TestDedupKeyUnchangedOnSamples: every sample event's key equals the
// reference implementation's, through Parse.
func TestDedupKeyUnchangedOnSamples(t *testing.T) {
	for _, name := range sampleNames(t) {
		ev, err := parseNearSamples(loadSample(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := referenceDedupKey(ev.Name, ev.AccountID, ev.Object, ev.TS.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Key != want {
			t.Errorf("%s: key %s, reference %s", name, ev.Key, want)
		}
	}
}

// FuzzDedupKey: on any input, DedupKey accepts exactly the valid JSON
// values, and on those it agrees with the reference implementation, as does
// the key of the object form (dedupKeyOfObject, what Parse uses).
func FuzzDedupKey(f *testing.F) {
	for _, name := range sampleNames(f) {
		var env struct {
			Payload struct {
				Object json.RawMessage `json:"object"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(loadSample(f, name), &env); err == nil {
			f.Add([]byte(env.Payload.Object))
		}
	}
	f.Add([]byte(`{"a":1,"a":2,"download_url":"x","n":[1.0,1e3,"\u00e9<&>"]}`))
	f.Add([]byte(` "\ud800" `))
	f.Fuzz(func(t *testing.T, obj []byte) {
		got, err := DedupKey(EngagementUserAnswered, "acct", obj, 42)
		if !json.Valid(obj) {
			if err == nil {
				t.Fatalf("DedupKey(%q) accepted invalid JSON", obj)
			}
			return
		}
		if err != nil {
			t.Fatalf("DedupKey(%q): %v", obj, err)
		}
		want, err := referenceDedupKey(EngagementUserAnswered, "acct", obj, 42)
		if err != nil {
			t.Fatalf("reference refused valid JSON %q: %v", obj, err)
		}
		if got != want {
			t.Fatalf("DedupKey(%q) = %s, reference %s", obj, got, want)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) == nil && m != nil {
			if k := dedupKeyOfObject(EngagementUserAnswered, "acct", m, 42); k != want {
				t.Fatalf("dedupKeyOfObject(%q) = %s, reference %s", obj, k, want)
			}
		}
	})
}
