package zoom

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// call publishes the events of one engagement: started at start, answered
// by user 1 s later, and, when ended, ended after dur.
func (e *env) call(id string, start time.Time, dur time.Duration, ended bool) {
	leg := map[string]any{"engagement_id": id, "engagement_direction": "inbound", "channel": "voice",
		"flow_id": "flow-1", "flow_name": "Support", "cc_queue_id": "q-1", "queue_name": "Tier 1",
		"user_id": "usr-1", "user_display_name": "Ava Kim", "consumer_id": "c-1", "consumer_number": "+15550001",
		"consumer_display_name": "Caller"}
	e.s.Publish("contact_center.engagement_started", start, map[string]any{"engagement_id": id,
		"engagement_direction": "inbound", "channel": "voice", "channel_source": "phone", "flow_id": "flow-1", "flow_name": "Support"})
	e.s.Publish("contact_center.engagement_user_answered", start.Add(time.Second), leg)
	if ended {
		e.s.Publish("contact_center.engagement_ended", start.Add(dur), map[string]any{"engagement_id": id})
	}
}

func TestRESTEngagements(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token()
	t0 := time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)
	e.call("eng-1", t0, time.Minute, true)
	e.call("eng-2", t0.Add(time.Hour), 90*time.Second, true)
	e.call("eng-3", t0.Add(2*time.Hour), time.Minute, false) // live
	e.call("eng-4", t0.Add(3*time.Hour), time.Minute, true)
	e.call("eng-0", t0.Add(-48*time.Hour), time.Minute, true) // out of range

	get := func(path string) (int, map[string]any) {
		st, b, _ := e.do(http.MethodGet, path, nil, bearer(tok))
		return st, jsonBody(t, b)
	}
	st, one := get("/v2/contact_center/engagements/eng-2")
	if st != 200 || one["engagement_id"] != "eng-2" || one["start_time"] != "2025-11-29T11:00:00Z" ||
		one["end_time"] != "2025-11-29T11:01:30Z" || one["duration"] != float64(90) || one["direction"] != "inbound" {
		t.Errorf("GET eng-2: %d %v", st, one)
	}
	if agents, _ := one["agents"].([]any); len(agents) != 1 || agents[0].(map[string]any)["user_id"] != "usr-1" {
		t.Errorf("agents = %v", one["agents"])
	}
	if c, _ := one["consumers"].([]any); len(c) != 1 || c[0].(map[string]any)["consumer_number"] != "+15550001" {
		t.Errorf("consumers = %v", one["consumers"])
	}
	for _, id := range []string{"eng-3", "nope"} {
		if st, body := get("/v2/contact_center/engagements/" + id); st != http.StatusNotFound || body["code"] == nil {
			t.Errorf("GET %s: %d %v, want 404 (live or unknown)", id, st, body)
		}
	}

	// Page through [t0, t0+1 day) one at a time: eng-1, eng-2, eng-4.
	q := url.Values{"from": {"2025-11-29T00:00:00Z"}, "to": {"2025-11-29"}, "page_size": {"1"}}
	var ids []string
	for page := 0; ; page++ {
		if page == 5 {
			t.Fatal("paging does not end")
		}
		st, body := get("/v2/contact_center/engagements?" + q.Encode())
		if st != 200 || body["total_records"] != float64(3) || body["page_size"] != float64(1) {
			t.Fatalf("list: %d %v", st, body)
		}
		for _, x := range body["engagements"].([]any) {
			ids = append(ids, x.(map[string]any)["engagement_id"].(string))
		}
		next, _ := body["next_page_token"].(string)
		if next == "" {
			break
		}
		q.Set("next_page_token", next)
	}
	if got := strings.Join(ids, ","); got != "eng-1,eng-2,eng-4" {
		t.Errorf("listed %s, want eng-1,eng-2,eng-4", got)
	}
	// It ends later: now it is listed.
	e.s.Publish("contact_center.engagement_ended", t0.Add(2*time.Hour+time.Minute), map[string]any{"engagement_id": "eng-3"})
	if st, body := get("/v2/contact_center/engagements?from=2025-11-29T00:00:00Z&to=2025-11-29T23:59:59Z"); st != 200 || body["total_records"] != float64(4) {
		t.Errorf("after eng-3 ended: %d %v", st, body)
	}
	for _, bad := range []string{"", "?from=2025-11-29", "?from=yesterday&to=2025-11-29", "?from=2025-11-29&to=2025-11-28",
		"?from=2025-01-01&to=2025-11-29", "?from=2025-11-29&to=2025-11-29&page_size=301",
		"?from=2025-11-29&to=2025-11-29&next_page_token=%21%21"} {
		if st, body := get("/v2/contact_center/engagements" + bad); st != http.StatusBadRequest || body["code"] != float64(300) {
			t.Errorf("list%s: %d %v, want 400 code 300", bad, st, body)
		}
	}
}

func TestRESTAuth(t *testing.T) {
	e := newEnv(t, nil)
	for name, h := range map[string]http.Header{
		"no header":    nil,
		"basic":        {"Authorization": {"Basic " + basic(testClient, testSecret)}},
		"bogus bearer": bearer("bogus"),
	} {
		st, b, _ := e.do(http.MethodGet, "/v2/contact_center/users", nil, h)
		if body := jsonBody(t, b); st != http.StatusUnauthorized || body["code"] != float64(124) || body["message"] != "Invalid access token." {
			t.Errorf("%s: %d %s, want 401 code 124", name, st, b)
		}
	}

	// Scopes are a setting: a token issued without the engagement scopes.
	e.settings(`{"scopes":["contact_center:read:user:admin"],"scope_error_status":403}`)
	tok := e.token()
	st, b, _ := e.do(http.MethodGet, "/v2/contact_center/engagements/eng-1", nil, bearer(tok))
	body := jsonBody(t, b)
	if msg, _ := body["message"].(string); st != http.StatusForbidden || body["code"] != float64(4711) ||
		!strings.Contains(msg, "contact_center:read:engagement:admin") {
		t.Errorf("missing scope: %d %s, want 403 code 4711 naming the scope", st, b)
	}
	if st, _, _ := e.do(http.MethodGet, "/v2/contact_center/users", nil, bearer(tok)); st != http.StatusOK {
		t.Errorf("granted scope: %d", st)
	}
	if _, body := e.grant(s2sForm); body["scope"] != "contact_center:read:user:admin" {
		t.Errorf("token scope = %v", body["scope"])
	}
}

func TestRESTUsers(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) {
		s.newModel = func(cfg traffic.Config, emit traffic.Emitter, _ zerolog.Logger) (trafficModel, error) {
			return &stubModel{cfg: cfg, emit: emit, ran: make(chan struct{})}, nil
		}
	})
	tok := e.token()
	list := func(q string) map[string]any {
		st, b, _ := e.do(http.MethodGet, "/v2/contact_center/users"+q, nil, bearer(tok))
		if st != 200 {
			t.Fatalf("users%s: %d %s", q, st, b)
		}
		return jsonBody(t, b)
	}
	// Before traffic: the users seen logging in.
	e.s.Publish("contact_center.user_login", time.Now(), map[string]any{"user_id": "usr-9", "display_name": "Zoe", "user_email": "z@example.com"})
	if body := list(""); body["total_records"] != float64(1) || body["users"].([]any)[0].(map[string]any)["user_id"] != "usr-9" {
		t.Errorf("users from events: %v", body)
	}
	if err := e.s.StartTraffic(traffic.Config{}); err != nil {
		t.Fatal(err)
	}
	body := list("?page_size=1")
	users := body["users"].([]any)
	if body["total_records"] != float64(2) || len(users) != 1 || users[0].(map[string]any)["user_id"] != "usr-1" ||
		users[0].(map[string]any)["status"] != "ready" || body["next_page_token"] == "" {
		t.Fatalf("page 1: %v", body)
	}
	body = list("?page_size=1&next_page_token=" + body["next_page_token"].(string))
	if u := body["users"].([]any); len(u) != 1 || u[0].(map[string]any)["user_email"] != "bo@example.com" || body["next_page_token"] != "" {
		t.Errorf("page 2: %v", body)
	}
	if st, _, _ := e.do(http.MethodGet, "/v2/contact_center/users?page_size=0", nil, bearer(tok)); st != http.StatusBadRequest {
		t.Errorf("page_size=0: %d", st)
	}
}

func TestRESTRateLimits(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, func(c *Config) { c.TokenTTL = Duration(72 * time.Hour) }, clock.use)
	tok := e.token()
	get := func(path string) (int, map[string]any, http.Header) {
		st, b, h := e.do(http.MethodGet, path, nil, bearer(tok))
		return st, jsonBody(t, b), h
	}
	e.settings(`{"rate_limit_qps":{"light":2},"rate_limit_daily":{"heavy":1}}`)

	t.Run("QPS", func(t *testing.T) {
		for i := range 2 {
			if st, _, h := get("/v2/contact_center/engagements/x"); st != http.StatusNotFound || h.Get("X-RateLimit-Category") != "Light" {
				t.Errorf("request %d: %d %v, want 404 under the limit", i, st, h)
			}
		}
		st, body, h := get("/v2/contact_center/engagements/x")
		if st != http.StatusTooManyRequests || body["code"] != float64(429) || body["message"] == "" ||
			h.Get("X-RateLimit-Category") != "Light" || h.Get("X-RateLimit-Type") != "QPS" ||
			h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("third request in a second: %d %v %v", st, body, h)
		}
		if st, _, _ := get("/v2/contact_center/users"); st != http.StatusOK {
			t.Errorf("another category: %d, want 200", st)
		}
		clock.Advance(time.Second)
		if st, _, _ := get("/v2/contact_center/engagements/x"); st != http.StatusNotFound {
			t.Errorf("next second: %d, want 404", st)
		}
	})
	t.Run("daily", func(t *testing.T) {
		const list = "/v2/contact_center/engagements?from=2025-11-29&to=2025-11-29"
		if st, _, h := get(list); st != http.StatusOK || h.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("first: %d %v", st, h)
		}
		st, _, h := get(list)
		if st != http.StatusTooManyRequests || h.Get("X-RateLimit-Type") != "Daily-limit" ||
			h.Get("X-RateLimit-Category") != "Heavy" || h.Get("Retry-After") != "2025-11-30T00:00:00Z" {
			t.Errorf("second: %d %v, want a daily 429 with Retry-After the next UTC midnight", st, h)
		}
		clock.Advance(24 * time.Hour)
		if st, _, _ := get(list); st != http.StatusOK {
			t.Errorf("next day: %d", st)
		}
	})
	t.Run("off", func(t *testing.T) {
		e.settings(`{"rate_limit_qps":null,"rate_limit_daily":null}`)
		for range 5 {
			if st, _, h := get("/v2/contact_center/engagements/x"); st != http.StatusNotFound || h.Get("X-RateLimit-Type") != "" {
				t.Errorf("limits off: %d %v", st, h)
			}
		}
	})
}
