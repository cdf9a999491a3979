package recorder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/rcapi"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is a recorder served by an httptest server.
type fixture struct {
	t   *testing.T
	rec *Recorder
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rec := New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	base := time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	n := 0
	rec.now = func() time.Time { // strictly increasing recorder clock
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n) * time.Millisecond)
	}
	srv := httptest.NewServer(rec.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, rec: rec, srv: srv}
}

// post sends body (a value to encode, or a string sent verbatim) and decodes
// the reply into a generic map.
func (f *fixture) post(path string, body any) (int, map[string]any) {
	f.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			f.t.Fatalf("encode: %v", err)
		}
	}
	resp, err := f.srv.Client().Post(f.srv.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("read reply: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		f.t.Fatalf("POST %s: reply %q is not a JSON object: %v", path, raw, err)
	}
	return resp.StatusCode, out
}

func (f *fixture) get(path string, into any) int {
	f.t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			f.t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

// outcome is a reply reduced to the part tests compare.
type outcome struct {
	status int
	code   string // result of a 200, error otherwise
}

func (f *fixture) send(path string, body any) outcome {
	f.t.Helper()
	st, m := f.post(path, body)
	code, _ := m["result"].(string)
	if st != http.StatusOK {
		code, _ = m["error"].(string)
	}
	return outcome{st, code}
}

var (
	applied   = outcome{http.StatusOK, rcapi.ResultApplied}
	duplicate = outcome{http.StatusOK, rcapi.ResultDuplicate}
	stale     = outcome{http.StatusConflict, rcapi.ErrCodeStaleEpoch}
	invalid   = outcome{http.StatusUnprocessableEntity, rcapi.ErrCodeInvalidTransition}
	bad       = outcome{http.StatusBadRequest, rcapi.ErrCodeMalformed}
)

var t0 = time.Date(2025, 11, 29, 10, 0, 15, 0, time.UTC)

var cmdSeq int

// cmd builds a valid command with a fresh id.
func cmd(action, seg string, epoch int64) rcapi.Command {
	cmdSeq++
	eng := "eng-1"
	if i := strings.IndexByte(seg, '/'); i > 0 {
		eng = seg[:i]
	}
	return rcapi.Command{
		ID:           fmt.Sprintf("cmd-%d", cmdSeq),
		Epoch:        epoch,
		Node:         "node-a",
		Action:       action,
		EngagementID: eng,
		SegmentID:    seg,
		At:           t0.Add(time.Duration(cmdSeq) * time.Second),
		Event:        "contact_center.engagement_user_answered",
	}
}

func TestStateMachine(t *testing.T) {
	const seg = "eng-1/usr-1"
	setups := map[string][]string{
		"none":      nil,
		"recording": {rcapi.ActionStart},
		"paused":    {rcapi.ActionStart, rcapi.ActionPause},
		"stopped":   {rcapi.ActionStart, rcapi.ActionStop},
	}
	tests := []struct {
		from, action string
		want         outcome
		wantState    string // state afterwards; "" = not open
	}{
		{"none", rcapi.ActionStart, applied, rcapi.StateRecording},
		{"none", rcapi.ActionPause, invalid, ""},
		{"none", rcapi.ActionResume, invalid, ""},
		{"none", rcapi.ActionStop, invalid, ""},
		{"none", rcapi.ActionTag, invalid, ""},
		{"recording", rcapi.ActionStart, invalid, rcapi.StateRecording},
		{"recording", rcapi.ActionPause, applied, rcapi.StatePaused},
		{"recording", rcapi.ActionResume, invalid, rcapi.StateRecording},
		{"recording", rcapi.ActionStop, applied, ""},
		{"recording", rcapi.ActionTag, applied, rcapi.StateRecording},
		{"paused", rcapi.ActionStart, invalid, rcapi.StatePaused},
		{"paused", rcapi.ActionPause, invalid, rcapi.StatePaused},
		{"paused", rcapi.ActionResume, applied, rcapi.StateRecording},
		{"paused", rcapi.ActionStop, applied, ""},
		{"paused", rcapi.ActionTag, applied, rcapi.StatePaused},
		{"stopped", rcapi.ActionStart, invalid, ""},
		{"stopped", rcapi.ActionPause, invalid, ""},
		{"stopped", rcapi.ActionResume, invalid, ""},
		{"stopped", rcapi.ActionStop, invalid, ""},
		{"stopped", rcapi.ActionTag, invalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.action, func(t *testing.T) {
			f := newFixture(t)
			for _, a := range setups[tt.from] {
				if got := f.send("/v1/commands", cmd(a, seg, 1)); got != applied {
					t.Fatalf("setup %s: got %v, want %v", a, got, applied)
				}
			}
			if got := f.send("/v1/commands", cmd(tt.action, seg, 1)); got != tt.want {
				t.Errorf("%s from %s: got %v, want %v", tt.action, tt.from, got, tt.want)
			}
			open := f.rec.Open()
			gotState := ""
			if len(open) == 1 {
				gotState = open[0].State
			} else if len(open) > 1 {
				t.Fatalf("open = %+v, want at most one segment", open)
			}
			if gotState != tt.wantState {
				t.Errorf("state after: got %q, want %q", gotState, tt.wantState)
			}
		})
	}
}

func TestEngagementTag(t *testing.T) {
	f := newFixture(t)
	c := cmd(rcapi.ActionTag, "", 1)
	if got := f.send("/v1/commands", c); got != applied {
		t.Errorf("engagement-level tag: got %v, want %v", got, applied)
	}
	// A segment under another engagement is not this command's segment.
	f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-1", 1))
	other := cmd(rcapi.ActionPause, "eng-1/usr-1", 1)
	other.EngagementID = "eng-2"
	if got := f.send("/v1/commands", other); got != invalid {
		t.Errorf("pause naming another engagement: got %v, want %v", got, invalid)
	}
}

func TestMalformed(t *testing.T) {
	valid := cmd(rcapi.ActionStart, "eng-1/usr-1", 1)
	mutate := func(fn func(*rcapi.Command)) rcapi.Command {
		c := valid
		fn(&c)
		return c
	}
	tests := []struct {
		name string
		body any
	}{
		{"not json", "{not json"},
		{"empty body", ""},
		{"trailing data", `{"id":"x"} {}`},
		{"wrong type", `{"id":"x","epoch":"one","node":"n","action":"start","engagement_id":"e","segment_id":"s"}`},
		{"missing id", mutate(func(c *rcapi.Command) { c.ID = "" })},
		{"missing epoch", mutate(func(c *rcapi.Command) { c.Epoch = 0 })},
		{"missing node", mutate(func(c *rcapi.Command) { c.Node = "" })},
		{"missing action", mutate(func(c *rcapi.Command) { c.Action = "" })},
		{"unknown action", mutate(func(c *rcapi.Command) { c.Action = "rewind" })},
		{"missing engagement", mutate(func(c *rcapi.Command) { c.EngagementID = "" })},
		{"missing segment", mutate(func(c *rcapi.Command) { c.SegmentID = "" })},
		{"too large", `{"id":"` + strings.Repeat("x", MaxBodyBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if got := f.send("/v1/commands", tt.body); got != bad {
				t.Errorf("got %v, want %v", got, bad)
			}
			l := f.rec.Ledger()
			if len(l.Entries) != 1 || l.Entries[0].Result != rcapi.ErrCodeMalformed {
				t.Errorf("ledger = %+v, want one malformed entry", l.Entries)
			}
			if l.Epoch != 0 {
				t.Errorf("fence = %d after a malformed command, want 0", l.Epoch)
			}
		})
	}
}

func TestDuplicateID(t *testing.T) {
	f := newFixture(t)
	start := cmd(rcapi.ActionStart, "eng-1/usr-1", 3)
	if got := f.send("/v1/commands", start); got != applied {
		t.Fatalf("first: got %v, want %v", got, applied)
	}
	// The same id again, even from the other node with a newer epoch, is a
	// no-op: no second start, no invalid transition.
	again := start
	again.Node, again.Epoch = "node-b", 4
	if got := f.send("/v1/commands", again); got != duplicate {
		t.Errorf("repeat: got %v, want %v", got, duplicate)
	}
	if open := f.rec.Open(); len(open) != 1 || open[0].Epoch != 3 {
		t.Errorf("open = %+v, want one segment at epoch 3", open)
	}
	// A rejected id is not applied, so it may be sent again later.
	pause := cmd(rcapi.ActionPause, "eng-1/usr-2", 4)
	if got := f.send("/v1/commands", pause); got != invalid {
		t.Fatalf("pause before start: got %v, want %v", got, invalid)
	}
	f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-2", 4))
	if got := f.send("/v1/commands", pause); got != applied {
		t.Errorf("pause re-sent after start: got %v, want %v", got, applied)
	}
}

func TestStaleEpoch(t *testing.T) {
	f := newFixture(t)
	if got := f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-1", 7)); got != applied {
		t.Fatalf("epoch 7: got %v, want %v", got, applied)
	}
	st, body := f.post("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-2", 6))
	if st != http.StatusConflict || body["error"] != rcapi.ErrCodeStaleEpoch || body["epoch"] != float64(7) {
		t.Errorf("epoch 6: got %d %v, want 409 stale_epoch epoch 7", st, body)
	}
	// Stale beats duplicate: a known id from an old epoch is still fenced.
	old := cmd(rcapi.ActionStart, "eng-1/usr-3", 7)
	f.send("/v1/commands", old)
	old.Epoch = 5
	if got := f.send("/v1/commands", old); got != stale {
		t.Errorf("duplicate id at stale epoch: got %v, want %v", got, stale)
	}
	if got := f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-2", 9)); got != applied {
		t.Errorf("epoch 9: got %v, want %v", got, applied)
	}
	if got := f.send("/v1/commands", cmd(rcapi.ActionStop, "eng-1/usr-1", 7)); got != stale {
		t.Errorf("epoch 7 after 9: got %v, want %v", got, stale)
	}
	// A well-formed message that passes the fence raises it, even when it is
	// rejected as a transition.
	if got := f.send("/v1/commands", cmd(rcapi.ActionResume, "eng-1/usr-1", 11)); got != invalid {
		t.Errorf("resume of recording at epoch 11: got %v, want %v", got, invalid)
	}
	if got := f.rec.Ledger().Epoch; got != 11 {
		t.Errorf("fence = %d, want 11", got)
	}
}

func TestEpochClaim(t *testing.T) {
	f := newFixture(t)
	claim := func(e int64) rcapi.EpochClaim { return rcapi.EpochClaim{Epoch: e, Node: "node-b"} }
	steps := []struct {
		body any
		want outcome
	}{
		{claim(5), applied},
		{claim(5), duplicate},
		{claim(4), stale},
		{claim(8), applied},
		{rcapi.EpochClaim{Epoch: 9}, bad},
		{claim(0), bad},
		{"[]", bad},
	}
	for i, s := range steps {
		if got := f.send("/v1/epoch", s.body); got != s.want {
			t.Errorf("step %d (%v): got %v, want %v", i, s.body, got, s.want)
		}
	}
	// Commands below the claimed epoch are fenced.
	if got := f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-1/usr-1", 7)); got != stale {
		t.Errorf("command at 7 after claim 8: got %v, want %v", got, stale)
	}
	if got := f.rec.Ledger().Epoch; got != 8 {
		t.Errorf("fence = %d, want 8", got)
	}
}

func TestAgents(t *testing.T) {
	f := newFixture(t)
	au := rcapi.AgentUpdate{ID: "ag-1", Epoch: 2, Node: "node-a", AgentID: "usr-1", State: "login", At: t0}
	steps := []struct {
		name string
		body any
		want outcome
	}{
		{"first", au, applied},
		{"repeat", au, duplicate},
		{"missing agent", rcapi.AgentUpdate{ID: "ag-2", Epoch: 2, Node: "n"}, bad},
		{"stale", rcapi.AgentUpdate{ID: "ag-3", Epoch: 1, Node: "n", AgentID: "usr-1"}, stale},
		{"newer", rcapi.AgentUpdate{ID: "ag-4", Epoch: 3, Node: "n", AgentID: "usr-1", State: "logout"}, applied},
		{"not json", "nope", bad},
	}
	for _, s := range steps {
		if got := f.send("/v1/agents", s.body); got != s.want {
			t.Errorf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
}

func TestLedger(t *testing.T) {
	f := newFixture(t)
	start := cmd(rcapi.ActionStart, "eng-1/usr-1", 2)
	start.Metadata = map[string]string{"queue": "q-1"}
	f.send("/v1/epoch", rcapi.EpochClaim{Epoch: 2, Node: "node-a"})
	f.send("/v1/commands", start)
	f.send("/v1/commands", start)
	f.send("/v1/commands", cmd(rcapi.ActionResume, "eng-1/usr-1", 2))
	f.send("/v1/commands", cmd(rcapi.ActionStop, "eng-1/usr-1", 1))
	f.send("/v1/agents", rcapi.AgentUpdate{ID: "ag-1", Epoch: 2, Node: "node-a", AgentID: "usr-1"})
	f.send("/v1/commands", "garbage")

	want := []struct{ kind, result string }{
		{KindEpoch, rcapi.ResultApplied},
		{KindCommand, rcapi.ResultApplied},
		{KindCommand, rcapi.ResultDuplicate},
		{KindCommand, rcapi.ErrCodeInvalidTransition},
		{KindCommand, rcapi.ErrCodeStaleEpoch},
		{KindAgent, rcapi.ResultApplied},
		{KindCommand, rcapi.ErrCodeMalformed},
	}
	var got rcapi.Ledger
	if st := f.get("/v1/ledger", &got); st != http.StatusOK {
		t.Fatalf("GET /v1/ledger: status %d", st)
	}
	if got.Epoch != 2 {
		t.Errorf("epoch = %d, want 2", got.Epoch)
	}
	if len(got.Entries) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got.Entries), len(want), got.Entries)
	}
	for i, e := range got.Entries {
		if e.Seq != int64(i+1) || e.Kind != want[i].kind || e.Result != want[i].result {
			t.Errorf("entry %d: got seq %d %s/%s, want seq %d %s/%s", i, e.Seq, e.Kind, e.Result, i+1, want[i].kind, want[i].result)
		}
		if i > 0 && !e.ReceivedAt.After(got.Entries[i-1].ReceivedAt) {
			t.Errorf("entry %d: received_at %v not after %v", i, e.ReceivedAt, got.Entries[i-1].ReceivedAt)
		}
	}
	if c := got.Entries[1].Command; c == nil || c.ID != start.ID || c.Metadata["queue"] != "q-1" || !c.At.Equal(start.At) {
		t.Errorf("entry 2 command = %+v, want %+v", c, start)
	}
	if got.Entries[0].Claim == nil || got.Entries[5].Agent == nil || got.Entries[6].Command != nil {
		t.Errorf("entry bodies: claim %v, agent %v, malformed command %v", got.Entries[0].Claim, got.Entries[5].Agent, got.Entries[6].Command)
	}

	// Ledger() is a deep copy.
	l := f.rec.Ledger()
	l.Entries[1].Command.Metadata["queue"] = "changed"
	if f.rec.Ledger().Entries[1].Command.Metadata["queue"] != "q-1" {
		t.Error("mutating Ledger()'s result changed the recorder")
	}
}

func TestOpenRecordings(t *testing.T) {
	f := newFixture(t)
	a := cmd(rcapi.ActionStart, "eng-1/usr-1", 1)
	b := cmd(rcapi.ActionStart, "eng-2/usr-2", 2)
	f.send("/v1/commands", a)
	f.send("/v1/commands", b)
	f.send("/v1/commands", cmd(rcapi.ActionStart, "eng-3/usr-3", 2))
	f.send("/v1/commands", cmd(rcapi.ActionPause, "eng-2/usr-2", 2))
	f.send("/v1/commands", cmd(rcapi.ActionResume, "eng-2/usr-2", 2))
	f.send("/v1/commands", cmd(rcapi.ActionPause, "eng-2/usr-2", 3))
	f.send("/v1/commands", cmd(rcapi.ActionStop, "eng-3/usr-3", 3))

	var got rcapi.OpenRecordings
	if st := f.get("/v1/recordings?state=open", &got); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	want := []rcapi.OpenRecording{
		{SegmentID: "eng-1/usr-1", EngagementID: "eng-1", State: rcapi.StateRecording, StartedAt: a.At, Epoch: 1},
		{SegmentID: "eng-2/usr-2", EngagementID: "eng-2", State: rcapi.StatePaused, Pauses: 2, StartedAt: b.At, Epoch: 3},
	}
	if len(got.Recordings) != len(want) {
		t.Fatalf("got %+v, want %+v", got.Recordings, want)
	}
	for i := range want {
		g := got.Recordings[i]
		if g.SegmentID != want[i].SegmentID || g.EngagementID != want[i].EngagementID || g.State != want[i].State ||
			g.Pauses != want[i].Pauses || !g.StartedAt.Equal(want[i].StartedAt) || g.Epoch != want[i].Epoch {
			t.Errorf("recording %d: got %+v, want %+v", i, g, want[i])
		}
	}
	if st := f.get("/v1/recordings?state=closed", nil); st != http.StatusBadRequest {
		t.Errorf("state=closed: status %d, want 400", st)
	}

	empty := newFixture(t)
	var none rcapi.OpenRecordings
	empty.get("/v1/recordings?state=open", &none)
	if none.Recordings == nil || len(none.Recordings) != 0 {
		t.Errorf("no recordings: got %#v, want an empty list", none.Recordings)
	}
}

func TestFailNext(t *testing.T) {
	f := newFixture(t)
	start := cmd(rcapi.ActionStart, "eng-1/usr-1", 1)
	f.rec.FailNext(2, http.StatusServiceUnavailable)
	fault := outcome{http.StatusServiceUnavailable, ErrCodeFault}
	if got := f.send("/v1/commands", start); got != fault {
		t.Errorf("1st try: got %v, want %v", got, fault)
	}
	au := rcapi.AgentUpdate{ID: "ag-1", Epoch: 1, Node: "node-a", AgentID: "usr-1"}
	if got := f.send("/v1/agents", au); got != fault {
		t.Errorf("agent during fault: got %v, want %v", got, fault)
	}
	if got := f.send("/v1/commands", start); got != applied {
		t.Errorf("retry with the same id: got %v, want %v (the faulted try must not count)", got, applied)
	}

	// Over HTTP, with another status; a bad status is refused.
	st, body := f.post("/sim/faults", map[string]int{"fail_next": 1, "status": 500})
	if st != http.StatusOK || body["fail_next"] != float64(1) || body["status"] != float64(500) {
		t.Errorf("POST /sim/faults: got %d %v", st, body)
	}
	if got := f.send("/v1/commands", cmd(rcapi.ActionStop, "eng-1/usr-1", 1)); got != (outcome{500, ErrCodeFault}) {
		t.Errorf("after /sim/faults: got %v, want 500 fault", got)
	}
	if st, _ := f.post("/sim/faults", map[string]int{"fail_next": 1, "status": 200}); st != http.StatusBadRequest {
		t.Errorf("status 200 fault: got %d, want 400", st)
	}
	// The epoch endpoint is not faulted, and n=0 cancels.
	f.rec.FailNext(5, 0)
	if got := f.send("/v1/epoch", rcapi.EpochClaim{Epoch: 2, Node: "node-b"}); got != applied {
		t.Errorf("epoch claim during faults: got %v, want %v", got, applied)
	}
	f.rec.FailNext(0, 0)
	au.Epoch = 2
	if got := f.send("/v1/agents", au); got != applied {
		t.Errorf("after cancel: got %v, want %v", got, applied)
	}

	var results []string
	for _, e := range f.rec.Ledger().Entries {
		results = append(results, e.Result)
	}
	want := "fault fault applied fault applied applied"
	if strings.Join(results, " ") != want {
		t.Errorf("ledger results = %q, want %q", strings.Join(results, " "), want)
	}
}

func TestConcurrentPosts(t *testing.T) {
	f := newFixture(t)
	const segments, senders = 40, 4 // each segment's start sent by 4 senders at once
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[outcome]int{}
	for i := range segments {
		c := cmd(rcapi.ActionStart, fmt.Sprintf("eng-%d/usr-1", i), 1)
		for range senders {
			wg.Go(func() {
				got := f.send("/v1/commands", c)
				mu.Lock()
				counts[got]++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if counts[applied] != segments || counts[duplicate] != segments*(senders-1) || len(counts) != 2 {
		t.Errorf("outcomes = %v, want %d applied and %d duplicate", counts, segments, segments*(senders-1))
	}
	if n := len(f.rec.Open()); n != segments {
		t.Errorf("open = %d, want %d", n, segments)
	}
	l := f.rec.Ledger()
	if len(l.Entries) != segments*senders {
		t.Fatalf("ledger has %d entries, want %d", len(l.Entries), segments*senders)
	}
	for i, e := range l.Entries {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t)
	if st := f.get("/healthz", nil); st != http.StatusOK {
		t.Errorf("/healthz: %d", st)
	}
	if st := f.get("/v1/commands", nil); st != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/commands: %d, want 405", st)
	}
}
