package events

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPathLen bounds ParseError.Field for paths found by [checkShape], so
// that an error stays one short line however deep or odd the input.
const maxPathLen = 96

// maxKeyLen is the longest object key written verbatim into a path; a longer
// one, or one with bytes other than printable ASCII, is written "?".
const maxKeyLen = 40

// checkShape reads raw once, before anything decodes it, and returns the
// first container nested deeper than maxDepth (the outermost object is depth
// 1) as a [ClassTooDeep] error, else the first string, key or value, that is
// not valid UTF-8 or holds an escaped lone surrogate (\ud800 not followed by
// a low surrogate, or a low one alone) as a [ClassInvalidUTF8] error. Both
// name the field's path. Its cost is linear in len(raw) and its memory
// bounded by maxDepth.
//
// Why UTF-8 is checked on the raw bytes: encoding/json decodes every invalid
// byte and every lone surrogate to U+FFFD, so "\xff" and "\xfe" would become
// the same engagement id, and the same dedup key.
//
// It is no JSON validator: on a byte that cannot continue valid JSON where
// it matters to it (an unclosed string, a bad \u escape, a closing bracket
// too many) it stops and returns nil, leaving the verdict to the decoder.
func checkShape(raw []byte, maxDepth int) *ParseError {
	var (
		stack   []shapeFrame
		badUTF8 *ParseError
	)
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '"':
			end, valid, closed := scanString(raw, i)
			if !closed {
				return nil
			}
			if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
				stack[n-1].key = raw[i:end]
				stack[n-1].wantKey = false
			}
			if !valid && badUTF8 == nil {
				badUTF8 = &ParseError{Field: shapePath(stack), Reason: reasonInvalidUTF8, Class: ClassInvalidUTF8}
			}
			i = end
		case '{', '[':
			if len(stack) >= maxDepth {
				return &ParseError{Field: shapePath(stack), Reason: reasonTooDeep, Class: ClassTooDeep}
			}
			stack = append(stack, shapeFrame{array: c == '[', wantKey: c == '{'})
			i++
		case '}', ']':
			if len(stack) == 0 {
				return nil
			}
			stack = stack[:len(stack)-1]
			i++
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].array {
					stack[n-1].index++
				} else {
					stack[n-1].wantKey = true
					stack[n-1].key = nil
				}
			}
			i++
		default:
			i++
		}
	}
	return badUTF8
}

// shapeFrame is one open object or array of [checkShape].
type shapeFrame struct {
	array   bool
	index   int    // arrays: the element being read
	key     []byte // objects: the current key's literal, quotes included
	wantKey bool   // objects: the next string is a key
}

// shapePath renders the path of the value being read, e.g.
// "payload.object.engagement_id" or "payload.object.list[3].x", at most
// maxPathLen bytes (a longer one ends in "...").
func shapePath(stack []shapeFrame) string {
	var b strings.Builder
	for _, f := range stack {
		switch {
		case f.array:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
		case f.key != nil:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(pathKey(f.key))
		}
		if b.Len() > maxPathLen {
			break
		}
	}
	s := b.String()
	if len(s) > maxPathLen {
		s = s[:maxPathLen-3] + "..."
	}
	return s
}

// pathKey returns an object key's literal (quotes included) for a path:
// verbatim when short printable ASCII without escapes, else "?".
func pathKey(lit []byte) string {
	if len(lit) < 2 || len(lit)-2 > maxKeyLen {
		return "?"
	}
	s := lit[1 : len(lit)-1]
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '\\' || c == '"' {
			return "?"
		}
	}
	return string(s)
}

// scanString reads the string literal that starts at raw[i] (a '"'). end is
// the index just after its closing quote; valid is false when its bytes are
// not UTF-8 or it escapes a lone surrogate; closed is false when the literal
// does not end (or has an escape that is not JSON), and then end and valid
// mean nothing.
func scanString(raw []byte, i int) (end int, valid, closed bool) {
	valid = true
	for j := i + 1; j < len(raw); {
		c := raw[j]
		switch {
		case c == '"':
			return j + 1, valid, true
		case c == '\\':
			if j+1 >= len(raw) {
				return 0, false, false
			}
			if raw[j+1] != 'u' {
				j += 2
				continue
			}
			r, ok := hex4(raw, j+2)
			if !ok {
				return 0, false, false
			}
			j += 6
			switch {
			case r >= 0xd800 && r < 0xdc00: // high: a low must follow
				if j+1 < len(raw) && raw[j] == '\\' && raw[j+1] == 'u' {
					if lo, ok := hex4(raw, j+2); ok && lo >= 0xdc00 && lo < 0xe000 {
						j += 6
						continue
					}
				}
				valid = false
			case r >= 0xdc00 && r < 0xe000: // a low one alone
				valid = false
			}
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(raw[j:])
			if r == utf8.RuneError && size == 1 {
				valid = false
			}
			j += size
		}
	}
	return 0, false, false
}

// hex4 decodes the four hex digits at raw[i:i+4].
func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
