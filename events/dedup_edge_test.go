package events

import (
	"encoding/json"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestDedupKeyEdgeInputs compares the key Parse and DedupKey
// give with the reference implementation on inputs the canon test's
// generator does not draw: invalid UTF-8 in strings and keys, escapes that
// decode to the same text, keys that collide after decoding, lone
// surrogates, DEL, HTML characters, numbers spelt differently.
func TestDedupKeyEdgeInputs(t *testing.T) {
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
		if i := strings.IndexByte(obj, '{'); i >= 0 && !strings.HasPrefix(strings.TrimSpace(obj[i+1:]), "}") {
			obj = obj[:i+1] + `"engagement_id":"e","user_id":"u",` + obj[i+1:]
		}
		want, rerr := referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), 42)
		got, err := DedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), 42)
		if (rerr == nil) != (err == nil) || got != want {
			t.Errorf("DedupKey(%q) = %q, %v; reference %q, %v", obj, got, err, want, rerr)
		}
		env := `{"event":"` + EngagementUserAnswered + `","event_ts":42,"payload":{"account_id":"acct","object":` + obj + `}}`
		ev, perr := Parse([]byte(env))
		if perr != nil {
			continue // a Parse failure (missing engagement fields) says nothing of the key
		}
		parsed++
		if ev.Key != want {
			t.Errorf("Parse(%q).Key = %q; reference %q", obj, ev.Key, want)
		}
	}
	t.Logf("%d of %d objects went through Parse", parsed, len(objs))
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
		want, rerr := referenceDedupKey(EngagementUserAnswered, "acct", json.RawMessage(obj), 42)
		if rerr != nil {
			t.Skip()
		}
		env := `{"event":"` + EngagementUserAnswered + `","event_ts":42,"payload":{"account_id":"acct","object":` + obj + `}}`
		ev, err := Parse([]byte(env))
		if err != nil {
			return
		}
		if ev.Key != want {
			t.Fatalf("Parse key %s != reference %s for %q", ev.Key, want, obj)
		}
	})
}
