package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Header names of a message frame (PROTOCOL.md §1).
const (
	HeaderTimestamp = "x-zm-request-timestamp"
	HeaderSignature = "x-zm-signature"
)

// Signature returns the x-zm-signature Zoom computes for a message frame:
// "v0=" + hex(HMAC-SHA256(secretToken, "v0:" + timestamp + ":" + content)),
// the webhook scheme that the WebSocket frames appear to share
// (PROTOCOL.md §1, confidence M).
func Signature(secretToken, timestamp, content string) string {
	m := hmac.New(sha256.New, []byte(secretToken))
	m.Write([]byte("v0:" + timestamp + ":" + content))
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether f carries the signature of its content
// under secretToken, comparing in constant time. A frame without the
// headers fails.
func VerifySignature(secretToken string, f Frame) bool {
	ts, sig := f.Header[HeaderTimestamp], f.Header[HeaderSignature]
	if ts == "" || sig == "" {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(Signature(secretToken, ts, f.Content)))
}
