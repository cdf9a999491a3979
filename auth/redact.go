package auth

import (
	"errors"
	"strings"
)

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

// scrubString replaces every non-empty secret in s with REDACTED.
func scrubString(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return s
}

// scrub returns err, or a plain error with every secret removed from its
// text when the text contains one (the wrapped chain is then dropped, since
// it would still hold the secret).
func scrub(err error, secrets ...string) error {
	msg := err.Error()
	if clean := scrubString(msg, secrets...); clean != msg {
		return errors.New(clean)
	}
	return err
}
