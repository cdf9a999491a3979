package events

import (
	"reflect"
	"strings"
)

// ParseError is the error of [Parse], [ParseWith], [ParseFrame] and
// [DedupKey]. Read it with errors.As. It never carries a field's value.
type ParseError struct {
	// Event is the event name when the input carried a known one, else "".
	// Unknown names are left out because they are untrusted input.
	Event string
	// Field is the path of the offending field, e.g. "event_ts",
	// "payload.object.engagement_id", "payload.object.list[3].x" or, for
	// frames, "frame.module": at most about 100 bytes, object keys that are
	// long or not printable ASCII written "?". Empty when the input as a
	// whole is bad (not JSON, not an object). For metrics use [ParseError.Labels],
	// whose values are bounded.
	Field string
	// Reason says what is wrong, for people: "missing", "empty",
	// "not a string", "implausible time", "invalid JSON at offset 12", ….
	// Its wording may change; compare Class instead.
	Reason string
	// Class is Reason's class, one of the Class constants: a short, stable
	// label for metrics and for code. Errors built without one (zero) read
	// as a class through [ParseError.ReasonClass].
	Class Class
}

// Error returns "events: [<event>: ][<field>: ]<reason>".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("events: ")
	if e.Event != "" {
		b.WriteString(e.Event)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Class is the class of a [ParseError]'s reason: one of the constants below,
// each a fixed lowercase word fit for a metric label.
type Class string

// The classes of [ParseError.Class].
const (
	// ClassInvalidJSON: the input, or the field, is not JSON.
	ClassInvalidJSON Class = "invalid_json"
	// ClassMissing: a required field is absent or null.
	ClassMissing Class = "missing"
	// ClassEmpty: a required string is "".
	ClassEmpty Class = "empty"
	// ClassNotString: a field that must be a string is of another type.
	ClassNotString Class = "not_string"
	// ClassNotObject: a field (or the input) that must be a JSON object is not.
	ClassNotObject Class = "not_object"
	// ClassNotInteger: event_ts is not a JSON integer that fits in int64.
	ClassNotInteger Class = "not_integer"
	// ClassNotBoolean: a frame's success is not a boolean.
	ClassNotBoolean Class = "not_boolean"
	// ClassBadTime: an object time field is neither RFC 3339 nor epoch
	// milliseconds.
	ClassBadTime Class = "bad_time"
	// ClassImplausibleTime: a time is outside the window of [Limits], or
	// not a year from 1 to 9999, or event_ts is not after the Unix epoch.
	ClassImplausibleTime Class = "implausible_time"
	// ClassContradictoryTime: an object time lies after the envelope's
	// event_ts by more than [Limits].MaxSkew: the event claims to have been
	// sent before it happened.
	ClassContradictoryTime Class = "contradictory_time"
	// ClassTooDeep: objects and arrays nest deeper than [Limits].MaxDepth.
	ClassTooDeep Class = "too_deep"
	// ClassInvalidUTF8: a string or object key is not valid UTF-8, or
	// escapes a lone UTF-16 surrogate.
	ClassInvalidUTF8 Class = "invalid_utf8"
	// ClassOther: none of the above (an error built without a class whose
	// reason is not one this package writes).
	ClassOther Class = "other"
)

// Reasons used in ParseError.Reason.
const (
	reasonMissing         = "missing"
	reasonEmpty           = "empty"
	reasonNotString       = "not a string"
	reasonNotObject       = "not a JSON object"
	reasonNotInt          = "not an integer"
	reasonNotBool         = "not a boolean"
	reasonBadTime         = "not an RFC 3339 time or epoch milliseconds"
	reasonNotAfterEpoch   = "not after the Unix epoch"
	reasonImplausibleTime = "implausible time"
	reasonContradictory   = "after event_ts (contradictory times)"
	reasonTooDeep         = "nested too deep"
	reasonInvalidUTF8     = "not valid UTF-8"
	reasonInvalidJSON     = "invalid JSON"
)

// reasonClasses classifies the reasons above, for errors built without a
// Class.
var reasonClasses = map[string]Class{
	reasonMissing:         ClassMissing,
	reasonEmpty:           ClassEmpty,
	reasonNotString:       ClassNotString,
	reasonNotObject:       ClassNotObject,
	reasonNotInt:          ClassNotInteger,
	reasonNotBool:         ClassNotBoolean,
	reasonBadTime:         ClassBadTime,
	reasonNotAfterEpoch:   ClassImplausibleTime,
	reasonImplausibleTime: ClassImplausibleTime,
	reasonContradictory:   ClassContradictoryTime,
	reasonTooDeep:         ClassTooDeep,
	reasonInvalidUTF8:     ClassInvalidUTF8,
	reasonInvalidJSON:     ClassInvalidJSON,
}

// ReasonClass returns e.Class, or for an error built without one the class
// of its Reason when it is one this package writes, else [ClassOther].
func (e *ParseError) ReasonClass() Class {
	if e.Class != "" {
		return e.Class
	}
	if c, ok := reasonClasses[e.Reason]; ok {
		return c
	}
	if strings.HasPrefix(e.Reason, reasonInvalidJSON) {
		return ClassInvalidJSON
	}
	return ClassOther
}

// Labels returns e's event and field as metric label values from fixed sets,
// so that a counter such as zccadapter_events_malformed_total{event,field}
// has bounded cardinality whatever the input:
//
//   - event is e.Event when it is a known name ([IsKnown]), else "unknown";
//   - field is e.Field when it is "" (the input as a whole), an envelope
//     field (event, event_ts, payload, payload.account_id, payload.object),
//     a field of payload.object that Parse reads
//     ("payload.object.engagement_id", the time fields, …) or a frame field
//     ("frame", "frame.module", …). A path inside one of these reads as that
//     field ("payload.object.flow_name.x" as "payload.object.flow_name"), any
//     other path under payload.object as "payload.object", under payload as
//     "payload", under frame as "frame"; anything else as "other".
func (e *ParseError) Labels() (event, field string) {
	event = "unknown"
	if IsKnown(e.Event) {
		event = e.Event
	}
	return event, fieldLabel(e.Field)
}

// fieldLabel maps a ParseError.Field to a member of labelFields.
func fieldLabel(path string) string {
	for {
		if labelFields[path] {
			return path
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return "other"
		}
		path = path[:i]
	}
}

// labelFields is the fixed set of [ParseError.Labels]' field values.
var labelFields = func() map[string]bool {
	m := map[string]bool{
		"": true, "event": true, "event_ts": true, "payload": true,
		"payload.account_id": true, "payload.object": true,
		"frame": true, "frame.module": true, "frame.success": true,
		"frame.content": true, "frame.header": true,
	}
	for _, k := range objectTimeFields {
		m["payload.object."+k] = true
	}
	// Every field a typed view reads.
	for _, v := range []any{Engagement{}, Task{}, Reservation{}, Agent{}, UserActivity{}} {
		t := reflect.TypeOf(v)
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				m["payload.object."+name] = true
			}
		}
	}
	return m
}()
