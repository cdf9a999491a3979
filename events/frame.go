package events

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
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

// redacted replaces every secret value.
const redacted = "REDACTED"

// isSecretParam reports whether a query or form parameter name carries a
// secret: access_token, refresh_token, token, client_secret, signature, ….
func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "signature", "password", "passwd", "apikey", "api_key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	switch n {
	case "code", "key", "sig", "auth", "authorization":
		return true
	}
	return false
}

// RedactURL returns u with the value of every token-ish query or fragment
// parameter (access_token, refresh_token, client_secret, signature, code, …)
// and any userinfo password replaced by REDACTED. Other parameters, such as
// subscriptionId, are kept, so the result identifies the subscription but
// carries no secret. Input that does not parse as a URL is scrubbed as text
// (every name=value whose name is token-ish). Never panics.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return redactText(u)
	}
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), redacted)
		}
	}
	p.RawQuery = redactParams(p.RawQuery)
	if p.RawFragment != "" || p.Fragment != "" {
		frag := redactParams(p.EscapedFragment())
		p.Fragment, _ = url.PathUnescape(frag)
		p.RawFragment = frag
	}
	// Opaque URLs ("mailto:…", "host:port?x=1") keep their text in Opaque.
	p.Opaque = redactText(p.Opaque)
	// Scrub the result as text too: url.Parse accepts much that is not a URL
	// (an error message quoting one, say), and that text may hide secrets
	// outside the query.
	return redactText(p.String())
}

// redactParams redacts the values of token-ish parameters in an
// application/x-www-form-urlencoded string, keeping order and encoding of the
// rest.
func redactParams(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, part := range parts {
		name, _, hasValue := strings.Cut(part, "=")
		if uname, err := url.QueryUnescape(name); err == nil {
			name = uname
		}
		if hasValue && isSecretParam(name) {
			rawName, _, _ := strings.Cut(part, "=")
			parts[i] = rawName + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

// secretParamRE finds name=value pairs in free text (error messages, quoted
// URLs) whose name is token-ish. The value ends at a separator or quote.
var secretParamRE = regexp.MustCompile(`(?i)([A-Za-z0-9_.%-]*(?:token|secret|signature|password|passwd|apikey|api_key)[A-Za-z0-9_.%-]*|\bcode|\bsig|\bkey)=([^&\s"'#;,<>\\]*)`)

// bearerRE finds bearer credentials in free text.
var bearerRE = regexp.MustCompile(`(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)

// redactText scrubs secrets from free text: token-ish name=value pairs and
// bearer credentials.
func redactText(s string) string {
	s = secretParamRE.ReplaceAllString(s, "${1}="+redacted)
	return bearerRE.ReplaceAllString(s, "${1} "+redacted)
}
