package kit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/events"
)

// LeaderWrite is what the leader writes to etcd for one event: its dedup
// key and, for an engagement event, the engagement's state record after the
// rules applied it (JSON of adapter.Engagement), with the dedup lease once
// the engagement is closed.
type LeaderWrite struct {
	// Eng is the engagement id ("" for an event of no engagement).
	Eng string
	// State is the state record; "" when the event changes none.
	State string
	// Key is the event's dedup key.
	Key string
	// Closed: the record goes under the dedup lease.
	Closed bool
}

// LeaderWrites parses the events of lists in order, applies the rules to
// them as a leader does (the node's default max event age, 10m), and
// returns each event's writes. The error names the event that does not
// parse.
func LeaderWrites(lists ...[]Event) ([]LeaderWrite, error) {
	rules := adapter.Rules{MaxEventAge: 10 * time.Minute}
	engs := map[string]*adapter.Engagement{}
	var out []LeaderWrite
	for _, list := range lists {
		for i, ce := range list {
			ev, err := events.Parse(ce.Raw)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			id := adapter.EngagementID(ev)
			eng, _, _ := rules.Apply(engs[id].Clone(), ev)
			w := LeaderWrite{Eng: id, Key: ev.Key}
			if id != "" && eng != nil {
				engs[id] = eng
				s, err := json.Marshal(eng)
				if err != nil {
					return nil, fmt.Errorf("event %d: state of engagement %q: %w", i, id, err)
				}
				w.State, w.Closed = string(s), eng.Closed && !eng.Open()
			}
			out = append(out, w)
		}
	}
	return out, nil
}
