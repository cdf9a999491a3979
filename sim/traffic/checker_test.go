package traffic

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is one event the model emitted.
type recorded struct {
	name      string
	at        time.Time
	object    map[string]any
	delivered int
}

// recorder is an Emitter that captures every event. deliver, if set, decides the delivered
// count (default 1).
type recorder struct {
	mu      sync.Mutex
	events  []recorded
	deliver func(name string, object map[string]any) int
	// inFlight tracks engagements whose emit is running, to catch concurrent emits.
	inFlight   map[string]bool
	concurrent []string
}

func (r *recorder) emit(name string, at time.Time, object map[string]any) int {
	eng, _ := object["engagement_id"].(string)
	r.mu.Lock()
	if eng != "" {
		if r.inFlight == nil {
			r.inFlight = make(map[string]bool)
		}
		if r.inFlight[eng] {
			r.concurrent = append(r.concurrent, eng)
		}
		r.inFlight[eng] = true
	}
	r.mu.Unlock()
	d := 1
	if r.deliver != nil {
		d = r.deliver(name, object)
	}
	r.mu.Lock()
	r.events = append(r.events, recorded{name: name, at: at, object: object, delivered: d})
	if eng != "" {
		delete(r.inFlight, eng)
	}
	r.mu.Unlock()
	return d
}

func (r *recorder) snapshot() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// checkAll runs every independent check of the emitted events against the model's Truth.
func checkAll(t *testing.T, m *Model, r *recorder) Truth {
	t.Helper()
	events := r.snapshot()
	truth := m.Truth()
	r.mu.Lock()
	if len(r.concurrent) > 0 {
		t.Errorf("concurrent emits for engagements %v", r.concurrent)
	}
	r.mu.Unlock()
	checkFieldSets(t, events)
	checkTimes(t, events)
	checkStories(t, events)
	checkNoDoubleBooking(t, events)
	checkCounters(t, events, truth)
	want := replaySegments(t, events)
	if !reflect.DeepEqual(truth.Segments, want) {
		t.Errorf("Truth.Segments differ from the replay of the emitted events:\n%s", diffSegments(truth.Segments, want))
	}
	return truth
}

// --- field sets -------------------------------------------------------------------------

var (
	samplesOnce sync.Once
	samples     map[string]map[string]any // event name -> payload.object
	samplesErr  error
)

func loadSamples(t *testing.T) map[string]map[string]any {
	t.Helper()
	samplesOnce.Do(func() {
		files, err := filepath.Glob("../../events/testdata/samples/*.json")
		if err != nil || len(files) == 0 {
			samplesErr = fmt.Errorf("no samples found: %v", err)
			return
		}
		samples = make(map[string]map[string]any)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				samplesErr = err
				return
			}
			var env struct {
				Event   string `json:"event"`
				Payload struct {
					Object map[string]any `json:"object"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(b, &env); err != nil {
				samplesErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			samples[env.Event] = env.Payload.Object
		}
	})
	if samplesErr != nil {
		t.Fatalf("load samples: %v", samplesErr)
	}
	return samples
}

// jsonKind names the JSON type of v.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// checkFieldSets compares each event's object with the sample of its name: same keys (the one
// documented exception: an abandoned caller's consumer_ended has no user_id and
// user_display_name), same JSON type per key, one level deep into nested objects.
func checkFieldSets(t *testing.T, events []recorded) {
	t.Helper()
	s := loadSamples(t)
	reported := map[string]bool{}
	for _, e := range events {
		sample, ok := s[e.name]
		if !ok {
			if !reported[e.name] {
				t.Errorf("event %s has no sample", e.name)
				reported[e.name] = true
			}
			continue
		}
		b, err := json.Marshal(e.object)
		if err != nil {
			t.Fatalf("%s: marshal: %v", e.name, err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: unmarshal: %v", e.name, err)
		}
		wantKeys := keys(sample)
		if e.name == evConsumerEnded {
			if _, hasUser := got["user_id"]; !hasUser {
				wantKeys = slices.DeleteFunc(wantKeys, func(k string) bool { return k == "user_id" || k == "user_display_name" })
			}
		}
		if gk := keys(got); !slices.Equal(gk, wantKeys) {
			key := e.name + "/keys"
			if !reported[key] {
				t.Errorf("%s: keys\n got %v\nwant %v", e.name, gk, wantKeys)
				reported[key] = true
			}
			continue
		}
		for k, v := range got {
			if gk, wk := jsonKind(v), jsonKind(sample[k]); gk != wk {
				key := e.name + "/" + k
				if !reported[key] {
					t.Errorf("%s: %s is a %s, sample has a %s", e.name, k, gk, wk)
					reported[key] = true
				}
			}
			if nested, ok := v.(map[string]any); ok {
				if gk, wk := keys(nested), keys(sample[k].(map[string]any)); !slices.Equal(gk, wk) {
					t.Errorf("%s: %s keys got %v want %v", e.name, k, gk, wk)
				}
			}
		}
	}
}

func keys(m map[string]any) []string {
	k := make([]string, 0, len(m))
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// --- times ------------------------------------------------------------------------------

// checkTimes: at is UTC at ms resolution, matches the object's time fields, and strictly
// increases within each engagement.
func checkTimes(t *testing.T, events []recorded) {
	t.Helper()
	last := map[string]time.Time{}
	bad := 0
	for _, e := range events {
		if !e.at.Equal(e.at.Truncate(time.Millisecond)) || e.at.Location() != time.UTC {
			t.Errorf("%s: at %v is not UTC at millisecond resolution", e.name, e.at)
		}
		if v, ok := e.object["date_time_ms"]; ok && v != e.at.Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("%s: date_time_ms %v, at %v", e.name, v, e.at)
		}
		if v, ok := e.object["date_time"]; ok && v != e.at.Format(time.RFC3339) {
			t.Errorf("%s: date_time %v, at %v", e.name, v, e.at)
		}
		if v, ok := e.object["last_modified_time_ms"]; ok && v != e.at.Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("%s: last_modified_time_ms %v, at %v", e.name, v, e.at)
		}
		eng, _ := e.object["engagement_id"].(string)
		if eng == "" {
			continue
		}
		if p, ok := last[eng]; ok && !e.at.After(p) && bad < 5 {
			bad++
			t.Errorf("engagement %s: %s at %v, not after the previous event at %v", eng, e.name, e.at, p)
		}
		last[eng] = e.at
	}
}

// --- stories ----------------------------------------------------------------------------

const (
	reHold     = `(engagement_user_hold engagement_user_unhold )?`
	reTransfer = `(engagement_transfer_initiated engagement_transfer_queued engagement_transfer_reserved ` +
		`engagement_transfer_accepted engagement_user_answered engagement_transfer_completed ` +
		`engagement_user_ended engagement_wrap_up_started ` + reHold + `)?`
	reEnd = `(engagement_user_hold |engagement_user_ended )?engagement_consumer_ended engagement_ended ` +
		`engagement_wrap_up_started engagement_wrap_up_ended `
)

var (
	storyInbound = regexp.MustCompile(`^engagement_started task_created task_reservation_created ` +
		`task_reservation_accepted task_updated engagement_user_answered ` + reHold + reTransfer + reHold +
		reEnd + `task_completed task_reservation_completed $`)
	storyAbandoned = regexp.MustCompile(`^engagement_started task_created engagement_consumer_ended-nouser ` +
		`engagement_ended task_canceled $`)
	storyOutbound = regexp.MustCompile(`^engagement_started engagement_consumer_notified ` +
		`engagement_consumer_answered ` + reHold + reEnd + `$`)
)

// byEngagement groups the events that carry an engagement_id, in emit order.
func byEngagement(events []recorded) (map[string][]recorded, []string) {
	m := map[string][]recorded{}
	var order []string
	for _, e := range events {
		eng, _ := e.object["engagement_id"].(string)
		if eng == "" {
			continue
		}
		if _, ok := m[eng]; !ok {
			order = append(order, eng)
		}
		m[eng] = append(m[eng], e)
	}
	return m, order
}

// checkStories matches each engagement's event sequence against the documented stories. In a
// transferred call the transferring agent's wrap_up_ended, task_completed and
// task_reservation_completed (original task) may fall anywhere after its user_ended; they are
// checked for order and then taken out before matching.
func checkStories(t *testing.T, events []recorded) {
	t.Helper()
	groups, order := byEngagement(events)
	failures := 0
	for _, eng := range order {
		evs := groups[eng]
		var xfer *recorded
		for i := range evs {
			if evs[i].name == evTransferCompleted {
				xfer = &evs[i]
			}
		}
		if xfer != nil {
			old, _ := xfer.object["user_id"].(string)
			origTask, _ := xfer.object["task_id"].(string)
			var late []string
			kept := evs[:0:0]
			seenOldEnded := false
			for _, e := range evs {
				if e.name == evUserEnded && e.object["user_id"] == old {
					seenOldEnded = true
				}
				isLate := (e.name == evWrapUpEnded && e.object["user_id"] == old) ||
					(e.name == evTaskCompleted && e.object["task_id"] == origTask) ||
					(e.name == evReservationCompleted && e.object["task_id"] == origTask)
				if isLate {
					if !seenOldEnded {
						t.Errorf("engagement %s: %s of the transferring agent before its user_ended", eng, e.name)
					}
					late = append(late, e.name)
					continue
				}
				kept = append(kept, e)
			}
			if want := []string{evWrapUpEnded, evTaskCompleted, evReservationCompleted}; !slices.Equal(late, want) {
				t.Errorf("engagement %s: transferring agent's wrap-up end events %v, want %v", eng, late, want)
			}
			evs = kept
		}
		var b strings.Builder
		for _, e := range evs {
			b.WriteString(strings.TrimPrefix(e.name, "contact_center."))
			if e.name == evConsumerEnded {
				if _, ok := e.object["user_id"]; !ok {
					b.WriteString("-nouser")
				}
			}
			b.WriteByte(' ')
		}
		seq := b.String()
		dir, _ := evs[0].object["engagement_direction"].(string)
		var ok bool
		switch {
		case dir == "outbound":
			ok = storyOutbound.MatchString(seq)
		case strings.Contains(seq, "-nouser"):
			ok = storyAbandoned.MatchString(seq)
		default:
			ok = storyInbound.MatchString(seq)
		}
		if !ok && failures < 5 {
			failures++
			t.Errorf("engagement %s (%s): unexpected story:\n%s", eng, dir, seq)
		}
		// Who is on the leg: the consumer_ended names the agent holding the call, and no
		// agent answers twice in one engagement.
		answered := map[string]int{}
		for _, e := range evs {
			if e.name == evUserAnswered || e.name == evConsumerAnswered {
				answered[e.object["user_id"].(string)]++
			}
			if to, ok := e.object["transfer_to_user_id"]; ok && to == e.object["user_id"] {
				t.Errorf("engagement %s: transfer to the same agent %v", eng, to)
			}
		}
		for u, n := range answered {
			if n > 1 {
				t.Errorf("engagement %s: agent %s answered %d times", eng, u, n)
			}
		}
	}
}

// --- agents -----------------------------------------------------------------------------

// checkNoDoubleBooking: an agent is held by an engagement from the first event naming them
// (user_id, assigned_user_id, transfer_to_user_id) until their release event
// (task_reservation_completed naming them; for outbound calls their wrap_up_ended), and is
// never named by another engagement meanwhile.
func checkNoDoubleBooking(t *testing.T, events []recorded) {
	t.Helper()
	holder := map[string]string{} // user id -> engagement
	errs := 0
	for _, e := range events {
		eng, _ := e.object["engagement_id"].(string)
		if eng == "" {
			continue
		}
		for _, k := range []string{"user_id", "assigned_user_id", "transfer_to_user_id"} {
			u, _ := e.object[k].(string)
			if u == "" {
				continue
			}
			if h, ok := holder[u]; ok && h != eng && errs < 5 {
				errs++
				t.Errorf("agent %s named by %s in engagement %s while on engagement %s", u, e.name, eng, h)
			}
			holder[u] = eng
		}
		switch {
		case e.name == evReservationCompleted:
			delete(holder, e.object["assigned_user_id"].(string))
		case e.name == evWrapUpEnded && e.object["engagement_direction"] == "outbound":
			delete(holder, e.object["user_id"].(string))
		}
	}
}

// --- counters ---------------------------------------------------------------------------

func checkCounters(t *testing.T, events []recorded, truth Truth) {
	t.Helper()
	var want Truth
	answered := map[string]bool{}
	for _, e := range events {
		want.Events++
		if e.delivered <= 0 {
			want.Undelivered++
		}
		switch e.name {
		case evEngagementStarted:
			want.Calls++
		case evUserAnswered, evConsumerAnswered:
			answered[e.object["engagement_id"].(string)] = true
		case evUserHold:
			want.Holds++
		case evTransferCompleted:
			want.Transfers++
		case evConsumerEnded:
			if _, ok := e.object["user_id"]; !ok {
				want.Abandoned++
			}
		}
	}
	want.Answered = len(answered)
	got := truth
	got.Segments = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Truth counters\n got %+v\nwant %+v (from the emitted events)", got, want)
	}
}

// --- segments ---------------------------------------------------------------------------

var segmentGrammar = regexp.MustCompile(`^start( pause resume)*( pause)?( stop)?$`)

// replaySegments derives the segments from the emitted events alone, by the rules of
// DESIGN.md §5: user_answered and consumer_answered (with an agent) start, hold pauses,
// unhold resumes, user_ended stops, consumer_ended and engagement_ended stop every open
// segment of the engagement. An undelivered event marks the segments it acts on.
func replaySegments(t *testing.T, events []recorded) []Segment {
	t.Helper()
	segs := map[string]*Segment{}
	open := map[string][]string{} // engagement -> open segment ids, in start order
	act := func(id, action string, delivered int) {
		s := segs[id]
		if s == nil {
			t.Errorf("segment %s: %s before start", id, action)
			return
		}
		if s.Complete {
			t.Errorf("segment %s: %s after stop", id, action)
			return
		}
		s.Actions = append(s.Actions, action)
		if action == "stop" {
			s.Complete = true
		}
		if delivered <= 0 {
			s.Undelivered = true
		}
	}
	for _, e := range events {
		eng, _ := e.object["engagement_id"].(string)
		user, _ := e.object["user_id"].(string)
		id := eng + "/" + user
		switch e.name {
		case evUserAnswered, evConsumerAnswered:
			if user == "" {
				continue
			}
			if segs[id] != nil {
				t.Errorf("segment %s started twice", id)
				continue
			}
			segs[id] = &Segment{SegmentID: id, EngagementID: eng, UserID: user, Actions: []string{"start"}, Undelivered: e.delivered <= 0}
			open[eng] = append(open[eng], id)
		case evUserHold:
			act(id, "pause", e.delivered)
		case evUserUnhold:
			act(id, "resume", e.delivered)
		case evUserEnded:
			act(id, "stop", e.delivered)
			open[eng] = slices.DeleteFunc(open[eng], func(x string) bool { return x == id })
		case evConsumerEnded, evEngagementEnded:
			for _, o := range open[eng] {
				act(o, "stop", e.delivered)
			}
			delete(open, eng)
		}
	}
	out := make([]Segment, 0, len(segs))
	for _, s := range segs {
		if !segmentGrammar.MatchString(strings.Join(s.Actions, " ")) {
			t.Errorf("segment %s: actions %v break the grammar", s.SegmentID, s.Actions)
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SegmentID < out[j].SegmentID })
	return out
}

func diffSegments(got, want []Segment) string {
	var b strings.Builder
	g := map[string]Segment{}
	for _, s := range got {
		g[s.SegmentID] = s
	}
	w := map[string]Segment{}
	for _, s := range want {
		w[s.SegmentID] = s
	}
	n := 0
	for id, ws := range w {
		gs, ok := g[id]
		if !reflect.DeepEqual(gs, ws) && n < 10 {
			n++
			if !ok {
				fmt.Fprintf(&b, "  missing in Truth: %+v\n", ws)
			} else {
				fmt.Fprintf(&b, "  %s:\n    truth  %+v\n    replay %+v\n", id, gs, ws)
			}
		}
	}
	for id, gs := range g {
		if _, ok := w[id]; !ok && n < 10 {
			n++
			fmt.Fprintf(&b, "  only in Truth: %+v\n", gs)
		}
	}
	return b.String()
}
