package adapter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zccadapter/zccadapter/events"
)

// Socket gap metrics (G9): how long this node's subscription socket was
// down. A gap runs from the end of an accepted connection to the next
// accepted one (events.ClientStatus); the time before the first connection
// is not a gap. The collector reads them from the subscription client's
// status at scrape time, like the other socket metrics:
//
//	zccadapter_socket_gap_seconds_total  counter  seconds the socket was down, the current gap included (rises while down)
//	zccadapter_socket_gaps_total         counter  gaps that have ended (reconnected)
//	zccadapter_socket_last_gap_seconds   gauge    length of the last gap that ended (absent before the first)
var (
	descSocketGapSeconds = prometheus.NewDesc("zccadapter_socket_gap_seconds_total",
		"Seconds the node's subscription socket was down (from the end of an accepted connection to the next), the current gap included.",
		[]string{"node"}, nil)
	descSocketGaps    = counterDesc("socket_gaps", "Subscription socket gaps that have ended (the socket was accepted again).")
	descSocketLastGap = prometheus.NewDesc("zccadapter_socket_last_gap_seconds",
		"Length in seconds of the last subscription socket gap that ended; absent before the first.", []string{"node"}, nil)
)

// socketGapDescs are the descriptors emitSocketGaps writes, for a
// collector's Describe.
var socketGapDescs = []*prometheus.Desc{descSocketGapSeconds, descSocketGaps, descSocketLastGap}

// emitSocketGaps writes the socket gap metrics of node's subscription client
// status cs to ch.
func emitSocketGaps(ch chan<- prometheus.Metric, node string, cs events.ClientStatus) {
	ch <- prometheus.MustNewConstMetric(descSocketGapSeconds, prometheus.CounterValue, cs.DownTotal.Seconds(), node)
	ch <- prometheus.MustNewConstMetric(descSocketGaps, prometheus.CounterValue, float64(cs.Gaps), node)
	if cs.Gaps > 0 {
		ch <- prometheus.MustNewConstMetric(descSocketLastGap, prometheus.GaugeValue, cs.LastGap.Seconds(), node)
	}
}
