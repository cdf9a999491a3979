package adapter

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zccadapter/zccadapter/events"
)

// socketGapCollector exposes emitSocketGaps of a fixed status.
type socketGapCollector struct{ cs events.ClientStatus }

func (c socketGapCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range socketGapDescs {
		ch <- d
	}
}

func (c socketGapCollector) Collect(ch chan<- prometheus.Metric) { emitSocketGaps(ch, "a", c.cs) }

func TestSocketGapMetrics(t *testing.T) {
	st := events.ClientStatus{Gaps: 2, DownTotal: 4500 * time.Millisecond, LastGap: 1500 * time.Millisecond}
	want := `
# HELP zccadapter_socket_gap_seconds_total Seconds the node's subscription socket was down (from the end of an accepted connection to the next), the current gap included.
# TYPE zccadapter_socket_gap_seconds_total counter
zccadapter_socket_gap_seconds_total{node="a"} 4.5
# HELP zccadapter_socket_gaps_total Subscription socket gaps that have ended (the socket was accepted again).
# TYPE zccadapter_socket_gaps_total counter
zccadapter_socket_gaps_total{node="a"} 2
# HELP zccadapter_socket_last_gap_seconds Length in seconds of the last subscription socket gap that ended; absent before the first.
# TYPE zccadapter_socket_last_gap_seconds gauge
zccadapter_socket_last_gap_seconds{node="a"} 1.5
`
	if err := testutil.CollectAndCompare(socketGapCollector{st}, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(socketGapCollector{}); n != 2 {
		t.Errorf("before any gap: %d metrics; want 2 (no last gap)", n)
	}
}
