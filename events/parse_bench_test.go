package events_test

import (
	"context"
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

// BenchmarkDedupKey is the part of Parse that computes the dedup key (a
// second decode of payload.object into generic values, then canonical JSON
// and SHA-256).
func BenchmarkDedupKey(b *testing.B) {
	evs := benchEvents(b)
	parsed := make([]*events.Event, len(evs))
	for i, e := range evs {
		ev, err := events.Parse(e.Raw)
		if err != nil {
			b.Fatal(err)
		}
		parsed[i] = ev
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := parsed[i%len(parsed)]
		if _, err := events.DedupKey(ev.Name, ev.AccountID, ev.Object, ev.TS.UnixMilli()); err != nil {
			b.Fatal(err)
		}
	}
}
