package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Header names of a message frame (PROTOCOL.md §1).
const (
	HeaderTimestamp = "x-zm-request-timestamp"
	HeaderSignature = "x-zm-signature"
)

// DefaultSignatureMaxAge is how far x-zm-request-timestamp may lie from now,
// either way, for a signed frame to be accepted (ClientConfig.SignatureMaxAge).
const DefaultSignatureMaxAge = 5 * time.Minute

// Reasons of a failed [CheckSignature], each wrapped by a *SignatureError.
var (
	// ErrSignatureMissing: the frame lacks x-zm-signature or
	// x-zm-request-timestamp.
	ErrSignatureMissing = errors.New("events: no x-zm-signature or x-zm-request-timestamp")
	// ErrSignatureMismatch: x-zm-signature is not the HMAC of the timestamp
	// and content under the secret token (a wrong secret token, or a forged
	// or altered frame).
	ErrSignatureMismatch = errors.New("events: x-zm-signature does not match")
	// ErrTimestampInvalid: x-zm-request-timestamp is not a positive decimal
	// Unix time.
	ErrTimestampInvalid = errors.New("events: x-zm-request-timestamp is not a Unix time")
	// ErrTimestampStale: the signature matches, but the timestamp is older
	// than the allowed age: a replayed frame, or a clock far off.
	ErrTimestampStale = errors.New("events: x-zm-request-timestamp is too old")
	// ErrTimestampFuture: the signature matches, but the timestamp is ahead
	// of now by more than the allowed age: a clock far off.
	ErrTimestampFuture = errors.New("events: x-zm-request-timestamp is in the future")
)

// SignatureError is the error of [CheckSignature]: Reason is one of the
// ErrSignature… / ErrTimestamp… sentinels (errors.Is works on it).
type SignatureError struct {
	Reason error
	// Skew is now minus the frame's timestamp (negative: a timestamp ahead
	// of now); set for ErrTimestampStale and ErrTimestampFuture only.
	Skew time.Duration
}

func (e *SignatureError) Error() string {
	if e.Skew != 0 {
		return fmt.Sprintf("%v (%s from now, beyond the allowed age)", e.Reason, e.Skew.Round(time.Second))
	}
	return e.Reason.Error()
}

func (e *SignatureError) Unwrap() error { return e.Reason }

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
// headers fails. It does not look at the timestamp's age: a replayed frame
// verifies; [CheckSignature] checks both.
func VerifySignature(secretToken string, f Frame) bool {
	ts, sig := f.Header[HeaderTimestamp], f.Header[HeaderSignature]
	if ts == "" || sig == "" {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(Signature(secretToken, ts, f.Content)))
}

// CheckSignature verifies f's x-zm-signature under secretToken (as
// VerifySignature) and then that its x-zm-request-timestamp lies within
// maxAge of now, either way, so that a recorded frame cannot be replayed
// later. The timestamp is read in seconds or, when it is 10^11 or more (a
// date after 1973 in milliseconds, after the year 5000 in seconds), in
// milliseconds: PROTOCOL.md §1 leaves the unit open, and the simulator sends
// milliseconds. A negative maxAge skips the age check; zero means
// DefaultSignatureMaxAge. It returns nil or a *SignatureError whose Reason
// says what failed; the signature is checked first, so a forged frame is a
// mismatch whatever its timestamp.
func CheckSignature(secretToken string, f Frame, now time.Time, maxAge time.Duration) error {
	ts, sig := f.Header[HeaderTimestamp], f.Header[HeaderSignature]
	if ts == "" || sig == "" {
		return &SignatureError{Reason: ErrSignatureMissing}
	}
	if !hmac.Equal([]byte(sig), []byte(Signature(secretToken, ts, f.Content))) {
		return &SignatureError{Reason: ErrSignatureMismatch}
	}
	if maxAge < 0 {
		return nil
	}
	if maxAge == 0 {
		maxAge = DefaultSignatureMaxAge
	}
	at, ok := parseTimestamp(ts)
	if !ok {
		return &SignatureError{Reason: ErrTimestampInvalid}
	}
	switch skew := now.Sub(at); {
	case skew > maxAge:
		return &SignatureError{Reason: ErrTimestampStale, Skew: skew}
	case skew < -maxAge:
		return &SignatureError{Reason: ErrTimestampFuture, Skew: skew}
	}
	return nil
}

// timestampMillisFrom is the smallest x-zm-request-timestamp read as
// milliseconds (see CheckSignature).
const timestampMillisFrom = 100_000_000_000

// parseTimestamp reads a Unix time in seconds or milliseconds.
func parseTimestamp(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	if n >= timestampMillisFrom {
		return time.UnixMilli(n), true
	}
	return time.Unix(n, 0), true
}
