package events_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/zccadapter/zccadapter/bench/kit"
	"github.com/zccadapter/zccadapter/events"
)

var parseCorpus struct {
	once sync.Once
	c    *kit.Corpus
	err  error
}

// benchEvents returns the call events of 300 calls of the traffic model:
// the mix the node parses in production (engagement, task, reservation
// events; a quarter with a hold, some transfers).
func benchEvents(b *testing.B) []kit.Event {
	b.Helper()
	parseCorpus.once.Do(func() {
		parseCorpus.c, parseCorpus.err = kit.Record(context.Background(), kit.CorpusConfig{Seed: 1, Calls: 300, Agents: 600})
	})
	if parseCorpus.err != nil {
		b.Fatal(parseCorpus.err)
	}
	return parseCorpus.c.Calls
}

// BenchmarkParse is the cost of events.Parse per event on the traffic mix:
// every node parses every event of its socket (the leader and the
// standby), so at 5,000 events/s a node spends 5,000 × this per second.
func BenchmarkParse(b *testing.B) {
	evs := benchEvents(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := events.Parse(evs[i%len(evs)].Raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDedupKey is the part of Parse that computes the dedup key from
// the fields of payload.object that Parse has already decoded: canonical
// JSON of the stable fields, then SHA-256.
func BenchmarkDedupKey(b *testing.B) {
	evs := benchEvents(b)
	type decoded struct {
		ev  *events.Event
		obj map[string]json.RawMessage
	}
	parsed := make([]decoded, len(evs))
	for i, e := range evs {
		ev, err := events.Parse(e.Raw)
		if err != nil {
			b.Fatal(err)
		}
		parsed[i].ev = ev
		if err := json.Unmarshal(ev.Object, &parsed[i].obj); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := parsed[i%len(parsed)]
		_ = events.DedupKeyOfObject(d.ev.Name, d.ev.AccountID, d.obj, d.ev.TS.UnixMilli())
	}
}
