package events

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// nested returns a JSON value: leaf inside depth objects {"a":…}.
func nested(depth int, leaf string) string {
	return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat("}", depth)
}

// nestedEvent returns an engagement_user_answered event whose object holds,
// in field n, a string of size bytes inside as many {"a":…} as make the
// whole event depth levels deep (the envelope is level 1, the object 3).
func nestedEvent(depth, size int) []byte {
	leaf := `"` + strings.Repeat("x", size) + `"`
	return envelope(EngagementUserAnswered, samplesTS, answered(`"n":`+nested(depth-3, leaf)))
}

// wideEvent returns an engagement_user_answered event of about size bytes
// whose object holds one flat object of many fields and one long array.
func wideEvent(size int) []byte {
	var obj, list strings.Builder
	for i := 0; obj.Len() < size/2; i++ {
		if i > 0 {
			obj.WriteByte(',')
		}
		fmt.Fprintf(&obj, `"k%d":"v%d"`, i, i)
	}
	for i := 0; list.Len() < size/2; i++ {
		if i > 0 {
			list.WriteByte(',')
		}
		fmt.Fprintf(&list, `[%d,{"b":true}]`, i)
	}
	return envelope(EngagementUserAnswered, samplesTS, answered(`"wide":{`+obj.String()+`},"list":[`+list.String()+`]`))
}

// TestParseTooDeep: input nested deeper than Limits.MaxDepth is refused, at
// the first container too deep, with a ParseError naming its path (bounded
// in length); input exactly as deep is accepted.
func TestParseTooDeep(t *testing.T) {
	ev, err := parseNearSamples(nestedEvent(DefaultMaxDepth, 10))
	if err != nil {
		t.Fatalf("an event %d deep: %v", DefaultMaxDepth, err)
	}
	if ev.Key == "" {
		t.Fatal("no key")
	}

	tests := []struct {
		name  string
		raw   []byte
		lim   Limits
		field string
	}{
		{"objects", nestedEvent(DefaultMaxDepth+1, 10), nearSamples,
			"payload.object.n" + strings.Repeat(".a", DefaultMaxDepth-3)},
		{"arrays", envelope(EngagementUserAnswered, samplesTS, answered(`"list":[1,`+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`]`)),
			nearSamples, "payload.object.list[1]" + strings.Repeat("[0]", DefaultMaxDepth-4)},
		{"MaxDepth 2", envelope(EngagementUserAnswered, samplesTS, answered("")),
			Limits{Now: nearSamples.Now, MaxDepth: 2}, "payload.object"},
		{"MaxDepth 5", envelope(EngagementUserAnswered, samplesTS, answered(`"x":{"y":[{"z":1}]}`)),
			Limits{Now: nearSamples.Now, MaxDepth: 5}, "payload.object.x.y[0]"},
		{"odd keys", envelope(EngagementUserAnswered, samplesTS, answered(`"\u00e9":{"`+strings.Repeat("k", 41)+`":{"k\"q":{}}}`)),
			Limits{Now: nearSamples.Now, MaxDepth: 5}, "payload.object.?.?.?"},
		{"top level", []byte(strings.Repeat("[", 200000)), nearSamples, strings.Repeat("[0]", DefaultMaxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWith(tt.raw, tt.lim)
			want := tt.field
			if len(want) > maxPathLen {
				want = want[:maxPathLen-3] + "..."
			}
			pe := wantParseError(t, err, "", want, ClassTooDeep)
			if len(pe.Error()) > 200 {
				t.Errorf("Error() is %d bytes long", len(pe.Error()))
			}
		})
	}
	// Only the depth counts, not how much is nested.
	if _, err := ParseWith(envelope(EngagementUserAnswered, samplesTS, answered(`"x":[1,2,3]`)), Limits{Now: nearSamples.Now, MaxDepth: 4}); err != nil {
		t.Errorf("an event 4 deep with MaxDepth 4: %v", err)
	}
}

// TestParseTooDeepRefusedBeforeDecoding: the review's input (200 KiB nested
// 2,000 deep inside payload.object; it took 6.4 s and 456 MiB) is refused
// with a handful of allocations: nothing was decoded.
func TestParseTooDeepRefusedBeforeDecoding(t *testing.T) {
	raw := nestedEvent(2000, 200<<10)
	var err error
	allocs := testing.AllocsPerRun(3, func() { _, err = parseNearSamples(raw) })
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Class != ClassTooDeep {
		t.Fatalf("err = %v; want too deep", err)
	}
	if allocs > 16 {
		t.Errorf("%v allocations to refuse it; want a handful", allocs)
	}
}

// allocatedBy returns the bytes allocated by one call of f, the least of
// three runs.
func allocatedBy(f func()) uint64 {
	least := uint64(1<<63 - 1)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// TestFinding6_ParseCostLinear: parse and dedup key together allocate a small
// multiple of the input, however it is shaped: 1 MiB at the deepest
// nesting allowed, and 1 MiB of many small fields and elements. (The
// canonical JSON of the key used to decode every nested value again at
// each depth: 64 MiB for the first.) Timings are in BenchmarkParseShapes.
func TestFinding6_ParseCostLinear(t *testing.T) {
	for _, tt := range []struct {
		name string
		raw  []byte
	}{
		{"deep 1 MiB", nestedEvent(DefaultMaxDepth, 1<<20)},
		{"wide 1 MiB", wideEvent(1 << 20)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ev *Event
			var err error
			n := allocatedBy(func() { ev, err = parseNearSamples(tt.raw) })
			if err != nil {
				t.Fatal(err)
			}
			want, err := referenceDedupKey(ev.Name, ev.AccountID, ev.Object, ev.TS.UnixMilli())
			if err != nil || ev.Key != want {
				t.Fatalf("Key %s; reference %s (%v)", ev.Key, want, err)
			}
			ratio := float64(n) / float64(len(tt.raw))
			t.Logf("%d KiB in, %d KiB allocated (%.1f×)", len(tt.raw)>>10, n>>10, ratio)
			if ratio > 24 {
				t.Errorf("Parse allocated %.1f× its input; want at most 24×", ratio)
			}
		})
	}
}

// BenchmarkParseShapes is the cost of Parse (dedup key included) on 1 MiB
// events of odd shapes, and on the review's 2,000-deep event (refused).
func BenchmarkParseShapes(b *testing.B) {
	for _, bb := range []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"deep-64-1MiB", nestedEvent(DefaultMaxDepth, 1<<20), true},
		{"wide-1MiB", wideEvent(1 << 20), true},
		{"deep-2000-200KiB-refused", nestedEvent(2000, 200<<10), false},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseNearSamples(bb.raw); (err == nil) != bb.ok {
					b.Fatal(err)
				}
			}
		})
	}
}

// badStrings are JSON string contents (between the quotes, as raw bytes)
// that encoding/json would decode to U+FFFD.
var badStrings = []string{
	"\xff",             // not UTF-8
	"eng-\xfe1",        // inside an id
	"\xc0\xaf",         // overlong
	"\xed\xa0\x80",     // a surrogate encoded as UTF-8
	"\xf4\x90\x80\x80", // past U+10FFFF
	"eng-\xe2\x82",     // truncated
	`\ud800`,           // a lone high surrogate
	`\udc00`,           // a lone low surrogate
	`x\ud800y`,         // a high one followed by no escape
	`\ud800\u0041`,     // followed by an escape that is not a low surrogate
	`\udc00\ud800`,     // in the wrong order
	`\uD83D`,           // upper-case hex
}

// TestParseInvalidUTF8: an identifier (or any other string, or a key) that
// is not valid UTF-8 in the raw JSON, or escapes a lone surrogate, is
// refused with a ParseError naming the field and the event when known.
func TestParseInvalidUTF8(t *testing.T) {
	type place struct {
		name, field string
		build       func(bad string) []byte
	}
	obj := func(name, field string) place {
		return place{name + " " + field, "payload.object." + field, func(bad string) []byte {
			return envelope(name, samplesTS, strings.Replace(validObject(name), `"`+field+`":"`, `"`+field+`":"`+bad, 1))
		}}
	}
	places := []place{
		{"event", "event", func(bad string) []byte {
			return fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered%s","event_ts":%d,"payload":{"account_id":"a","object":%s}}`, bad, samplesTS, answered(""))
		}},
		{"account_id", "payload.account_id", func(bad string) []byte {
			return bytes.Replace(envelope(EngagementUserAnswered, samplesTS, answered("")), []byte(`"account_id":"`), []byte(`"account_id":"`+bad), 1)
		}},
		obj(EngagementUserAnswered, "engagement_id"),
		obj(EngagementUserAnswered, "user_id"),
		obj(EngagementUserAnswered, "consumer_id"),
		obj(EngagementUserAnswered, "cc_queue_id"),
		obj(EngagementUserAnswered, "task_id"),
		obj(EngagementTransferInitiated, "transfer_to_user_id"),
		obj(EngagementTransferInitiated, "transfer_to_task_id"),
		obj(TaskCreated, "task_id"),
		obj(TaskCreated, "engagement_id"),
		obj(TaskReservationCreated, "task_reservation_id"),
		obj(TaskReservationCreated, "assigned_user_id"),
		obj(UserLogin, "user_id"),
		obj(UserSignedIn, "id"),
		obj(EngagementUserAnswered, "consumer_display_name"),
		{"nested value", "payload.object.notes[1].text", func(bad string) []byte {
			return envelope(EngagementUserAnswered, samplesTS, answered(`"notes":[1,{"text":"`+bad+`"}]`))
		}},
		{"key", "payload.object.?", func(bad string) []byte {
			return envelope(EngagementUserAnswered, samplesTS, answered(`"k`+bad+`":1`))
		}},
		{"unknown event", "payload.object.engagement_id", func(bad string) []byte {
			return envelope("contact_center.brand_new", samplesTS, `{"engagement_id":"e`+bad+`"}`)
		}},
	}
	for _, p := range places {
		good := p.build("")
		if _, err := parseNearSamples(good); err != nil {
			t.Fatalf("%s: the valid event does not parse: %v", p.name, err)
		}
		for _, bad := range badStrings {
			t.Run(fmt.Sprintf("%s/%q", p.name, bad), func(t *testing.T) {
				raw := p.build(bad)
				ev, err := parseNearSamples(raw)
				if err == nil {
					t.Fatalf("accepted %s (key %s)", raw, ev.Key)
				}
				event := ""
				if n := decodeGeneric(t, good)["event"].(string); IsKnown(n) && p.field != "event" {
					event = n
				}
				pe := wantParseError(t, err, event, p.field, ClassInvalidUTF8)
				if !utf8.ValidString(pe.Error()) {
					t.Errorf("Error() %q is not UTF-8", pe.Error())
				}
			})
		}
	}
	// Valid text, surrogate pairs and a genuine U+FFFD pass.
	for _, ok := range []string{`\ud83d\ude00`, `\uD83D\uDE00`, "\xf0\x9f\x98\x80", `\ufffd`, "\xef\xbf\xbd", "é", `\u0000`, `\\ud800`} {
		if _, err := parseNearSamples(envelope(EngagementUserAnswered, samplesTS, answered(`"user_display_name":"`+ok+`"`))); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// validObject returns a valid object of a known event name's group, every
// field the tests replace set to "v".
func validObject(name string) string {
	switch groupOf(name) {
	case groupTask:
		return `{"task_id":"v","engagement_id":"v"}`
	case groupReservation:
		return `{"task_reservation_id":"v","assigned_user_id":"v"}`
	case groupAgent:
		return `{"user_id":"v"}`
	case groupUser:
		return `{"id":"v"}`
	}
	return `{"engagement_id":"v","user_id":"v","consumer_id":"v","cc_queue_id":"v","task_id":"v",` +
		`"transfer_to_user_id":"v","transfer_to_task_id":"v","consumer_display_name":"v"}`
}

// TestParseNoKeyCollapse: two events that differ only in one string get
// the same key only when the strings are the same valid text (spelt with
// other escapes, say); a string that is not valid text is refused.
func TestParseNoKeyCollapse(t *testing.T) {
	str := rapid.OneOf(
		rapid.SampledFrom(badStrings),
		rapid.SampledFrom([]string{"a", "é", `\u00e9`, "\xef\xbf\xbd", `\ufffd`, `\ud83d\ude00`, "\xf0\x9f\x98\x80"}),
		rapid.Custom(func(t *rapid.T) string { return jsonEscapeBytes(rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")) }),
	)
	check := func(t interface{ Fatalf(string, ...any) }, field, a, b string) {
		// A repeated key: the last one is the field's value.
		evA, errA := parseNearSamples(envelope(EngagementUserAnswered, samplesTS, answered(`"`+field+`":"x`+a+`"`)))
		evB, errB := parseNearSamples(envelope(EngagementUserAnswered, samplesTS, answered(`"`+field+`":"x`+b+`"`)))
		textA, validA := decodeStrict(a)
		textB, validB := decodeStrict(b)
		if errA == nil && !validA || errB == nil && !validB {
			t.Fatalf("%s: accepted a string that is not valid text: %q (%v), %q (%v)", field, a, errA, b, errB)
		}
		if errA == nil && errB == nil && evA.Key == evB.Key && !slices.Equal(textA, textB) {
			t.Fatalf("%s: %q and %q share key %s", field, a, b, evA.Key)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		field := rapid.SampledFrom([]string{"engagement_id", "user_id", "consumer_display_name", "notes"}).Draw(t, "field")
		check(t, field, str.Draw(t, "a"), str.Draw(t, "b"))
	})
	for _, a := range badStrings {
		for _, b := range badStrings {
			check(t, "engagement_id", a, b)
		}
	}
}

// decodeStrict decodes the content of a JSON string (valid JSON assumed)
// without encoding/json: a byte that is not UTF-8 and a lone surrogate each
// decode to a distinct negative value, and valid is false.
func decodeStrict(s string) (text []rune, valid bool) {
	valid = true
	hex := func(i int) (rune, bool) {
		if i+4 > len(s) {
			return 0, false
		}
		n, err := strconv.ParseUint(s[i:i+4], 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] != 'u' {
				r, ok := map[byte]rune{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[s[i+1]]
				if !ok {
					r = rune(s[i+1]) // \" \\ \/
				}
				text = append(text, r)
				i += 2
				continue
			}
			r, _ := hex(i + 2)
			i += 6
			if utf16.IsSurrogate(r) {
				if lo, ok := hex(i + 2); ok && r < 0xdc00 && strings.HasPrefix(s[i:], `\u`) {
					if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
						text = append(text, d)
						i += 6
						continue
					}
				}
				text, valid = append(text, -r), false
				continue
			}
			text = append(text, r)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			text, valid = append(text, -1-rune(s[i])), false
		} else {
			text = append(text, r)
		}
		i += size
	}
	return text, valid
}

// jsonEscapeBytes returns bs as the content of a JSON string: quotes,
// backslashes and control bytes escaped, every other byte as is.
func jsonEscapeBytes(bs []byte) string {
	var sb strings.Builder
	for _, c := range bs {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&sb, `\u%04x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
