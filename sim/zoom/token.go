package zoom

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Grant types accepted by POST /oauth/token.
const (
	grantAccountCredentials = "account_credentials"
	grantClientCredentials  = "client_credentials"
	grantAuthorizationCode  = "authorization_code"
	grantRefreshToken       = "refresh_token"
)

// Zoom's numbered OAuth errors (PROTOCOL §2).
const (
	codeInvalidClient       = 4702
	codeUnsupportedGrant    = 4705
	codeRedirectMismatch    = 4709
	codeAuthCodeExpired     = 4733
	codeAuthCodeInvalid     = 4734
	codeRefreshReuse        = 4740
	codeRefreshRevokedByNew = 4741
)

// ErrRedirectURIRequired is returned by IssueAuthCode for an empty
// redirect URI.
var ErrRedirectURIRequired = errors.New("zoom: redirect_uri is required")

// tokenReply is the body of a successful POST /oauth/token.
type tokenReply struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	APIURL       string `json:"api_url"`
}

// oauthError is the body of a failed POST /oauth/token (PROTOCOL §2). Code is
// Zoom's number where PROTOCOL names one.
type oauthError struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
	Code   int    `json:"code,omitempty"`
}

// tokenState holds the OAuth app's tokens and codes, guarded by Server.mu.
type tokenState struct {
	access   map[string]*accessToken
	order    []string // access tokens in issue order; dead ones pruned lazily
	requests uint64   // token requests so far: the fault stream's frame number
	wording  int      // the next failure wording
	codes    map[string]*authCode
	refresh  map[string]*refreshToken
	families []*refreshFamily // families not yet revoked
	stats    TokenStats
}

func newTokenState() tokenState {
	return tokenState{
		access:  make(map[string]*accessToken),
		codes:   make(map[string]*authCode),
		refresh: make(map[string]*refreshToken),
	}
}

// accessToken is one issued access token.
type accessToken struct {
	expires time.Time
	scopes  []string
}

// authCode is one authorization code, single use.
type authCode struct {
	redirect string
	expires  time.Time
}

// refreshFamily is the chain of refresh tokens of one authorization.
type refreshFamily struct {
	current string // the newest refresh token
	revoked bool   // a newer authorization replaced it
}

// refreshToken is one refresh token of a family.
type refreshToken struct {
	family  *refreshFamily
	expires time.Time
	reuses  int // uses after it was rotated out
}

// newSecret returns a fresh random token, code or refresh token.
func newSecret() string { return rand.Text() + rand.Text() }

// handleToken serves POST /oauth/token. Order: token-endpoint fault, client
// authentication (invalid_client), form, grant type. Parameters come from the
// form body, and from the query string too when Settings.TokenQueryParams.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if s.tokenFault(w, r) {
		return
	}
	s.mu.Lock()
	invalidClient, query := s.set.InvalidClientStatus, s.set.TokenQueryParams
	s.mu.Unlock()
	id, secret, ok := r.BasicAuth()
	if !ok || !equal(id, s.cfg.ClientID) || !equal(secret, s.cfg.ClientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="zoom"`)
		s.oauthFail(w, invalidClient, "invalid_client", "Invalid client_id or client_secret", codeInvalidClient)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "malformed form body", 0)
		return
	}
	params := r.PostForm
	if query {
		params = r.Form // body values first, then the query's
	}
	switch grant := params.Get("grant_type"); grant {
	case grantAccountCredentials, grantClientCredentials:
		s.grantS2S(w, r, grant, params)
	case grantAuthorizationCode:
		s.grantAuthCode(w, r, params)
	case grantRefreshToken:
		s.grantRefresh(w, r, params)
	default:
		s.oauthFail(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant type", codeUnsupportedGrant)
	}
}

// tokenFault applies Settings.TokenFault to one request. It reports whether
// the request was answered (429, 5xx, or a slow request that ended early).
func (s *Server) tokenFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	n := s.tok.requests
	s.tok.requests++
	set := &s.set
	fault := ""
	switch {
	case set.TokenFault == "":
	case set.TokenFaultNext > 0:
		set.TokenFaultNext--
		fault = set.TokenFault
	case set.TokenFaultProbability > 0 && streamRNG(set.Seed, "/oauth/token", n).Float64() < set.TokenFaultProbability:
		fault = set.TokenFault
	}
	retryAfter, status, delay := time.Duration(set.TokenRetryAfter), set.TokenFaultStatus, time.Duration(set.TokenDelay)
	switch fault {
	case TokenFault429, TokenFault5xx:
		s.tok.stats.Faulted++
	case TokenFaultSlow:
		s.tok.stats.Delayed++
	}
	s.mu.Unlock()

	switch fault {
	case TokenFault429:
		secs := int64(math.Ceil(retryAfter.Seconds()))
		s.log.Info().Int("status", http.StatusTooManyRequests).Int64("retry_after", secs).Msg("token request: injected 429")
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, http.StatusTooManyRequests, oauthError{Reason: "Too many requests", Error: "too_many_requests"})
		return true
	case TokenFault5xx:
		s.log.Info().Int("status", status).Msg("token request: injected server error")
		writeJSON(w, status, oauthError{Reason: "Internal server error", Error: "server_error"})
		return true
	case TokenFaultSlow:
		s.log.Info().Dur("delay", delay).Msg("token request: injected delay")
		t := s.clock.TimerAt(s.clock.Now().Add(delay))
		defer t.Stop()
		select {
		case <-t.C():
			return false
		case <-r.Context().Done():
			return true
		case <-s.stopCtx.Done():
			http.Error(w, reasonServerClosing, http.StatusServiceUnavailable)
			return true
		}
	}
	return false
}

// oauthFail answers a refused token request.
func (s *Server) oauthFail(w http.ResponseWriter, status int, errCode, reason string, code int) {
	s.mu.Lock()
	s.tok.stats.Rejected++
	s.mu.Unlock()
	ev := s.log.Info().Int("status", status).Str("error", errCode)
	if code != 0 {
		ev = ev.Int("code", code)
	}
	ev.Msg("token request refused")
	writeJSON(w, status, oauthError{Reason: reason, Error: errCode, Code: code})
}

// grantS2S serves the Server-to-Server grants: account_credentials needs
// account_id; client_credentials takes it optionally; if given it must match.
func (s *Server) grantS2S(w http.ResponseWriter, r *http.Request, grant string, params url.Values) {
	account, hasAccount := params.Get("account_id"), params.Has("account_id")
	if grant == grantAccountCredentials && account == "" {
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "account_id is required", 0)
		return
	}
	if hasAccount && account != s.cfg.AccountID {
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "Invalid account_id", 0)
		return
	}
	s.mu.Lock()
	reply := s.issueAccessLocked(r, grant)
	s.mu.Unlock()
	s.tokenReply(w, reply)
}

// grantAuthCode serves grant_type=authorization_code.
func (s *Server) grantAuthCode(w http.ResponseWriter, r *http.Request, params url.Values) {
	code, redirect := params.Get("code"), params.Get("redirect_uri")
	if code == "" {
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "code is required", 0)
		return
	}
	s.mu.Lock()
	now := s.clock.Now()
	ac := s.tok.codes[code]
	switch {
	case ac == nil:
		s.mu.Unlock()
		s.oauthFail(w, http.StatusBadRequest, "invalid_grant", "Invalid authorization code", codeAuthCodeInvalid)
		return
	case !now.Before(ac.expires):
		delete(s.tok.codes, code)
		s.mu.Unlock()
		s.oauthFail(w, http.StatusBadRequest, "invalid_grant", "Authorization code expired", codeAuthCodeExpired)
		return
	case redirect != ac.redirect:
		s.mu.Unlock() // the code stays usable
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "Redirect URI mismatch", codeRedirectMismatch)
		return
	}
	delete(s.tok.codes, code)
	s.tok.stats.CodesExchanged++
	// A new authorization revokes every earlier refresh token of the app.
	for _, f := range s.tok.families {
		f.revoked = true
	}
	fam := &refreshFamily{}
	s.tok.families = []*refreshFamily{fam}
	reply := s.issueAccessLocked(r, grantAuthorizationCode)
	reply.RefreshToken = s.newRefreshLocked(fam, now)
	s.mu.Unlock()
	s.tokenReply(w, reply)
}

// newRefreshLocked makes the next refresh token of fam and returns it.
func (s *Server) newRefreshLocked(fam *refreshFamily, now time.Time) string {
	for t, rt := range s.tok.refresh {
		if !now.Before(rt.expires) {
			delete(s.tok.refresh, t)
		}
	}
	tok := newSecret()
	s.tok.refresh[tok] = &refreshToken{family: fam, expires: now.Add(time.Duration(s.set.RefreshTokenTTL))}
	fam.current = tok
	return tok
}

// grantRefresh serves grant_type=refresh_token. With Settings.LoseRefreshReply
// left, the request is processed (a refresh rotates) and the reply is lost.
func (s *Server) grantRefresh(w http.ResponseWriter, r *http.Request, params url.Values) {
	s.mu.Lock()
	lose := s.set.LoseRefreshReply > 0
	if lose {
		s.set.LoseRefreshReply--
		s.tok.stats.RepliesLost++
	}
	s.mu.Unlock()
	if lose {
		w = &lostReply{ResponseWriter: w, s: s}
	}
	tok := params.Get("refresh_token")
	if tok == "" {
		s.oauthFail(w, http.StatusBadRequest, "invalid_request", "refresh_token is required", 0)
		return
	}
	s.mu.Lock()
	now := s.clock.Now()
	rt := s.tok.refresh[tok]
	fail := func(reason string, code int) {
		s.mu.Unlock()
		s.oauthFail(w, http.StatusBadRequest, "invalid_grant", reason, code)
	}
	switch {
	case rt == nil:
		fail("Invalid Token!", 0)
		return
	case !now.Before(rt.expires):
		fail("Refresh token expired", 0)
		return
	case rt.family.revoked:
		fail("Refresh token was revoked by a newer authorization", codeRefreshRevokedByNew)
		return
	case rt.family.current != tok && rt.reuses >= s.set.RefreshReuseTolerance:
		fail("Refresh token was already used", codeRefreshReuse)
		return
	}
	reply := s.issueAccessLocked(r, grantRefreshToken)
	if rt.family.current != tok {
		rt.reuses++ // tolerated reuse: hand back the current refresh token
		reply.RefreshToken = rt.family.current
	} else {
		reply.RefreshToken = s.newRefreshLocked(rt.family, now)
	}
	s.tok.stats.Refreshes++
	s.mu.Unlock()
	s.tokenReply(w, reply)
}

// lostReply is the ResponseWriter of a refresh whose reply is lost: instead
// of writing anything, it hijacks the connection and closes it.
type lostReply struct {
	http.ResponseWriter
	s    *Server
	done bool
}

func (l *lostReply) Header() http.Header { return http.Header{} }

func (l *lostReply) Write(b []byte) (int, error) {
	l.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (l *lostReply) WriteHeader(int) {
	if l.done {
		return
	}
	l.done = true
	l.s.log.Info().Msg("refresh processed; reply lost (fault): closing the connection")
	if hj, ok := l.ResponseWriter.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: net/http's documented way to abort a reply
}

// issueAccessLocked issues an access token under the token mode and returns
// the reply body without a refresh token.
func (s *Server) issueAccessLocked(r *http.Request, grant string) tokenReply {
	now := s.clock.Now()
	s.pruneAccessLocked(now)
	tok := newSecret()
	ttl := time.Duration(s.set.TokenTTL)
	s.tok.access[tok] = &accessToken{expires: now.Add(ttl), scopes: slices.Clone(s.set.Scopes)}
	s.tok.order = append(s.tok.order, tok)
	s.tok.stats.Issued++
	switch s.set.TokenMode {
	case TokenModeLegacyInvalidate:
		for _, old := range s.tok.order {
			if old != tok {
				s.cancelTokenLocked(old)
			}
		}
	case TokenModeCapped:
		s.enforceCapLocked(now)
	}
	s.pruneAccessLocked(now)
	s.log.Info().Str("grant_type", grant).Int64("expires_in", int64(ttl.Seconds())).
		Int64("tokens_issued", s.tok.stats.Issued).Str("token_mode", s.set.TokenMode).Msg("token issued")
	return tokenReply{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   int64(ttl.Seconds()),
		Scope:       strings.Join(s.set.Scopes, " "),
		APIURL:      "http://" + r.Host,
	}
}

// tokenReply writes a successful token reply.
func (s *Server) tokenReply(w http.ResponseWriter, reply tokenReply) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, reply)
}

// pruneAccessLocked forgets expired tokens and dead entries of the order.
func (s *Server) pruneAccessLocked(now time.Time) {
	for t, at := range s.tok.access {
		if !now.Before(at.expires) {
			delete(s.tok.access, t)
		}
	}
	s.tok.order = slices.DeleteFunc(s.tok.order, func(t string) bool { return s.tok.access[t] == nil })
}

// enforceCapLocked cancels the oldest live tokens beyond Settings.TokenCap.
func (s *Server) enforceCapLocked(now time.Time) {
	s.pruneAccessLocked(now)
	for len(s.tok.order) > s.set.TokenCap {
		s.cancelTokenLocked(s.tok.order[0])
		s.tok.order = s.tok.order[1:]
	}
}

// cancelTokenLocked cancels a live access token; under close-at-expiry its
// open sockets get a failure frame and a close.
func (s *Server) cancelTokenLocked(tok string) {
	if s.tok.access[tok] == nil {
		return
	}
	delete(s.tok.access, tok)
	s.tok.stats.Cancelled++
	if s.set.TokenExpiry != TokenExpiryCloseAtExpiry {
		return
	}
	for _, id := range s.cfg.Subscriptions {
		for _, c := range slices.Clone(s.subs[id].conns) {
			if c.token == tok {
				s.tokenCloseLocked(c)
			}
		}
	}
}

// accessLocked returns the live access token tok, or nil if it is unknown,
// expired or cancelled.
func (s *Server) accessLocked(tok string) *accessToken {
	at := s.tok.access[tok]
	if at == nil || !s.clock.Now().Before(at.expires) {
		return nil
	}
	return at
}

// failureWordingLocked returns the next invalid-token failure text.
func (s *Server) failureWordingLocked() string {
	w := s.set.FailureWordings[s.tok.wording%len(s.set.FailureWordings)]
	s.tok.wording++
	return w
}

// IssueAuthCode issues a single-use authorization code for redirectURI, as if
// a user had just authorised the app, valid for AuthCodeTTL. It returns the
// code and its expiry, ErrRedirectURIRequired for an empty redirectURI, or
// ErrClosed after Close.
func (s *Server) IssueAuthCode(redirectURI string) (code string, expires time.Time, err error) {
	if redirectURI == "" {
		return "", time.Time{}, ErrRedirectURIRequired
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", time.Time{}, ErrClosed
	}
	now := s.clock.Now()
	for c, ac := range s.tok.codes {
		if !now.Before(ac.expires) {
			delete(s.tok.codes, c)
		}
	}
	code, expires = newSecret(), now.Add(AuthCodeTTL)
	s.tok.codes[code] = &authCode{redirect: redirectURI, expires: expires}
	s.tok.stats.CodesIssued++
	s.log.Info().Time("expires_at", expires).Msg("authorization code issued")
	return code, expires, nil
}

// RevokeTokens cancels every live access token (under close-at-expiry their
// sockets are closed) and returns how many it cancelled.
func (s *Server) RevokeTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneAccessLocked(s.clock.Now())
	n := 0
	for _, t := range slices.Clone(s.tok.order) {
		s.cancelTokenLocked(t)
		n++
	}
	s.tok.order = nil
	s.log.Info().Int("revoked", n).Msg("access tokens revoked")
	return n
}

// TokenFetches returns the number of access tokens issued so far.
func (s *Server) TokenFetches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok.stats.Issued
}

// Tokens returns the token endpoint's counters.
func (s *Server) Tokens() TokenStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.tok.stats
	for t := range s.tok.access {
		if s.accessLocked(t) != nil {
			st.Live++
		}
	}
	return st
}

func (s *Server) handleTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Tokens())
}

func (s *Server) handleRevoke(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeTokens()})
}

// handleIssueCode serves POST /sim/oauth/codes {"redirect_uri":U}.
func (s *Server) handleIssueCode(w http.ResponseWriter, r *http.Request) {
	body, err := readControlBody(w, r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var req struct {
		RedirectURI string `json:"redirect_uri"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		badRequest(w, fmt.Errorf("body: %w", err))
		return
	}
	code, exp, err := s.IssueAuthCode(req.RedirectURI)
	switch {
	case errors.Is(err, ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, controlError{Error: "closed", Message: err.Error()})
	case err != nil:
		badRequest(w, err)
	default:
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{
			"code": code, "redirect_uri": req.RedirectURI, "expires_at": exp.UTC().Format(time.RFC3339),
		})
	}
}

// equal compares two credentials in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
