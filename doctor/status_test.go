package doctor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/doctor"
)

func TestSurveyOfAHealthyPair(t *testing.T) {
	l := newLab(t, nil)
	a := l.start("a")
	sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	b := l.start("b")
	b.WaitRole(t, adapter.RoleStandby, 10*time.Second)

	cfg := l.Config("a")
	cl, err := cluster.Connect(t.Context(), doctor.ClusterConfig(cfg, 2*time.Second), l.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v, err := doctor.Survey(t.Context(), cl, cfg, doctor.SurveyOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v.Leader != "a" || v.Epoch != sa.Epoch {
		t.Errorf("leader %q epoch %d, want a %d", v.Leader, v.Epoch, sa.Epoch)
	}
	if len(v.Problems) != 0 {
		t.Errorf("problems %q, want none", v.Problems)
	}
	if !v.Recorder.Reachable {
		t.Errorf("recorder %+v, want reachable", v.Recorder)
	}
	want := map[string]struct {
		role, sub, addr string
		leader          bool
	}{"a": {adapter.RoleLeader, "sub-a", a.Addr, true}, "b": {adapter.RoleStandby, "sub-b", b.Addr, false}}
	if len(v.Nodes) != 2 {
		t.Fatalf("%d nodes, want 2: %+v", len(v.Nodes), v.Nodes)
	}
	for _, n := range v.Nodes {
		w := want[n.Node]
		if n.Status == nil {
			t.Errorf("node %s: no status (%s)", n.Node, n.Error)
			continue
		}
		if n.Status.Role != w.role || n.Subscription != w.sub || n.Address != w.addr || n.Leader != w.leader ||
			!n.Status.SocketUp || n.Version != "v-test" {
			t.Errorf("node %s = role %s sub %s addr %s leader %v socket %v version %q, want %+v, socket up, v-test",
				n.Node, n.Status.Role, n.Subscription, n.Address, n.Leader, n.Status.SocketUp, n.Version, w)
		}
	}
	var out strings.Builder
	if err := v.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	t.Logf("status table:\n%s", table)
	for _, s := range []string{"leader a", "NODE", "ROLE", "SOCKET", "LAST EVENT", "PENDING", "HANDED OFF",
		"a *", "leader", "standby", "reachable", "no problems"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q", s)
		}
	}
}

func TestSurveyFlagsTwoLiveMembersOnOneSubscription(t *testing.T) {
	l := newLab(t, nil)
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	l.register("c", "sub-a", deadEndpoint(t)) // c was set up with a's subscription, and is not serving
	l.RecTS.Close()

	cfg := l.Config("a")
	cl, err := cluster.Connect(t.Context(), doctor.ClusterConfig(cfg, 2*time.Second), l.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v, err := doctor.Survey(t.Context(), cl, cfg, doctor.SurveyOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(v.Problems, "\n")
	for _, want := range []string{"nodes a, c share subscription sub-a", "node c: /status", "recorder"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems %q: want one with %q", v.Problems, want)
		}
	}
	var out strings.Builder
	if err := v.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "PROBLEMS") || !strings.Contains(out.String(), "UNREACHABLE") {
		t.Errorf("table does not flag the problems:\n%s", out.String())
	}
}
