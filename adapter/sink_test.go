package adapter_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/recorder"
)

func newSink(t *testing.T, url string) *adapter.HTTPSink {
	t.Helper()
	s, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: url, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		RequestTimeout: 500 * time.Millisecond, BearerToken: "sink-bearer-secret",
		Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cmd(id string, epoch int64, action string) rcapi.Command {
	return rcapi.Command{ID: id, Epoch: epoch, Node: "a", Action: action, EngagementID: "eng-1",
		SegmentID: "eng-1/usr-1", At: time.Now().UTC().Truncate(time.Millisecond), Event: "contact_center.engagement_user_answered"}
}

func TestSinkRetriesWithTheSameID(t *testing.T) {
	rec := recorder.New(zerolog.New(zerolog.NewTestWriter(t)))
	ts := httptest.NewServer(rec.Handler())
	defer ts.Close()
	s := newSink(t, ts.URL)
	rec.FailNext(3, http.StatusServiceUnavailable)
	res, err := s.Send(t.Context(), cmd("c1", 5, rcapi.ActionStart))
	if err != nil || res != rcapi.ResultApplied {
		t.Fatalf("Send = %q, %v; want applied", res, err)
	}
	var attempts, applied int
	for _, e := range rec.Ledger().Entries {
		if e.Command != nil && e.Command.ID == "c1" {
			attempts++
			if e.Result == rcapi.ResultApplied {
				applied++
			}
		}
	}
	if applied != 1 {
		t.Errorf("command applied %d times, want 1 (attempts seen: %d)", applied, attempts)
	}
	// A resend after the reply was lost is a duplicate, not a second effect.
	if res, err := s.Send(t.Context(), cmd("c1", 5, rcapi.ActionStart)); err != nil || res != rcapi.ResultDuplicate {
		t.Fatalf("resend = %q, %v; want duplicate", res, err)
	}
}

func TestSinkRecorderVerdicts(t *testing.T) {
	rec := recorder.New(zerolog.New(zerolog.NewTestWriter(t)))
	ts := httptest.NewServer(rec.Handler())
	defer ts.Close()
	s := newSink(t, ts.URL)
	ctx := t.Context()
	if err := s.ClaimEpoch(ctx, rcapi.EpochClaim{Epoch: 9, Node: "b"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Send(ctx, cmd("old", 5, rcapi.ActionStart))
	var se *adapter.StaleEpochError
	if !errors.As(err, &se) || se.Epoch != 9 || !errors.Is(err, adapter.ErrStaleEpoch) {
		t.Fatalf("stale send: %v; want StaleEpochError{9}", err)
	}
	_, err = s.Send(ctx, cmd("p", 9, rcapi.ActionPause))
	if !errors.Is(err, adapter.ErrInvalidTransition) {
		t.Fatalf("pause before start: %v; want ErrInvalidTransition", err)
	}
	open, err := s.OpenRecordings(ctx)
	if err != nil || len(open) != 0 {
		t.Fatalf("open recordings: %v, %v", open, err)
	}
}

func TestSinkStopsRetryingWhenLeadershipEnds(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer ts.Close()
	s := newSink(t, ts.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, cmd("c", 1, rcapi.ActionStart))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send against a failing recorder: %v; want the context's error", err)
	}
	if strings.Contains(err.Error(), "sink-bearer-secret") {
		t.Fatal("error leaks the bearer token")
	}
}

func TestSinkRejectedAndUnencodable(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"malformed","message":"segment_id is empty"}`)
	}))
	defer ts.Close()
	s := newSink(t, ts.URL)
	_, err := s.Send(t.Context(), cmd("c", 1, rcapi.ActionStart))
	if !errors.Is(err, adapter.ErrRejected) || !strings.Contains(err.Error(), "segment_id is empty") {
		t.Fatalf("Send of a malformed command: %v; want ErrRejected with the recorder's message", err)
	}
	bad := cmd("c", 1, rcapi.ActionStart)
	bad.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Send(t.Context(), bad); !errors.Is(err, rcapi.ErrEncode) {
		t.Fatalf("Send of an unencodable command: %v; want rcapi.ErrEncode", err)
	}
}

func TestSinkConfigErrors(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}
