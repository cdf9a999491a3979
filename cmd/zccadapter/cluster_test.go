package main

import (
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// TestFinding8_ClusterBumpEpochCommand: `zccadapter cluster bump-epoch
// --above N` lifts the next leader's epoch above N, reading the node's
// config as status does.
func TestFinding8_ClusterBumpEpochCommand(t *testing.T) {
	lab := newToolLab(t)
	path := lab.path
	run := func(args ...string) (string, error) { return execTool(t, clusterCmd, args...) }

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

	c := lab.connect(t)
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
