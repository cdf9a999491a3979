package adapter_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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

// scripted answers the i-th request (from 0) with replies[min(i, last)]
// and counts the requests.
type scripted struct {
	replies []struct {
		status int
		body   string
	}
	n atomic.Int64
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	i := int(s.n.Add(1) - 1)
	r := s.replies[min(i, len(s.replies)-1)]
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body)
}

func script(replies ...any) *scripted {
	s := &scripted{}
	for i := 0; i < len(replies); i += 2 {
		s.replies = append(s.replies, struct {
			status int
			body   string
		}{replies[i].(int), replies[i+1].(string)})
	}
	return s
}

// TestFinding2_SinkRetriesMalformedReplies: a reply that is not the API's
// (`{}`, an unknown result, HTML, trailing data, a 409 without epoch) is a
// failed attempt: retried with the same command until the recorder
// answers properly, counted, and logged at Error once per path, status
// and kind;
// a 409 without epoch is not taken as a stale epoch.
func TestFinding2_SinkRetriesMalformedReplies(t *testing.T) {
	srv := script(200, `{}`, 200, `{}`, 200, `{"result":"weird"}`, 200, `<html>ok</html>`,
		200, `{"result":"applied"}{}`, 409, `{"error":"stale_epoch"}`, 200, `{"result":"applied"}`)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var logs strings.Builder
	s, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: ts.URL, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Logger: zerolog.New(&syncWriter{w: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Send(t.Context(), cmd("c1", 5, rcapi.ActionStop))
	if err != nil || res != rcapi.ResultApplied {
		t.Fatalf("Send = %q, %v; want applied after the malformed replies", res, err)
	}
	if n := srv.n.Load(); n != 7 {
		t.Errorf("%d attempts; want 7", n)
	}
	if c := s.Counts(); c.BadReplies != 6 {
		t.Errorf("BadReplies = %d; want 6", c.BadReplies)
	}
	out := logs.String()
	for kind, want := range map[string]int{rcapi.ReplyMissingField: 2, rcapi.ReplyUnknownResult: 1, rcapi.ReplyNotJSON: 1, rcapi.ReplyTrailingData: 1} {
		if got := strings.Count(out, `"kind":"`+kind+`"`); got != want {
			t.Errorf("kind %s logged %d times; want %d\n%s", kind, got, want, out)
		}
	}
}

// syncWriter makes a writer safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestFinding2_SinkOpenRecordingsStrict: an open-recordings reply without
// the list is an error (counted), never an empty list.
func TestFinding2_SinkOpenRecordingsStrict(t *testing.T) {
	for _, body := range []string{`{}`, `{"recordings":null}`, `<html></html>`, `{"recordings":[]}x`,
		`{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"weird","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`} {
		ts := httptest.NewServer(script(200, body))
		s := newSink(t, ts.URL)
		open, err := s.OpenRecordings(t.Context())
		var re *rcapi.ReplyError
		if !errors.As(err, &re) || open != nil {
			t.Errorf("open list %s: %v, %v; want a *rcapi.ReplyError", body, open, err)
		}
		if c := s.Counts(); c.BadReplies != 1 {
			t.Errorf("open list %s: BadReplies = %d; want 1", body, c.BadReplies)
		}
		ts.Close()
	}
}

// TestFinding8_SinkNoticesFenceReset: a claim of the epoch the recorder
// took before answered applied again (a recorder restarted without its
// state) is counted, logged and no error; a duplicate is not.
func TestFinding8_SinkNoticesFenceReset(t *testing.T) {
	var rec atomic.Pointer[recorder.Recorder]
	rec.Store(recorder.New(zerolog.New(zerolog.NewTestWriter(t))))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rec.Load().Handler().ServeHTTP(w, r) }))
	defer ts.Close()
	s := newSink(t, ts.URL)
	claim := rcapi.EpochClaim{Epoch: 9, Node: "a"}
	for range 2 {
		if err := s.ClaimEpoch(t.Context(), claim); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.Counts(); c.FenceResets != 0 {
		t.Fatalf("FenceResets = %d after a claim and its duplicate; want 0", c.FenceResets)
	}
	rec.Store(recorder.New(zerolog.New(zerolog.NewTestWriter(t)))) // restarted without its state
	if err := s.ClaimEpoch(t.Context(), claim); err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c.FenceResets != 1 {
		t.Fatalf("FenceResets = %d after the restarted recorder took the epoch as new; want 1", c.FenceResets)
	}
	if got := rec.Load().Ledger().Epoch; got != 9 {
		t.Errorf("fence %d after the claim; want 9", got)
	}
	if err := s.ClaimEpoch(t.Context(), rcapi.EpochClaim{Epoch: 11, Node: "b"}); err != nil || s.Counts().FenceResets != 1 {
		t.Errorf("a new term's claim: %v, FenceResets %d; want no reset", err, s.Counts().FenceResets)
	}
}

// TestSinkRefusalCarriesTheReason: a 422's message, bounded, is in the
// ErrInvalidTransition error.
func TestSinkRefusalCarriesTheReason(t *testing.T) {
	ts := httptest.NewServer(script(422, `{"error":"invalid_transition","message":"segment is stopped `+strings.Repeat("x", 1000)+`"}`))
	defer ts.Close()
	_, err := newSink(t, ts.URL).Send(t.Context(), cmd("c", 1, rcapi.ActionStop))
	if !errors.Is(err, adapter.ErrInvalidTransition) || !strings.Contains(err.Error(), "segment is stopped") || len(err.Error()) > 300 {
		t.Fatalf("err = %v; want ErrInvalidTransition with the bounded message", err)
	}
}
