package zoom

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// eventI publishes event number i ("i" in the object) and returns how many
// subscriptions it reached.
func (e *env) eventI(i int) int {
	return e.s.Publish("contact_center.user_status_changed", time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC), map[string]any{"i": i})
}

// readI reads a message frame and returns its event's "i".
func readI(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	ev := parseEvent(t, readFrame(t, c))
	i, ok := ev.Payload.Object["i"].(float64)
	if !ok {
		t.Fatalf("event %+v has no i", ev)
	}
	return int(i)
}

func TestFaultDrop(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.connect("sub-a"), e.connect("sub-b")
	e.faults("sub-a", `{"drop":1}`)
	if n := e.eventI(0); n != 1 {
		t.Errorf("delivered = %d, want 1 (sub-a's copy dropped)", n)
	}
	if i := readI(t, b); i != 0 {
		t.Errorf("sub-b got %d", i)
	}
	e.faults("sub-b", `{"drop":1}`)
	if n := e.eventI(1); n != 0 {
		t.Errorf("both dropped: delivered = %d, want 0", n)
	}
	e.do(http.MethodDelete, "/sim/subscriptions/sub-a/faults", nil, nil)
	if n := e.eventI(2); n != 1 {
		t.Errorf("sub-a cleared: delivered = %d, want 1", n)
	}
	if i := readI(t, a); i != 2 {
		t.Errorf("sub-a's first frame is event %d, want 2 (0 and 1 dropped)", i)
	}
	if st := e.status("sub-a"); st.FramesDropped != 2 || st.EventsSent != 1 {
		t.Errorf("status = %+v, want 2 dropped, 1 sent", st)
	}
}

func TestFaultsAreSeeded(t *testing.T) {
	pattern := func(seed int64) string {
		e := newEnv(t, func(c *Config) {
			c.Seed = seed
			c.Faults = map[string]Faults{"sub-a": {Drop: 0.5}}
		})
		e.connect("sub-a")
		var b strings.Builder
		for i := range 40 {
			b.WriteString([...]string{"x", "o"}[e.eventI(i)])
		}
		return b.String()
	}
	p1, p2 := pattern(42), pattern(42)
	if p1 != p2 {
		t.Errorf("seed 42 gave %s then %s", p1, p2)
	}
	if !strings.Contains(p1, "o") || !strings.Contains(p1, "x") {
		t.Errorf("pattern %s: want drops and deliveries", p1)
	}
	if p3 := pattern(43); p3 == p1 {
		t.Errorf("seeds 42 and 43 gave the same pattern %s", p1)
	}
}

func TestFaultDuplicate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SecretToken = "whsec" })
	a := e.connect("sub-a")
	e.faults("sub-a", `{"duplicate":1}`)
	if n := e.eventI(7); n != 1 {
		t.Errorf("delivered = %d, want 1 (a duplicate counts once)", n)
	}
	first, second := readFrame(t, a), readFrame(t, a)
	if !reflect.DeepEqual(first, second) {
		t.Errorf("duplicate differs:\n%+v\n%+v", first, second)
	}
	e.faults("sub-a", `{"duplicate":0}`)
	e.eventI(8)
	if i := readI(t, a); i != 8 {
		t.Errorf("next frame is event %d, want 8 (one copy)", i)
	}
	if st := e.status("sub-a"); st.Duplicated != 1 || st.EventsSent != 2 {
		t.Errorf("status = %+v", st)
	}
}

func TestFaultDelay(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, nil, clock.use)
	a, b := e.connect("sub-a"), e.connect("sub-b")
	e.faults("sub-a", `{"delay":"10s"}`)
	sent := clock.Now()
	if n := e.eventI(1); n != 2 {
		t.Errorf("delivered = %d, want 2 (a delayed copy counts)", n)
	}
	if i := readI(t, b); i != 1 {
		t.Errorf("sub-b: %d", i)
	}
	if st := e.status("sub-a"); st.Pending != 1 || st.Delayed != 1 || st.EventsSent != 0 {
		t.Errorf("status before the delay = %+v, want 1 pending", st)
	}
	e.eventI(2)
	clock.waitTimerAt(t, "the scheduler", sent.Add(10*time.Second))
	clock.Advance(10 * time.Second)
	f := readFrame(t, a)
	if ts := f.Header[HeaderTimestamp]; ts != jsonInt(clock.Now().UnixMilli()) {
		t.Errorf("timestamp header %s, want the send time %d", ts, clock.Now().UnixMilli())
	}
	if i := parseEvent(t, f).Payload.Object["i"]; i != float64(1) {
		t.Errorf("first delayed frame is %v, want 1", i)
	}
	if i := readI(t, a); i != 2 {
		t.Errorf("second delayed frame is %d, want 2 (fixed delay keeps order)", i)
	}

	// A delayed frame finds no socket: lost, and counted.
	e.eventI(3)
	_ = a.CloseNow()
	waitFor(t, "sub-a to disconnect", func() bool { return !e.status("sub-a").Connected })
	clock.Advance(10 * time.Second)
	waitFor(t, "the lost frame to be counted", func() bool { return e.status("sub-a").Lost == 1 })
	if st := e.status("sub-a"); st.Pending != 0 || st.EventsSent != 2 {
		t.Errorf("status = %+v", st)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestFaultJitter(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Seed = 3 }, clock.use)
	a := e.connect("sub-a")
	e.faults("sub-a", `{"jitter":"10s"}`)
	const n = 20
	for i := range n {
		e.eventI(i)
	}
	waitFor(t, "the frames to be scheduled", func() bool { return e.status("sub-a").Pending == n })
	clock.Advance(10 * time.Second)
	seen := map[int]bool{}
	inOrder := true
	for k := range n {
		i := readI(t, a)
		seen[i] = true
		inOrder = inOrder && i == k
	}
	if len(seen) != n {
		t.Errorf("got %d distinct events, want %d", len(seen), n)
	}
	if inOrder {
		t.Error("20 frames with 10s of jitter arrived in order; want overtaking")
	}
}

func TestFaultReorder(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, nil, clock.use)
	a := e.connect("sub-a")
	e.faults("sub-a", `{"reorder":1,"reorder_window":1,"reorder_max_hold":"2s"}`)
	if n := e.eventI(1); n != 1 {
		t.Errorf("delivered = %d, want 1 (a held frame counts)", n)
	}
	e.faults("sub-a", `{"reorder":0}`)
	for i := 2; i <= 3; i++ {
		e.eventI(i)
	}
	for _, want := range []int{2, 1, 3} {
		if i := readI(t, a); i != want {
			t.Errorf("got event %d, want %d (1 overtaken by one frame)", i, want)
		}
	}
	// With nothing after it, a held frame goes at its deadline.
	e.faults("sub-a", `{"reorder":1}`)
	e.eventI(4)
	if st := e.status("sub-a"); st.Pending != 1 || st.Reordered != 2 {
		t.Errorf("status = %+v, want 1 pending, 2 reordered", st)
	}
	clock.waitTimerAt(t, "the hold deadline", clock.Now().Add(2*time.Second))
	clock.Advance(2 * time.Second)
	if i := readI(t, a); i != 4 {
		t.Errorf("got %d, want 4", i)
	}
}

func TestFaultHalfOpen(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.connect("sub-a"), e.connect("sub-b")
	if f := e.faults("sub-a", `{"half_open":true}`); !f.HalfOpen {
		t.Fatalf("faults = %+v", f)
	}
	send(t, a, `{"module":"heartbeat"}`)
	if n := e.eventI(1); n != 1 {
		t.Errorf("delivered = %d, want 1 (sub-a half-open)", n)
	}
	readI(t, b)
	// A new socket on the half-open subscription gets nothing either, not
	// even build_connection.
	late := e.dial("sub-a", e.token(), nil)
	send(t, late, `{"module":"heartbeat"}`)
	waitFor(t, "both heartbeats to be read and ignored", func() bool { return e.status("sub-a").Ignored == 2 })
	st := e.status("sub-a")
	if !st.HalfOpen || st.HalfOpenSockets != 2 || st.Open != 0 || st.Blackholed != 1 {
		t.Errorf("status = %+v, want half-open with 2 silent sockets, 1 frame blackholed", st)
	}

	// Clearing the fault closes them without a word.
	e.faults("sub-a", `{"half_open":false}`)
	for name, c := range map[string]*websocket.Conn{"old": a, "late": late} {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		typ, data, err := c.Read(ctx)
		cancel()
		if err == nil {
			t.Errorf("%s socket got a %v frame %s while half-open", name, typ, data)
		} else if websocket.CloseStatus(err) != -1 {
			t.Errorf("%s socket: %v, want an abrupt close", name, err)
		}
	}
	c := e.connect("sub-a")
	heartbeat(t, c)
	if n := e.eventI(2); n != 2 {
		t.Errorf("after clearing: delivered %d, want 2", n)
	}
}

func TestFaultHalfOpenDrop(t *testing.T) {
	e := newEnv(t, nil)
	e.connect("sub-a")
	e.faults("sub-a", `{"half_open":true}`)
	if n, err := e.s.Drop("sub-a"); n != 1 || err != nil {
		t.Errorf("Drop = %d, %v; want the half-open socket closed", n, err)
	}
	if st := e.status("sub-a"); st.HalfOpenSockets != 0 || st.Dropped != 1 {
		t.Errorf("status = %+v", st)
	}
}

func TestFaultContent(t *testing.T) {
	// C-02: the two subscriptions' copies differ in event_ts, key order, a
	// volatile field and the signature; everything else is equal.
	e := newEnv(t, func(c *Config) { c.SecretToken = "whsec" })
	a, b := e.connect("sub-a"), e.connect("sub-b")
	e.faults("sub-a", `{"event_ts_skew":-3600000,"shuffle_keys":true,"volatile_field":"download_url"}`)
	at := time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)
	obj := map[string]any{"engagement_id": "eng-1", "user_id": "usr-1", "n": 12345678901234, "nested": map[string]any{"x": 1, "y": []any{1, "two"}}}
	if n := e.s.Publish("contact_center.engagement_user_answered", at, obj); n != 2 {
		t.Errorf("delivered = %d, want 2", n)
	}
	fa, fb := readFrame(t, a), readFrame(t, b)
	ca, cb := fa.content(t), fb.content(t)
	if fa.Header[HeaderSignature] == fb.Header[HeaderSignature] {
		t.Error("both copies carry the same signature")
	}
	if Sign("whsec", fa.Header[HeaderTimestamp], ca) != fa.Header[HeaderSignature] {
		t.Error("sub-a's signature does not match its content")
	}
	ea, eb := parseEvent(t, fa), parseEvent(t, fb)
	if eb.EventTS != at.UnixMilli() || ea.EventTS != at.UnixMilli()-3600000 {
		t.Errorf("event_ts: sub-a %d, sub-b %d; want sub-a an hour older", ea.EventTS, eb.EventTS)
	}
	url, _ := ea.Payload.Object["download_url"].(string)
	if !strings.Contains(url, "sub-a") {
		t.Errorf("sub-a download_url = %q", url)
	}
	if _, ok := eb.Payload.Object["download_url"]; ok {
		t.Error("sub-b has a download_url")
	}
	delete(ea.Payload.Object, "download_url")
	if !reflect.DeepEqual(ea.Payload, eb.Payload) || ea.Event != eb.Event {
		t.Errorf("stable content differs:\n%+v\n%+v", ea, eb)
	}
	if strings.Contains(ca, `"n":12345678901234`) == false {
		t.Errorf("sub-a changed a number: %s", ca)
	}
	if keyOrder(t, ca) == keyOrder(t, cb) {
		t.Errorf("same key order: %s / %s", ca, cb)
	}

	// A second copy of sub-a gets another volatile value.
	e.s.Publish("contact_center.engagement_user_answered", at, obj)
	if url2 := parseEvent(t, readFrame(t, a)).Payload.Object["download_url"]; url2 == url {
		t.Errorf("volatile value repeated: %v", url2)
	}
	readFrame(t, b)

	// Raw content is always verbatim; an "event" gets the content faults.
	st, body, _ := e.do(http.MethodPost, "/sim/events", `{"subscriptions":["sub-a"],"content":"{\"event\":\"x\",\"event_ts\":5}"}`, nil)
	if st != 200 || !strings.Contains(string(body), `"delivered":1`) {
		t.Fatalf("POST /sim/events: %d %s", st, body)
	}
	if got := readFrame(t, a).content(t); got != `{"event":"x","event_ts":5}` {
		t.Errorf("raw content changed: %s", got)
	}
	e.do(http.MethodPost, "/sim/events", `{"subscriptions":["sub-a"],"event":{"event":"x","event_ts":5}}`, nil)
	if got := parseEvent(t, readFrame(t, a)); got.EventTS != 5-3600000 {
		t.Errorf("event via /sim/events: event_ts %d, want skewed", got.EventTS)
	}
}

// keyOrder returns the top-level key order of a JSON object.
func keyOrder(t *testing.T, s string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(keys, ",")
}

func TestFaultsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	f := e.faults("sub-b", `{"drop":0.25,"delay":"150ms"}`)
	if f.Drop != 0.25 || f.Delay != Duration(150*time.Millisecond) || f.ReorderWindow != DefaultReorderWindow {
		t.Errorf("faults = %+v", f)
	}
	f = e.faults("sub-b", `{"jitter":"1s"}`) // merged with what is there
	if f.Drop != 0.25 || f.Jitter != Duration(time.Second) {
		t.Errorf("merged faults = %+v", f)
	}
	st, b, _ := e.do(http.MethodGet, "/sim/subscriptions/sub-b/faults", nil, nil)
	if st != 200 || !strings.Contains(string(b), `"delay":"150ms"`) {
		t.Errorf("GET faults: %d %s", st, b)
	}
	for _, bad := range []string{`{"drop":2}`, `{"nope":1}`, `[`, `{"delay":"soon"}`} {
		if st, b, _ := e.do(http.MethodPost, "/sim/subscriptions/sub-b/faults", bad, nil); st != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", bad, st, b)
		}
	}
	if f, _ := e.s.Faults("sub-b"); f.Drop != 0.25 {
		t.Errorf("a refused change altered the faults: %+v", f)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if st, _, _ := e.do(m, "/sim/subscriptions/nope/faults", `{}`, nil); st != http.StatusNotFound {
			t.Errorf("%s unknown subscription: %d, want 404", m, st)
		}
	}
	st, b, _ = e.do(http.MethodDelete, "/sim/subscriptions/sub-b/faults", nil, nil)
	if st != 200 || !reflect.DeepEqual(jsonBody(t, b), jsonBody(t, mustJSON(Faults{}))) {
		t.Errorf("DELETE: %d %s", st, b)
	}
	if _, ok := e.s.Settings().Faults["sub-b"]; ok {
		t.Error("cleared faults still listed in the settings")
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestEventsContentBase64KeepsInvalidUTF8(t *testing.T) {
	// Bytes a JSON string cannot carry reach the client raw, signed as sent.
	e := newEnv(t, func(c *Config) { c.SecretToken = "whsec" })
	a := e.connect("sub-a")
	content := "{\"id\":\"eng-\xff\xfe\",\"n\":\"\\\"é\"}"
	body := `{"subscriptions":["sub-a"],"content_base64":"` + base64.StdEncoding.EncodeToString([]byte(content)) + `"}`
	if st, b, _ := e.do(http.MethodPost, "/sim/events", body, nil); st != 200 || !strings.Contains(string(b), `"delivered":1`) {
		t.Fatalf("POST /sim/events: %d %s", st, b)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, data, err := a.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Contains(data, []byte("eng-\xff\xfe")) {
		t.Fatalf("frame %q lost the raw bytes", data)
	}
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	if want := `"` + strings.ReplaceAll(strings.ReplaceAll(content, `\`, `\\`), `"`, `\"`) + `"`; string(f.Content) != want {
		t.Errorf("content %q, want %q", f.Content, want)
	}
	if got, want := f.Header[HeaderSignature], Sign("whsec", f.Header[HeaderTimestamp], content); got != want {
		t.Errorf("signature %s, want %s (over the bytes as sent)", got, want)
	}
	if st, b, _ := e.do(http.MethodPost, "/sim/events", `{"content":"x","content_base64":"eA=="}`, nil); st != http.StatusBadRequest {
		t.Errorf("content and content_base64 together: %d %s", st, b)
	}
	if st, b, _ := e.do(http.MethodPost, "/sim/events", `{"content_base64":"not base64!"}`, nil); st != http.StatusBadRequest {
		t.Errorf("bad base64: %d %s", st, b)
	}
}
