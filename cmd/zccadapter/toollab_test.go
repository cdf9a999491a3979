package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/cluster"
)

// toolLab is an embedded etcd member and a node's config file pointing at
// it (cluster "ops", node a), for the tests of the operator commands that
// read the config and reach etcd (cluster, deadletter).
type toolLab struct {
	etcd *cluster.Embedded
	path string // the config file
}

func newToolLab(t *testing.T) toolLab {
	t.Helper()
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
	return toolLab{etcd: e, path: path}
}

// connect connects to the lab's cluster as node a; closed at cleanup.
func (l toolLab) connect(t *testing.T) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Connect(t.Context(), cluster.Config{Endpoints: l.etcd.Endpoints(), Cluster: "ops", Node: "a",
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// execTool runs a fresh command with args and returns what it printed.
func execTool(t *testing.T, newCmd func() *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newCmd()
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}
