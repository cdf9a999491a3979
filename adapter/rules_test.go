package adapter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

var t0 = time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)

// sample builds an event from the sample of its name, with the object's
// time set to t0+at and the given fields overridden ("" deletes a field).
func sample(t *testing.T, name string, at time.Duration, set map[string]string) *events.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "events", "testdata", "samples", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	obj := env["payload"].(map[string]any)["object"].(map[string]any)
	when := t0.Add(at)
	env["event_ts"] = when.UnixMilli()
	obj["date_time_ms"] = when.Format("2006-01-02T15:04:05.000Z")
	for k, v := range set {
		if v == "" {
			delete(obj, k)
		} else {
			obj[k] = v
		}
	}
	raw, _ := json.Marshal(env)
	// The samples' other times (created_time_ms, …) are of t0's day: read
	// them with the clock there.
	ev, err := events.ParseWith(raw, events.Limits{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return ev
}

const (
	started    = "contact_center.engagement_started"
	answered   = "contact_center.engagement_user_answered"
	cAnswered  = "contact_center.engagement_consumer_answered"
	hold       = "contact_center.engagement_user_hold"
	unhold     = "contact_center.engagement_user_unhold"
	userEnded  = "contact_center.engagement_user_ended"
	consEnded  = "contact_center.engagement_consumer_ended"
	engEnded   = "contact_center.engagement_ended"
	xferInit   = "contact_center.engagement_transfer_initiated"
	wrapUp     = "contact_center.engagement_wrap_up_started"
	taskCreate = "contact_center.task_created"
)

var ava = map[string]string{"user_id": "usr-Ava1Kx9", "user_display_name": "Ava Lindqvist"}
var bo = map[string]string{"user_id": "usr-Bo2Mz7q", "user_display_name": "Bo Okafor"}

const eng = "eng-4fK9qTz1Rw"

type step struct {
	ev   *events.Event
	want Outcome
}

// run applies the steps in order and returns "action segment" per command.
func run(t *testing.T, r Rules, steps []step) ([]string, *Engagement) {
	t.Helper()
	var e *Engagement
	var got []string
	for i, s := range steps {
		var cmds []rcapi.Command
		var out Outcome
		e, cmds, out = r.Apply(e, s.ev)
		if out != s.want {
			t.Errorf("step %d (%s): outcome %s, want %s", i, s.ev.Name, out, s.want)
		}
		for _, c := range cmds {
			if c.ID == "" || c.EngagementID != eng || c.At.IsZero() {
				t.Errorf("step %d: incomplete command %+v", i, c)
			}
			got = append(got, c.Action+" "+strings.TrimPrefix(c.SegmentID, eng+"/"))
		}
	}
	return got, e
}

func TestRulesTable(t *testing.T) {
	pause := Rules{PauseOnHold: true}
	cases := []struct {
		name  string
		rules Rules
		steps func(t *testing.T) []step
		want  []string
	}{
		{"inbound call with a hold paused", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, started, 0, nil), Applied},
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, hold, 10*time.Second, ava), Applied},
				{sample(t, unhold, 15*time.Second, ava), Applied},
				{sample(t, userEnded, 20*time.Second, ava), Applied},
				{sample(t, engEnded, 21*time.Second, nil), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "pause usr-Ava1Kx9", "resume usr-Ava1Kx9", "stop usr-Ava1Kx9"}},
		{"hold tagged when pause_on_hold is off", Rules{}, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, hold, 10*time.Second, ava), Applied},
				{sample(t, unhold, 15*time.Second, ava), Applied},
				{sample(t, userEnded, 20*time.Second, ava), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "tag usr-Ava1Kx9", "tag usr-Ava1Kx9", "stop usr-Ava1Kx9"}},
		{"warm transfer: tag, new leg starts, old leg stops, consumer end stops the rest", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, xferInit, 30*time.Second, nil), Applied},
				{sample(t, answered, 35*time.Second, bo), Applied},
				{sample(t, userEnded, 36*time.Second, ava), Applied},
				{sample(t, wrapUp, 37*time.Second, ava), Ignored},
				{sample(t, consEnded, 60*time.Second, bo), Applied},
				{sample(t, engEnded, 61*time.Second, nil), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "tag usr-Ava1Kx9", "start usr-Bo2Mz7q", "stop usr-Ava1Kx9", "stop usr-Bo2Mz7q"}},
		{"consumer hang-up stops every open leg, a paused one too", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, answered, 6*time.Second, bo), Applied},
				{sample(t, hold, 7*time.Second, bo), Applied},
				{sample(t, consEnded, 8*time.Second, ava), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "start usr-Bo2Mz7q", "pause usr-Bo2Mz7q", "stop usr-Ava1Kx9", "stop usr-Bo2Mz7q"}},
		{"outbound: consumer_answered with an agent starts; user_answered after it is a no-op", pause, func(t *testing.T) []step {
			out := map[string]string{"engagement_direction": "outbound", "user_id": "usr-Bo2Mz7q"}
			return []step{
				{sample(t, cAnswered, 5*time.Second, out), Applied},
				{sample(t, answered, 6*time.Second, map[string]string{"engagement_direction": "outbound", "user_id": "usr-Bo2Mz7q"}), Ignored},
				{sample(t, userEnded, 9*time.Second, map[string]string{"engagement_direction": "outbound", "user_id": "usr-Bo2Mz7q"}), Applied},
			}
		}, []string{"start usr-Bo2Mz7q", "stop usr-Bo2Mz7q"}},
		{"inbound consumer_answered does not start", pause, func(t *testing.T) []step {
			return []step{{sample(t, cAnswered, 5*time.Second, map[string]string{"engagement_direction": "inbound"}), Ignored}}
		}, nil},
		{"a late answer after the leg's end starts nothing", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, userEnded, 20*time.Second, ava), Applied},
				{sample(t, answered, 4*time.Second, ava), Late},
			}
		}, []string{"start usr-Ava1Kx9", "stop usr-Ava1Kx9"}},
		{"an answer after the engagement closed starts nothing", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, engEnded, 20*time.Second, nil), Applied},
				{sample(t, answered, 5*time.Second, ava), Late},
			}
		}, nil},
		{"hold, unhold and end before the answer wait (Early)", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, hold, 10*time.Second, ava), Early},
				{sample(t, unhold, 15*time.Second, ava), Early},
				{sample(t, userEnded, 20*time.Second, ava), Early},
			}
		}, nil},
		{"an unhold whose hold has not arrived waits", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, unhold, 15*time.Second, ava), Early},
				{sample(t, hold, 10*time.Second, ava), Applied},
				{sample(t, unhold, 15*time.Second, ava), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "pause usr-Ava1Kx9", "resume usr-Ava1Kx9"}},
		{"a hold older than the last unhold is late", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, hold, 10*time.Second, ava), Applied},
				{sample(t, unhold, 15*time.Second, ava), Applied},
				{sample(t, hold, 9*time.Second, ava), Late},
			}
		}, []string{"start usr-Ava1Kx9", "pause usr-Ava1Kx9", "resume usr-Ava1Kx9"}},
		{"the same agent answering again opens a second leg", pause, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Applied},
				{sample(t, userEnded, 10*time.Second, ava), Applied},
				{sample(t, answered, 30*time.Second, ava), Applied},
				{sample(t, userEnded, 40*time.Second, ava), Applied},
			}
		}, []string{"start usr-Ava1Kx9", "stop usr-Ava1Kx9", "start usr-Ava1Kx9/2", "stop usr-Ava1Kx9/2"}},
		{"a stale answer starts no recording", Rules{MaxEventAge: 10 * time.Minute, Now: func() time.Time { return t0.Add(20 * time.Minute) }}, func(t *testing.T) []step {
			return []step{
				{sample(t, answered, 5*time.Second, ava), Stale},
				{sample(t, userEnded, 20*time.Second, ava), Early},
			}
		}, nil},
		{"task events enrich without commands", pause, func(t *testing.T) []step {
			return []step{{sample(t, taskCreate, 0, nil), Applied}}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := run(t, tc.rules, tc.steps(t))
			if !slices.Equal(got, tc.want) {
				t.Errorf("commands:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestApplyExpiredRemembersAnUnstartedLeg(t *testing.T) {
	r := Rules{PauseOnHold: true}
	e, out := r.ApplyExpired(nil, sample(t, userEnded, 20*time.Second, ava))
	if out != Late {
		t.Fatalf("outcome %s, want late", out)
	}
	_, cmds, out := r.Apply(e, sample(t, answered, 5*time.Second, ava))
	if out != Late || len(cmds) != 0 {
		t.Fatalf("late answer after an expired end: outcome %s, %d commands; want late, none", out, len(cmds))
	}
}

// TestCommandIDsIndependentOfTrigger: both nodes, whatever event triggered
// a fact, compute the same id, so a re-sent command is a duplicate.
func TestCommandIDsIndependentOfTrigger(t *testing.T) {
	r := Rules{PauseOnHold: true}
	out := map[string]string{"engagement_direction": "outbound", "user_id": "usr-Bo2Mz7q"}
	_, c1, _ := r.Apply(nil, sample(t, cAnswered, 5*time.Second, out))
	_, c2, _ := r.Apply(nil, sample(t, answered, 6*time.Second, out))
	if len(c1) != 1 || len(c2) != 1 || c1[0].ID != c2[0].ID {
		t.Fatalf("start ids differ by trigger: %v vs %v", c1, c2)
	}
	// The second pause of a segment differs from the first.
	e, _, _ := r.Apply(nil, sample(t, answered, 5*time.Second, ava))
	_, p1, _ := r.Apply(e, sample(t, hold, 6*time.Second, ava))
	r.Apply(e, sample(t, unhold, 7*time.Second, ava))
	_, p2, _ := r.Apply(e, sample(t, hold, 8*time.Second, ava))
	if p1[0].ID == p2[0].ID {
		t.Fatal("two pauses of one segment share an id")
	}
}

// TestRulesEverySampleIsSafe applies every sample to an empty and to a
// busy engagement: no panic, and commands only for known engagement events.
func TestRulesEverySampleIsSafe(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "events", "testdata", "samples", "*.json"))
	if len(files) != 36 {
		t.Fatalf("found %d samples, want 36", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		r := Rules{PauseOnHold: true}
		busy, _, _ := r.Apply(nil, sample(t, answered, 0, ava))
		for _, e := range []*Engagement{nil, busy} {
			_, cmds, _ := r.Apply(e, sample(t, name, time.Second, nil))
			if !strings.HasPrefix(name, "contact_center.engagement_") && len(cmds) > 0 {
				t.Errorf("%s produced commands: %v", name, cmds)
			}
		}
	}
}

func TestAgentUpdatesFromRosterEvents(t *testing.T) {
	cases := map[string]string{
		"contact_center.user_login":          AgentLoggedIn,
		"contact_center.user_logout":         AgentLoggedOut,
		"contact_center.user_status_changed": "status:Ready",
		"user.signed_in":                     AgentSignedIn,
		"user.signed_out":                    AgentSignedOut,
		"user.presence_status_updated":       "presence:Available",
	}
	ids := map[string]bool{}
	for name, state := range cases {
		u, ok := AgentUpdate(sample(t, name, time.Second, nil))
		if !ok || u.State != state || u.AgentID != "usr-Ava1Kx9" || u.ID == "" || u.At.IsZero() {
			t.Errorf("%s: %+v, %v; want state %s for usr-Ava1Kx9", name, u, ok, state)
		}
		if ids[u.ID] {
			t.Errorf("%s: id %s repeats", name, u.ID)
		}
		ids[u.ID] = true
	}
	if _, ok := AgentUpdate(sample(t, answered, 0, ava)); ok {
		t.Error("an engagement event produced an agent update")
	}
	a, _ := AgentUpdate(sample(t, "contact_center.user_login", time.Second, nil))
	b, _ := AgentUpdate(sample(t, "contact_center.user_login", time.Second, nil))
	if a.ID != b.ID {
		t.Error("the same login on two subscriptions gave two ids")
	}
}

func TestBoundedNamesCutOnARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := bounded(long)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.HasPrefix(long, got) || len(got) < maxNameBytes-3 {
		t.Fatalf("bounded: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if s := "Agent Smith"; bounded(s) != s {
		t.Fatalf("bounded(%q) = %q", s, bounded(s))
	}
}
