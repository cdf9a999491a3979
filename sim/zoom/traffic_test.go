package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// stubModel is a traffic model that emits one event when it runs and one
// when it drains.
type stubModel struct {
	cfg  traffic.Config
	emit traffic.Emitter
	ran  chan struct{}

	mu      sync.Mutex
	events  int
	drained bool
}

func (m *stubModel) Run(ctx context.Context) error {
	m.emit("contact_center.user_login", time.Now(), map[string]any{"user_id": "usr-1"})
	m.mu.Lock()
	m.events++
	m.mu.Unlock()
	close(m.ran)
	<-ctx.Done()
	return nil
}

func (m *stubModel) Drain(context.Context) error {
	m.emit("contact_center.engagement_ended", time.Now(), map[string]any{"engagement_id": "eng-1"})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events++
	m.drained = true
	return nil
}

func (m *stubModel) Agents() []traffic.Agent {
	return []traffic.Agent{
		{UserID: "usr-1", DisplayName: "Ava Kim", Email: "ava@example.com", Status: "ready"},
		{UserID: "usr-2", DisplayName: "Bo Silva", Email: "bo@example.com", Status: "busy"},
	}
}

func (m *stubModel) Truth() traffic.Truth {
	m.mu.Lock()
	defer m.mu.Unlock()
	return traffic.Truth{Calls: 1, Events: m.events, Segments: []traffic.Segment{}}
}

func TestTrafficControl(t *testing.T) {
	var models []*stubModel
	var mu sync.Mutex
	e := newEnv(t, nil, func(s *Server) {
		s.newModel = func(cfg traffic.Config, emit traffic.Emitter, _ zerolog.Logger) (trafficModel, error) {
			if cfg.Agents < 0 {
				return nil, errors.New("agents < 0")
			}
			m := &stubModel{cfg: cfg, emit: emit, ran: make(chan struct{})}
			mu.Lock()
			models = append(models, m)
			mu.Unlock()
			return m, nil
		}
	})
	post := func(path, body string) (int, string) {
		resp, err := e.srv.Client().Post(e.srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	get := func(path string) (int, string) {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}

	if st, _ := get("/sim/truth"); st != http.StatusNotFound {
		t.Errorf("truth before traffic: %d, want 404", st)
	}
	if st, _ := post("/sim/traffic/stop", ""); st != http.StatusConflict {
		t.Errorf("stop before start: %d, want 409", st)
	}
	for _, bad := range []string{`{"agents":-1}`, `{"nope":1}`, `{"min_call":"fast"}`, `[`} {
		if st, _ := post("/sim/traffic/start", bad); st != http.StatusBadRequest {
			t.Errorf("start %s: %d, want 400", bad, st)
		}
	}
	c := e.connect("sub-a")
	if st, body := post("/sim/traffic/start", `{"seed":7,"agents":3,"min_call":"5s"}`); st != 200 {
		t.Fatalf("start: %d %s", st, body)
	}
	if st, _ := post("/sim/traffic/start", `{}`); st != http.StatusConflict {
		t.Errorf("second start: %d, want 409", st)
	}
	mu.Lock()
	m := models[0]
	mu.Unlock()
	if m.cfg.Seed != 7 || m.cfg.Agents != 3 || m.cfg.MinCall != traffic.Duration(5*time.Second) || m.cfg.AccountID != testAccount {
		t.Errorf("model config = %+v", m.cfg)
	}
	<-m.ran
	if ev := parseEvent(t, readFrame(t, c)); ev.Event != "contact_center.user_login" || ev.Payload.AccountID != testAccount {
		t.Errorf("traffic event = %+v", ev)
	}

	st, body := post("/sim/traffic/stop", "")
	var truth traffic.Truth
	if err := json.Unmarshal([]byte(body), &truth); st != 200 || err != nil || truth.Events != 2 {
		t.Errorf("stop: %d %s, want the truth with 2 events", st, body)
	}
	if !m.drained {
		t.Error("stop did not drain the model")
	}
	if ev := parseEvent(t, readFrame(t, c)); ev.Event != "contact_center.engagement_ended" {
		t.Errorf("drain event = %+v", ev)
	}
	if st, body := get("/sim/truth"); st != 200 || !strings.Contains(body, `"events":2`) {
		t.Errorf("truth after stop: %d %s", st, body)
	}
	if st, _ := post("/sim/traffic/stop", ""); st != http.StatusConflict {
		t.Errorf("second stop: %d, want 409", st)
	}

	// Traffic left running is stopped and drained by Close.
	if err := e.s.StartTraffic(traffic.Config{}); err != nil {
		t.Fatalf("restart: %v", err)
	}
	mu.Lock()
	m2 := models[len(models)-1]
	mu.Unlock()
	<-m2.ran
	_ = c.CloseNow() // a client that stops reading would hold Close for its budget
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if !m2.drained {
		t.Error("Close did not drain the running model")
	}
	if err := e.s.StartTraffic(traffic.Config{}); !errors.Is(err, ErrClosed) {
		t.Errorf("start after Close: %v, want ErrClosed", err)
	}
}

// TestTrafficRealModel runs the real traffic model briefly through the
// control endpoints and checks that its events reach a subscriber.
func TestTrafficRealModel(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect("sub-a")
	var got []string
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var f struct{ Content string }
			var ev struct{ Event string }
			if json.Unmarshal(data, &f) == nil && json.Unmarshal([]byte(f.Content), &ev) == nil {
				mu.Lock()
				got = append(got, ev.Event)
				mu.Unlock()
			}
		}
	}()
	if err := e.s.StartTraffic(traffic.Config{Seed: 1, Agents: 2, CallsPerSecond: 50,
		MinCall: traffic.Duration(20 * time.Millisecond), MaxCall: traffic.Duration(50 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a call", func() bool { tr, _ := e.s.Truth(); return tr.Calls > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	truth, err := e.s.StopTraffic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if truth.Calls == 0 || truth.Events == 0 || truth.Undelivered != 0 {
		t.Errorf("truth = %+v, want calls and events, all delivered", truth)
	}
	waitFor(t, "every event", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= truth.Events })
	_ = c.CloseNow()
	<-readDone
	if st := e.status("sub-a"); st.EventsSent != int64(truth.Events) {
		t.Errorf("events_sent = %d, truth.Events = %d", st.EventsSent, truth.Events)
	}
}
