package doctor_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
	"github.com/zccadapter/zccadapter/internal/testcerts"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// opts are doctor options for the lab: generous limits, so that only the
// fault a test injects fails (a loaded -race run may write slowly).
func opts() doctor.Options {
	return doctor.Options{Timeout: 2 * time.Second, MaxWriteLatency: 2 * time.Second}
}

// expect checks the outcome of each named check and that the report's OK
// agrees with them.
func expect(t *testing.T, rep *doctor.Report, want map[string]doctor.Outcome) {
	t.Helper()
	for id, o := range want {
		r := rep.Result(id)
		if r.Outcome != o {
			t.Errorf("%s: %s (%s), want %s", id, r.Outcome, r.Detail, o)
		}
		if r.Outcome == doctor.Fail && r.Fix == "" {
			t.Errorf("%s failed without a fix", id)
		}
		if strings.Contains(r.Fix, "\n") || strings.Contains(r.Detail, "\n") {
			t.Errorf("%s: detail or fix spans lines: %q / %q", id, r.Detail, r.Fix)
		}
	}
	failed := false
	for _, r := range rep.Results {
		failed = failed || r.Outcome == doctor.Fail
	}
	if rep.OK == failed {
		t.Errorf("report OK = %v with a failed check = %v", rep.OK, failed)
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Logf("report:\n%s", b)
	}
}

func noSecret(t *testing.T, rep *doctor.Report, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(rep)
	for _, s := range secrets {
		if s != "" && strings.Contains(string(b), s) {
			t.Errorf("the report holds a secret (%d bytes)", len(s))
		}
	}
	if strings.Contains(string(b), "access_token=") && !strings.Contains(string(b), "access_token=REDACTED") {
		t.Error("the report holds a token-bearing URL")
	}
}

func TestDoctorPassesOnAHealthySetup(t *testing.T) {
	l := newLab(t, nil)
	l.register("b", "sub-b", "127.0.0.1:1")
	rep := doctor.Run(t.Context(), l.Config("a"), opts())
	if len(rep.Results) != 12 {
		t.Errorf("%d results, want 12", len(rep.Results))
	}
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckZoomToken: doctor.Pass, doctor.CheckZoomScopes: doctor.Pass, doctor.CheckZoomClock: doctor.Pass,
		doctor.CheckEtcdReachable: doctor.Pass, doctor.CheckEtcdQuorum: doctor.Pass, doctor.CheckEtcdLatency: doctor.Pass,
		doctor.CheckEtcdClock: doctor.Pass, doctor.CheckSharedSub: doctor.Pass, doctor.CheckSubscription: doctor.Pass,
		doctor.CheckRecorder: doctor.Pass, doctor.CheckEtcdHistory: doctor.Pass, doctor.CheckQuarantine: doctor.Pass,
	})
	if !rep.OK {
		t.Error("report not OK")
	}
	if d := rep.Result(doctor.CheckSubscription).Detail; !strings.Contains(d, "heartbeat answered") {
		t.Errorf("subscription detail %q: want the probe's heartbeat", d)
	}
	noSecret(t, rep, labSecret)
}

func TestDoctorCatchesWrongSecret(t *testing.T) {
	l := newLab(t, nil)
	cfg := l.Config("a")
	cfg.Zoom.ClientSecret = "not-the-secret-0c77"
	rep := doctor.Run(t.Context(), cfg, opts())
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckZoomToken:    doctor.Fail,
		doctor.CheckZoomScopes:   doctor.Skip,
		doctor.CheckSubscription: doctor.Skip,
		doctor.CheckZoomClock:    doctor.Pass, // the refusal still carries a Date
		doctor.CheckRecorder:     doctor.Pass,
	})
	r := rep.Result(doctor.CheckZoomToken)
	if !strings.Contains(r.Detail, "invalid_client") || !strings.Contains(r.Fix, "Client Secret") {
		t.Errorf("zoom.token = %q / fix %q: want Zoom's invalid_client and a fix naming the Client Secret", r.Detail, r.Fix)
	}
	noSecret(t, rep, labSecret, cfg.Zoom.ClientSecret)
}

func TestDoctorCatchesMissingScope(t *testing.T) {
	l := newLab(t, func(c *zoom.Config) {
		c.Scopes = []string{"user:read:admin", "contact_center_engagement:read:admin", "contact_center_user:read:admin",
			"marketplace:write:websocket_connection"} // classic forms, without any task scope
	})
	rep := doctor.Run(t.Context(), l.Config("a"), opts())
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckZoomToken:    doctor.Pass,
		doctor.CheckZoomScopes:   doctor.Fail,
		doctor.CheckSubscription: doctor.Pass,
	})
	r := rep.Result(doctor.CheckZoomScopes)
	if !strings.Contains(r.Detail, "contact_center:read:task:admin") || strings.Contains(r.Detail, "user:read:user:admin") {
		t.Errorf("zoom.scopes = %q: want only the task scope missing (classic forms satisfy the others)", r.Detail)
	}
}

func TestMissingScopesAcceptsGranularOrClassic(t *testing.T) {
	for _, c := range []struct {
		name    string
		granted []string
		missing int
	}{
		{"none", nil, len(doctor.MinimumScopes)},
		{"granular", []string{"contact_center:read:task:admin", "user:read:user:admin", "user:read:presence_status:admin",
			"contact_center:read:engagement:admin", "contact_center:read:user:admin"}, 0},
		{"classic", []string{"contact_center_task:read:admin", "user:read:admin", "contact_center_engagement:read:admin",
			"contact_center_user:read:admin"}, 0},
		{"mixed, presence missing", []string{"contact_center_task:read:admin", "user:read:user:admin",
			"contact_center:read:engagement:admin", "contact_center_user:read:admin"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := doctor.MissingScopes(c.granted); len(got) != c.missing {
				t.Errorf("MissingScopes = %v, want %d missing", got, c.missing)
			}
		})
	}
}

func TestDoctorCatchesSharedSubscription(t *testing.T) {
	l := newLab(t, nil)
	l.register("b", "sub-a", "127.0.0.1:1") // b was configured with a's subscription
	rep := doctor.Run(t.Context(), l.Config("a"), opts())
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckSharedSub:    doctor.Fail,
		doctor.CheckSubscription: doctor.Skip, // b holds it: a probe could displace b's socket
		doctor.CheckEtcdQuorum:   doctor.Pass,
		doctor.CheckZoomScopes:   doctor.Pass,
		doctor.CheckRecorder:     doctor.Pass,
		doctor.CheckZoomToken:    doctor.Pass,
		doctor.CheckEtcdLatency:  doctor.Pass,
	})
	if d := rep.Result(doctor.CheckSharedSub).Detail; !strings.Contains(d, "sub-a") || !strings.Contains(d, "b") {
		t.Errorf("detail %q: want the subscription and the other node", d)
	}
}

func TestDoctorCatchesEtcdWithoutQuorum(t *testing.T) {
	l := newLab(t, nil)
	cfg := l.Config("a")
	cfg.Etcd.Endpoints = []string{deadEndpoint(t)}
	o := opts()
	o.Timeout = time.Second
	rep := doctor.Run(t.Context(), cfg, o)
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckEtcdReachable: doctor.Fail,
		doctor.CheckEtcdQuorum:    doctor.Fail,
		doctor.CheckEtcdLatency:   doctor.Skip,
		doctor.CheckEtcdClock:     doctor.Skip,
		doctor.CheckSharedSub:     doctor.Skip,
		doctor.CheckZoomToken:     doctor.Pass,
		doctor.CheckSubscription:  doctor.Pass, // probed: no membership says the node runs
		doctor.CheckRecorder:      doctor.Pass,
	})
	if f := rep.Result(doctor.CheckEtcdQuorum).Fix; !strings.Contains(f, "majority") {
		t.Errorf("quorum fix %q: want it to ask for a majority of members", f)
	}
}

func TestDoctorCatchesRecorderDown(t *testing.T) {
	l := newLab(t, nil)
	cfg := l.Config("a")
	l.RecTS.Close()
	rep := doctor.Run(t.Context(), cfg, opts())
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckRecorder:      doctor.Fail,
		doctor.CheckEtcdReachable: doctor.Pass,
		doctor.CheckZoomToken:     doctor.Pass,
	})
	if f := rep.Result(doctor.CheckRecorder).Fix; !strings.Contains(f, "recorder running") {
		t.Errorf("recorder fix %q: want it to ask whether the recorder runs", f)
	}
}

// While node a runs with its socket up, doctor on a does not dial a's
// subscription (a second socket could displace the node's), and says so.
func TestDoctorLeavesARunningNodesSocketAlone(t *testing.T) {
	l := newLab(t, nil)
	a := l.start("a")
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	before := connections(l.Zoom, "sub-a")
	rep := doctor.Run(t.Context(), l.Config("a"), opts())
	expect(t, rep, map[string]doctor.Outcome{doctor.CheckSubscription: doctor.Pass, doctor.CheckSharedSub: doctor.Pass})
	if d := rep.Result(doctor.CheckSubscription).Detail; !strings.Contains(d, "not probed") {
		t.Errorf("subscription detail %q: want it to say the running node was not probed", d)
	}
	if after := connections(l.Zoom, "sub-a"); after != before {
		t.Errorf("sub-a connections %d → %d: doctor dialled the running node's subscription", before, after)
	}
	if !a.Status().SocketUp {
		t.Error("node a's socket went down")
	}
}

func connections(z *zoom.Server, sub string) int64 {
	for _, s := range z.Subscriptions() {
		if s.ID == sub {
			return s.Connections
		}
	}
	return -1
}

func TestDoctorRecorderOverTLSNeedsItsCA(t *testing.T) {
	l := newLab(t, nil)
	pki := testcerts.New(t)
	ts := httptest.NewUnstartedServer(l.Rec.Handler())
	ts.TLS = pki.ServerTLS(t, false)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cfg := l.Config("a")
	cfg.Recorder.URL = ts.URL
	for _, c := range []struct {
		name string
		tls  config.TLS
		want doctor.Outcome
		fix  string
	}{
		{"system trust store", config.TLS{}, doctor.Fail, "recorder.tls.ca_file"},
		{"the recorder's CA", config.TLS{CAFile: pki.CAFile}, doctor.Pass, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg.Recorder.TLS = c.tls
			p := doctor.ProbeRecorder(t.Context(), cfg.Recorder, 2*time.Second)
			if got := map[bool]doctor.Outcome{true: doctor.Pass, false: doctor.Fail}[p.Reachable]; got != c.want {
				t.Fatalf("ProbeRecorder = %+v, want %s", p, c.want)
			}
			if !strings.Contains(p.Fix, c.fix) {
				t.Errorf("fix %q, want it to name %q", p.Fix, c.fix)
			}
		})
	}
}

// With the refresh-token grant doctor must not refresh: each refresh
// rotates the refresh token the cluster's one refresher owns.
func TestDoctorDoesNotRefreshARefreshTokenGrant(t *testing.T) {
	l := newLab(t, nil)
	cfg := l.Config("a")
	cfg.Zoom.GrantType = "refresh_token"
	before := l.Zoom.TokenFetches()
	rep := doctor.Run(t.Context(), cfg, opts())
	expect(t, rep, map[string]doctor.Outcome{
		doctor.CheckZoomToken:    doctor.Skip,
		doctor.CheckZoomScopes:   doctor.Skip,
		doctor.CheckZoomClock:    doctor.Pass,
		doctor.CheckSubscription: doctor.Skip,
	})
	if after := l.Zoom.TokenFetches(); after != before {
		t.Errorf("token endpoint issued %d tokens during doctor, want none", after-before)
	}
}

// TestDoctorCatchesEtcdKeepingAllHistory: an etcd that has never compacted
// and holds a long history fails etcd.compaction with the flags to set;
// once compacted, it passes.
func TestDoctorCatchesEtcdKeepingAllHistory(t *testing.T) {
	l := newLab(t, nil)
	cli, err := clientv3.New(clientv3.Config{Endpoints: l.Etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var last int64
	for i := range 60 {
		resp, err := cli.Put(t.Context(), "/other/app/key", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	o := opts()
	o.MaxUncompactedRevisions = 50
	rep := doctor.Run(t.Context(), l.Config("a"), o)
	expect(t, rep, map[string]doctor.Outcome{doctor.CheckEtcdHistory: doctor.Fail})
	if r := rep.Result(doctor.CheckEtcdHistory); !strings.Contains(r.Fix, "--auto-compaction-retention=5m") {
		t.Errorf("fix %q does not name the etcd flags", r.Fix)
	}

	if _, err := cli.Compact(t.Context(), last); err != nil {
		t.Fatal(err)
	}
	rep = doctor.Run(t.Context(), l.Config("a"), o)
	expect(t, rep, map[string]doctor.Outcome{doctor.CheckEtcdHistory: doctor.Pass})
	if d := rep.Result(doctor.CheckEtcdHistory).Detail; !strings.Contains(d, "compacted") {
		t.Errorf("detail %q: want the history compacted", d)
	}
}
