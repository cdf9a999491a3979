package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
)

// dedupKeyLen is the length of a dedup key in hex characters (128 bits).
const dedupKeyLen = 32

// DedupKey returns the key under which copies of one event are recognised as
// the same event: 32 lowercase hex characters, the first half of a SHA-256
// over
//
//   - name and accountID;
//   - the canonical JSON of object: volatile fields removed at every depth
//     (any key that, lowercased, is or ends in "url", "signature" or "token":
//     download_url, access_token, x-zm-signature, …), object keys sorted,
//     numbers kept as their exact literal text, no insignificant space;
//   - eventTS (ms since the epoch) only when the object has no time of its own
//     (none of date_time_ms, date_time, "date-time", last_modified_time_ms,
//     created_time_ms with a non-empty value at the top level).
//
// Why (PROTOCOL.md §1, DESIGN §4): Zoom sends no event id, and the two
// subscriptions' copies of one event need not be byte-identical: key order,
// signatures, URLs and even event_ts may differ. Two copies with the same
// stable content get the same key; any change to a stable field gives another.
// A consequence: two genuinely distinct events with identical content and no
// time field of their own are told apart only by event_ts.
//
// The error is a [*ParseError] with Field "payload.object" when object is not
// valid JSON.
func DedupKey(name, accountID string, object json.RawMessage, eventTS int64) (string, error) {
	raw := bytes.TrimSpace(object)
	if !json.Valid(raw) {
		return "", &ParseError{Field: "payload.object", Reason: "invalid JSON"}
	}
	if len(raw) > 0 && raw[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", &ParseError{Field: "payload.object", Reason: "invalid JSON"}
		}
		return dedupKeyOfObject(name, accountID, m, eventTS), nil
	}
	var canon bytes.Buffer
	writeCanonical(&canon, raw)
	return hashKey(name, accountID, canon.Bytes(), false, eventTS), nil
}

// dedupKeyOfObject is DedupKey of an object already split into its fields
// (as Parse has it), without decoding it again.
func dedupKeyOfObject(name, accountID string, object map[string]json.RawMessage, eventTS int64) string {
	var canon bytes.Buffer
	canon.Grow(512)
	writeCanonicalObject(&canon, object)
	return hashKey(name, accountID, canon.Bytes(), hasOwnTime(object), eventTS)
}

// hashKey hashes the key's fields (see DedupKey).
func hashKey(name, accountID string, canon []byte, ownTime bool, eventTS int64) string {
	h := sha256.New()
	writeField(h, "zccadapter/events.DedupKey/v1")
	writeField(h, name)
	writeField(h, accountID)
	_, _ = io.WriteString(h, strconv.Itoa(len(canon)))
	_, _ = io.WriteString(h, ":")
	_, _ = h.Write(canon)
	if !ownTime {
		writeField(h, strconv.FormatInt(eventTS, 10))
	}
	return hex.EncodeToString(h.Sum(nil))[:dedupKeyLen]
}

// writeField writes s length-prefixed, so that no two field lists hash alike.
func writeField(w io.Writer, s string) {
	_, _ = io.WriteString(w, strconv.Itoa(len(s)))
	_, _ = io.WriteString(w, ":")
	_, _ = io.WriteString(w, s)
}

// isVolatile reports whether an object key names a value that may differ
// between copies of one event.
func isVolatile(key string) bool {
	k := strings.ToLower(key)
	return strings.HasSuffix(k, "url") || strings.HasSuffix(k, "signature") || strings.HasSuffix(k, "token")
}

// hasOwnTime reports whether an object has a non-empty time field (a
// string that is not blank, or any other value but null).
func hasOwnTime(m map[string]json.RawMessage) bool {
	for _, k := range objectTimeFields {
		v := bytes.TrimSpace(m[k])
		switch {
		case len(v) == 0 || string(v) == "null":
		case v[0] == '"':
			var s string
			if json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) != "" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// writeCanonical writes one valid JSON value as canonical JSON, leaving out
// volatile keys: object keys sorted (as decoded), strings as json.Marshal
// writes them, numbers, true, false and null as their literal text.
func writeCanonical(b *bytes.Buffer, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m) // valid: checked by the caller
		writeCanonicalObject(b, m)
	case '[':
		var list []json.RawMessage
		_ = json.Unmarshal(raw, &list)
		b.WriteByte('[')
		for i, e := range list {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case '"':
		writeStringLiteral(b, raw)
	default:
		b.Write(raw)
	}
}

func writeCanonicalObject(b *bytes.Buffer, m map[string]json.RawMessage) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !isVolatile(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, k)
		b.WriteByte(':')
		writeCanonical(b, m[k])
	}
	b.WriteByte('}')
}

// writeStringLiteral writes a JSON string literal as json.Marshal writes its
// value: verbatim when it holds only printable ASCII that json.Marshal does
// not escape, else decoded and encoded again.
func writeStringLiteral(b *bytes.Buffer, lit []byte) {
	plain := true
	for _, c := range lit[1 : len(lit)-1] {
		if c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		b.Write(lit)
		return
	}
	var s string
	_ = json.Unmarshal(lit, &s)
	writeJSONString(b, s)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
