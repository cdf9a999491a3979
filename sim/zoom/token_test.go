package zoom

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var s2sForm = url.Values{"grant_type": {"account_credentials"}, "account_id": {testAccount}}

// restStatus calls an engagement-scoped REST endpoint with tok and returns
// the status and the body's code.
func (e *env) restStatus(tok string) (int, float64) {
	e.t.Helper()
	st, b, _ := e.do(http.MethodGet, "/v2/contact_center/users", nil, bearer(tok))
	code, _ := jsonBody(e.t, b)["code"].(float64)
	return st, code
}

func TestTokenModes(t *testing.T) {
	tests := []struct {
		mode, settings string
		// valid[i] reports whether the i-th of four tokens, fetched in turn,
		// is still valid after all four were fetched.
		valid     [4]bool
		cancelled int64
	}{
		{TokenModeMulti, `{}`, [4]bool{true, true, true, true}, 0},
		{TokenModeLegacyInvalidate, `{"token_mode":"legacy-invalidate"}`, [4]bool{false, false, false, true}, 3},
		{TokenModeCapped, `{"token_mode":"capped"}`, [4]bool{false, false, true, true}, 2}, // default cap 2
		{TokenModeCapped + " 3", `{"token_mode":"capped","token_cap":3}`, [4]bool{false, true, true, true}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			e := newEnv(t, nil)
			e.settings(tt.settings)
			var toks [4]string
			for i := range toks {
				toks[i] = e.token()
			}
			for i, tok := range toks {
				c := e.dial("sub-a", tok, nil)
				f := readFrame(t, c)
				if ok := f.Success != nil && *f.Success; ok != tt.valid[i] {
					t.Errorf("token %d: socket success %v, want %v", i, ok, tt.valid[i])
				}
				_ = c.CloseNow()
				st, code := e.restStatus(tok)
				if ok := st == http.StatusOK; ok != tt.valid[i] {
					t.Errorf("token %d: REST status %d, want valid %v", i, st, tt.valid[i])
				}
				if !tt.valid[i] && (st != http.StatusUnauthorized || code != 124) {
					t.Errorf("token %d: REST %d code %v, want 401 code 124", i, st, code)
				}
			}
			want := 0
			for _, v := range tt.valid {
				if v {
					want++
				}
			}
			if st := e.s.Tokens(); st.Live != want || st.Cancelled != tt.cancelled || st.Issued != 4 {
				t.Errorf("Tokens = %+v, want %d live, %d cancelled, 4 issued", st, want, tt.cancelled)
			}
		})
	}
	t.Run("lowering the cap cancels at once", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"token_mode":"capped","token_cap":5}`)
		old, mid, newest := e.token(), e.token(), e.token()
		e.settings(`{"token_cap":1}`)
		for tok, want := range map[string]int{old: 401, mid: 401, newest: 200} {
			if st, _ := e.restStatus(tok); st != want {
				t.Errorf("status %d, want %d", st, want)
			}
		}
	})
}

func TestTokenExpiryPolicy(t *testing.T) {
	const ttl = time.Minute
	t.Run("connect-only keeps the socket", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, func(c *Config) { c.TokenTTL = Duration(ttl) }, clock.use)
		c := e.connect("sub-a")
		clock.Advance(2 * ttl)
		heartbeat(t, c)
		if n := e.s.Publish("e", clock.Now(), nil); n != 1 {
			t.Errorf("delivered %d to a socket with an expired token, want 1", n)
		}
		parseEvent(t, readFrame(t, c))
	})
	t.Run("close-at-expiry closes at expiry", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, func(c *Config) {
			c.TokenTTL = Duration(ttl)
			c.TokenExpiry = TokenExpiryCloseAtExpiry
			c.FailureWordings = []string{"Token expired (sim)"}
			c.CloseCode = 4001
		}, clock.use)
		c := e.connect("sub-a")
		clock.waitTimerAt(t, "the expiry timer", clock.Now().Add(ttl))
		clock.Advance(ttl)
		expectFailureCode(t, c, "Token expired (sim)", 4001)
		if st := e.status("sub-a"); st.TokenCloses != 1 || st.Connected {
			t.Errorf("status = %+v, want 1 token close", st)
		}
	})
	t.Run("close-at-expiry closes on cancel", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"token_mode":"legacy-invalidate","token_expiry":"close-at-expiry"}`)
		a := e.connect("sub-a")
		b := e.connect("sub-b") // its token cancelled a's
		expectFailure(t, a, "Invalid Token")
		heartbeat(t, b)
		if n := e.s.RevokeTokens(); n != 1 {
			t.Errorf("RevokeTokens = %d, want 1", n)
		}
		expectFailure(t, b, "Token is invalid")
	})
	t.Run("switching to close-at-expiry closes dead sockets", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"token_mode":"legacy-invalidate"}`)
		a := e.connect("sub-a")
		b := e.connect("sub-b") // cancels a's token, but a stays open: connect-only
		heartbeat(t, a)
		e.settings(`{"token_expiry":"close-at-expiry"}`)
		expectFailure(t, a, "Invalid Token")
		heartbeat(t, b)
	})
	t.Run("revoke endpoint", func(t *testing.T) {
		e := newEnv(t, nil)
		tok := e.token()
		st, b, _ := e.do(http.MethodPost, "/sim/tokens/revoke", nil, nil)
		if st != http.StatusOK || strings.TrimSpace(string(b)) != `{"revoked":1}` {
			t.Errorf("revoke: %d %s", st, b)
		}
		expectFailure(t, e.dial("sub-a", tok, nil), "Invalid Token")
		if st := e.s.Tokens(); st.Cancelled != 1 || st.Live != 0 {
			t.Errorf("Tokens = %+v", st)
		}
	})
}

// expectFailureCode expects a build_connection failure with the given
// content, then a close with code.
func expectFailureCode(t *testing.T, c *websocket.Conn, want string, code websocket.StatusCode) {
	t.Helper()
	f := readFrame(t, c)
	if f.Module != "build_connection" || f.Success == nil || *f.Success || f.content(t) != want {
		t.Errorf("frame = %+v (content %s), want build_connection success:false %q", f, f.Content, want)
	}
	if err := expectClosed(t, c); websocket.CloseStatus(err) != code {
		t.Errorf("close: %v, want status %d", err, code)
	}
}

func TestFailureWordingsRoundRobin(t *testing.T) {
	e := newEnv(t, nil)
	e.settings(`{"failure_wordings":["w1","w2","w3"]}`)
	for _, want := range []string{"w1", "w2", "w3", "w1"} {
		expectFailure(t, e.dial("sub-a", "bogus", nil), want)
	}
	// "token is empty" never rotates.
	expectFailure(t, e.dial("sub-a", "", nil), "token is empty")
	e.settings(`{"failure_wordings":null}`)                          // back to the default
	expectFailure(t, e.dial("sub-a", "bogus", nil), "Invalid Token") // the 5th failure: 4 mod 2
}

func TestConnectedContentAndCloseCode(t *testing.T) {
	e := newEnv(t, nil)
	e.settings(`{"connected_content":"hello","close_code":4003}`)
	old := e.dial("sub-a", e.token(), nil)
	if f := readFrame(t, old); f.content(t) != "hello" {
		t.Errorf("success content = %s, want hello", f.Content)
	}
	e.connect("sub-a") // kicks old
	if err := expectClosed(t, old); websocket.CloseStatus(err) != 4003 {
		t.Errorf("kicked: %v, want close 4003", err)
	}
	expectFailureCode(t, e.dial("sub-zzz", e.token(), nil), reasonUnknownSub, 4003)

	// The second-connection policy changes while running too.
	e.settings(`{"second_connection":"reject"}`)
	expectFailureCode(t, e.dial("sub-a", e.token(), nil), reasonAlreadyOpen, 4003)
}

func TestTokenEndpointFaults(t *testing.T) {
	t.Run("429 next", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"token_fault":"429","token_fault_next":2,"token_retry_after":"1500ms"}`)
		for i := range 2 {
			st, b, h := e.do(http.MethodPost, "/oauth/token", s2sForm.Encode(), http.Header{
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Authorization": {"Basic " + basic(testClient, testSecret)}})
			if st != http.StatusTooManyRequests || h.Get("Retry-After") != "2" {
				t.Errorf("request %d: %d Retry-After %q, want 429 and 2", i, st, h.Get("Retry-After"))
			}
			if body := jsonBody(t, b); body["error"] == nil || body["reason"] == nil {
				t.Errorf("429 body = %s", b)
			}
		}
		e.token() // the third one works
		if got := e.s.Settings().TokenFaultNext; got != 0 {
			t.Errorf("token_fault_next after use = %d, want 0", got)
		}
		if st := e.s.Tokens(); st.Faulted != 2 || st.Issued != 1 {
			t.Errorf("Tokens = %+v, want 2 faulted, 1 issued", st)
		}
	})
	t.Run("5xx probability", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"token_fault":"5xx","token_fault_probability":1,"token_fault_status":502}`)
		if st, body := e.grant(s2sForm); st != http.StatusBadGateway || body["error"] != "server_error" {
			t.Errorf("got %d %v, want 502 server_error", st, body)
		}
		e.settings(`{"token_fault_probability":0}`)
		e.token()
	})
	t.Run("probability is seeded", func(t *testing.T) {
		pattern := func(seed int) string {
			e := newEnv(t, func(c *Config) {
				c.Seed = int64(seed)
				c.TokenFault, c.TokenFaultProbability = TokenFault429, 0.5
			})
			var b strings.Builder
			for range 24 {
				st, _ := e.grant(s2sForm)
				b.WriteString(map[int]string{200: "o", 429: "x"}[st])
			}
			return b.String()
		}
		p1, p2 := pattern(7), pattern(7)
		if p1 != p2 {
			t.Errorf("seed 7 gave %s then %s", p1, p2)
		}
		if !strings.Contains(p1, "o") || !strings.Contains(p1, "x") || len(p1) != 24 {
			t.Errorf("pattern %s: want both outcomes", p1)
		}
		if p3 := pattern(8); p3 == p1 {
			t.Errorf("seeds 7 and 8 gave the same pattern %s", p1)
		}
	})
	t.Run("slow", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, nil, clock.use)
		e.settings(`{"token_fault":"slow","token_fault_next":1,"token_delay":"30s"}`)
		done := make(chan int, 1)
		go func() {
			st, _ := e.grant(s2sForm)
			done <- st
		}()
		clock.waitTimerAt(t, "the slow request", clock.Now().Add(30*time.Second))
		select {
		case st := <-done:
			t.Fatalf("slow request answered %d before its delay", st)
		default:
		}
		clock.Advance(30 * time.Second)
		select {
		case st := <-done:
			if st != http.StatusOK {
				t.Errorf("slow request: %d, want 200", st)
			}
		case <-time.After(wait):
			t.Fatal("slow request not answered after its delay")
		}
		if st := e.s.Tokens(); st.Delayed != 1 || st.Issued != 1 {
			t.Errorf("Tokens = %+v", st)
		}
	})
	t.Run("invalid client status and query parameters", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"invalid_client_status":400}`)
		st, body := e.tokenRequest(testClient, "wrong", s2sForm)
		if st != http.StatusBadRequest || body["error"] != "invalid_client" {
			t.Errorf("bad secret: %d %v, want 400 invalid_client", st, body)
		}
		query := func() int {
			st, _, _ := e.do(http.MethodPost, "/oauth/token?"+s2sForm.Encode(), nil,
				http.Header{"Authorization": {"Basic " + basic(testClient, testSecret)}})
			return st
		}
		if st := query(); st != http.StatusBadRequest {
			t.Errorf("query parameters by default: %d, want 400", st)
		}
		e.settings(`{"token_query_params":true}`)
		if st := query(); st != http.StatusOK {
			t.Errorf("query parameters allowed: %d, want 200", st)
		}
	})
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// issueCode gets an authorization code through the control endpoint.
func (e *env) issueCode(redirect string) string {
	e.t.Helper()
	st, b, _ := e.do(http.MethodPost, "/sim/oauth/codes", map[string]string{"redirect_uri": redirect}, nil)
	body := jsonBody(e.t, b)
	code, _ := body["code"].(string)
	if st != http.StatusOK || code == "" || body["redirect_uri"] != redirect || body["expires_at"] == nil {
		e.t.Fatalf("POST /sim/oauth/codes: %d %s", st, b)
	}
	return code
}

const redirect = "https://ris.example/oauth/callback"

// exchange runs the authorization-code grant.
func (e *env) exchange(code, redirectURI string) (int, map[string]any) {
	e.t.Helper()
	return e.grant(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}})
}

// refresh runs the refresh-token grant.
func (e *env) refresh(rt string) (int, map[string]any) {
	e.t.Helper()
	return e.grant(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// wantOAuthError checks a failed grant.
func wantOAuthError(t *testing.T, what string, st int, body map[string]any, status int, errCode string, code int) {
	t.Helper()
	gotCode, _ := body["code"].(float64)
	if st != status || body["error"] != errCode || int(gotCode) != code || body["reason"] == nil {
		t.Errorf("%s: %d %v, want %d error %q code %d", what, st, body, status, errCode, code)
	}
}

func TestAuthorizationCodeGrant(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, nil, clock.use)
	code := e.issueCode(redirect)

	st, body := e.exchange(code, "https://evil.example/cb")
	wantOAuthError(t, "redirect mismatch", st, body, 400, "invalid_request", 4709)

	st, body = e.exchange(code, redirect) // the mismatch did not use it up
	at, _ := body["access_token"].(string)
	rt, _ := body["refresh_token"].(string)
	if st != http.StatusOK || at == "" || rt == "" || body["token_type"] != "bearer" || body["expires_in"] != float64(3600) {
		t.Fatalf("exchange: %d %v", st, body)
	}
	if st, _ := e.restStatus(at); st != http.StatusOK {
		t.Errorf("REST with the exchanged token: %d", st)
	}
	c := e.dial("sub-a", at, nil)
	expectSuccess(t, c)

	st, body = e.exchange(code, redirect)
	wantOAuthError(t, "used code", st, body, 400, "invalid_grant", 4734)
	st, body = e.exchange("never-issued", redirect)
	wantOAuthError(t, "unknown code", st, body, 400, "invalid_grant", 4734)

	late := e.issueCode(redirect)
	clock.Advance(AuthCodeTTL)
	st, body = e.exchange(late, redirect)
	wantOAuthError(t, "expired code", st, body, 400, "invalid_grant", 4733)

	st, b, _ := e.do(http.MethodPost, "/sim/oauth/codes", `{}`, nil)
	if st != http.StatusBadRequest {
		t.Errorf("code without redirect_uri: %d %s", st, b)
	}
	if st := e.s.Tokens(); st.CodesIssued != 2 || st.CodesExchanged != 1 {
		t.Errorf("Tokens = %+v", st)
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	authorize := func(e *env) string {
		e.t.Helper()
		st, body := e.exchange(e.issueCode(redirect), redirect)
		rt, _ := body["refresh_token"].(string)
		if st != http.StatusOK || rt == "" {
			e.t.Fatalf("exchange: %d %v", st, body)
		}
		return rt
	}
	t.Run("rotation", func(t *testing.T) {
		e := newEnv(t, nil)
		rt0 := authorize(e)
		st, body := e.refresh(rt0)
		rt1, _ := body["refresh_token"].(string)
		if at, _ := body["access_token"].(string); st != http.StatusOK || rt1 == "" || rt1 == rt0 || at == "" {
			t.Fatalf("refresh: %d %v, want a new refresh token", st, body)
		}
		st, body = e.refresh(rt0)
		wantOAuthError(t, "old refresh token", st, body, 400, "invalid_grant", 4740)
		st, body = e.refresh(rt1)
		if st != http.StatusOK {
			t.Errorf("current refresh token: %d %v", st, body)
		}
		st, body = e.refresh("bogus")
		wantOAuthError(t, "unknown refresh token", st, body, 400, "invalid_grant", 0)
	})
	t.Run("reuse tolerance", func(t *testing.T) {
		e := newEnv(t, nil)
		e.settings(`{"refresh_reuse_tolerance":1}`)
		rt0 := authorize(e)
		_, body := e.refresh(rt0)
		rt1, _ := body["refresh_token"].(string)
		st, body := e.refresh(rt0) // tolerated once: hands back the current one
		if st != http.StatusOK || body["refresh_token"] != rt1 {
			t.Errorf("tolerated reuse: %d %v, want the current refresh token back", st, body)
		}
		st, body = e.refresh(rt0)
		wantOAuthError(t, "reuse beyond tolerance", st, body, 400, "invalid_grant", 4740)
	})
	t.Run("revoked by a newer authorization", func(t *testing.T) {
		e := newEnv(t, nil)
		first := authorize(e)
		second := authorize(e)
		st, body := e.refresh(first)
		wantOAuthError(t, "revoked family", st, body, 400, "invalid_grant", 4741)
		if st, body := e.refresh(second); st != http.StatusOK {
			t.Errorf("newest authorization: %d %v", st, body)
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		clock := newFakeClock()
		e := newEnv(t, nil, clock.use)
		rt0 := authorize(e) // under the default 90 days
		e.settings(`{"refresh_token_ttl":"1h"}`)
		clock.Advance(2 * time.Hour)
		st, body := e.refresh(rt0)
		rt1, _ := body["refresh_token"].(string)
		if st != http.StatusOK {
			t.Fatalf("90-day token after 2h: %d %v", st, body)
		}
		clock.Advance(time.Hour)
		st, body = e.refresh(rt1) // issued under the 1h lifetime
		wantOAuthError(t, "expired refresh token", st, body, 400, "invalid_grant", 0)
	})
	t.Run("C-07 lost refresh reply", func(t *testing.T) {
		e := newEnv(t, nil)
		rt0 := authorize(e)
		e.settings(`{"lose_refresh_reply":1}`)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/oauth/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testClient, testSecret)
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("lost reply: got %d %s, want a failed request", resp.StatusCode, b)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("lost reply: %v, want the connection closed", err)
		}
		// The refresh was processed: the old token is rotated out.
		st, body := e.refresh(rt0)
		wantOAuthError(t, "retry after a lost reply", st, body, 400, "invalid_grant", 4740)
		if got := e.s.Settings().LoseRefreshReply; got != 0 {
			t.Errorf("lose_refresh_reply after use = %d, want 0", got)
		}
		if st := e.s.Tokens(); st.RepliesLost != 1 || st.Refreshes != 1 {
			t.Errorf("Tokens = %+v, want 1 lost reply of 1 refresh", st)
		}
	})
}
