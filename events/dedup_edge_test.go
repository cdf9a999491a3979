package events

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestDedupKeyEdgeInputs compares the key Parse and DedupKey
// give with the reference implementation on inputs the canon test's
// generator does not draw: invalid UTF-8 in strings and keys, escapes that
// decode to the same text, keys that collide after decoding, lone
// surrogates, DEL, HTML characters, numbers spelt differently. DedupKey
// takes them all; Parse refuses the ones that are not valid text.
func TestDedupKeyEdgeInputs(t *testing.T) {
	// The objects that are not valid text (bytes or escaped surrogates).
	notText := map[string]bool{
		"{\"a\":\"\xff\xfe\"}": true, "{\"\xff\":1,\"\xfe\":2}": true,
		`{"a":"\ud800"}`: true, `{"a":"\udc00\ud800"}`: true,
		"{\"a\":\"\xc0\xaf\"}": true, "{\"a\":\"\xed\xa0\x80\"}": true, "{\"a\":\"\xf4\x90\x80\x80\"}": true,
	}
	// Wide enough for the objects' date_time_ms of 2025-01-01.
	lim := Limits{Now: nearSamples.Now, MaxPast: 365 * 24 * time.Hour}
	objs := []string{
		"{\"a\":\"\xff\xfe\"}",
		"{\"\xff\":1,\"\xfe\":2}",
		"{\"a\":\"x\",\"\\u0061\":\"y\"}",
		`{"a":"\ud800"}`,
		`{"a":"\udc00\ud800"}`,
		"{\"a\":\"\x7f\"}",
		`{"a":"\u007f"}`,
		`{"a":"<&>"}`,
		`{"a":"\u003c"}`,
		`{"a":1.0}`, `{"a":1}`, `{"a":1e0}`, `{"a":-0}`, `{"a":0.0000}`,
		`{"date_time_ms":"  ","date_time_ms":"2025-01-01T00:00:00Z"}`,
		`{"date_time_ms":"2025-01-01T00:00:00Z","date_time_ms":" "}`,
		`{"date_time_ms":"\u0020"}`,
		`{"date_time_ms":"\u00a0"}`,
		`{"date_time_ms":"\u2028"}`,
		`{"date_time_ms":"\u200b"}`,
		`{"\u0064ate_time_ms":"x"}`,
		`{"date_time_ms":false}`,
		`{"date_time_ms":[]}`,
		`{"download_URL":"x","Access_Token":1,"sig":{"x-zm-signature":2}}`,
		`{"n":{"a":1,"a":{"b":2}}}`,
		`{"n":{"a":{"b":2},"a":1}}`,
		`{"l":[ 1 , "\u00e9" , {"z":1, "a" : 2} ]}`,
		" \t{\"a\" : 1 } \n",
		`{"a":"` + strings.Repeat("\\\\", 10) + `"}`,
		`{"a":"\u0000"}`,
		"{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}",
		`{"":""}`,
	}
	parsed := 0
	for _, obj := range objs {
		invalid := notText[obj]
		if i := strings.IndexByte(obj, '{'); i >= 0 && !strings.HasPrefix(strings.TrimSpace(obj[i+1:]), "}") {
			obj = obj[:i+1] + `"engagement_id":"e","user_id":"u",` + obj[i+1:]
		}
		want, rerr := referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), 42)
		got, err := DedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), 42)
		if (rerr == nil) != (err == nil) || got != want {
			t.Errorf("DedupKey(%q) = %q, %v; reference %q, %v", obj, got, err, want, rerr)
		}
		env := `{"event":"` + EngagementUserAnswered + `","event_ts":` + strconv.FormatInt(samplesTS, 10) + `,"payload":{"account_id":"acct","object":` + obj + `}}`
		ev, perr := ParseWith([]byte(env), lim)
		if invalid != (classOf(perr) == ClassInvalidUTF8) {
			t.Errorf("Parse(%q) = %v; want invalid UTF-8 refused, and only that", obj, perr)
		}
		if perr != nil {
			continue // a Parse failure (a bad time field) says nothing of the key
		}
		parsed++
		want, _ = referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), samplesTS)
		if ev.Key != want {
			t.Errorf("Parse(%q).Key = %q; reference %q", obj, ev.Key, want)
		}
	}
	t.Logf("%d of %d objects went through Parse", parsed, len(objs))
	if parsed < len(objs)-len(notText)-6 {
		t.Errorf("only %d of %d objects went through Parse", parsed, len(objs))
	}
}

// TestDedupKeyArbitraryBytesInStrings: strings with arbitrary bytes.
func TestDedupKeyArbitraryBytesInStrings(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")
		k := rapid.SliceOf(rapid.Byte()).Draw(t, "key")
		esc := func(bs []byte) string {
			var sb strings.Builder
			for _, c := range bs {
				switch {
				case c == '"' || c == '\\':
					sb.WriteByte('\\')
					sb.WriteByte(c)
				case c < 0x20:
					sb.WriteString(`\u00`)
					sb.WriteByte("0123456789abcdef"[c>>4])
					sb.WriteByte("0123456789abcdef"[c&15])
				default:
					sb.WriteByte(c)
				}
			}
			return sb.String()
		}
		obj := `{"engagement_id":"e","user_id":"u","` + esc(k) + `":"` + esc(b) + `","x":["` + esc(b) + `"]}`
		want, rerr := referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), samplesTS)
		if rerr != nil {
			t.Skip()
		}
		env := `{"event":"` + EngagementUserAnswered + `","event_ts":` + strconv.FormatInt(samplesTS, 10) + `,"payload":{"account_id":"acct","object":` + obj + `}}`
		ev, err := parseNearSamples([]byte(env))
		_, validB := decodeStrict(esc(b))
		_, validK := decodeStrict(esc(k))
		if !validB || !validK {
			if classOf(err) != ClassInvalidUTF8 {
				t.Fatalf("Parse(%q) = %v; want invalid UTF-8", obj, err)
			}
			return
		}
		if err != nil {
			if classOf(err) == ClassInvalidUTF8 {
				t.Fatalf("Parse(%q) = %v; the text is valid", obj, err)
			}
			return // a field name the key draws may be one Parse checks
		}
		if ev.Key != want {
			t.Fatalf("Parse key %s != reference %s for %q", ev.Key, want, obj)
		}
	})
}
