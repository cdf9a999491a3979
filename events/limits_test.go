package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envelope returns an event of name with event_ts ts and object as its
// payload.object (JSON text, used as is).
func envelope(name string, ts int64, object string) []byte {
	return fmt.Appendf(nil, `{"event":%q,"event_ts":%d,"payload":{"account_id":"acct-1","object":%s}}`, name, ts, object)
}

// answered returns an engagement_user_answered object with extra fields
// (JSON text without braces, "" for none).
func answered(extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"engagement_id":"eng-1","user_id":"usr-1"` + extra + `}`
}

// wantParseError checks that err is a *ParseError with the given event,
// field and class, and returns it.
func wantParseError(t *testing.T, err error, event, field string, class Class) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v; want a *ParseError", err)
	}
	if pe.Event != event || pe.Field != field || pe.Class != class {
		t.Fatalf("ParseError{Event %q, Field %q, Class %q} (%v); want {%q, %q, %q}",
			pe.Event, pe.Field, pe.Class, err, event, field, class)
	}
	return pe
}

// TestParseImplausibleTime: event_ts and every object time field outside the
// window around Now, or not a year from 1 to 9999, are refused with a
// ParseError naming the event and the field, saying "implausible time" and
// not the value.
func TestParseImplausibleTime(t *testing.T) {
	now := samplesNow
	ts := now.UnixMilli()
	type tc struct {
		name   string
		event  string // the raw event
		field  string
		values []string // text that must not appear in the error
	}
	var cases []tc
	for _, bad := range []struct {
		name string
		v    int64
	}{
		{"microseconds", now.UnixMicro()},
		{"seconds", now.Unix()},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()},
		{"max int64", math.MaxInt64},
		{"31 days old", now.Add(-31 * 24 * time.Hour).UnixMilli()},
		{"25 hours ahead", now.Add(25 * time.Hour).UnixMilli()},
	} {
		cases = append(cases, tc{"event_ts " + bad.name, string(envelope(EngagementUserAnswered, bad.v, answered(""))),
			"event_ts", []string{strconv.FormatInt(bad.v, 10)}})
	}
	for _, field := range objectTimeFields {
		for _, bad := range []struct {
			name string
			v    string // JSON value
		}{
			{"microseconds", strconv.FormatInt(now.UnixMicro(), 10)},
			{"microseconds as text", strconv.Quote(strconv.FormatInt(now.UnixMicro(), 10))},
			{"year 10000 in ms", "253402300800000"},
			{"before year 0 in ms", "-62198755200000"},
			{"year 0001", `"0001-01-01T00:00:00Z"`},
			{"year 0000", `"0000-06-01T00:00:00Z"`},
			{"UTC year 10000", `"9999-12-31T23:59:59-01:00"`},
			{"2 days ahead", strconv.Quote(now.Add(48 * time.Hour).Format(time.RFC3339Nano))},
			{"31 days old", strconv.Quote(now.Add(-31 * 24 * time.Hour).Format(time.RFC3339Nano))},
		} {
			cases = append(cases, tc{field + " " + bad.name,
				string(envelope(EngagementUserAnswered, ts, answered(strconv.Quote(field)+":"+bad.v))),
				"payload.object." + field, []string{strings.Trim(bad.v, `"`)}})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseWith([]byte(c.event), Limits{Now: func() time.Time { return now }})
			if err == nil {
				t.Fatalf("accepted: Time %v, TS %v", ev.Time, ev.TS)
			}
			pe := wantParseError(t, err, EngagementUserAnswered, c.field, ClassImplausibleTime)
			msg := pe.Error()
			if !strings.Contains(msg, "implausible time") {
				t.Errorf("Error() = %q; want it to say implausible time", msg)
			}
			for _, v := range c.values {
				if strings.Contains(msg, v) {
					t.Errorf("Error() = %q carries the value %q", msg, v)
				}
			}
		})
	}
}

// TestParseTimeWindowEdges: the window is closed at both ends, its width is
// the Limits' (defaults when zero or negative), and accepted times marshal.
func TestParseTimeWindowEdges(t *testing.T) {
	now := samplesNow
	clock := func() time.Time { return now }
	tests := []struct {
		name string
		lim  Limits
		at   time.Time
		ok   bool
	}{
		{"now", Limits{Now: clock}, now, true},
		{"30 days old", Limits{Now: clock}, now.Add(-DefaultMaxPast), true},
		{"30 days and 1 ms old", Limits{Now: clock}, now.Add(-DefaultMaxPast - time.Millisecond), false},
		{"1 day ahead", Limits{Now: clock}, now.Add(DefaultMaxFuture), true},
		{"1 day and 1 ms ahead", Limits{Now: clock}, now.Add(DefaultMaxFuture + time.Millisecond), false},
		{"negative limits mean the defaults", Limits{Now: clock, MaxPast: -1, MaxFuture: -1}, now.Add(-29 * 24 * time.Hour), true},
		{"MaxPast 1h: 2h old", Limits{Now: clock, MaxPast: time.Hour}, now.Add(-2 * time.Hour), false},
		{"MaxPast 1h: 1h old", Limits{Now: clock, MaxPast: time.Hour}, now.Add(-time.Hour), true},
		{"MaxFuture 1m: 2m ahead", Limits{Now: clock, MaxFuture: time.Minute}, now.Add(2 * time.Minute), false},
		{"MaxPast 1000 days: 999 days old", Limits{Now: clock, MaxPast: 1000 * 24 * time.Hour}, now.Add(-999 * 24 * time.Hour), true},
		// Whatever the window, the year must be 1 to 9999.
		{"year 9999 near a clock in 9999", Limits{Now: func() time.Time { return time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC) }},
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"year 10000 near a clock in 9999", Limits{Now: func() time.Time { return time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC) }},
			time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The time both as event_ts and as the object's date_time_ms
			// (sent now, or when it happened if that is later: an event is
			// never sent before its fact).
			for _, raw := range [][]byte{
				envelope(EngagementUserAnswered, tt.at.UnixMilli(), answered("")),
				envelope(EngagementUserAnswered, max(tt.lim.withDefaults().Now().UnixMilli(), tt.at.UnixMilli()),
					answered(`"date_time_ms":`+strconv.FormatInt(tt.at.UnixMilli(), 10))),
			} {
				ev, err := ParseWith(raw, tt.lim)
				if (err == nil) != tt.ok {
					t.Fatalf("ParseWith(%s) = %v; want ok %v", raw, err, tt.ok)
				}
				if err != nil {
					var pe *ParseError
					if !errors.As(err, &pe) || pe.Class != ClassImplausibleTime {
						t.Fatalf("err = %v; want an implausible time", err)
					}
					continue
				}
				if !ev.Time.Equal(tt.at) {
					t.Errorf("Time = %v; want %v", ev.Time, tt.at)
				}
				if _, err := json.Marshal(struct{ A, B time.Time }{ev.Time, ev.TS}); err != nil {
					t.Errorf("accepted times do not marshal: %v", err)
				}
			}
		})
	}
}

// TestParseDefaultWindow: Parse is ParseWith with the default Limits, read
// on the real clock (margins of an hour keep it independent of how long
// the test takes).
func TestParseDefaultWindow(t *testing.T) {
	for _, tt := range []struct {
		off time.Duration
		ok  bool
	}{
		{0, true},
		{-DefaultMaxPast + time.Hour, true},
		{-DefaultMaxPast - time.Hour, false},
		{DefaultMaxFuture - time.Hour, true},
		{DefaultMaxFuture + time.Hour, false},
	} {
		at := time.Now().Add(tt.off).UnixMilli()
		for _, raw := range [][]byte{
			envelope(EngagementUserAnswered, at, answered("")),
			envelope(EngagementUserAnswered, max(time.Now().UnixMilli(), at), answered(`"date_time_ms":`+strconv.FormatInt(at, 10))),
		} {
			_, err := Parse(raw)
			if (err == nil) != tt.ok {
				t.Errorf("Parse(%s) at now%+v = %v; want ok %v", raw, tt.off, err, tt.ok)
			}
		}
	}
	d := Limits{}.withDefaults()
	if d.MaxFuture != DefaultMaxFuture || d.MaxPast != DefaultMaxPast || d.MaxDepth != DefaultMaxDepth || d.Now == nil {
		t.Errorf("Limits{} with defaults = %+v", d)
	}
	if DefaultMaxFuture != 24*time.Hour || DefaultMaxPast != 30*24*time.Hour || DefaultMaxDepth != 64 {
		t.Errorf("defaults %v, %v, %d; want 24h, 30 days, 64", DefaultMaxFuture, DefaultMaxPast, DefaultMaxDepth)
	}
}

// TestParseImplausibleTimeUnknownName: an unknown event's event_ts is
// checked; its object's implausible times are skipped, like bad ones, and
// Time falls back to TS.
func TestParseImplausibleTimeUnknownName(t *testing.T) {
	const name = "contact_center.engagement_teleported"
	ts := samplesTS
	ev, err := parseNearSamples(envelope(name, ts, `{"date_time_ms":"0001-01-01T00:00:00Z","date_time":253402300800000}`))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Time.Equal(ev.TS) {
		t.Errorf("Time = %v; want TS %v", ev.Time, ev.TS)
	}
	_, err = parseNearSamples(envelope(name, samplesNow.UnixMicro(), `{}`))
	wantParseError(t, err, "", "event_ts", ClassImplausibleTime)
}
