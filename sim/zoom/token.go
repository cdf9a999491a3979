package zoom

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Grant types accepted by POST /oauth/token.
const (
	grantAccountCredentials = "account_credentials"
	grantClientCredentials  = "client_credentials"
)

// tokenReply is the body of a successful POST /oauth/token.
type tokenReply struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	APIURL      string `json:"api_url"`
}

// oauthError is the body of a failed POST /oauth/token (PROTOCOL §2).
type oauthError struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// handleToken serves the Server-to-Server grant. Client authentication is
// checked first (401 invalid_client), then the grant type (400
// unsupported_grant_type), then the account (400 invalid_request).
// Parameters are read from the form body only, never from the query string.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, reason string) {
		s.mu.Lock()
		s.rejected++
		s.mu.Unlock()
		s.log.Info().Int("status", status).Str("error", code).Msg("token request refused")
		writeJSON(w, status, oauthError{Reason: reason, Error: code})
	}
	id, secret, ok := r.BasicAuth()
	if !ok || !equal(id, s.cfg.ClientID) || !equal(secret, s.cfg.ClientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="zoom"`)
		fail(http.StatusUnauthorized, "invalid_client", "Invalid client_id or client_secret")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	grant := r.PostForm.Get("grant_type")
	account, hasAccount := r.PostForm.Get("account_id"), r.PostForm.Has("account_id")
	switch grant {
	case grantAccountCredentials:
		if account == "" {
			fail(http.StatusBadRequest, "invalid_request", "account_id is required")
			return
		}
	case grantClientCredentials:
		// account_id is optional with this grant; if given it must match.
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "unsupported grant type")
		return
	}
	if hasAccount && account != s.cfg.AccountID {
		fail(http.StatusBadRequest, "invalid_request", "Invalid account_id")
		return
	}

	tok := rand.Text() + rand.Text()
	now := s.now()
	s.mu.Lock()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(s.cfg.TokenTTL)
	s.issued++
	n := s.issued
	s.mu.Unlock()

	ttl := int64(s.cfg.TokenTTL.Seconds())
	s.log.Info().Str("grant_type", grant).Int64("expires_in", ttl).Int64("tokens_issued", n).Msg("token issued")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenReply{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   ttl,
		Scope:       strings.Join(s.cfg.Scopes, " "),
		APIURL:      "http://" + r.Host,
	})
}

// tokenValid reports whether tok was issued and has not expired.
func (s *Server) tokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && s.now().Before(exp)
}

// equal compares two credentials in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
