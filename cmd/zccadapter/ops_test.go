package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

const opsSecret = "ops-lab-secret-7b1e"

// opsLab runs `run` for nodes a and b in-process against embedded etcd, the
// simulated Zoom and the reference recorder, and writes each node's config
// file, as an operator would.
type opsLab struct {
	dir     string
	etcd    *cluster.Embedded
	zoomURL string
	recURL  string
}

func newOpsLab(t *testing.T) *opsLab {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	z, err := zoom.New(zoom.Config{AccountID: "acct-ops", ClientID: "ops-client", ClientSecret: opsSecret,
		Subscriptions: []string{"sub-a", "sub-b"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	zts := httptest.NewServer(z.Handler())
	t.Cleanup(func() { z.Close(); zts.Close() })
	rts := httptest.NewServer(recorder.New(log).Handler())
	t.Cleanup(rts.Close)
	return &opsLab{dir: t.TempDir(), etcd: e, zoomURL: zts.URL, recURL: rts.URL}
}

// configFile writes node's YAML and returns its path. The client secret is
// not in it: it comes from ZCC_ZOOM_CLIENT_SECRET, as in production.
func (l *opsLab) configFile(t *testing.T, node, subscription string) string {
	t.Helper()
	y := fmt.Sprintf(`node: %s
http_addr: 127.0.0.1:0
etcd:
  endpoints: [%q]
  cluster: ops
  session_ttl: 2s
  fence_margin: 500ms
zoom:
  token_url: %s/oauth/token
  account_id: acct-ops
  client_id: ops-client
  subscription_url: ws%s/ws?subscriptionId=%s
  heartbeat_interval: 1s
  watchdog_timeout: 3s
recorder:
  url: %s
`, node, l.etcd.Endpoints()[0], l.zoomURL, strings.TrimPrefix(l.zoomURL, "http"), subscription, l.recURL)
	p := filepath.Join(l.dir, "node-"+node+".yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runNode runs `run` for a config file until the test ends.
func (l *opsLab) runNode(t *testing.T, path string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runNode(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("node", cfg.Node).Logger())
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run %s: %v", cfg.Node, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run %s did not stop within 15s", cfg.Node)
		}
	})
}

// execute runs the binary's command line in-process and returns its
// stdout and error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	var cmd = map[string]func() *cobra.Command{"status": statusCmd, "doctor": doctorCmd}[args[0]]()
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true // as under the root command
	cmd.SetArgs(args[1:])
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func exitCode(err error) int {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestStatusAndDoctorCommandsOnARunningPair(t *testing.T) {
	l := newOpsLab(t)
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", opsSecret)
	pa, pb := l.configFile(t, "a", "sub-a"), l.configFile(t, "b", "sub-b")
	l.runNode(t, pa)
	l.runNode(t, pb)

	// status: wait (bounded) until both nodes serve and one leads.
	var v doctor.ClusterView
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := execute(t, "status", "--config", pa, "--json", "--timeout", "2s")
		if jerr := json.Unmarshal([]byte(out), &v); jerr == nil && err == nil && len(v.Nodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed a healthy pair: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a correctness wait
	}
	if v.Leader == "" || v.Epoch == 0 || !v.Recorder.Reachable {
		t.Errorf("status = leader %q epoch %d recorder %+v", v.Leader, v.Epoch, v.Recorder)
	}
	for _, n := range v.Nodes {
		if n.Status == nil || !n.Status.SocketUp || n.Version != version {
			t.Errorf("node %s: %+v", n.Node, n)
		}
	}
	// The status command needs no Zoom secret.
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "")
	os.Unsetenv("ZCC_ZOOM_CLIENT_SECRET")
	table, err := execute(t, "status", "--config", pa)
	if err != nil {
		t.Fatalf("status without the Zoom secret: %v\n%s", err, table)
	}
	if !strings.Contains(table, "leader "+v.Leader) || !strings.Contains(table, "no problems") {
		t.Errorf("status table:\n%s", table)
	}
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", opsSecret)

	// doctor on node a, running: all pass, exit 0.
	out, err := execute(t, "doctor", "--config", pa, "--max-write-latency", "2s")
	if err != nil {
		t.Fatalf("doctor on a healthy node: %v\n%s", err, out)
	}
	if !strings.Contains(out, "all checks passed") || strings.Contains(out, opsSecret) {
		t.Errorf("doctor output:\n%s", out)
	}

	// A third node configured with a's subscription. A node refuses to
	// start beside a live member on its subscription, but two that start at
	// the same instant can both pass that check: register c's membership
	// directly, as such a race leaves it. status flags it (exit 2), doctor
	// fails on it (exit 1).
	pc := l.configFile(t, "c", "sub-a")
	cc, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: l.etcd.Endpoints(), Cluster: "ops", Node: "c"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	grant, err := cc.Client().Grant(t.Context(), 30)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := json.Marshal(protocol.Member{Node: "c", Subscription: "sub-a", Version: version, Since: time.Now().UTC()})
	if _, err := cc.Client().Put(t.Context(), cc.Keys().Member("c"), string(mb), clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, err = execute(t, "status", "--config", pa)
		if exitCode(err) == 2 && strings.Contains(out, "share subscription sub-a") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never flagged the shared subscription (exit %d):\n%s", exitCode(err), out)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a correctness wait
	}
	out, err = execute(t, "doctor", "--config", pc, "--json", "--max-write-latency", "2s")
	if exitCode(err) != 1 {
		t.Errorf("doctor on c: exit %d, want 1\n%s", exitCode(err), out)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	if r := rep.Result(doctor.CheckSharedSub); r.Outcome != doctor.Fail {
		t.Errorf("doctor on c: %s = %s (%s), want fail", doctor.CheckSharedSub, r.Outcome, r.Detail)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		configured, listen, want string
	}{
		{"ris-a.example:8081", "0.0.0.0:8081", "ris-a.example:8081"},
		{"", "127.0.0.1:8081", "127.0.0.1:8081"},
		{"", "0.0.0.0:8081", net.JoinHostPort(host, "8081")},
		{"", "[::]:8081", net.JoinHostPort(host, "8081")},
	} {
		addr, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := advertiseAddr(c.configured, addr); got != c.want {
			t.Errorf("advertiseAddr(%q, %s) = %q, want %q", c.configured, c.listen, got, c.want)
		}
	}
}
