package zoom

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// REST paging (Zoom style: page_size and an opaque next_page_token).
const (
	defaultPageSize = 30
	maxPageSize     = 300
	// maxEngagements bounds the engagement records; the oldest go first.
	maxEngagements = 100000
	// maxRange is the longest from..to range of the engagement listing.
	maxRange = 31 * 24 * time.Hour
)

// Scopes that allow each endpoint (any one of them; PROTOCOL §4).
var (
	engagementScopes = []string{"contact_center:read:engagement:admin", "contact_center_engagement:read:admin"}
	userScopes       = []string{"contact_center:read:user:admin", "contact_center_user:read:admin"}
)

// Event names the engagement records are built from.
const (
	evEngagementStarted = "contact_center.engagement_started"
	evEngagementEnded   = "contact_center.engagement_ended"
	evEngagementPrefix  = "contact_center.engagement_"
	evUserLogin         = "contact_center.user_login"
)

// restError is the body of a failed REST call (PROTOCOL §4).
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// restState holds the REST subset's records and rate-limit windows, guarded
// by Server.mu.
type restState struct {
	engagements map[string]*engagementRecord
	order       []string // engagement ids, oldest first
	users       []restUser
	windows     map[string]*rateWindow
}

func newRestState() restState {
	return restState{engagements: make(map[string]*engagementRecord), windows: make(map[string]*rateWindow)}
}

// engagementRecord is what the events of one engagement say.
type engagementRecord struct {
	id                                string
	start, end                        time.Time // end zero while live
	started                           bool      // start is engagement_started's time
	direction, channel, channelSource string
	flows                             []restFlow
	queues                            []restQueue
	agents                            []restAgent
	consumers                         []restConsumer
}

type restFlow struct {
	FlowID   string `json:"flow_id"`
	FlowName string `json:"flow_name,omitempty"`
}

type restQueue struct {
	QueueID   string `json:"cc_queue_id"`
	QueueName string `json:"queue_name,omitempty"`
}

type restAgent struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
}

type restConsumer struct {
	ConsumerID     string `json:"consumer_id,omitempty"`
	ConsumerNumber string `json:"consumer_number,omitempty"`
	DisplayName    string `json:"consumer_display_name,omitempty"`
}

// restEngagement is an ended engagement as the REST subset serves it.
type restEngagement struct {
	EngagementID  string         `json:"engagement_id"`
	Direction     string         `json:"direction,omitempty"`
	Channel       string         `json:"channel,omitempty"`
	ChannelSource string         `json:"channel_source,omitempty"`
	StartTime     string         `json:"start_time"`
	EndTime       string         `json:"end_time"`
	Duration      int64          `json:"duration"` // whole seconds
	Flows         []restFlow     `json:"flows"`
	Queues        []restQueue    `json:"queues"`
	Agents        []restAgent    `json:"agents"`
	Consumers     []restConsumer `json:"consumers"`
}

// restUser is a Contact Center user as GET /v2/contact_center/users serves it.
type restUser struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	Email       string `json:"user_email"`
	Status      string `json:"status,omitempty"`
}

const isoLayout = "2006-01-02T15:04:05Z"

func (e *engagementRecord) json() restEngagement {
	return restEngagement{
		EngagementID:  e.id,
		Direction:     e.direction,
		Channel:       e.channel,
		ChannelSource: e.channelSource,
		StartTime:     e.start.UTC().Format(isoLayout),
		EndTime:       e.end.UTC().Format(isoLayout),
		Duration:      int64(e.end.Sub(e.start) / time.Second),
		Flows:         nonNil(e.flows),
		Queues:        nonNil(e.queues),
		Agents:        nonNil(e.agents),
		Consumers:     nonNil(e.consumers),
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}

// addOnce appends v to s unless s holds it already.
func addOnce[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// recordEvent updates the engagement records (and the users seen logging
// in) from one event; other events are ignored.
func (s *Server) recordEvent(name string, at time.Time, object map[string]any) {
	str := func(k string) string { v, _ := object[k].(string); return v }
	if name == evUserLogin {
		u := restUser{UserID: str("user_id"), DisplayName: str("display_name"), Email: str("user_email")}
		if u.UserID == "" {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !slices.ContainsFunc(s.rest.users, func(x restUser) bool { return x.UserID == u.UserID }) {
			s.rest.users = append(s.rest.users, u)
		}
		return
	}
	id := str("engagement_id")
	if id == "" || !strings.HasPrefix(name, evEngagementPrefix) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.rest.engagements[id]
	if e == nil {
		e = &engagementRecord{id: id, start: at}
		s.rest.engagements[id] = e
		s.rest.order = append(s.rest.order, id)
		if len(s.rest.order) > maxEngagements {
			delete(s.rest.engagements, s.rest.order[0])
			s.rest.order = s.rest.order[1:]
		}
	}
	switch {
	case name == evEngagementStarted:
		e.start, e.started = at, true
	case name == evEngagementEnded:
		e.end = at
	}
	if !e.started && at.Before(e.start) {
		e.start = at // until engagement_started arrives: the earliest event
	}
	e.direction = cmp.Or(e.direction, str("engagement_direction"))
	e.channel = cmp.Or(e.channel, str("channel"))
	e.channelSource = cmp.Or(e.channelSource, str("channel_source"))
	if f := str("flow_id"); f != "" {
		e.flows = addOnce(e.flows, restFlow{FlowID: f, FlowName: str("flow_name")})
	}
	if q := str("cc_queue_id"); q != "" {
		e.queues = addOnce(e.queues, restQueue{QueueID: q, QueueName: str("queue_name")})
	}
	if u := str("user_id"); u != "" {
		e.agents = addOnce(e.agents, restAgent{UserID: u, DisplayName: str("user_display_name")})
	}
	if c := (restConsumer{ConsumerID: str("consumer_id"), ConsumerNumber: str("consumer_number"),
		DisplayName: str("consumer_display_name")}); c != (restConsumer{}) {
		e.consumers = addOnce(e.consumers, c)
	}
}

// recordEnvelope records an event given as envelope JSON (POST /sim/events);
// anything else is ignored.
func (s *Server) recordEnvelope(raw []byte) {
	var ev struct {
		Event   string `json:"event"`
		EventTS int64  `json:"event_ts"`
		Payload struct {
			Object map[string]any `json:"object"`
		} `json:"payload"`
	}
	if json.Unmarshal(raw, &ev) != nil || ev.Event == "" {
		return
	}
	s.recordEvent(ev.Event, time.UnixMilli(ev.EventTS), ev.Payload.Object)
}

// restRoute wraps a REST handler with Bearer auth, the scope check and the
// rate limit of its category.
func (s *Server) restRoute(category string, scopes []string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		var at *accessToken
		if ok && tok != "" {
			at = s.accessLocked(tok)
		}
		switch {
		case at == nil:
			s.mu.Unlock()
			s.log.Debug().Str("path", r.URL.Path).Msg("rest: invalid access token")
			writeJSON(w, http.StatusUnauthorized, restError{Code: 124, Message: "Invalid access token."})
			return
		case !slices.ContainsFunc(scopes, func(sc string) bool { return slices.Contains(at.scopes, sc) }):
			status := s.set.ScopeErrorStatus
			s.mu.Unlock()
			s.log.Debug().Str("path", r.URL.Path).Msg("rest: token lacks a scope")
			writeJSON(w, status, restError{Code: 4711,
				Message: "Invalid access token, does not contain scopes:[" + strings.Join(scopes, ", ") + "]."})
			return
		}
		msg, limited := s.rateLimitLocked(category, w.Header())
		s.mu.Unlock()
		if limited {
			s.log.Debug().Str("path", r.URL.Path).Str("category", category).Msg("rest: rate limited")
			writeJSON(w, http.StatusTooManyRequests, restError{Code: http.StatusTooManyRequests, Message: msg})
			return
		}
		h(w, r)
	}
}

// rateWindow counts one category's requests in the current second and UTC
// day.
type rateWindow struct {
	second, day     time.Time
	inSecond, inDay int
}

// rateLimitLocked counts a request of category and sets the rate-limit
// headers; it reports whether the request is over a limit, with the message.
func (s *Server) rateLimitLocked(category string, h http.Header) (string, bool) {
	qps, daily := s.set.RateLimitQPS[category], s.set.RateLimitDaily[category]
	if qps == 0 && daily == 0 {
		return "", false
	}
	now := s.clock.Now().UTC()
	win := s.rest.windows[category]
	if win == nil {
		win = &rateWindow{}
		s.rest.windows[category] = win
	}
	if sec := now.Truncate(time.Second); !win.second.Equal(sec) {
		win.second, win.inSecond = sec, 0
	}
	if day := now.Truncate(24 * time.Hour); !win.day.Equal(day) {
		win.day, win.inDay = day, 0
	}
	h.Set("X-RateLimit-Category", strings.ToUpper(category[:1])+category[1:])
	set := func(typ string, limit, remaining int) {
		h.Set("X-RateLimit-Type", typ)
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	}
	switch {
	case daily > 0 && win.inDay >= daily:
		set("Daily-limit", daily, 0)
		h.Set("Retry-After", win.day.Add(24*time.Hour).Format(isoLayout))
		return "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request.", true
	case qps > 0 && win.inSecond >= qps:
		set("QPS", qps, 0)
		return "You have reached the maximum per-second rate limit for this API. Try again later.", true
	}
	win.inSecond++
	win.inDay++
	if daily > 0 {
		set("Daily-limit", daily, daily-win.inDay)
	} else {
		set("QPS", qps, qps-win.inSecond)
	}
	return "", false
}

// badParam answers a REST call with an invalid parameter (Zoom's code 300).
func badParam(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, restError{Code: 300, Message: fmt.Sprintf(format, args...)})
}

// parseTime reads a from/to parameter: an ISO date-time, or a date (from:
// its start; to: its end).
func parseTime(v string, end bool) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, true
	}
	return time.Time{}, false
}

// pageSize reads page_size (default 30, at most 300).
func pageSize(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("page_size")
	if v == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, false
	}
	return n, true
}

// pageToken encodes a paging cursor; decodePageToken reverses it.
func pageToken(kind, cursor string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + cursor))
}

func decodePageToken(kind, tok string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), kind+":")
}

// handleListEngagements serves GET /v2/contact_center/engagements: the ended
// engagements whose start lies in [from, to], by start time then id.
func (s *Server) handleListEngagements(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, okFrom := parseTime(q.Get("from"), false)
	to, okTo := parseTime(q.Get("to"), true)
	switch {
	case !okFrom || !okTo:
		badParam(w, "from and to are required ISO 8601 date-times (yyyy-mm-ddThh:mm:ssZ) or dates")
		return
	case to.Before(from):
		badParam(w, "to must not be before from")
		return
	case to.Sub(from) > maxRange:
		badParam(w, "the range from..to must not exceed one month")
		return
	}
	size, ok := pageSize(r)
	if !ok {
		badParam(w, "page_size must be 1-%d", maxPageSize)
		return
	}
	var afterStart int64
	afterID, cursor := "", false
	if t := q.Get("next_page_token"); t != "" {
		c, ok := decodePageToken("e", t)
		ns, id, ok2 := strings.Cut(c, ":")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || !ok2 || err != nil {
			badParam(w, "Invalid next_page_token")
			return
		}
		afterStart, afterID, cursor = n, id, true
	}

	s.mu.Lock()
	var match []*engagementRecord
	for _, e := range s.rest.engagements {
		if !e.end.IsZero() && !e.start.Before(from) && !e.start.After(to) {
			match = append(match, e)
		}
	}
	slices.SortFunc(match, func(a, b *engagementRecord) int {
		return cmp.Or(a.start.Compare(b.start), strings.Compare(a.id, b.id))
	})
	rest := match
	if cursor {
		i, _ := slices.BinarySearchFunc(match, struct{}{}, func(e *engagementRecord, _ struct{}) int {
			if c := cmp.Compare(e.start.UnixNano(), afterStart); c != 0 {
				return c
			}
			if e.id <= afterID {
				return -1
			}
			return 1
		})
		rest = match[i:]
	}
	page := rest[:min(size, len(rest))]
	out := make([]restEngagement, len(page))
	for i, e := range page {
		out[i] = e.json()
	}
	next := ""
	if len(rest) > len(page) {
		last := page[len(page)-1]
		next = pageToken("e", strconv.FormatInt(last.start.UnixNano(), 10)+":"+last.id)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"from":            from.UTC().Format(isoLayout),
		"to":              to.UTC().Format(isoLayout),
		"page_size":       size,
		"total_records":   len(match),
		"next_page_token": next,
		"engagements":     out,
	})
}

// handleGetEngagement serves GET /v2/contact_center/engagements/{id}: 404
// while the engagement is live (PROTOCOL §4) or unknown.
func (s *Server) handleGetEngagement(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	e := s.rest.engagements[id]
	var out restEngagement
	ended := e != nil && !e.end.IsZero()
	if ended {
		out = e.json()
	}
	s.mu.Unlock()
	if !ended {
		writeJSON(w, http.StatusNotFound, restError{Code: http.StatusNotFound, Message: "Engagement does not exist: " + id + "."})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleListUsers serves GET /v2/contact_center/users: the traffic model's
// agents (with their status), or, before any traffic, the users seen in
// contact_center.user_login events.
func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	size, ok := pageSize(r)
	if !ok {
		badParam(w, "page_size must be 1-%d", maxPageSize)
		return
	}
	offset := 0
	if t := r.URL.Query().Get("next_page_token"); t != "" {
		c, ok := decodePageToken("u", t)
		n, err := strconv.Atoi(c)
		if !ok || err != nil || n < 0 {
			badParam(w, "Invalid next_page_token")
			return
		}
		offset = n
	}
	s.mu.Lock()
	m := s.model
	users := slices.Clone(s.rest.users)
	s.mu.Unlock()
	if m != nil {
		users = users[:0]
		for _, a := range m.Agents() {
			users = append(users, restUser{UserID: a.UserID, DisplayName: a.DisplayName, Email: a.Email, Status: a.Status})
		}
	}
	page := users[min(offset, len(users)):]
	page = page[:min(size, len(page))]
	next := ""
	if end := offset + len(page); end < len(users) {
		next = pageToken("u", strconv.Itoa(end))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"page_size":       size,
		"total_records":   len(users),
		"next_page_token": next,
		"users":           nonNil(page),
	})
}
