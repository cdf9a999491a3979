package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", &ParseError{Field: "payload.object", Reason: "invalid JSON"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", &ParseError{Field: "payload.object", Reason: "invalid JSON: data after the value"}
	}

	var canon bytes.Buffer
	writeCanonical(&canon, v)

	h := sha256.New()
	writeField(h, "zccadapter/events.DedupKey/v1")
	writeField(h, name)
	writeField(h, accountID)
	writeField(h, canon.String())
	if !hasOwnTime(v) {
		writeField(h, strconv.FormatInt(eventTS, 10))
	}
	return hex.EncodeToString(h.Sum(nil))[:dedupKeyLen], nil
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

// hasOwnTime reports whether v is an object with a non-empty time field.
func hasOwnTime(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, k := range objectTimeFields {
		switch t := m[k].(type) {
		case nil:
		case string:
			if strings.TrimSpace(t) != "" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// writeCanonical writes v (as decoded with UseNumber) as canonical JSON,
// leaving out volatile keys.
func writeCanonical(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case json.Number:
		b.WriteString(t.String())
	case string:
		writeJSONString(b, t)
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
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
			writeCanonical(b, t[k])
		}
		b.WriteByte('}')
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
