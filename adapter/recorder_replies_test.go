package adapter_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/recorder"
)

// recorderFront serves the lab's nodes in front of a reference recorder
// that a test can replace (a restart without its state file) and whose
// open-recordings reply it can override (a recorder that answers GET
// /v1/recordings badly).
type recorderFront struct {
	rec       atomic.Pointer[recorder.Recorder]
	openReply atomic.Pointer[string]
}

func (f *recorderFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if body := f.openReply.Load(); body != nil && r.Method == http.MethodGet && r.URL.Path == rcapi.PathRecordings {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, *body)
		return
	}
	f.rec.Load().Handler().ServeHTTP(w, r)
}

// front puts a recorderFront before the lab's recorder; call it before any
// node starts. l.Rec stays the recorder behind it (restart replaces both).
func (l *lab) front(t *testing.T) *recorderFront {
	t.Helper()
	f := &recorderFront{}
	f.rec.Store(l.Rec)
	ts := httptest.NewServer(f)
	l.OnClose(ts.Close)
	l.RecTS = ts
	return f
}

// restart replaces the recorder behind f with a new in-memory one: a
// recorder restarted without a state file, which forgot its fence, its
// command ids and its segments.
func (l *lab) restart(f *recorderFront) {
	l.Rec = recorder.New(l.Log.With().Str("component", "sim-recorder").Logger())
	f.rec.Store(l.Rec)
}

// callPart sends one ordinary call on eng (one agent, usr-<eng>) to sub-a and
// sub-b: started and answered at now, the leg ended at now+1s.
func (l *lab) callPart(eng string, now time.Time, end bool) string {
	l.T.Helper()
	both := []string{"sub-a", "sub-b"}
	user := "usr-" + eng
	if !end {
		l.sendEvent("contact_center.engagement_started", eng, "", both, now, nil)
		l.sendEvent("contact_center.engagement_user_answered", eng, user, both, now.Add(100*time.Millisecond), nil)
	} else {
		l.sendEvent("contact_center.engagement_user_ended", eng, user, both, now, nil)
		l.sendEvent("contact_center.engagement_ended", eng, "", both, now.Add(100*time.Millisecond), nil)
	}
	return eng + "/" + user
}

// waitApplied waits until the recorder has applied want on seg, then
// checks that it applied exactly want.
func (l *lab) waitApplied(t *testing.T, seg string, want ...string) {
	t.Helper()
	var got []string
	labtest.WaitFor(t, 15*time.Second, "segment "+seg+" to be "+strings.Join(want, ","), func() bool {
		got = l.applied(seg)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("segment %s: applied %v, want %v", seg, got, want)
	}
}

// TestFinding2_EmptyOpenListKeepsSegmentsOpen: at a failover the recorder
// answers the open-recordings GET with a body that lists nothing (`{}`, a
// malformed reply, or a valid empty list). The new leader must not take
// the segment its log shows open as stopped: when the call ends, the stop
// reaches the recorder. The pair still leads, and a later ordinary call on
// another engagement is recorded exactly.
func TestFinding2_EmptyOpenListKeepsSegmentsOpen(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		malformed   bool
	}{
		{"malformed empty object", `{}`, true},
		{"valid empty list", `{"recordings":[]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			f := l.front(t)
			a := l.start("a")
			a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
			b := l.start("b")
			b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

			now := time.Now().UTC()
			seg := l.callPart("eng-f2", now, false)
			l.waitApplied(t, seg, rcapi.ActionStart)

			f.openReply.Store(&tc.reply)
			a.Stop()
			b.WaitRole(t, adapter.RoleLeader, 10*time.Second)
			l.callPart("eng-f2", now.Add(2*time.Second), true)
			l.waitApplied(t, seg, rcapi.ActionStart, rcapi.ActionStop)

			s := b.Status()
			if tc.malformed && s.RecorderBadReplies < 1 {
				t.Errorf("recorder_bad_replies = %d after a malformed open list; want ≥ 1", s.RecorderBadReplies)
			}
			if !tc.malformed && s.ReconcileUnlisted != 1 {
				t.Errorf("reconcile_unlisted_open = %d; want 1 (eng-f2's segment)", s.ReconcileUnlisted)
			}

			f.openReply.Store(nil)
			later := l.callPart("eng-f2-later", time.Now().UTC(), false)
			l.waitApplied(t, later, rcapi.ActionStart)
			l.callPart("eng-f2-later", time.Now().UTC().Add(time.Second), true)
			l.waitApplied(t, later, rcapi.ActionStart, rcapi.ActionStop)
			if s := b.Status(); s.Role != adapter.RoleLeader {
				t.Errorf("b is %s after the calls; want leader", s.Role)
			}
		})
	}
}

// TestRefusedStopIsAnAlert: the recorder refuses a stop (422). It is not
// "applied": the node counts it by action (status and
// zccadapter_commands_refused_total) and lists it in /status; the leader
// goes on and records a later call exactly.
func TestRefusedStopIsAnAlert(t *testing.T) {
	l := newLab(t)
	a := l.serve("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)

	now := time.Now().UTC()
	seg := l.callPart("eng-refused", now, false)
	l.waitApplied(t, seg, rcapi.ActionStart)
	l.Rec.FailNext(1, http.StatusUnprocessableEntity)
	l.callPart("eng-refused", now.Add(time.Second), true)
	labtest.WaitFor(t, 15*time.Second, "the refused stop in the status", func() bool { return a.Status().Refused[rcapi.ActionStop] >= 1 })

	s := a.Status()
	if len(s.RecentRefused) != 1 {
		t.Fatalf("commands_refused_recent = %+v; want the one refused stop", s.RecentRefused)
	}
	r := s.RecentRefused[0]
	if r.Action != rcapi.ActionStop || r.SegmentID != seg || r.EngagementID != "eng-refused" || r.CommandID == "" || r.Reason == "" || r.At.IsZero() {
		t.Errorf("refused entry %+v; want the stop of %s with its id and reason", r, seg)
	}
	_, body := get(t, a.URL+"/status")
	var doc adapter.StatusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Refused[rcapi.ActionStop] != 1 || len(doc.RecentRefused) != 1 || doc.RecentRefused[0].SegmentID != seg {
		t.Errorf("/status commands_refused %v, recent %+v; want the refused stop", doc.Refused, doc.RecentRefused)
	}
	_, metrics := get(t, a.URL+"/metrics")
	if v := samples(t, metrics)[`zccadapter_commands_refused_total{action="stop",node="a"}`]; v != 1 {
		t.Errorf(`zccadapter_commands_refused_total{action="stop"} = %v; want 1`, v)
	}

	later := l.callPart("eng-refused-later", time.Now().UTC(), false)
	l.waitApplied(t, later, rcapi.ActionStart)
	l.callPart("eng-refused-later", time.Now().UTC().Add(time.Second), true)
	l.waitApplied(t, later, rcapi.ActionStart, rcapi.ActionStop)
}

// TestRefusedListIsBounded: more refusals than MaxRecentRefused keep the
// last ones, and the count keeps all.
func TestRefusedListIsBounded(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)

	n := adapter.MaxRecentRefused + 3
	l.Rec.FailNext(n, http.StatusUnprocessableEntity)
	now := time.Now().UTC()
	for i := range n {
		l.callPart("eng-bound-"+string(rune('a'+i)), now.Add(time.Duration(i)*time.Millisecond), false)
	}
	labtest.WaitFor(t, 15*time.Second, "every refused start counted", func() bool { return a.Status().Refused[rcapi.ActionStart] >= int64(n) })
	s := a.Status()
	if len(s.RecentRefused) != adapter.MaxRecentRefused {
		t.Fatalf("commands_refused_recent holds %d; want %d", len(s.RecentRefused), adapter.MaxRecentRefused)
	}
	if last := s.RecentRefused[len(s.RecentRefused)-1]; last.EngagementID != "eng-bound-"+string(rune('a'+n-1)) {
		t.Errorf("the newest refused is %+v; want eng-bound-%c", last, rune('a'+n-1))
	}
}

// TestFinding8_RecorderFenceResetIsNoticed: the recorder is restarted
// without its state file mid-term, forgetting its epoch fence. The leader's
// periodic epoch re-announcement finds the recorder taking its epoch as
// new: it counts a fence reset (status and
// zccadapter_recorder_fence_resets_total), the claim has restored the
// fence, and commands go on being accepted.
func TestFinding8_RecorderFenceResetIsNoticed(t *testing.T) {
	l := newLab(t)
	f := l.front(t)
	a := l.serve("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	seg := l.callPart("eng-f8", time.Now().UTC(), false)
	l.waitApplied(t, seg, rcapi.ActionStart)
	if s := a.Status(); s.RecorderFenceResets != 0 {
		t.Fatalf("recorder_fence_resets = %d before the restart; want 0", s.RecorderFenceResets)
	}

	l.restart(f)
	labtest.WaitFor(t, 15*time.Second, "the fence reset noticed", func() bool { return a.Status().RecorderFenceResets >= 1 })
	if got := l.Rec.Ledger().Epoch; got != sa.Epoch {
		t.Errorf("the restarted recorder's fence is %d; want the term's epoch %d restored", got, sa.Epoch)
	}
	_, metrics := get(t, a.URL+"/metrics")
	if v := samples(t, metrics)[`zccadapter_recorder_fence_resets_total{node="a"}`]; v < 1 {
		t.Errorf("zccadapter_recorder_fence_resets_total = %v; want ≥ 1", v)
	}

	later := l.callPart("eng-f8-later", time.Now().UTC(), false)
	l.waitApplied(t, later, rcapi.ActionStart)
	l.callPart("eng-f8-later", time.Now().UTC().Add(time.Second), true)
	l.waitApplied(t, later, rcapi.ActionStart, rcapi.ActionStop)
	if s := a.Status(); s.Role != adapter.RoleLeader || s.Epoch != sa.Epoch {
		t.Errorf("a is %s at epoch %d; want still leader at %d", s.Role, s.Epoch, sa.Epoch)
	}
}
