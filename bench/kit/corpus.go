package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// Event is one recorded Zoom event: the envelope as Zoom sends it, and what
// the benchmarks key it by.
type Event struct {
	// Raw is the envelope {"event","event_ts","payload":{"account_id","object"}}.
	Raw []byte
	// Name is the event name.
	Name string
	// EngagementID is payload.object.engagement_id ("" for roster events).
	EngagementID string
	// AtMS is the event time in Unix milliseconds (object date_time_ms);
	// within one engagement it is unique (the model keeps it strictly
	// increasing), so (EngagementID, AtMS) names the event that triggered a
	// recorder command (rcapi.Command.EngagementID, At).
	AtMS int64
	// Roster marks agent roster events (login, status, presence).
	Roster bool
}

// Key is the (engagement, event time) key of an event or command.
func Key(engagementID string, atMS int64) string {
	return fmt.Sprintf("%s@%d", engagementID, atMS)
}

// Corpus is a recorded run of the traffic model, in emit order.
type Corpus struct {
	// Calls are the events of calls (engagement, task and reservation
	// events), in emit order; Roster the agents' login events.
	Calls, Roster []Event
	// NumCalls is the number of calls started.
	NumCalls int
	// Generated is when the recording ended: event times are before it.
	Generated time.Time
	// Took is how long the recording took.
	Took time.Duration
}

// CorpusConfig shapes a corpus.
type CorpusConfig struct {
	// Seed of the traffic model; a new seed gives new engagement and agent
	// ids, hence new dedup keys and command ids.
	Seed int64
	// Calls to record (at least). Default 5000.
	Calls int
	// Agents logged in. Default 3000: enough that calls of a few ms with
	// their 1–2 s wrap-up rarely queue at 1,000 calls/s.
	Agents int
	// CallsPerSecond of the model (at most 1000). Default 1000.
	CallsPerSecond float64
	// AccountID of the events. Default "acct-bench".
	AccountID string
}

type envelope struct {
	Event   string  `json:"event"`
	EventTS int64   `json:"event_ts"`
	Payload payload `json:"payload"`
}

type payload struct {
	AccountID string         `json:"account_id"`
	Object    map[string]any `json:"object"`
}

// Record runs the traffic model (sim/traffic, the same model the simulated
// Zoom runs) with calls of 1–20 ms talk time and records every event it
// emits, until cfg.Calls calls have started; then it drains the model, which
// ends every call with its proper end events. The mix is the model's
// default: 30% of calls with a hold, 20% transferred, 10% outbound, wrap-up
// for every answered call. Talk is short so that a corpus of tens of
// thousands of events records in seconds; the replay, not the recording,
// sets the rate the adapter sees.
func Record(ctx context.Context, cfg CorpusConfig) (*Corpus, error) {
	if cfg.Calls == 0 {
		cfg.Calls = 5000
	}
	if cfg.Agents == 0 {
		cfg.Agents = 3000
	}
	if cfg.CallsPerSecond == 0 {
		cfg.CallsPerSecond = 1000
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "acct-bench"
	}
	var (
		mu  sync.Mutex
		out = &Corpus{}
	)
	emit := func(name string, at time.Time, object map[string]any) int {
		raw, err := json.Marshal(envelope{Event: name, EventTS: at.UnixMilli(),
			Payload: payload{AccountID: cfg.AccountID, Object: object}})
		if err != nil {
			return 0
		}
		eng, _ := object["engagement_id"].(string)
		ev := Event{Raw: raw, Name: name, EngagementID: eng, AtMS: at.UnixMilli()}
		mu.Lock()
		if eng == "" && !strings.Contains(name, "engagement") {
			ev.Roster = true
			out.Roster = append(out.Roster, ev)
		} else {
			out.Calls = append(out.Calls, ev)
		}
		mu.Unlock()
		return 2
	}
	m, err := traffic.New(traffic.Config{Seed: cfg.Seed, Agents: cfg.Agents, CallsPerSecond: cfg.CallsPerSecond,
		MinCall: traffic.Duration(time.Millisecond), MaxCall: traffic.Duration(20 * time.Millisecond),
		QueueTimeout: traffic.Duration(30 * time.Second), AccountID: cfg.AccountID}, emit, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.Run(rctx) }() //nolint:errcheck // nil after ctx
	tick := time.NewTicker(20 * time.Millisecond)
	for m.Truth().Calls < cfg.Calls && ctx.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	cancel()
	<-done
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer dcancel()
	if err := m.Drain(dctx); err != nil {
		return nil, err
	}
	out.NumCalls = m.Truth().Calls
	out.Generated = time.Now()
	out.Took = out.Generated.Sub(start)
	return out, ctx.Err()
}

// Generation returns the call events of generation g of the corpus: for
// g > 0 every engagement id "eng-…" becomes "eng<g>-…", which makes new
// engagements, dedup keys and command ids, so a consumer can be fed more
// events than were recorded. Generation 0 is the corpus itself.
func (c *Corpus) Generation(g int) []Event {
	if g == 0 {
		return c.Calls
	}
	from, to := []byte(`"eng-`), []byte(fmt.Sprintf(`"eng%d-`, g))
	out := make([]Event, len(c.Calls))
	for i, e := range c.Calls {
		e.Raw = bytes.ReplaceAll(e.Raw, from, to)
		e.EngagementID = strings.Replace(e.EngagementID, "eng-", fmt.Sprintf("eng%d-", g), 1)
		out[i] = e
	}
	return out
}
