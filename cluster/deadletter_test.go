package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// deadLetterJSON encodes an entry holding the given raw events under keys.
func deadLetterJSON(t *testing.T, eng string, keys []string, raws ...string) []byte {
	t.Helper()
	d := protocol.DeadLetter{Engagement: eng, Reason: "start: HTTP 503", Status: 503,
		FirstFailed: time.Now().UTC(), Attempts: 12, Keys: keys}
	for _, r := range raws {
		d.Events = append(d.Events, json.RawMessage(r))
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeadLetterStorageRetryDrop: a leader batch moves an event from the
// handoff queue into a dead-letter entry; the snapshot carries it; a retry
// puts the entry's events back in the queue and deletes the entry in one
// txn, a drop deletes it, and the watch tells the two apart. A batch's
// ClearDeadLetters deletes an entry.
func TestDeadLetterStorageRetryDrop(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	term := lead(t, c)
	ctx := t.Context()
	k := c.Keys()
	ev1, ev2 := `{"event":"one"}`, `{"event":"two"}`

	if err := term.CommitBatch(ctx, protocol.Batch{Queue: map[string][]byte{"k1": []byte(ev1)}}); err != nil {
		t.Fatal(err)
	}
	if err := term.CommitBatch(ctx, protocol.Batch{
		DeadLetters: map[string][]byte{"eng-1": deadLetterJSON(t, "eng-1", []string{"k1", "k2"}, ev1, ev2)},
		Unqueue:     []string{"k1"},
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Handoffs["k1"]; ok {
		t.Error("k1 is still in the handoff queue after moving into the dead letter")
	}
	var d protocol.DeadLetter
	if err := json.Unmarshal(snap.DeadLetters["eng-1"], &d); err != nil || len(d.Events) != 2 || d.Keys[1] != "k2" {
		t.Fatalf("snapshot dead letter of eng-1: %s (%v)", snap.DeadLetters["eng-1"], err)
	}
	list, err := c.DeadLetters(ctx)
	if err != nil || len(list) != 1 || list[0].Engagement != "eng-1" || list[0].Err != nil || list[0].Attempts != 12 {
		t.Fatalf("DeadLetters = %+v, %v", list, err)
	}

	wctx, cancel := context.WithCancel(ctx)
	removed := make(chan protocol.DeadLetterRemoved, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Protocol().WatchDeadLetters(wctx, snap.Revision, removed) //nolint:errcheck // ends with wctx
	}()
	defer wg.Wait()
	defer cancel()
	next := func() protocol.DeadLetterRemoved {
		t.Helper()
		select {
		case r := <-removed:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no dead-letter removal seen")
		}
		return protocol.DeadLetterRemoved{}
	}

	// Retry: the events are back in the queue, the entry is gone.
	if n, err := c.RetryDeadLetter(ctx, "eng-1"); err != nil || n != 2 {
		t.Fatalf("RetryDeadLetter = %d, %v", n, err)
	}
	for key, want := range map[string]string{"k1": ev1, "k2": ev2} {
		if s := get(t, c, k.Handoff(key), 0); s == nil || string(s.Value) != want {
			t.Errorf("handoff %s after retry: %v", key, s)
		}
	}
	if s := get(t, c, k.DeadLetter("eng-1"), 0); s != nil {
		t.Error("dead letter still there after retry")
	}
	if r := next(); r.Engagement != "eng-1" || !r.Retried {
		t.Errorf("watch saw %+v, want a retry of eng-1", r)
	}
	if _, err := c.RetryDeadLetter(ctx, "eng-1"); !errors.Is(err, cluster.ErrNoDeadLetter) {
		t.Errorf("second retry: %v, want ErrNoDeadLetter", err)
	}

	// Drop: the entry is gone, nothing is queued.
	if err := term.CommitBatch(ctx, protocol.Batch{
		DeadLetters: map[string][]byte{"eng-2": deadLetterJSON(t, "eng-2", []string{"k3"}, `{"event":"three"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DropDeadLetter(ctx, "eng-2"); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.Engagement != "eng-2" || r.Retried {
		t.Errorf("watch saw %+v, want a drop of eng-2", r)
	}
	if s := get(t, c, k.Handoff("k3"), 0); s != nil {
		t.Error("a dropped event was queued")
	}
	// An entry that does not decode is listed with its error and can be
	// dropped.
	if err := term.CommitBatch(ctx, protocol.Batch{DeadLetters: map[string][]byte{"eng-bad": []byte("{")}}); err != nil {
		t.Fatal(err)
	}
	if list, err := c.DeadLetters(ctx); err != nil || len(list) != 1 || list[0].Err == nil {
		t.Fatalf("DeadLetters = %+v, %v; want eng-bad with an error", list, err)
	}
	if _, err := c.DropDeadLetter(ctx, "eng-bad"); err != nil {
		t.Fatal(err)
	}
	next()

	// A leader's ClearDeadLetters deletes an entry.
	if err := term.CommitBatch(ctx, protocol.Batch{
		DeadLetters: map[string][]byte{"eng-3": deadLetterJSON(t, "eng-3", []string{"k4"}, `{"event":"four"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := term.CommitBatch(ctx, protocol.Batch{ClearDeadLetters: []string{"eng-3"}}); err != nil {
		t.Fatal(err)
	}
	if s := get(t, c, k.DeadLetter("eng-3"), 0); s != nil {
		t.Error("ClearDeadLetters left the entry")
	}
}
