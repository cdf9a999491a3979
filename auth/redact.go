package auth

import "github.com/zccadapter/zccadapter/redact"

// Tail returns a redacted hint of a secret: [redact.Tail], kept here for the
// callers that still name it. New code calls redact.Tail.
func Tail(secret string) string { return redact.Tail(secret) }
