package authtest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Grant types the fake serves.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// Zoom's numbered OAuth errors the fake answers with.
const (
	CodeBadCode      = 4734 // unknown or used authorization code
	CodeRefreshReuse = 4740 // refresh token used already
)

// Server is the fake token endpoint. Its methods are safe for concurrent use.
type Server struct {
	// URL is the token endpoint, http://127.0.0.1:port/oauth/token.
	URL string

	t                      testing.TB
	ts                     *httptest.Server
	clientID, clientSecret string
	scope                  string

	mu          sync.Mutex
	allowed     map[string]int    // grant → requests still allowed
	requests    map[string]int    // grant → requests served
	codes       map[string]string // code → redirect URI; deleted when used
	refresh     map[string]bool   // refresh token → still valid
	issued      []string          // every token and code handed out
	loseReplies int               // refreshes whose reply is lost
	gate        chan struct{}     // non-nil: refreshes wait for it
	inflight    int               // refreshes being handled
	maxInflight int               // the most at once
	expiresIn   int64             // seconds
	started     chan struct{}     // signalled when a refresh starts, if non-nil
}

// New starts a fake for one OAuth client and closes it when the test ends.
// No request is allowed until Allow.
func New(t testing.TB, clientID, clientSecret string) *Server {
	s := &Server{t: t, clientID: clientID, clientSecret: clientSecret,
		scope:   "contact_center:read:task:admin user:read:user:admin",
		allowed: map[string]int{}, requests: map[string]int{}, codes: map[string]string{},
		refresh: map[string]bool{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.handle)
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL + "/oauth/token"
	t.Cleanup(s.ts.Close)
	return s
}

// Allow lets n more requests of grant through.
func (s *Server) Allow(grant string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[grant] += n
}

// SetScope sets the scope string of every reply.
func (s *Server) SetScope(scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scope = scope
}

// SetExpiresIn sets expires_in of every reply, in seconds.
func (s *Server) SetExpiresIn(sec int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = sec
}

// Code issues a single-use authorization code for redirectURI.
func (s *Server) Code(redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := "code-" + rand.Text()
	s.codes[c] = redirectURI
	s.issued = append(s.issued, c)
	return c
}

// RefreshToken makes a fresh valid refresh token, as if an earlier exchange
// had issued it.
func (s *Server) RefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + rand.Text() + rand.Text()
	s.refresh[rt] = true
	s.issued = append(s.issued, rt)
	return rt
}

// LoseNextRefreshReplies makes the next n refreshes be processed — the
// refresh token rotated — and their replies lost: the connection is closed
// without an answer (C-07).
func (s *Server) LoseNextRefreshReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseReplies += n
}

// Hold makes refreshes wait until the returned release is called, and
// signals each refresh's start on the returned channel (buffered).
func (s *Server) Hold() (started <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	st := make(chan struct{}, 100)
	s.gate, s.started = g, st
	var once sync.Once
	return st, func() { once.Do(func() { close(g) }) }
}

// Requests returns how many requests of grant were served.
func (s *Server) Requests(grant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[grant]
}

// MaxConcurrentRefreshes returns the most refreshes handled at once.
func (s *Server) MaxConcurrentRefreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

// Issued returns every code, access token and refresh token handed out (for
// tests that check nothing secret leaks).
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// ValidRefreshTokens returns how many refresh tokens still work.
func (s *Server) ValidRefreshTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ok := range s.refresh {
		if ok {
			n++
		}
	}
	return n
}

type reply struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

type oauthError struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
	Code   int    `json:"code,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	t := s.t
	bad := func(format string, args ...any) {
		t.Errorf("authtest: "+format, args...)
		writeJSON(w, http.StatusBadRequest, oauthError{Reason: "malformed request", Error: "invalid_request"})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
		bad("unexpected %s %s", r.Method, r.URL.Path)
		return
	}
	if r.URL.RawQuery != "" {
		bad("parameters in the query string (%d bytes); Zoom wants a form body", len(r.URL.RawQuery))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		bad("Content-Type %q, want application/x-www-form-urlencoded", ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		bad("form: %v", err)
		return
	}
	if r.PostForm.Has("client_secret") || r.PostForm.Has("client_id") {
		bad("client credentials in the body; Zoom wants Basic auth")
		return
	}
	grant := r.PostForm.Get("grant_type")
	s.mu.Lock()
	if s.allowed[grant] <= 0 {
		s.mu.Unlock()
		bad("unexpected %s request", grant)
		return
	}
	s.allowed[grant]--
	s.requests[grant]++
	s.mu.Unlock()

	id, secret, ok := r.BasicAuth()
	if !ok || id != s.clientID || secret != s.clientSecret {
		writeJSON(w, http.StatusUnauthorized, oauthError{Reason: "Invalid client_id or client_secret", Error: "invalid_client"})
		return
	}
	switch grant {
	case GrantAuthorizationCode:
		s.exchange(w, r)
	case GrantRefreshToken:
		s.refreshGrant(w, r)
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{Reason: "unsupported grant type", Error: "unsupported_grant_type", Code: 4705})
	}
}

func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	code, redirect := r.PostForm.Get("code"), r.PostForm.Get("redirect_uri")
	s.mu.Lock()
	want, ok := s.codes[code]
	delete(s.codes, code) // single-use, even when the redirect is wrong
	s.mu.Unlock()
	switch {
	case !ok:
		writeJSON(w, http.StatusBadRequest, oauthError{Reason: "Invalid authorization code " + code, Error: "invalid_grant", Code: CodeBadCode})
	case redirect != want:
		writeJSON(w, http.StatusBadRequest, oauthError{Reason: "Redirect URI mismatch.", Error: "invalid_request", Code: 4709})
	default:
		writeJSON(w, http.StatusOK, s.issue())
	}
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	gate, started := s.gate, s.started
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if started != nil {
		started <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	rt := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	valid := s.refresh[rt]
	if valid {
		s.refresh[rt] = false // rotation: the old refresh token stops working
	}
	lose := valid && s.loseReplies > 0
	if lose {
		s.loseReplies--
	}
	s.mu.Unlock()
	if !valid {
		writeJSON(w, http.StatusBadRequest, oauthError{Reason: "Invalid Token!", Error: "invalid_grant", Code: CodeRefreshReuse})
		return
	}
	rep := s.issue()
	if lose {
		hj, ok := w.(http.Hijacker)
		if !ok {
			s.t.Errorf("authtest: cannot hijack to lose a reply")
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// issue makes a new access token and refresh token.
func (s *Server) issue() reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, rt := "at-"+rand.Text()+rand.Text(), "rt-"+rand.Text()+rand.Text()
	s.refresh[rt] = true
	s.issued = append(s.issued, at, rt)
	return reply{AccessToken: at, TokenType: "bearer", RefreshToken: rt, ExpiresIn: s.expiresIn, Scope: s.scope}
}
