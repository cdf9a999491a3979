package drill_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/deploy/drill"
)

// TestShortDrill builds the zccadapter binary and runs a short drill on real
// processes: a SIGKILL and a SIGTERM of the leader mid-traffic, verified
// against the ground truth (C-15 in its process form).
func TestShortDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds the binary and runs ~25s of real processes")
	}
	bin := filepath.Join(t.TempDir(), "zccadapter")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/zccadapter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	sc := drill.DefaultScenario()
	sc.SessionTTL = 2 * time.Second
	sc.Traffic = drill.Traffic{Duration: 16 * time.Second, Agents: 30, CallsPerSecond: 3,
		MinCall: time.Second, MaxCall: 6 * time.Second, Seed: 42}
	sc.Actions[0].At, sc.Actions[1].At = 3*time.Second, 9*time.Second
	sc.Settle = 20 * time.Second
	rep, err := drill.Run(t.Context(), drill.Options{
		Scenario: sc, Binary: bin, WorkDir: t.TempDir(), KeepWorkDir: true,
		Progress: &progress, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	t.Log("\n" + progress.String())
	if rep != nil {
		var table bytes.Buffer
		drill.PrintTable(&table, rep)
		t.Log(table.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "pass" {
		t.Fatalf("drill verdict %s", rep.Verdict)
	}
	if len(rep.Failovers) != 2 || rep.Failovers[0].Kind != "crash" || rep.Failovers[1].Kind != "graceful" {
		t.Fatalf("failovers: %+v", rep.Failovers)
	}
	if rep.Counts.Segments < 10 {
		t.Fatalf("only %d segments: the drill proves little", rep.Counts.Segments)
	}
}
