package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// decodeObject decodes raw as a JSON object. path names raw in errors.
func decodeObject(raw []byte, path string) (map[string]json.RawMessage, *ParseError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &ParseError{Field: path, Reason: reasonInvalidJSON + " at offset " + strconv.FormatInt(se.Offset, 10), Class: ClassInvalidJSON}
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &ParseError{Field: path, Reason: reasonNotObject, Class: ClassNotObject}
		}
		return nil, &ParseError{Field: path, Reason: reasonInvalidJSON, Class: ClassInvalidJSON}
	}
	if m == nil {
		return nil, &ParseError{Field: path, Reason: reasonNotObject, Class: ClassNotObject}
	}
	return m, nil
}

// knownNameOf returns the event name of raw when it is a known one, else "".
func knownNameOf(raw []byte) string {
	var env struct {
		Event json.RawMessage `json:"event"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return ""
	}
	if name, ok := jsonString(env.Event); ok && IsKnown(name) {
		return name
	}
	return ""
}

// firstByte returns the first non-space byte of raw, or 0.
func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

func isNull(raw json.RawMessage) bool {
	return raw != nil && firstByte(raw) == 'n'
}

// jsonString decodes raw as a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if firstByte(raw) != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonInt decodes raw as a JSON number holding an int64 exactly.
func jsonInt(raw json.RawMessage) (int64, bool) {
	c := firstByte(raw)
	if c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return n, err == nil
}

// scalarString returns a JSON string's value, a number's or boolean's literal
// text, or "" for null. Objects and arrays are not scalars.
func scalarString(raw json.RawMessage) (string, bool) {
	switch c := firstByte(raw); {
	case c == '"':
		return jsonString(raw)
	case c == 'n':
		return "", true
	case c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9'):
		return string(bytes.TrimSpace(raw)), true
	}
	return "", false
}
