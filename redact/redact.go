package redact

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces every secret value.
const redacted = "REDACTED"

// IsSecretParam reports whether a query or form parameter name carries a
// secret: access_token, refresh_token, token, client_secret, signature,
// password, api_key, code, key, sig, auth, authorization, … (case-insensitive).
func IsSecretParam(name string) bool {
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

// URL returns u with the value of every token-ish query or fragment
// parameter ([IsSecretParam]: access_token, refresh_token, client_secret,
// signature, code, …) and any userinfo password replaced by REDACTED. Other
// parameters, such as subscriptionId, are kept, so the result identifies the
// subscription but carries no secret. The result is also scrubbed as [Text],
// and input that does not parse as a URL is scrubbed as Text only. Never
// panics.
func URL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return Text(u)
	}
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), redacted)
		}
	}
	p.RawQuery = params(p.RawQuery)
	if p.RawFragment != "" || p.Fragment != "" {
		frag := params(p.EscapedFragment())
		p.Fragment, _ = url.PathUnescape(frag)
		p.RawFragment = frag
	}
	// Opaque URLs ("mailto:…", "host:port?x=1") keep their text in Opaque.
	p.Opaque = Text(p.Opaque)
	// Scrub the result as text too: url.Parse accepts much that is not a URL
	// (an error message quoting one, say), and that text may hide secrets
	// outside the query.
	return Text(p.String())
}

// params redacts the values of token-ish parameters in an
// application/x-www-form-urlencoded string, keeping order and encoding of the
// rest.
func params(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	for i, part := range parts {
		name, _, hasValue := strings.Cut(part, "=")
		if uname, err := url.QueryUnescape(name); err == nil {
			name = uname
		}
		if hasValue && IsSecretParam(name) {
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

// Text scrubs secrets from free text (error messages, a peer's reply): the
// value of every token-ish name=value pair ("access_token=REDACTED") and
// every bearer or basic credential ("Bearer REDACTED"). Applying it twice
// changes nothing more.
func Text(s string) string {
	s = secretParamRE.ReplaceAllString(s, "${1}="+redacted)
	return bearerRE.ReplaceAllString(s, "${1} "+redacted)
}

// Secrets replaces every occurrence in s of each non-empty secret, and of
// its query-escaped form (as it appears in a URL), with REDACTED. Empty
// secrets are ignored.
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, redacted)
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, redacted)
		}
	}
	return s
}

// Error returns err fit for a log line, a status page or a returned error.
// When err's chain holds a [*net/url.Error], the result starts from that
// error with its URL dropped (the URL may carry credentials): its
// lower-cased Op and its cause, "post: dial tcp …: connection refused"
// (whatever wrapped the *url.Error is dropped with it). The cause stays
// wrapped, so errors.Is and errors.As still find net, TLS and context
// errors. The result then passes through [Scrub] with secrets. nil stays
// nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return Scrub(err, secrets...)
}

// Scrub returns err itself when its text holds none of secrets ([Secrets])
// and no token-ish text ([Text]); otherwise a plain error with that text
// scrubbed. The wrapped chain is then dropped, since it still holds the
// secret: errors.Is and errors.As see nothing behind a scrubbed error. nil
// stays nil.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := Text(Secrets(msg, secrets...)); clean != msg {
		return errors.New(clean)
	}
	return err
}

// Truncate returns s cut to its first n bytes followed by "…" when it is
// longer than n bytes, else s. It bounds text taken from a peer (a reason,
// a reply body); it may cut a multi-byte character. Redact first: a cut
// secret no longer matches.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Tail returns a redacted hint of a secret for an operator to tell two
// secrets apart: an ellipsis and its last four characters ("…a1b2"), or a
// bare ellipsis when the secret is shorter than 16 characters (four
// characters would then give too much away). It never returns the secret.
func Tail(secret string) string {
	if len(secret) < 16 {
		return "…"
	}
	return "…" + secret[len(secret)-4:]
}
