package zoom

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeClock is a clock moved by hand. Timers fire (in Advance, or at once
// when made for a time not in the future) by a non-blocking send on a
// one-slot channel, like time.Timer.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)}
}

// use installs the clock on a server (a newEnv hook).
func (c *fakeClock) use(s *Server) { s.clock = c }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			keep = append(keep, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = keep
}

// waiting reports how many timers wait for a time after now.
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// waitTimerAt waits until some timer waits for exactly at.
func (c *fakeClock) waitTimerAt(t *testing.T, what string, at time.Time) {
	t.Helper()
	waitFor(t, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, x := range c.timers {
			if x.at.Equal(at) {
				return true
			}
		}
		return false
	})
}

// do sends an HTTP request to the server and returns the status, body and
// headers. body is sent as JSON when it is not a string.
func (e *env) do(method, path string, body any, header http.Header) (int, []byte, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = strings.NewReader(string(j))
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// settings posts a settings change and fails the test unless it is taken.
func (e *env) settings(body string) Settings {
	e.t.Helper()
	st, b, _ := e.do(http.MethodPost, "/sim/settings", body, nil)
	if st != http.StatusOK {
		e.t.Fatalf("POST /sim/settings %s: %d %s", body, st, b)
	}
	var out Settings
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("settings reply %s: %v", b, err)
	}
	return out
}

// faults posts a fault change for sub and fails the test unless it is taken.
func (e *env) faults(sub, body string) Faults {
	e.t.Helper()
	st, b, _ := e.do(http.MethodPost, "/sim/subscriptions/"+sub+"/faults", body, nil)
	if st != http.StatusOK {
		e.t.Fatalf("POST faults %s: %d %s", body, st, b)
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("faults reply %s: %v", b, err)
	}
	return out
}

// jsonBody decodes a JSON object body.
func jsonBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return m
}

// grant posts a token request with the test client's credentials.
func (e *env) grant(form url.Values) (int, map[string]any) {
	e.t.Helper()
	return e.tokenRequest(testClient, testSecret, form)
}

// bearer returns an Authorization header for tok.
func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// expectSuccess reads a build_connection success frame from c.
func expectSuccess(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if f := readFrame(t, c); f.Module != "build_connection" || f.Success == nil || !*f.Success {
		t.Fatalf("frame = %+v, want build_connection success", f)
	}
}

// heartbeat sends a heartbeat and expects the reply.
func heartbeat(t *testing.T, c *websocket.Conn) {
	t.Helper()
	send(t, c, `{"module":"heartbeat"}`)
	if f := readFrame(t, c); f.Module != "heartbeat" {
		t.Fatalf("got %+v, want a heartbeat reply", f)
	}
}
