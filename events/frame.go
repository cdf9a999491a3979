package events

import (
	"encoding/json"
	"unicode/utf8"
)

// Frame modules (PROTOCOL.md §1). Every WebSocket text frame of an event
// subscription is a JSON object whose "module" is one of these.
const (
	// ModuleBuildConnection is Zoom's first frame on a connection: Success true
	// means the token was accepted; false means it was not (Content is the
	// reason, whose wording varies), and Zoom closes the socket.
	ModuleBuildConnection = "build_connection"
	// ModuleHeartbeat is both the client's keep-alive ({"module":"heartbeat"},
	// an application text frame, not a WebSocket ping) and Zoom's reply
	// (Success true, Content "live").
	ModuleHeartbeat = "heartbeat"
	// ModuleMessage carries one event: Content is the event JSON as a string
	// (parse it with [Parse]); Header holds x-zm-request-timestamp and
	// x-zm-signature.
	ModuleMessage = "message"
)

// Frame is one WebSocket frame of an event subscription (PROTOCOL.md §1).
type Frame struct {
	// Module is the frame kind: one of the Module constants, or another value
	// from a newer Zoom (callers ignore and count those).
	Module string `json:"module"`
	// Success is set on build_connection and heartbeat replies; nil when the
	// frame has none.
	Success *bool `json:"success,omitempty"`
	// Content is the reason of a build_connection, "live" on a heartbeat reply,
	// or the event JSON of a message frame.
	Content string `json:"content,omitempty"`
	// Header holds the message frame headers; nil when absent.
	Header map[string]string `json:"header,omitempty"`
}

// ParseFrame decodes one frame. module is required (a non-empty string);
// success must be a boolean or null; content a string, or else a JSON object
// whose text is kept as Content (a lenient reading of a frame that nests the
// event instead of quoting it); header an object whose scalar values are kept
// as text. Errors are [*ParseError]s with a Field of "frame.module",
// "frame.success", "frame.content" or "frame.header". ParseFrame never panics.
func ParseFrame(b []byte) (Frame, error) {
	if !utf8.Valid(b) {
		// encoding/json would turn the bytes into U+FFFD, and the frame
		// would then fail its signature check for the wrong reason.
		return Frame{}, &ParseError{Field: "frame", Reason: reasonInvalidUTF8, Class: ClassInvalidUTF8}
	}
	m, perr := decodeObject(b, "frame")
	if perr != nil {
		return Frame{}, perr
	}
	var f Frame
	mod, ok := jsonString(m["module"])
	switch {
	case m["module"] == nil || isNull(m["module"]):
		return Frame{}, &ParseError{Field: "frame.module", Reason: reasonMissing}
	case !ok:
		return Frame{}, &ParseError{Field: "frame.module", Reason: reasonNotString}
	case mod == "":
		return Frame{}, &ParseError{Field: "frame.module", Reason: reasonEmpty}
	}
	f.Module = mod

	if v := m["success"]; v != nil && !isNull(v) {
		var s bool
		if err := json.Unmarshal(v, &s); err != nil {
			return Frame{}, &ParseError{Field: "frame.success", Reason: "not a boolean"}
		}
		f.Success = &s
	}

	if v := m["content"]; v != nil && !isNull(v) {
		switch firstByte(v) {
		case '"':
			s, ok := jsonString(v)
			if !ok {
				return Frame{}, &ParseError{Field: "frame.content", Reason: reasonNotString}
			}
			f.Content = s
		case '{':
			f.Content = string(v)
		default:
			return Frame{}, &ParseError{Field: "frame.content", Reason: reasonNotString}
		}
	}

	if v := m["header"]; v != nil && !isNull(v) {
		hm, perr := decodeObject(v, "frame.header")
		if perr != nil {
			return Frame{}, perr
		}
		f.Header = make(map[string]string, len(hm))
		for k, hv := range hm {
			if s, ok := scalarString(hv); ok {
				f.Header[k] = s
			}
		}
	}
	return f, nil
}

// HeartbeatFrame returns the client's heartbeat, {"module":"heartbeat"}, as a
// new slice each call. Send it as a text frame every 30 s (PROTOCOL.md §1).
func HeartbeatFrame() []byte {
	return []byte(`{"module":"heartbeat"}`)
}
