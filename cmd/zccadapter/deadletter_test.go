package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// TestFinding3_DeadletterCommand: `zccadapter deadletter list|retry|drop`
// lists the entries a leader parked, puts one's events back in the handoff
// queue, and drops another only with --yes.
func TestFinding3_DeadletterCommand(t *testing.T) {
	lab := newToolLab(t)
	path := lab.path
	c := lab.connect(t)
	term, err := c.Campaign(t.Context(), protocol.Member{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Resign(t.Context()) //nolint:errcheck
	entry := func(eng string, keys ...string) []byte {
		d := protocol.DeadLetter{Engagement: eng, Reason: "start on segment " + eng + "/u: HTTP 503: busy", Status: 503,
			FirstFailed: time.Now().Add(-time.Minute).UTC(), Attempts: 12, Keys: keys}
		for _, k := range keys {
			d.Events = append(d.Events, json.RawMessage(`{"event":"`+k+`"}`))
		}
		b, _ := json.Marshal(d)
		return b
	}
	if err := term.CommitBatch(t.Context(), protocol.Batch{DeadLetters: map[string][]byte{
		"eng-1": entry("eng-1", "k1", "k2"), "eng-2": entry("eng-2", "k3"),
	}}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		return execTool(t, deadletterCmd, append(args, "--config", path)...)
	}

	out, err := run("list")
	if err != nil || !strings.Contains(out, "eng-1") || !strings.Contains(out, "eng-2") || !strings.Contains(out, "HTTP 503: busy") {
		t.Fatalf("list: %q, %v", out, err)
	}
	if out, err := run("list", "--engagement", "eng-9"); err == nil {
		t.Fatalf("list of an engagement without a dead letter: %q, no error", out)
	}
	if out, err = run("retry", "--engagement", "eng-1"); err != nil || !strings.Contains(out, "2 events") {
		t.Fatalf("retry: %q, %v", out, err)
	}
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.DeadLetters["eng-1"]; ok || string(snap.Handoffs["k1"]) != `{"event":"k1"}` || snap.Handoffs["k2"] == nil {
		t.Fatalf("after retry: dead letters %v, handoffs %v", snap.DeadLetters, snap.Handoffs)
	}
	if _, err := run("drop", "--engagement", "eng-2"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("drop without --yes: %v", err)
	}
	if out, err = run("drop", "--engagement", "eng-2", "--yes"); err != nil || !strings.Contains(out, "abandoned") {
		t.Fatalf("drop: %q, %v", out, err)
	}
	if list, err := c.DeadLetters(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("after drop: %+v, %v", list, err)
	}
}
