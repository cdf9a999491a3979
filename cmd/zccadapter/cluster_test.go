package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// TestFinding8_ClusterBumpEpochCommand: `zccadapter cluster bump-epoch
// --above N` lifts the next leader's epoch above N, reading the node's
// config as status does.
func TestFinding8_ClusterBumpEpochCommand(t *testing.T) {
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	path := filepath.Join(t.TempDir(), "node-a.yaml")
	y := fmt.Sprintf(`node: a
etcd:
  endpoints: [%q]
  cluster: ops
  session_ttl: 2s
  fence_margin: 500ms
zoom:
  account_id: acct-ops
  client_id: ops-client
  subscription_url: ws://127.0.0.1:1/ws?subscriptionId=sub-a
recorder:
  url: http://127.0.0.1:1
`, e.Endpoints()[0])
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := clusterCmd()
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}

	if _, err := run("bump-epoch", "--config", path); err == nil || !strings.Contains(err.Error(), "above") {
		t.Fatalf("without --above: %v; want the flag named as required", err)
	}
	out, err := run("bump-epoch", "--config", path, "--above", "5000")
	if err != nil || !strings.Contains(out, "raised") || !strings.Contains(out, "no leader") {
		t.Fatalf("bump-epoch: %q, %v", out, err)
	}
	out, err = run("bump-epoch", "--config", path, "--above", "10")
	if err != nil || !strings.Contains(out, "nothing written") {
		t.Fatalf("a lower bump: %q, %v", out, err)
	}

	c, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: e.Endpoints(), Cluster: "ops", Node: "a",
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term, err := c.Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Resign(t.Context()) //nolint:errcheck
	if term.Epoch() <= 5000 {
		t.Fatalf("epoch after bump-epoch --above 5000: %d", term.Epoch())
	}
	out, err = run("bump-epoch", "--config", path, "--above", "6000")
	if err != nil || !strings.Contains(out, "leader a still has epoch") {
		t.Fatalf("bump-epoch under a leader: %q, %v", out, err)
	}
}
