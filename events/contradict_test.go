package events

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// An answer whose event_ts is hours before its date_time_ms claims to have
// been sent before it happened: it must not start a recording (issue:
// contradictory times), and the error names the field and the class.
func TestParseContradictoryTimes(t *testing.T) {
	now := time.Now().UTC()
	ev := func(ts, obj time.Time) []byte {
		return fmt.Appendf(nil, `{"event":"contact_center.engagement_user_answered","event_ts":%d,"payload":{"account_id":"acc","object":{"engagement_id":"eng-1","user_id":"usr-1","date_time_ms":%d}}}`,
			ts.UnixMilli(), obj.UnixMilli())
	}
	for _, tc := range []struct {
		name    string
		ts, obj time.Time
		bad     bool
	}{
		{"sent hours before it happened", now.Add(-3 * time.Hour), now, true},
		{"sent 6 minutes before it happened", now.Add(-6 * time.Minute), now, true},
		{"clock skew of a minute", now.Add(-time.Minute), now, false},
		{"delivered late", now, now.Add(-2 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(ev(tc.ts, tc.obj))
			if !tc.bad {
				if err != nil {
					t.Fatalf("Parse = %v, want nil", err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			if pe.Field != "payload.object.date_time_ms" || pe.ReasonClass() != ClassContradictoryTime {
				t.Fatalf("error names %q / %q, want payload.object.date_time_ms / %q", pe.Field, pe.ReasonClass(), ClassContradictoryTime)
			}
		})
	}
	if _, err := ParseWith(ev(now.Add(-3*time.Hour), now), Limits{MaxSkew: 4 * time.Hour}); err != nil {
		t.Fatalf("ParseWith a 4 h skew = %v, want nil", err)
	}
}

// Raw bytes that are not UTF-8 in a frame are malformed input, not a bad
// signature: encoding/json would have replaced them with U+FFFD.
func TestParseFrameRefusesInvalidUTF8(t *testing.T) {
	_, err := ParseFrame([]byte("{\"module\":\"message\",\"content\":\"{\\\"event\\\":\\\"x\xff\\\"}\"}"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.ReasonClass() != ClassInvalidUTF8 {
		t.Fatalf("ParseFrame = %v, want a ParseError of class %q", err, ClassInvalidUTF8)
	}
}
