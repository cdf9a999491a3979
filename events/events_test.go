package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Expected typed views of the samples.
var (
	wantLegAva = Engagement{
		EngagementID: "eng-4fK9qTz1Rw", Direction: "inbound", Channel: "voice",
		FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound", FlowNumber: "+15550100200",
		QueueID: "q-Kd8Rr2Ya", QueueName: "Tier 1 Support",
		ConsumerID: "con-Px3Hh6Wn", ConsumerNumber: "+15550100142", ConsumerDisplayName: "Caller 0142",
		UserID: "usr-Ava1Kx9", UserDisplayName: "Ava Lindqvist",
	}
	wantEngagementOnly = Engagement{
		EngagementID: "eng-4fK9qTz1Rw", Direction: "inbound", Channel: "voice", ChannelSource: "phone",
		FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound",
	}
	wantTransfer = func() Engagement {
		e := wantLegAva
		e.TaskID = "task-Hn3v8Pq2Ls"
		e.TransferToTaskID = "task-Xc7b1Mr5Ud"
		e.TransferLevel = "queue"
		e.TransferType = "warm"
		e.TransferToQueueID = "q-Lm4Ss7Pe"
		e.TransferToQueueName = "Billing"
		e.TransferToUserID = "usr-Bo2Mz7q"
		e.TransferToUserDisplayName = "Bo Okafor"
		return e
	}()
	wantTaskFirst = Task{
		TaskID: "task-Hn3v8Pq2Ls", EngagementID: "eng-4fK9qTz1Rw", FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound",
		Priority: 3, QueueID: "q-Kd8Rr2Ya", QueueName: "Tier 1 Support", ChannelID: "ch-voice-01", ChannelName: "voice",
		CallerNumber: "+15550100142", CalleeNumber: "+15550100200",
	}
	wantTaskSecond = Task{
		TaskID: "task-Xc7b1Mr5Ud", EngagementID: "eng-4fK9qTz1Rw", FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound",
		Status: "canceled", Priority: 3, QueueID: "q-Lm4Ss7Pe", QueueName: "Billing", ChannelID: "ch-voice-01",
		ChannelName: "voice", CallerNumber: "+15550100142", CalleeNumber: "+15550100200",
	}
	wantResAva = Reservation{
		ReservationID: "res-Bq2w9Ek4Za", TaskID: "task-Hn3v8Pq2Ls", AssignedUserID: "usr-Ava1Kx9",
		EngagementID: "eng-4fK9qTz1Rw", QueueID: "q-Kd8Rr2Ya", QueueName: "Tier 1 Support",
		FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound", Channel: "voice", ChannelSource: "phone",
		Direction: "inbound", CallerNumber: "+15550100142", CalleeNumber: "+15550100200",
	}
	wantResBo = Reservation{
		ReservationID: "res-Jt6y3Nf8Wo", TaskID: "task-Xc7b1Mr5Ud", AssignedUserID: "usr-Bo2Mz7q",
		EngagementID: "eng-4fK9qTz1Rw", QueueID: "q-Lm4Ss7Pe", QueueName: "Billing",
		FlowID: "flow-Gx5Tt0cV", FlowName: "Support Inbound", Channel: "voice", ChannelSource: "phone",
		CallerNumber: "+15550100142", CalleeNumber: "+15550100200",
	}
	wantAgentAva = Agent{UserID: "usr-Ava1Kx9", DisplayName: "Ava Lindqvist", Email: "ava.lindqvist@example.com"}
	wantUserAva  = UserActivity{ID: "usr-Ava1Kx9", Email: "ava.lindqvist@example.com", ClientType: "win", Version: "6.2.5.41234", LoginType: "100"}
)

func withBo(e Engagement, direction string) *Engagement {
	e.Direction = direction
	e.UserID = "usr-Bo2Mz7q"
	e.UserDisplayName = "Bo Okafor"
	return &e
}

func ptr[T any](v T) *T { return &v }

func TestParseSamples(t *testing.T) {
	tests := []struct {
		name string // event name = sample file name
		time string // expected Event.Time, RFC 3339
		want any    // expected typed view
	}{
		{EngagementConsumerAnswered, "2025-11-29T10:05:09Z", withBo(wantLegAva, "outbound")},
		{EngagementConsumerEnded, "2025-11-29T10:04:00Z", withBo(wantLegAva, "inbound")},
		{EngagementConsumerNotified, "2025-11-29T10:05:08Z", withBo(wantLegAva, "outbound")},
		{EngagementEnded, "2025-11-29T10:04:01Z", ptr(wantEngagementOnly)},
		{EngagementStarted, "2025-11-29T10:00:10Z", ptr(wantEngagementOnly)},
		{EngagementTransferAccepted, "2025-11-29T10:01:35Z", ptr(wantTransfer)},
		{EngagementTransferCanceled, "2025-11-29T10:05:06Z", ptr(wantTransfer)},
		{EngagementTransferCompleted, "2025-11-29T10:01:36Z", ptr(wantTransfer)},
		{EngagementTransferInitiated, "2025-11-29T10:01:30Z", ptr(wantTransfer)},
		{EngagementTransferQueued, "2025-11-29T10:01:31Z", ptr(wantTransfer)},
		{EngagementTransferRejected, "2025-11-29T10:05:05Z", ptr(wantTransfer)},
		{EngagementTransferReserved, "2025-11-29T10:01:33Z", ptr(wantTransfer)},
		{EngagementTransferTimeout, "2025-11-29T10:05:07Z", ptr(wantTransfer)},
		{EngagementUserAnswered, "2025-11-29T10:00:15Z", ptr(wantLegAva)},
		{EngagementUserEnded, "2025-11-29T10:01:36.3Z", ptr(wantLegAva)},
		{EngagementUserHold, "2025-11-29T10:01:00Z", ptr(wantLegAva)},
		{EngagementUserUnhold, "2025-11-29T10:01:15Z", ptr(wantLegAva)},
		{EngagementWrapUpEnded, "2025-11-29T10:04:10Z", ptr(wantLegAva)},
		{EngagementWrapUpStarted, "2025-11-29T10:01:36.4Z", ptr(wantLegAva)},
		{TaskCanceled, "2025-11-29T10:05:00Z", ptr(wantTaskSecond)},
		{TaskCompleted, "2025-11-29T10:01:36.5Z", func() *Task { t := wantTaskFirst; t.Status = "completed"; return &t }()},
		{TaskCreated, "2025-11-29T10:00:11Z", func() *Task { t := wantTaskFirst; t.Status = "pending"; return &t }()},
		{TaskDeleted, "2025-11-29T10:05:01Z", ptr(wantTaskSecond)},
		{TaskUpdated, "2025-11-29T10:00:14.1Z", func() *Task { t := wantTaskFirst; t.Status = "assigned"; return &t }()},
		{TaskReservationAccepted, "2025-11-29T10:00:14Z", ptr(wantResAva)},
		{TaskReservationCanceled, "2025-11-29T10:05:04Z", ptr(wantResBo)},
		{TaskReservationCompleted, "2025-11-29T10:01:36.6Z", ptr(wantResAva)},
		{TaskReservationCreated, "2025-11-29T10:00:12Z", ptr(wantResAva)},
		{TaskReservationRejected, "2025-11-29T10:05:02Z", ptr(wantResBo)},
		{TaskReservationTimeout, "2025-11-29T10:05:03Z", ptr(wantResBo)},
		{UserLogin, "2025-11-29T10:00:02Z", ptr(wantAgentAva)},
		{UserLogout, "2025-11-29T10:06:40Z", ptr(wantAgentAva)},
		{UserStatusChanged, "2025-11-29T10:00:03Z", func() *Agent {
			a := wantAgentAva
			a.CurrentStatusID, a.CurrentStatusName = "1", "Ready"
			a.PreviousStatusID, a.PreviousStatusName = "2", "Not Ready"
			a.PreviousSubStatusID, a.PreviousSubStatusName = "20", "Break"
			return &a
		}()},
		{UserPresenceStatusUpdated, "2025-11-29T10:00:04Z", &UserActivity{ID: "usr-Ava1Kx9", Email: "ava.lindqvist@example.com", PresenceStatus: "Available"}},
		{UserSignedIn, "2025-11-29T10:00:00Z", ptr(wantUserAva)},
		{UserSignedOut, "2025-11-29T10:06:41Z", ptr(wantUserAva)},
	}

	var tested []string
	for _, tt := range tests {
		tested = append(tested, tt.name)
		t.Run(tt.name, func(t *testing.T) {
			raw := loadSample(t, tt.name)
			ev, err := parseNearSamples(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			generic := decodeGeneric(t, raw)
			wantTS, _ := generic["event_ts"].(json.Number).Int64()
			wantAcct := generic["payload"].(map[string]any)["account_id"].(string)

			if ev.Name != tt.name || !ev.Known {
				t.Errorf("Name, Known = %q, %v; want %q, true", ev.Name, ev.Known, tt.name)
			}
			if got := ev.TS.UnixMilli(); got != wantTS || ev.TS.Location() != time.UTC {
				t.Errorf("TS = %v (%d ms); want %d ms UTC", ev.TS, got, wantTS)
			}
			if ev.AccountID != wantAcct {
				t.Errorf("AccountID = %q; want %q", ev.AccountID, wantAcct)
			}
			wantTime, _ := time.Parse(time.RFC3339Nano, tt.time)
			if !ev.Time.Equal(wantTime) || ev.Time.Location() != time.UTC {
				t.Errorf("Time = %v; want %v UTC", ev.Time, wantTime)
			}
			if string(ev.Raw) != string(raw) {
				t.Errorf("Raw differs from the input")
			}
			if !json.Valid(ev.Object) || !strings.Contains(string(raw), string(ev.Object)) {
				t.Errorf("Object is not the object as received: %s", ev.Object)
			}
			if len(ev.Key) != 32 {
				t.Errorf("Key = %q; want 32 hex chars", ev.Key)
			}
			wantKey, err := DedupKey(ev.Name, ev.AccountID, ev.Object, wantTS)
			if err != nil || ev.Key != wantKey {
				t.Errorf("Key = %q; want DedupKey's %q (err %v)", ev.Key, wantKey, err)
			}

			views := map[string]any{}
			if ev.Engagement != nil {
				views["Engagement"] = ev.Engagement
			}
			if ev.Task != nil {
				views["Task"] = ev.Task
			}
			if ev.Reservation != nil {
				views["Reservation"] = ev.Reservation
			}
			if ev.Agent != nil {
				views["Agent"] = ev.Agent
			}
			if ev.User != nil {
				views["User"] = ev.User
			}
			if len(views) != 1 {
				t.Fatalf("typed views set: %v; want exactly one", reflect.ValueOf(views).MapKeys())
			}
			for field, got := range views {
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s =\n%+v\nwant\n%+v", field, got, tt.want)
				}
			}
		})
	}

	// Every sample is in the table, and every sample name is a known name.
	files := sampleNames(t)
	if len(files) != 36 {
		t.Errorf("found %d samples; want 36", len(files))
	}
	for _, f := range files {
		if !slices.Contains(tested, f) {
			t.Errorf("sample %s is not in the table", f)
		}
		if !IsKnown(f) {
			t.Errorf("sample %s is not a known name", f)
		}
	}
}

// requiredFields lists the object fields each known sample must carry.
func requiredFields(name string) []string {
	switch groupOf(name) {
	case groupEngagement:
		if needsUserID[name] {
			return []string{"engagement_id", "user_id"}
		}
		return []string{"engagement_id"}
	case groupTask:
		return []string{"task_id"}
	case groupReservation:
		return []string{"task_reservation_id"}
	case groupAgent:
		return []string{"user_id"}
	case groupUser:
		return []string{"id"}
	}
	return nil
}

func TestParseRequiredFieldMissing(t *testing.T) {
	for _, name := range sampleNames(t) {
		raw := loadSample(t, name)
		type mutation struct {
			field  string // expected ParseError.Field
			reason string
			mutate func(m map[string]any)
		}
		muts := []mutation{
			{"event", reasonMissing, func(m map[string]any) { delete(m, "event") }},
			{"event", reasonEmpty, func(m map[string]any) { m["event"] = "" }},
			{"event", reasonNotString, func(m map[string]any) { m["event"] = 7 }},
			{"event_ts", reasonMissing, func(m map[string]any) { delete(m, "event_ts") }},
			{"event_ts", reasonNotInt, func(m map[string]any) { m["event_ts"] = "1764410415000" }},
			{"event_ts", reasonNotInt, func(m map[string]any) { m["event_ts"] = 1.5 }},
			{"payload", reasonMissing, func(m map[string]any) { delete(m, "payload") }},
			{"payload", reasonNotObject, func(m map[string]any) { m["payload"] = []any{} }},
			{"payload.account_id", reasonMissing, func(m map[string]any) { delete(m["payload"].(map[string]any), "account_id") }},
			{"payload.account_id", reasonEmpty, func(m map[string]any) { m["payload"].(map[string]any)["account_id"] = "" }},
			{"payload.object", reasonMissing, func(m map[string]any) { delete(m["payload"].(map[string]any), "object") }},
			{"payload.object", reasonNotObject, func(m map[string]any) { m["payload"].(map[string]any)["object"] = "x" }},
		}
		for _, f := range requiredFields(name) {
			muts = append(muts,
				mutation{"payload.object." + f, reasonMissing, func(m map[string]any) { delete(objectOf(m), f) }},
				mutation{"payload.object." + f, reasonMissing, func(m map[string]any) { objectOf(m)[f] = nil }},
				mutation{"payload.object." + f, reasonEmpty, func(m map[string]any) { objectOf(m)[f] = "" }},
				mutation{"payload.object." + f, reasonNotString, func(m map[string]any) { objectOf(m)[f] = map[string]any{"a": 1} }},
			)
		}
		for _, mu := range muts {
			t.Run(name+"/"+mu.field+"/"+mu.reason, func(t *testing.T) {
				m := decodeGeneric(t, raw)
				mu.mutate(m)
				ev, err := parseNearSamples(mustJSON(t, m))
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("Parse = %v, %v; want a *ParseError", ev, err)
				}
				if pe.Field != mu.field || pe.Reason != mu.reason {
					t.Errorf("ParseError{Field %q, Reason %q}; want {%q, %q}", pe.Field, pe.Reason, mu.field, mu.reason)
				}
				wantEvent := name
				if mu.field == "event" {
					wantEvent = ""
				}
				if pe.Event != wantEvent {
					t.Errorf("ParseError.Event = %q; want %q", pe.Event, wantEvent)
				}
				msg := pe.Error()
				if !strings.Contains(msg, mu.field) || (wantEvent != "" && !strings.Contains(msg, wantEvent)) {
					t.Errorf("Error() = %q; want it to name %q and %q", msg, wantEvent, mu.field)
				}
			})
		}
	}
}

func TestParseUnknownName(t *testing.T) {
	m := decodeGeneric(t, loadSample(t, EngagementUserAnswered))
	m["event"] = "contact_center.engagement_teleported"
	delete(objectOf(m), "engagement_id") // would be required if the name were known
	objectOf(m)["date_time_ms"] = "not a time"
	ev, err := parseNearSamples(mustJSON(t, m))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if ev.Known || ev.Engagement != nil || ev.Name != "contact_center.engagement_teleported" {
		t.Errorf("Known %v, Engagement %v, Name %q; want false, nil, the name", ev.Known, ev.Engagement, ev.Name)
	}
	if !ev.Time.Equal(ev.TS) {
		t.Errorf("Time = %v; want TS %v when the object's time is bad", ev.Time, ev.TS)
	}
	if ev.Key == "" {
		t.Error("Key is empty")
	}

	// The envelope is still required, and the unknown name is not echoed.
	delete(m, "event_ts")
	m["event"] = "x-secretish-name-" + strings.Repeat("z", 200)
	_, err = parseNearSamples(mustJSON(t, m))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Field != "event_ts" || pe.Event != "" {
		t.Fatalf("err = %v; want ParseError on event_ts without the name", err)
	}
	if strings.Contains(err.Error(), "secretish") {
		t.Errorf("error %q echoes the unknown name", err)
	}
}

func TestParseExtraKnownNames(t *testing.T) {
	tests := []struct {
		name   string
		object string
		check  func(*Event) bool
	}{
		{TaskReservationRescinded, `{"task_reservation_id":"r1","task_id":"t1"}`, func(e *Event) bool { return e.Reservation != nil && e.Reservation.ReservationID == "r1" }},
		{TaskEnteredQueue, `{"task_id":"t1","cc_queue_id":"q1"}`, func(e *Event) bool { return e.Task != nil && e.Task.QueueID == "q1" }},
		{TaskExitedQueue, `{"task_id":"t1"}`, func(e *Event) bool { return e.Task != nil && e.Task.TaskID == "t1" }},
		{RecordingStarted, `{"engagement_id":"e1"}`, func(e *Event) bool { return e.Engagement == nil && e.Task == nil }},
		{RecordingPaused, `{}`, func(e *Event) bool { return true }},
		{RecordingResumed, `{}`, func(e *Event) bool { return true }},
		{RecordingStopped, `{}`, func(e *Event) bool { return true }},
		{RecordingCompleted, `{"recording_url":"https://x/y?token=abc"}`, func(e *Event) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fmt.Sprintf(`{"event":%q,"event_ts":1764410400000,"payload":{"account_id":"a","object":%s}}`, tt.name, tt.object)
			ev, err := parseNearSamples([]byte(raw))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !ev.Known || !tt.check(ev) {
				t.Errorf("Known %v, event %+v: check failed", ev.Known, ev)
			}
		})
	}
	if got := len(KnownNames()); got != 44 {
		t.Errorf("len(KnownNames()) = %d; want 36 samples + 8 extras", got)
	}
}

func TestParseDateTimeForms(t *testing.T) {
	base := decodeGeneric(t, loadSample(t, UserSignedIn))
	want := time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		set   map[string]any
		unset []string
		want  time.Time
	}{
		{"date_time", nil, nil, want},
		{"date-time", map[string]any{"date-time": "2025-11-29T10:00:00Z"}, []string{"date_time"}, want},
		{"both prefers date_time", map[string]any{"date-time": "2025-11-29T11:00:00Z"}, nil, want},
		{"offset", map[string]any{"date_time": "2025-11-29T11:00:00+01:00"}, nil, want},
		{"date_time_ms string", map[string]any{"date_time_ms": "2025-11-29T10:00:00.250Z"}, nil, want.Add(250 * time.Millisecond)},
		{"date_time_ms number", map[string]any{"date_time_ms": want.UnixMilli() + 7}, nil, want.Add(7 * time.Millisecond)},
		{"empty date_time falls back to event_ts", map[string]any{"date_time": ""}, nil, time.UnixMilli(1764410400000).UTC()},
		{"none falls back to event_ts", nil, []string{"date_time"}, time.UnixMilli(1764410400000).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := decodeGeneric(t, mustJSON(t, base))
			for k, v := range tt.set {
				objectOf(m)[k] = v
			}
			for _, k := range tt.unset {
				delete(objectOf(m), k)
			}
			ev, err := parseNearSamples(mustJSON(t, m))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !ev.Time.Equal(tt.want) || ev.Time.Location() != time.UTC {
				t.Errorf("Time = %v; want %v UTC", ev.Time, tt.want)
			}
		})
	}

	for _, field := range objectTimeFields {
		for _, bad := range []any{"29/11/2025 10:00", "2025-11-29T10:00:00", true, map[string]any{}} {
			t.Run(fmt.Sprintf("bad %s %v", field, bad), func(t *testing.T) {
				m := decodeGeneric(t, mustJSON(t, base))
				objectOf(m)[field] = bad
				_, err := parseNearSamples(mustJSON(t, m))
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Field != "payload.object."+field {
					t.Fatalf("err = %v; want a ParseError naming payload.object.%s", err, field)
				}
				if s, ok := bad.(string); ok && strings.Contains(err.Error(), s) {
					t.Errorf("error %q carries the value", err)
				}
			})
		}
	}
}

func TestParseTimePrecedence(t *testing.T) {
	// Tasks carry last_modified_time_ms and created_time_ms: the former wins.
	ev, err := parseNearSamples(loadSample(t, TaskCreated))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 11, 29, 10, 0, 11, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("task Time = %v; want last_modified_time_ms %v", ev.Time, want)
	}
	// date_time_ms beats last_modified_time_ms.
	m := decodeGeneric(t, loadSample(t, TaskCreated))
	objectOf(m)["date_time_ms"] = "2025-11-29T09:00:00.000Z"
	ev, err = parseNearSamples(mustJSON(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 11, 29, 9, 0, 0, 0, time.UTC); !ev.Time.Equal(want) {
		t.Errorf("Time = %v; want date_time_ms %v", ev.Time, want)
	}
}

func TestParseLoginType(t *testing.T) {
	for _, lt := range []any{100, "100", json.Number("100")} {
		m := decodeGeneric(t, loadSample(t, UserSignedIn))
		objectOf(m)["login_type"] = lt
		ev, err := parseNearSamples(mustJSON(t, m))
		if err != nil {
			t.Fatalf("login_type %#v: %v", lt, err)
		}
		if ev.User.LoginType != "100" {
			t.Errorf("login_type %#v: LoginType = %q; want \"100\"", lt, ev.User.LoginType)
		}
	}
}

func TestParseLenientOptionalFields(t *testing.T) {
	m := decodeGeneric(t, loadSample(t, TaskCreated))
	objectOf(m)["flow_name"] = map[string]any{"nested": true}
	objectOf(m)["task_priority"] = "7"
	objectOf(m)["caller_number"] = 15550100142
	ev, err := parseNearSamples(mustJSON(t, m))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if ev.Task.FlowName != "" || ev.Task.Priority != 7 || ev.Task.CallerNumber != "15550100142" {
		t.Errorf("Task = %+v; want FlowName \"\", Priority 7, CallerNumber as text", ev.Task)
	}
}

func TestParseCopiesInput(t *testing.T) {
	raw := loadSample(t, EngagementUserAnswered)
	ev, err := parseNearSamples(raw)
	if err != nil {
		t.Fatal(err)
	}
	before := string(ev.Raw)
	for i := range raw {
		raw[i] = 'x'
	}
	if string(ev.Raw) != before || !json.Valid(ev.Object) {
		t.Error("Event shares memory with Parse's input")
	}
}

func TestParseGarbage(t *testing.T) {
	big := `{"event":"` + EngagementUserAnswered + `","event_ts":` + strconv.FormatInt(samplesTS, 10) + `,"payload":{"account_id":"a","object":{"engagement_id":"e","user_id":"u","x":"` + strings.Repeat("A", 4<<20) + `"}}}`
	inputs := map[string]string{
		"empty":          "",
		"space":          "   ",
		"null":           "null",
		"array":          "[]",
		"number":         "42",
		"string":         `"event"`,
		"truncated":      `{"event":"user.signed_in","event_ts":`,
		"trailing":       `{"event":"x","event_ts":1,"payload":{"account_id":"a","object":{}}} {}`,
		"deep":           strings.Repeat("[", 200000),
		"deep object":    `{"event":"x","event_ts":1,"payload":{"account_id":"a","object":` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000) + `}}`,
		"invalid utf8":   "{\"event\":\"\xff\xfe\",\"event_ts\":1}",
		"nul":            "\x00",
		"ts overflow":    `{"event":"x","event_ts":99999999999999999999,"payload":{"account_id":"a","object":{}}}`,
		"ts negative":    `{"event":"x","event_ts":-5,"payload":{"account_id":"a","object":{}}}`,
		"object null":    `{"event":"x","event_ts":1,"payload":{"account_id":"a","object":null}}`,
		"payload string": `{"event":"x","event_ts":1,"payload":"p"}`,
		"huge":           big,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			ev, err := parseNearSamples([]byte(in))
			if name == "huge" && err != nil {
				t.Fatalf("a 4 MiB event: %v", err)
			}
			if err == nil {
				if ev == nil || ev.Name == "" || ev.Key == "" {
					t.Errorf("Parse = %+v, nil; want a complete event or an error", ev)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("err = %T %v; want a *ParseError", err, err)
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes long; values leak into it?", len(err.Error()))
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range sampleNames(f) {
		f.Add(loadSample(f, name))
	}
	f.Add([]byte(`{"event":"user.signed_in","event_ts":1764410400000,"payload":{"account_id":"a","object":{"id":"u","login_type":"100","date-time":"2025-11-29T10:00:00Z"}}}`))
	f.Add([]byte(`{"event":"contact_center.engagement_user_answered","event_ts":1764410400000,"payload":{"account_id":"a","object":{"engagement_id":"e\ud800","user_id":"u","n":[{"a":[[{}]]}],"date_time_ms":"0001-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`null`))
	win := nearSamples.withDefaults().window()
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := parseNearSamples(raw)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %T; want *ParseError", err)
			}
			if pe.Class == "" || pe.ReasonClass() == ClassOther {
				t.Fatalf("error %v has no class", err)
			}
			if event, field := pe.Labels(); event != "unknown" && !IsKnown(event) || !labelFields[field] && field != "other" {
				t.Fatalf("Labels = %q, %q: not in the fixed sets", event, field)
			}
			return
		}
		if ev.Name == "" || len(ev.Key) != 32 || ev.AccountID == "" || ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Fatalf("incomplete event: %+v", ev)
		}
		if ev.Known != IsKnown(ev.Name) {
			t.Fatalf("Known = %v for %q", ev.Known, ev.Name)
		}
		// Accepted times are in the window and marshal; accepted text is
		// UTF-8; the nesting is bounded.
		if !win.plausible(ev.Time) || !win.plausible(ev.TS) {
			t.Fatalf("Time %v, TS %v outside %v", ev.Time, ev.TS, win)
		}
		if _, err := json.Marshal(ev.Time); err != nil {
			t.Fatalf("Time does not marshal: %v", err)
		}
		if !utf8.Valid(raw) || !utf8.ValidString(ev.Name) || !utf8.ValidString(ev.AccountID) {
			t.Fatalf("accepted text that is not UTF-8: %q", raw)
		}
		if checkShape(raw, DefaultMaxDepth) != nil {
			t.Fatalf("accepted a shape checkShape refuses: %q", raw)
		}
	})
}
