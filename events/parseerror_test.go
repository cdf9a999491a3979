package events

import (
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// TestParseErrorLabels: Labels maps any event and field to a fixed set.
func TestParseErrorLabels(t *testing.T) {
	tests := []struct {
		event, field         string
		wantEvent, wantField string
	}{
		{EngagementUserAnswered, "payload.object.engagement_id", EngagementUserAnswered, "payload.object.engagement_id"},
		{TaskCreated, "payload.object.created_time_ms", TaskCreated, "payload.object.created_time_ms"},
		{TaskReservationCreated, "payload.object.assigned_user_id", TaskReservationCreated, "payload.object.assigned_user_id"},
		{"", "event", "unknown", "event"},
		{"contact_center.brand_new", "event_ts", "unknown", "event_ts"},
		{"x-secretish", "", "unknown", ""},
		{UserSignedIn, "payload.object.flow_name.x[3].y", UserSignedIn, "payload.object.flow_name"},
		{UserSignedIn, "payload.object.notes[1].text", UserSignedIn, "payload.object"},
		{UserSignedIn, "payload.object.?.?...", UserSignedIn, "payload.object"},
		{"", "payload.extra", "unknown", "payload"},
		{"", "frame.header", "unknown", "frame.header"},
		{"", "frame.header.x-zm-signature", "unknown", "frame.header"},
		{"", "frame.surprise", "unknown", "frame"},
		{"", "[0][0][0]", "unknown", "other"},
		{"", "weird.path", "unknown", "other"},
	}
	for _, tt := range tests {
		e := &ParseError{Event: tt.event, Field: tt.field}
		ev, f := e.Labels()
		if ev != tt.wantEvent || f != tt.wantField {
			t.Errorf("Labels of {%q, %q} = %q, %q; want %q, %q", tt.event, tt.field, ev, f, tt.wantEvent, tt.wantField)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		e := &ParseError{Event: rapid.String().Draw(t, "event"), Field: rapid.String().Draw(t, "field")}
		ev, f := e.Labels()
		if ev != "unknown" && !IsKnown(ev) || f != "other" && !labelFields[f] {
			t.Fatalf("Labels of %+v = %q, %q: not in the fixed sets", e, ev, f)
		}
	})
	if n := len(labelFields); n > 100 {
		t.Errorf("%d field labels; want a small set", n)
	}
}

// TestParseErrorClass: every error Parse returns carries its class; one
// built without a class (as ParseFrame's are) reads as the class of its
// reason.
func TestParseErrorClass(t *testing.T) {
	tests := []struct {
		raw  string
		want Class
	}{
		{``, ClassInvalidJSON},
		{`{"event":`, ClassInvalidJSON},
		{`[]`, ClassNotObject},
		{`{"event_ts":1}`, ClassMissing},
		{`{"event":""}`, ClassEmpty},
		{`{"event":1}`, ClassNotString},
		{`{"event":"x","event_ts":"1"}`, ClassNotInteger},
		{`{"event":"x","event_ts":-1}`, ClassImplausibleTime},
		{`{"event":"x","event_ts":1}`, ClassImplausibleTime},
		{string(envelope(EngagementUserAnswered, samplesTS, answered(`"date_time":"yesterday"`))), ClassBadTime},
		{string(envelope(EngagementUserAnswered, samplesTS, `{"user_id":"u"}`)), ClassMissing},
		{string(nestedEvent(100, 1)), ClassTooDeep},
		{"{\"event\":\"\xff\"}", ClassInvalidUTF8},
	}
	for _, tt := range tests {
		_, err := parseNearSamples([]byte(tt.raw))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Class != tt.want || pe.ReasonClass() != tt.want {
			t.Errorf("Parse(%.60q) = %v (class %q); want class %q", tt.raw, err, classOf(err), tt.want)
		}
	}
	for reason, want := range map[string]Class{
		reasonMissing: ClassMissing, reasonNotString: ClassNotString, "not a boolean": ClassNotBoolean,
		"invalid JSON at offset 3": ClassInvalidJSON, "something new": ClassOther,
	} {
		if got := (&ParseError{Reason: reason}).ReasonClass(); got != want {
			t.Errorf("ReasonClass of reason %q = %q; want %q", reason, got, want)
		}
	}
}

func classOf(err error) Class {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
