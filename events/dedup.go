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
// Strings are compared as encoding/json decodes them, so bytes that are not
// UTF-8 and escaped lone surrogates all read as U+FFFD: "\xff" and "\xfe" give
// one key. [ParseWith] refuses such events before it computes their key;
// DedupKey takes any valid JSON. Its cost is linear in len(object), however
// deep it nests.
//
// The error is a [*ParseError] with Field "payload.object" when object is not
// valid JSON.
func DedupKey(name, accountID string, object json.RawMessage, eventTS int64) (string, error) {
	raw := bytes.TrimSpace(object)
	if !json.Valid(raw) {
		return "", &ParseError{Field: "payload.object", Reason: reasonInvalidJSON, Class: ClassInvalidJSON}
	}
	if len(raw) > 0 && raw[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", &ParseError{Field: "payload.object", Reason: reasonInvalidJSON, Class: ClassInvalidJSON}
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
	size := 2
	for k, v := range object {
		size += len(k) + len(v) + 4
	}
	var canon bytes.Buffer
	canon.Grow(size) // the canonical JSON is about as long as the object
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
// volatile keys: object keys sorted (as decoded; of duplicate keys the last
// wins, as in encoding/json), strings as json.Marshal writes them, numbers,
// true, false and null as their literal text.
//
// The cost is linear in len(raw) whatever the nesting: one pass records where
// every object and array ends, so collecting an object's members jumps over a
// nested container instead of decoding it again at each level (which cost
// depth × size: 460 MiB for 200 KiB nested 2,000 deep).
func writeCanonical(b *bytes.Buffer, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return
	}
	w := canonWriter{b: b, raw: raw}
	if raw[0] == '{' || raw[0] == '[' {
		w.ends = containerEnds(raw)
	}
	w.value(0, len(raw))
}

// canonWriter writes the canonical JSON of raw, one valid JSON value.
type canonWriter struct {
	b   *bytes.Buffer
	raw []byte
	// ends holds every object and array of raw in the order of their
	// opening brackets (so sorted by start).
	ends []span
	// members is a stack of the fields of the objects being written: each
	// object pushes its own above its parent's, and pops them when done.
	members []member
}

// span is the extent of one object or array: raw[start:end].
type span struct{ start, end int }

// containerEnds returns the extent of every object and array of raw, a valid
// JSON value, in the order of their opening brackets. One pass, no
// recursion.
func containerEnds(raw []byte) []span {
	var out []span
	var open []int // indices into out of the containers not yet closed
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			i = stringEnd(raw, i) - 1
		case '{', '[':
			open = append(open, len(out))
			out = append(out, span{start: i, end: len(raw)})
		case '}', ']':
			if n := len(open); n > 0 {
				out[open[n-1]].end = i + 1
				open = open[:n-1]
			}
		}
	}
	return out
}

// stringEnd returns the index just after the string literal that starts at
// raw[i] (a '"'), or len(raw) if it is not closed.
func stringEnd(raw []byte, i int) int {
	for j := i + 1; j < len(raw); {
		k := bytes.IndexByte(raw[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		// The quote closes the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for p := q - 1; p > i && raw[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return len(raw)
}

// endOf returns the end of the container that starts at raw[start].
func (w *canonWriter) endOf(start int) int {
	i, found := slices.BinarySearchFunc(w.ends, start, func(s span, t int) int { return s.start - t })
	if !found {
		return len(w.raw) // not reached on valid JSON
	}
	return w.ends[i].end
}

// valueEnd returns the end of the value that starts at raw[i].
func (w *canonWriter) valueEnd(i int) int {
	switch w.raw[i] {
	case '{', '[':
		return w.endOf(i)
	case '"':
		return stringEnd(w.raw, i)
	}
	for j := i; j < len(w.raw); j++ {
		switch w.raw[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return len(w.raw)
}

// skipSpace returns the index of the first byte at or after i that is not
// insignificant space.
func (w *canonWriter) skipSpace(i int) int {
	for i < len(w.raw) {
		switch w.raw[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// value writes the value raw[start:end].
func (w *canonWriter) value(start, end int) {
	switch w.raw[start] {
	case '{':
		w.object(start, end)
	case '[':
		w.array(start, end)
	case '"':
		writeStringLiteral(w.b, w.raw[start:end])
	default:
		w.b.Write(w.raw[start:end])
	}
}

func (w *canonWriter) array(start, end int) {
	w.b.WriteByte('[')
	i := w.skipSpace(start + 1)
	for n := 0; i < end-1 && w.raw[i] != ']'; n++ {
		ve := w.valueEnd(i)
		if n > 0 {
			w.b.WriteByte(',')
		}
		w.value(i, ve)
		i = w.skipSpace(ve)
		if i < end && w.raw[i] == ',' {
			i = w.skipSpace(i + 1)
		}
	}
	w.b.WriteByte(']')
}

// member is one field of an object: its decoded key and the extent of its
// value.
type member struct {
	key        string
	start, end int
}

func (w *canonWriter) object(start, end int) {
	base := len(w.members)
	defer func() { w.members = w.members[:base] }()
	i := w.skipSpace(start + 1)
	for i < end-1 && w.raw[i] == '"' {
		ke := stringEnd(w.raw, i)
		key := decodeKey(w.raw[i:ke])
		i = w.skipSpace(ke)
		if i < end && w.raw[i] == ':' {
			i = w.skipSpace(i + 1)
		}
		if i >= end-1 {
			break // not reached on valid JSON
		}
		ve := w.valueEnd(i)
		w.members = append(w.members, member{key: key, start: i, end: ve})
		i = w.skipSpace(ve)
		if i < end && w.raw[i] == ',' {
			i = w.skipSpace(i + 1)
		}
	}
	// Sorted by key; of equal keys the last one wins (a stable sort keeps
	// them in input order, the last of a run is kept).
	ms := w.members[base:]
	slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	w.b.WriteByte('{')
	n := 0
	for j := range len(ms) {
		// Index w.members afresh: writing a value pushes above ms and may
		// move the stack.
		m := w.members[base+j]
		if j+1 < len(ms) && w.members[base+j+1].key == m.key || isVolatile(m.key) {
			continue
		}
		if n > 0 {
			w.b.WriteByte(',')
		}
		n++
		writeJSONString(w.b, m.key)
		w.b.WriteByte(':')
		w.value(m.start, m.end)
	}
	w.b.WriteByte('}')
}

// decodeKey returns the value of an object key's string literal, as
// encoding/json decodes it.
func decodeKey(lit []byte) string {
	if len(lit) < 2 {
		return "" // not reached on valid JSON
	}
	plain := true
	for _, c := range lit[1 : len(lit)-1] {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(lit[1 : len(lit)-1])
	}
	var s string
	_ = json.Unmarshal(lit, &s) // valid: checked by the caller
	return s
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

// writeJSONString writes s as json.Marshal writes it.
func writeJSONString(b *bytes.Buffer, s string) {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, err := json.Marshal(s)
			if err != nil { // never: a Go string always marshals
				enc = []byte(`""`)
			}
			b.Write(enc)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
