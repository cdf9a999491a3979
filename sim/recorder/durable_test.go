package recorder

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/rcapi"
)

// durableFixture serves a recorder on a state file.
func durableFixture(t *testing.T, path string) *fixture {
	t.Helper()
	rec, err := NewWithOptions(zerolog.New(zerolog.NewTestWriter(t)), Options{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rec.Handler())
	f := &fixture{t: t, rec: rec, srv: srv}
	t.Cleanup(f.stop)
	return f
}

// stop ends the server and closes the recorder, as a process exit would.
func (f *fixture) stop() {
	f.srv.Close()
	if err := f.rec.Close(); err != nil {
		f.t.Errorf("close: %v", err)
	}
}

// TestFinding8_RecorderKeepsFenceAndIDsAcrossRestart: a recorder restarted
// on its state file in the middle of the traffic still answers a replayed
// command id as duplicate, still refuses an epoch below its fence, and
// continues every segment where it was.
func TestFinding8_RecorderKeepsFenceAndIDsAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recorder.state")
	f := durableFixture(t, path)

	start1 := cmd(rcapi.ActionStart, "eng-1/seg-1", 5)
	pause1 := cmd(rcapi.ActionPause, "eng-1/seg-1", 5)
	agent := rcapi.AgentUpdate{ID: "agent-1", Epoch: 5, Node: "node-a", AgentID: "u1", State: "ready", At: t0}
	// Traffic from two leaders in turn, concurrently within each.
	var wg sync.WaitGroup
	for _, c := range []rcapi.Command{start1, cmd(rcapi.ActionStart, "eng-2/seg-2", 5)} {
		wg.Add(1)
		go func() { defer wg.Done(); f.send("/v1/commands", c) }()
	}
	wg.Wait()
	for _, step := range []struct {
		path string
		body any
		want outcome
	}{
		{"/v1/commands", pause1, applied},
		{"/v1/agents", agent, applied},
		{"/v1/epoch", rcapi.EpochClaim{Epoch: 9, Node: "node-b"}, applied},
		{"/v1/commands", cmd(rcapi.ActionStop, "eng-2/seg-2", 9), applied},
		{"/v1/commands", cmd(rcapi.ActionStart, "eng-1/seg-3", 4), stale},
	} {
		if got := f.send(step.path, step.body); got != step.want {
			t.Fatalf("before the restart, %s: %v, want %v", step.path, got, step.want)
		}
	}
	before := f.rec.Ledger()
	openBefore := f.rec.Open()
	f.stop()

	// The same file, a new process.
	g := durableFixture(t, path)
	if got := g.rec.Ledger(); !reflect.DeepEqual(got, before) {
		t.Fatalf("ledger after the restart:\n%+v\nwant\n%+v", got, before)
	}
	if got := g.rec.Open(); !reflect.DeepEqual(got, openBefore) {
		t.Fatalf("open recordings after the restart: %+v, want %+v", got, openBefore)
	}
	for _, step := range []struct {
		what string
		path string
		body any
		want outcome
	}{
		// The successor re-sends what its predecessor sent, with its own
		// epoch and the same ids.
		{"replayed command id", "/v1/commands", withEpoch(pause1, 9), duplicate},
		{"replayed start", "/v1/commands", withEpoch(start1, 9), duplicate},
		{"replayed agent id", "/v1/agents", agentAt(agent, 9), duplicate},
		{"the predecessor's resend", "/v1/commands", pause1, stale},
		{"epoch below the fence", "/v1/commands", cmd(rcapi.ActionStart, "eng-3/seg-4", 5), stale},
		{"old leader's claim", "/v1/epoch", rcapi.EpochClaim{Epoch: 5, Node: "node-a"}, stale},
		{"segment goes on", "/v1/commands", cmd(rcapi.ActionResume, "eng-1/seg-1", 9), applied},
		{"stopped stays stopped", "/v1/commands", cmd(rcapi.ActionStart, "eng-2/seg-2", 9), invalid},
	} {
		if got := g.send(step.path, step.body); got != step.want {
			t.Errorf("after the restart, %s: %v, want %v", step.what, got, step.want)
		}
	}
	var l rcapi.Ledger
	g.get("/v1/ledger", &l)
	if l.Epoch != 9 || len(l.Entries) != len(before.Entries)+8 || l.Entries[len(l.Entries)-1].Seq != int64(len(l.Entries)) {
		t.Fatalf("ledger after the restart: epoch %d, %d entries (want 9, %d), last seq %d",
			l.Epoch, len(l.Entries), len(before.Entries)+8, l.Entries[len(l.Entries)-1].Seq)
	}
	// A closed recorder answers 503: it can no longer keep what it answers.
	g.stop()
	if rep := g.rec.applyCommand(new(cmd(rcapi.ActionStart, "eng-9/seg-9", 9)), nil); rep.status != http.StatusServiceUnavailable {
		t.Fatalf("a closed recorder answered %d", rep.status)
	}
}

func withEpoch(c rcapi.Command, epoch int64) rcapi.Command {
	c.Epoch = epoch
	return c
}

func agentAt(a rcapi.AgentUpdate, epoch int64) rcapi.AgentUpdate {
	a.Epoch = epoch
	return a
}

// TestStateFileTornTailAndCorruption: a torn last line (a crash while
// writing it, before its reply) is dropped; a damaged line before the end
// stops the recorder from starting, naming the line.
func TestStateFileTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recorder.state")
	f := durableFixture(t, path)
	if got := f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/seg-1", 3)); got != applied {
		t.Fatal(got)
	}
	f.stop()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	torn := append(append([]byte{}, good...), `{"seq":2,"kind":"comm`...)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	g := durableFixture(t, path)
	if got := g.send("/v1/commands", cmd(rcapi.ActionPause, "eng-1/seg-1", 3)); got != applied {
		t.Fatalf("after a torn tail: %v", got)
	}
	g.stop()
	h := durableFixture(t, path)
	if l := h.rec.Ledger(); len(l.Entries) != 2 || l.Entries[1].Seq != 2 || l.Epoch != 3 {
		t.Fatalf("after the torn tail was cut and a new entry written: %+v", l)
	}
	h.stop()

	damaged := append([]byte("{not json}\n"), good...)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWithOptions(zerolog.Nop(), Options{StateFile: path}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a damaged state file: %v; want an error naming line 1", err)
	}
	// A journal whose results do not replay (edited by hand) is refused too.
	edited := strings.Replace(string(good), `"result":"applied"`, `"result":"duplicate"`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWithOptions(zerolog.Nop(), Options{StateFile: path}); err == nil {
		t.Fatal("a state file that disagrees with its replay was accepted")
	}
}

// TestWithoutStateFileNothingPersists: without a state file the recorder is
// the in-memory one of New.
func TestWithoutStateFileNothingPersists(t *testing.T) {
	r, err := NewWithOptions(zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.journal != nil || r.Close() != nil {
		t.Fatal("a recorder without a state file has a journal")
	}
}

// TestStateFileWriteFailureAnswers503: when the state file cannot be
// written, the command is answered 503 (the sender retries it with the same
// id), and so is everything after it until a restart, since the memory is
// then ahead of the file; the restarted recorder applies the retried
// command.
func TestStateFileWriteFailureAnswers503(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recorder.state")
	f := durableFixture(t, path)
	if got := f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/seg-1", 2)); got != applied {
		t.Fatal(got)
	}
	f.rec.mu.Lock()
	f.rec.journal.f.Close() // the disk goes away
	f.rec.mu.Unlock()
	pause := cmd(rcapi.ActionPause, "eng-1/seg-1", 2)
	unavailable := outcome{http.StatusServiceUnavailable, ErrCodeStateUnavailable}
	if got := f.send("/v1/commands", pause); got != unavailable {
		t.Fatalf("write failed: %v, want %v", got, unavailable)
	}
	if got := f.send("/v1/epoch", rcapi.EpochClaim{Epoch: 3, Node: "b"}); got != unavailable {
		t.Fatalf("after a failed write: %v, want %v", got, unavailable)
	}
	if st := f.get("/v1/recordings?state=open", nil); st != http.StatusServiceUnavailable {
		t.Fatalf("open recordings after a failed write: %d", st)
	}
	f.srv.Close()
	f.rec.Close() //nolint:errcheck // the file was closed behind its back
	g := durableFixture(t, path)
	if got := g.send("/v1/commands", pause); got != applied {
		t.Fatalf("the retried command after a restart: %v, want applied", got)
	}
}
