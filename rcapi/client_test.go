package rcapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/rcapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const bearer = "rc-bearer-7f3e9a1c"

// request is what a server saw of one request.
type request struct {
	method, path, query, auth, ctype string
	body                             []byte
}

// server answers every request with status and body, and records the last
// request.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
	got    request
}

// set changes the answer to the next requests.
func (s *server) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// last returns the last request seen.
func (s *server) last() request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

func newServer(t *testing.T, status int, body string) *server {
	t.Helper()
	s := &server{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got = request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b}
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, url string) *rcapi.Client {
	t.Helper()
	c, err := rcapi.NewClient(rcapi.ClientConfig{URL: url, BearerToken: bearer, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRequests(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	cmd := rcapi.Command{ID: "c1", Epoch: 7, Node: "a", Action: rcapi.ActionStart, EngagementID: "e", SegmentID: "e/u", At: at, Event: "ev"}
	for _, tc := range []struct {
		name, path string
		call       func(context.Context, *rcapi.Client) (string, error)
		sent       any
	}{
		{"command", "/v1/commands", func(ctx context.Context, c *rcapi.Client) (string, error) { return c.PostCommand(ctx, cmd) }, cmd},
		{"agent", "/v1/agents", func(ctx context.Context, c *rcapi.Client) (string, error) {
			return c.PostAgent(ctx, rcapi.AgentUpdate{ID: "a1", Epoch: 7, AgentID: "u", State: "ready", At: at})
		}, rcapi.AgentUpdate{ID: "a1", Epoch: 7, AgentID: "u", State: "ready", At: at}},
		{"epoch", "/v1/epoch", func(ctx context.Context, c *rcapi.Client) (string, error) {
			return c.ClaimEpoch(ctx, rcapi.EpochClaim{Epoch: 7, Node: "a"})
		}, rcapi.EpochClaim{Epoch: 7, Node: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, http.StatusOK, `{"result":"duplicate"}`)
			res, err := tc.call(t.Context(), newClient(t, s.URL+"/base"))
			if err != nil || res != rcapi.ResultDuplicate {
				t.Fatalf("call = %q, %v; want duplicate", res, err)
			}
			want, _ := json.Marshal(tc.sent)
			got := s.last()
			if got.method != http.MethodPost || got.path != "/base"+tc.path || got.auth != "Bearer "+bearer ||
				got.ctype != "application/json" || string(got.body) != string(want) {
				t.Errorf("request %+v; want POST /base%s with the bearer and body %s", got, tc.path, want)
			}
		})
	}
}

func TestClientReads(t *testing.T) {
	s := newServer(t, http.StatusOK, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"recording","pauses":0,"started_at":"2025-01-02T03:04:05.006Z","epoch":3,"later":"ignored"}]}`)
	c := newClient(t, s.URL)
	open, err := c.OpenRecordings(t.Context())
	if err != nil || len(open) != 1 || open[0].SegmentID != "e/u" || open[0].Epoch != 3 {
		t.Fatalf("OpenRecordings = %+v, %v", open, err)
	}
	got := s.last()
	if got.method != http.MethodGet || got.path != "/v1/recordings" || got.query != "state=open" || got.auth != "Bearer "+bearer {
		t.Errorf("request %+v; want GET /v1/recordings?state=open with the bearer", got)
	}
	s.set(http.StatusOK, `{"epoch":9,"entries":[{"seq":1,"kind":"epoch","result":"applied","claim":{"epoch":9,"node":"b"}}]}`)
	l, err := c.Ledger(t.Context())
	if err != nil || l.Epoch != 9 || len(l.Entries) != 1 || l.Entries[0].Claim == nil || l.Entries[0].Claim.Node != "b" {
		t.Fatalf("Ledger = %+v, %v", l, err)
	}
	if got := s.last(); got.path != "/v1/ledger" {
		t.Errorf("Ledger read %s", got.path)
	}
}

func TestClientStatusError(t *testing.T) {
	s := newServer(t, http.StatusConflict, `{"error":"stale_epoch","epoch":12,"message":"seen `+bearer+`"}`)
	_, err := newClient(t, s.URL).PostCommand(t.Context(), rcapi.Command{ID: "c"})
	var se *rcapi.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict || se.Reply.Error != rcapi.ErrCodeStaleEpoch || se.Reply.Epoch != 12 {
		t.Fatalf("err = %#v; want a *StatusError 409 with the reply", err)
	}
	if got, want := err.Error(), "POST /v1/commands: HTTP 409"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if strings.Contains(se.Reply.Message, bearer) || strings.Contains(se.Body, bearer) {
		t.Errorf("the error holds the bearer credential: %+v", se)
	}

	s.set(http.StatusBadGateway, strings.Repeat("x", 5000))
	_, err = newClient(t, s.URL).OpenRecordings(t.Context())
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || len(se.Body) > rcapi.MaxErrorBody+len("…") || se.Reply != (rcapi.Error{}) {
		t.Fatalf("err = %#v; want a *StatusError 502 with a bounded body and no reply", err)
	}
}

func TestClientReplyError(t *testing.T) {
	for body, want := range map[string]string{
		`{"result":"maybe"}`: `POST /v1/epoch: HTTP 200: malformed reply: result "maybe" is not applied or duplicate`,
		`not json`:           `POST /v1/epoch: HTTP 200: malformed reply: invalid character 'o' in literal null (expecting 'u')`,
	} {
		s := newServer(t, http.StatusOK, body)
		_, err := newClient(t, s.URL).ClaimEpoch(t.Context(), rcapi.EpochClaim{Epoch: 1})
		var re *rcapi.ReplyError
		if !errors.As(err, &re) || err.Error() != want {
			t.Errorf("200 %s: err = %v; want a *ReplyError %q", body, err, want)
		}
	}
	s := newServer(t, http.StatusOK, `{"recordings":`)
	_, err := newClient(t, s.URL).OpenRecordings(t.Context())
	var re *rcapi.ReplyError
	if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "GET /v1/recordings: ") || re.Err == nil {
		t.Errorf("truncated list: err = %v; want a *ReplyError with the decoding error", err)
	}
}

// TestFinding2_ClientDecodesRepliesStrictly: a reply that lacks a field the
// spec requires, carries a result or state it does not list, is not JSON or
// has data after the object is a *ReplyError with the status, the kind and
// the start of the body (scrubbed), never a success or an empty list; a 409
// without a positive epoch is one too, not a stale epoch.
func TestFinding2_ClientDecodesRepliesStrictly(t *testing.T) {
	open := func(ctx context.Context, c *rcapi.Client) error {
		list, err := c.OpenRecordings(ctx)
		if err == nil && list == nil {
			t.Error("OpenRecordings returned a nil list without an error")
		}
		return err
	}
	post := func(ctx context.Context, c *rcapi.Client) error {
		_, err := c.PostCommand(ctx, rcapi.Command{ID: "c"})
		return err
	}
	ledger := func(ctx context.Context, c *rcapi.Client) error {
		_, err := c.Ledger(ctx)
		return err
	}
	const seg = `"segment_id":"e/u","engagement_id":"e","state":"recording","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3`
	for _, tc := range []struct {
		name   string
		call   func(context.Context, *rcapi.Client) error
		status int
		body   string
		kind   string
	}{
		{"open: empty object", open, 200, `{}`, rcapi.ReplyMissingField},
		{"open: null list", open, 200, `{"recordings":null}`, rcapi.ReplyMissingField},
		{"open: JSON null", open, 200, `null`, rcapi.ReplyMissingField},
		{"open: an array", open, 200, `[]`, rcapi.ReplyNotJSON},
		{"open: HTML", open, 200, `<html><body>Login to continue</body></html>`, rcapi.ReplyNotJSON},
		{"open: empty body", open, 200, ``, rcapi.ReplyNotJSON},
		{"open: trailing data", open, 200, `{"recordings":[]} {"recordings":[{` + seg + `}]}`, rcapi.ReplyTrailingData},
		{"open: trailing garbage", open, 200, `{"recordings":[]}garbage`, rcapi.ReplyTrailingData},
		{"open: null segment", open, 200, `{"recordings":[null]}`, rcapi.ReplyMissingField},
		{"open: segment without ids", open, 200, `{"recordings":[{"state":"recording","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyMissingField},
		{"open: segment without pauses", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"recording","started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyMissingField},
		{"open: empty segment id", open, 200, `{"recordings":[{"segment_id":"","engagement_id":"e","state":"recording","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyInvalidValue},
		{"open: unknown state", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"weird","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyUnknownState},
		{"open: stopped in the open list", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"stopped","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyUnknownState},
		{"open: paused without a pause", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"paused","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyInvalidValue},
		{"open: zero epoch", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"recording","pauses":0,"started_at":"2025-01-02T03:04:05Z","epoch":0}]}`, rcapi.ReplyInvalidValue},
		{"open: listed twice", open, 200, `{"recordings":[{` + seg + `},{` + seg + `}]}`, rcapi.ReplyInvalidValue},
		{"open: wrong type", open, 200, `{"recordings":[{"segment_id":"e/u","engagement_id":"e","state":"recording","pauses":"one","started_at":"2025-01-02T03:04:05Z","epoch":3}]}`, rcapi.ReplyNotJSON},
		{"post: empty object", post, 200, `{}`, rcapi.ReplyMissingField},
		{"post: weird result", post, 200, `{"result":"weird"}`, rcapi.ReplyUnknownResult},
		{"post: null result", post, 200, `{"result":null}`, rcapi.ReplyMissingField},
		{"post: HTML", post, 200, `<html>ok</html>`, rcapi.ReplyNotJSON},
		{"post: trailing data", post, 200, `{"result":"applied"}{"result":"applied"}`, rcapi.ReplyTrailingData},
		{"post: 409 without epoch", post, 409, `{"error":"stale_epoch"}`, rcapi.ReplyMissingField},
		{"post: 409 with epoch 0", post, 409, `{"error":"stale_epoch","epoch":0}`, rcapi.ReplyInvalidValue},
		{"post: 409 of a proxy", post, 409, `<html>Conflict</html>`, rcapi.ReplyNotJSON},
		{"post: 409 other error", post, 409, `{"error":"busy","epoch":4}`, rcapi.ReplyUnknownResult},
		{"ledger: empty object", ledger, 200, `{}`, rcapi.ReplyMissingField},
		{"ledger: trailing data", ledger, 200, `{"epoch":1,"entries":[]}]`, rcapi.ReplyTrailingData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.status, tc.body)
			err := tc.call(t.Context(), newClient(t, s.URL))
			var re *rcapi.ReplyError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v; want a *ReplyError", err)
			}
			if re.Status != tc.status || re.Kind != tc.kind || re.Err == nil {
				t.Errorf("ReplyError status %d kind %q (%v); want %d %q", re.Status, re.Kind, re.Err, tc.status, tc.kind)
			}
			if want := strings.TrimSpace(tc.body); !strings.HasPrefix(re.Body, want) {
				t.Errorf("Body = %q; want the start of the reply %q", re.Body, want)
			}
			var se *rcapi.StatusError
			if errors.As(err, &se) {
				t.Errorf("err is also a *StatusError %v: a caller would take it as a verdict", se)
			}
		})
	}
}

// TestClientReplyBounds: a malformed reply's Body is scrubbed; a 200
// larger than the call reads is a *ReplyError (too_large) with a bounded
// Body; a valid empty list is an empty list.
func TestClientReplyBounds(t *testing.T) {
	echo := newServer(t, http.StatusOK, `<html>you sent Bearer `+bearer+` and access_token=q-secret</html>`)
	_, err := newClient(t, echo.URL).OpenRecordings(t.Context())
	var re *rcapi.ReplyError
	if !errors.As(err, &re) || re.Kind != rcapi.ReplyNotJSON {
		t.Fatalf("HTML reply: err = %v; want a *ReplyError not_json", err)
	}
	for _, secret := range []string{bearer, "q-secret"} {
		if strings.Contains(re.Body, secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("the error holds %q: %v / %q", secret, err, re.Body)
		}
	}
	s := newServer(t, http.StatusOK, `{"result":"applied","pad":"`+strings.Repeat("x", rcapi.MaxReplyBody)+`"}`)
	_, err = newClient(t, s.URL).PostCommand(t.Context(), rcapi.Command{ID: "c"})
	if !errors.As(err, &re) || re.Kind != rcapi.ReplyTooLarge || len(re.Body) > rcapi.MaxErrorBody+len("…") {
		t.Fatalf("oversized reply: err = %v; want a *ReplyError too_large with a bounded body", err)
	}
	s.set(http.StatusOK, `{"recordings":[]}`)
	list, err := newClient(t, s.URL).OpenRecordings(t.Context())
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("empty list = %#v, %v; want an empty, non-nil list", list, err)
	}
}

func TestClientEncodeError(t *testing.T) {
	s := newServer(t, http.StatusOK, `{"result":"applied"}`)
	_, err := newClient(t, s.URL).PostCommand(t.Context(), rcapi.Command{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if !errors.Is(err, rcapi.ErrEncode) || !strings.HasPrefix(err.Error(), "encode /v1/commands: ") {
		t.Fatalf("err = %v; want ErrEncode", err)
	}
	if s.last().method != "" {
		t.Error("a request was sent")
	}
}

func TestClientTransportError(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	_, err := newClient(t, url+"/?access_token=q-secret").PostCommand(t.Context(), rcapi.Command{ID: "c"})
	if err == nil || !strings.HasPrefix(err.Error(), "POST /v1/commands: post: ") {
		t.Fatalf("err = %v; want a transport error naming the request", err)
	}
	for _, s := range []string{bearer, "q-secret", url} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error %q holds %q", err, s)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := newServer(t, http.StatusOK, `{"result":"applied"}`)
	if _, err := newClient(t, s.URL).PostCommand(ctx, rcapi.Command{ID: "c"}); !errors.Is(err, context.Canceled) {
		t.Errorf("ended ctx: err = %v; want context.Canceled", err)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	c, err := rcapi.NewClient(rcapi.ClientConfig{URL: ts.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenRecordings(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want context.DeadlineExceeded after Timeout", err)
	}
}

func TestNewClientValidates(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::", "https://u:pw@"} {
		_, err := rcapi.NewClient(rcapi.ClientConfig{URL: u})
		if !errors.Is(err, rcapi.ErrInvalidConfig) {
			t.Errorf("URL %q: err = %v; want ErrInvalidConfig", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error %q holds the URL's password", err)
		}
	}
}
