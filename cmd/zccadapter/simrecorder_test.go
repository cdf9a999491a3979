package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/rcapi"
)

// TestSimRecorderStateFlag: `zccadapter sim recorder --state FILE` keeps the
// fence and the command ids across a restart of the command.
func TestSimRecorderStateFlag(t *testing.T) {
	state := filepath.Join(t.TempDir(), "recorder.state")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	// start runs the command until the returned stop is called.
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(t.Context())
		cmd := simRecorderCmd()
		cmd.SetArgs([]string{"--listen", addr, "--state", state, "--log-level", "warn"})
		cmd.Flags().String("log-level", "", "") // a persistent flag of the root command
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case err := <-done:
				t.Fatalf("sim recorder exited: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("sim recorder did not listen")
			}
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("sim recorder: %v", err)
			}
		}
	}
	post := func(c rcapi.Command) (int, string) {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+addr+"/v1/commands", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		s, _ := m["result"].(string)
		if s == "" {
			s, _ = m["error"].(string)
		}
		return resp.StatusCode, s
	}
	c := rcapi.Command{ID: "c1", Epoch: 7, Node: "a", Action: rcapi.ActionStart, EngagementID: "e1", SegmentID: "s1",
		At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

	stop := start()
	if st, res := post(c); st != http.StatusOK || res != rcapi.ResultApplied {
		t.Fatalf("first send: %d %s", st, res)
	}
	stop()
	stop = start()
	defer stop()
	if st, res := post(c); st != http.StatusOK || res != rcapi.ResultDuplicate {
		t.Fatalf("after a restart, the same id: %d %s; want 200 duplicate", st, res)
	}
	low := c
	low.ID, low.Epoch = "c2", 6
	if st, res := post(low); st != http.StatusConflict || res != rcapi.ErrCodeStaleEpoch {
		t.Fatalf("after a restart, a lower epoch: %d %s; want 409 stale_epoch", st, res)
	}
}
