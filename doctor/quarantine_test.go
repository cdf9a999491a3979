package doctor_test

import (
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/doctor"
)

// TestFinding1_DoctorListsTheQuarantine: the operator sees how many inputs
// the cluster put aside and why the newest were, never their raw input.
func TestFinding1_DoctorListsTheQuarantine(t *testing.T) {
	l := newLab(t, nil)
	rep := doctor.Run(t.Context(), l.Config("a"), opts())
	if r := rep.Result(doctor.CheckQuarantine); r.Outcome != doctor.Pass || !strings.Contains(r.Detail, "empty") {
		t.Fatalf("%s = %s %q; want pass, empty", doctor.CheckQuarantine, r.Outcome, r.Detail)
	}
	cl, err := cluster.Connect(t.Context(), assemble.ClusterConfig(l.Config("b"), l.Etcd.Endpoints()), l.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, reason := range []string{"events: event_ts: implausible time", "state of engagement \"e-1\": undecodable: invalid JSON at offset 1"} {
		if err := cl.Quarantine(t.Context(), protocol.QuarantineEntry{Source: protocol.QuarantineSocket, Reason: reason,
			Raw: []byte(`{"raw-input-marker":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	rep = doctor.Run(t.Context(), l.Config("a"), opts())
	r := rep.Result(doctor.CheckQuarantine)
	for _, want := range []string{"holds 2 input(s)", "implausible time", "undecodable", " b from socket"} {
		if !strings.Contains(r.Detail, want) {
			t.Errorf("%s detail %q: want %q", doctor.CheckQuarantine, r.Detail, want)
		}
	}
	if strings.Contains(r.Detail, "raw-input-marker") {
		t.Errorf("%s detail shows the raw input: %q", doctor.CheckQuarantine, r.Detail)
	}
}
