package adapter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/internal/labtest"
)

// TestLongNamesKeepTheStateRecordSmall: two legs whose agents' display
// names are 800 KiB each (each event well inside the 1 MiB frame limit)
// must not make a state record beyond etcd's 1.5 MiB request limit: the
// write would be refused and a healthy leader would step down. Names are
// kept to their first 256 bytes in the state.
func TestLongNamesKeepTheStateRecordSmall(t *testing.T) {
	l := newLab(t)
	logs := captureLogs(t, l)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	now := time.Now().UTC()
	mk := func(name, user string, at time.Time, nameBytes int) *events.Event {
		var extra map[string]any
		if user != "" {
			extra = map[string]any{"user_display_name": strings.Repeat("x", nameBytes)}
		}
		return parsedEvent(t, name, "eng-bigstate", user, at, extra)
	}
	evs := []*events.Event{
		mk("contact_center.engagement_started", "", now, 0),
		mk("contact_center.engagement_user_answered", "usr-big1", now.Add(time.Second), 800<<10),
		mk("contact_center.engagement_user_answered", "usr-big2", now.Add(2*time.Second), 800<<10),
	}
	for _, ev := range evs {
		a.Parts.Node.Deliver(ev)
		b.Parts.Node.Deliver(ev)
	}
	labtest.WaitFor(t, 20*time.Second, "the three events logged, nothing pending", func() bool {
		return a.Status().MirrorApplied >= 3 && a.Status().Pending == 0 && b.Status().Pending == 0
	})
	for _, ln := range logs.lines("leader stops") {
		t.Log("logged: ", ln[:min(len(ln), 300)])
	}
	if s := a.Status(); s.Role != adapter.RoleLeader || s.Epoch != sa.Epoch || b.Status().Terms != 0 {
		t.Fatalf("leader lost its term over a state record: a is %s at epoch %d (was %d), b won %d terms",
			s.Role, s.Epoch, sa.Epoch, b.Status().Terms)
	}
}
