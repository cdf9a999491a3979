package adapter_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/faultnet"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/rcapi"
)

// call sends one whole call of engagement eng (agent user) to both
// subscriptions: started, answered, hold, unhold, ended, from at on.
func (l *lab) call(eng, user string, at time.Time) {
	l.T.Helper()
	both := []string{"sub-a", "sub-b"}
	l.sendEvent("contact_center.engagement_started", eng, "", both, at, nil)
	l.sendEvent("contact_center.engagement_user_answered", eng, user, both, at.Add(time.Second), nil)
	l.sendEvent("contact_center.engagement_user_hold", eng, user, both, at.Add(2*time.Second), nil)
	l.sendEvent("contact_center.engagement_user_unhold", eng, user, both, at.Add(3*time.Second), nil)
	l.sendEvent("contact_center.engagement_user_ended", eng, user, both, at.Add(4*time.Second), nil)
}

// wholeCall is what call records for a segment (pause on hold).
var wholeCall = []string{rcapi.ActionStart, rcapi.ActionPause, rcapi.ActionResume, rcapi.ActionStop}

// waitRecorded waits until segment has the actions want at the recorder,
// and fails the test unless it has exactly those (ledger vs truth).
func (l *lab) waitRecorded(t *testing.T, limit time.Duration, segment string, want []string) {
	t.Helper()
	var got []string
	labtest.WaitFor(t, limit, "segment "+segment+" at the recorder", func() bool {
		got = l.applied(segment)
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("segment %s: recorder has %v, want %v", segment, got, want)
	}
}

// deadLetters reads the lab cluster's dead-letter entries.
func (l *lab) deadLetters(t *testing.T) map[string]protocol.DeadLetter {
	t.Helper()
	out := map[string]protocol.DeadLetter{}
	for _, kv := range l.etcdKVs(t, "/deadletter/") {
		var d protocol.DeadLetter
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			t.Fatalf("%s: %v", kv.Key, err)
		}
		out[d.Engagement] = d
	}
	return out
}

// TestFinding3_PoisonedCommandDoesNotBlockOthers: the recorder answers every
// command of one engagement 503 and every command of another with an
// unreadable 200, while it takes the rest. Each poisoned engagement is
// dead-lettered after bounded attempts, its later events behind it in etcd;
// the other calls are recorded exactly meanwhile and after, and the pair
// still leads. An operator's retry, once the fault is gone, records the
// poisoned calls completely.
func TestFinding3_PoisonedCommandDoesNotBlockOthers(t *testing.T) {
	l := newLab(t)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	l.Rec.FailEngagement("eng-p503", http.StatusServiceUnavailable)
	l.Rec.FailEngagement("eng-p200", http.StatusOK)
	now := time.Now().UTC()
	l.call("eng-p503", "usr-p503", now)
	l.call("eng-p200", "usr-p200", now)
	l.call("eng-ok1", "usr-ok1", now)
	// The other call goes on while the poisoned ones are tried: well within
	// the time unbounded retries would block it (for ever).
	l.waitRecorded(t, 15*time.Second, "eng-ok1/usr-ok1", wholeCall)

	// Both poisoned engagements end up dead-lettered, with their events
	// (answered, hold, unhold, ended) in order behind the refused start.
	var dl map[string]protocol.DeadLetter
	labtest.WaitFor(t, 30*time.Second, "two dead letters with four events each", func() bool {
		dl = l.deadLetters(t)
		return len(dl["eng-p503"].Events) == 4 && len(dl["eng-p200"].Events) == 4
	})
	if d := dl["eng-p503"]; d.Status != http.StatusServiceUnavailable || !strings.Contains(d.Reason, "injected fault") ||
		!strings.Contains(d.Reason, "start") || d.Attempts < 12 {
		t.Errorf("dead letter of eng-p503: status %d, reason %q, attempts %d", d.Status, d.Reason, d.Attempts)
	}
	if d := dl["eng-p200"]; d.Status != 0 || d.Reason == "" {
		t.Errorf("dead letter of eng-p200: status %d, reason %q", d.Status, d.Reason)
	}
	for eng, d := range dl {
		var names []string
		for _, raw := range d.Events {
			var e struct{ Event string }
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			names = append(names, strings.TrimPrefix(e.Event, "contact_center.engagement_"))
		}
		if want := []string{"user_answered", "user_hold", "user_unhold", "user_ended"}; !slices.Equal(names, want) {
			t.Errorf("dead letter of %s holds %v, want %v", eng, names, want)
		}
	}
	s := a.Status()
	if s.Role != adapter.RoleLeader || s.Epoch != sa.Epoch || !s.SocketUp {
		t.Fatalf("a: role %s epoch %d socket %v; want still leader of epoch %d", s.Role, s.Epoch, s.SocketUp, sa.Epoch)
	}
	if s.DeadLetters != 2 || s.DeadLettered < 2 || s.RecorderDown || s.RecorderState != "commands poisoned: 2 engagements" {
		t.Errorf("a's status: deadletters %d, deadlettered %d, recorder_down %v, recorder_state %q",
			s.DeadLetters, s.DeadLettered, s.RecorderDown, s.RecorderState)
	}
	// Nothing held up the loop: a later call is recorded at once.
	l.call("eng-ok2", "usr-ok2", time.Now().UTC())
	l.waitRecorded(t, 10*time.Second, "eng-ok2/usr-ok2", wholeCall)
	for _, seg := range []string{"eng-p503/usr-p503", "eng-p200/usr-p200"} {
		if got := l.applied(seg); len(got) != 0 {
			t.Errorf("segment %s: recorder applied %v while dead-lettered", seg, got)
		}
	}

	// The operator clears the fault and retries: each call is recorded
	// whole, in order, once.
	l.Rec.FailEngagement("eng-p503", 0)
	l.Rec.FailEngagement("eng-p200", 0)
	cfg := l.Config("ops")
	cl, err := cluster.Connect(t.Context(), assemble.ClusterConfig(cfg, cfg.Etcd.Endpoints), l.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, eng := range []string{"eng-p503", "eng-p200"} {
		if n, err := cl.RetryDeadLetter(t.Context(), eng); err != nil || n != 4 {
			t.Fatalf("retry %s: %d events, %v", eng, n, err)
		}
	}
	l.waitRecorded(t, 15*time.Second, "eng-p503/usr-p503", wholeCall)
	l.waitRecorded(t, 15*time.Second, "eng-p200/usr-p200", wholeCall)
	labtest.WaitFor(t, 10*time.Second, "no dead letter left", func() bool {
		s := a.Status()
		return s.DeadLetters == 0 && s.RecorderState == "ok" && len(l.deadLetters(t)) == 0
	})
	if s := a.Status(); s.Role != adapter.RoleLeader || s.Epoch != sa.Epoch {
		t.Fatalf("a is %s of epoch %d after the retry", s.Role, s.Epoch)
	}
}

// TestFinding3_RecorderDownIsNotPoison: the recorder answers nothing for a
// while (its link cut). No command is dead-lettered, /status says the
// recorder is down, and every call is recorded once it is back.
func TestFinding3_RecorderDownIsNotPoison(t *testing.T) {
	l := newLab(t)
	p := l.proxy(t, strings.TrimPrefix(l.RecTS.URL, "http://"))
	l.Tune = func(c *config.Config) { c.Recorder.URL = "http://" + p.Addr() }
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	p.SetMode(faultnet.Cut)
	now := time.Now().UTC()
	engs := []string{"eng-d1", "eng-d2", "eng-d3"}
	for _, eng := range engs {
		l.call(eng, "usr-"+eng, now)
	}
	labtest.WaitFor(t, 20*time.Second, "a to call the recorder down", func() bool {
		s := a.Status()
		return s.RecorderDown && s.RecorderState == "recorder down"
	})
	// Well past two rounds of attempts: still no verdict of poison.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if s := a.Status(); s.DeadLetters != 0 || s.Suspended != 0 || s.DeadLettered != 0 {
			t.Fatalf("recorder down, yet a suspended or dead-lettered engagements: %+v", s)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	p.SetMode(faultnet.Pass)
	for _, eng := range engs {
		l.waitRecorded(t, 20*time.Second, eng+"/usr-"+eng, wholeCall)
	}
	s := a.Status()
	if len(l.deadLetters(t)) != 0 || s.DeadLetters != 0 || s.DeadLettered != 0 || s.RecorderDown || s.RecorderState != "ok" {
		t.Errorf("after the outage: %d dead letters in etcd; status deadletters %d, deadlettered %d, down %v, state %q",
			len(l.deadLetters(t)), s.DeadLetters, s.DeadLettered, s.RecorderDown, s.RecorderState)
	}
	if s.Role != adapter.RoleLeader {
		t.Fatalf("a is %s after the outage", s.Role)
	}
}
