package adapter

import (
	"context"
	"sync"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/redact"
)

// The quarantine: inputs that must never reach the rules (a malformed or
// implausible event from the socket, a handoff entry that does not parse,
// a state record that does not decode at promotion, an event whose
// application fails through its own fault) are put aside in the cluster's
// quarantine (protocol.Cluster.Quarantine), best effort: the node queues
// them and one goroutine writes them, each within quarantineBudget. A full
// queue or a failed write is counted and logged, and never holds up the
// node.
const (
	// quarantineQueueSize is how many entries wait to be written before
	// new ones are dropped (counted).
	quarantineQueueSize = 256
	// quarantineBudget bounds one write to the cluster.
	quarantineBudget = 2 * time.Second
	// quarantineDrainBudget bounds the writes left at stop.
	quarantineDrainBudget = 500 * time.Millisecond
	// quarantineRecent is how many notes /status shows.
	quarantineRecent = 5
	// quarantineRecount is how often the cluster's count is read again
	// (entries expire by lease).
	quarantineRecount = time.Minute
)

// QuarantineStatus is what /status shows of the quarantine.
type QuarantineStatus struct {
	// Count is the number of entries in the cluster's quarantine, as this
	// node last read it (after each of its writes, and every minute); -1
	// before the first read.
	Count int `json:"count"`
	// Put counts the entries this node wrote.
	Put int64 `json:"put"`
	// Failed counts the entries this node could not write (etcd failed, or
	// too many were waiting); the input is still never applied.
	Failed int64 `json:"failed"`
	// Recent are this node's newest entries, newest first, at most 5.
	Recent []QuarantineNote `json:"recent,omitempty"`
}

// QuarantineNote is one entry as /status shows it: no raw input.
type QuarantineNote struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"`
	Reason string    `json:"reason"`
}

// quarantineState is the node's side of the quarantine. Guarded by Node.mu
// except q, which is a channel.
type quarantineState struct {
	q      chan protocol.QuarantineEntry
	status QuarantineStatus
	// malformed counts socket events that did not parse, by the
	// ParseError's bounded labels (event, field).
	malformed map[[2]string]int64
}

func newQuarantineState() quarantineState {
	return quarantineState{q: make(chan protocol.QuarantineEntry, quarantineQueueSize),
		status: QuarantineStatus{Count: -1}, malformed: map[[2]string]int64{}}
}

// quarantine puts an input aside: source is a protocol.Quarantine* source,
// key the handoff key or engagement id (may be ""), reason why (an error's
// text that names no value: ParseError, a decoder's). It never blocks.
// Safe for concurrent use.
func (n *Node) quarantine(source, key string, raw []byte, reason string) {
	reason = redact.Truncate(reason, protocol.MaxQuarantineReason)
	if len(raw) > protocol.MaxQuarantineRaw {
		raw = raw[:protocol.MaxQuarantineRaw:protocol.MaxQuarantineRaw]
	}
	e := protocol.QuarantineEntry{At: time.Now().UTC(), Source: source, Key: key, Reason: reason, Raw: raw}
	n.mu.Lock()
	qs := &n.quar.status
	qs.Recent = append([]QuarantineNote{{At: e.At, Source: source, Reason: reason}}, qs.Recent...)
	if len(qs.Recent) > quarantineRecent {
		qs.Recent = qs.Recent[:quarantineRecent]
	}
	n.mu.Unlock()
	lvl := n.log.Warn() // the subscription client logs the first of each kind of malformed event itself
	if source == protocol.QuarantineSocket {
		lvl = n.log.Debug()
	}
	lvl.Str("source", source).Str("reason", reason).Msg("input quarantined; it is never applied")
	select {
	case n.quar.q <- e:
	default:
		n.count(func(*NodeStatus) { n.quar.status.Failed++ })
		n.log.Error().Str("source", source).Msg("quarantine queue full; entry not written")
	}
}

// NoteMalformed takes an event from the node's subscription that did not
// parse (events.ClientConfig.OnMalformed): it counts it by the error's
// labels and quarantines it. It never blocks. Safe for concurrent use.
func (n *Node) NoteMalformed(raw []byte, pe *events.ParseError) {
	event, field := pe.Labels()
	n.mu.Lock()
	n.quar.malformed[[2]string{event, field}]++
	n.mu.Unlock()
	n.quarantine(protocol.QuarantineSocket, "", raw, pe.Error())
}

// MalformedCounts returns the counts of NoteMalformed by [event, field]
// (ParseError.Labels). Safe for concurrent use.
func (n *Node) MalformedCounts() map[[2]string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[[2]string]int64, len(n.quar.malformed))
	for k, v := range n.quar.malformed {
		out[k] = v
	}
	return out
}

// runQuarantine writes queued entries until ctx ends, then what is left
// within quarantineDrainBudget. It also keeps the status's count fresh.
func (n *Node) runQuarantine(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	recount := time.NewTicker(quarantineRecount)
	defer recount.Stop()
	n.recountQuarantine(ctx)
	for {
		select {
		case e := <-n.quar.q:
			n.writeQuarantine(ctx, e)
		case <-recount.C:
			n.recountQuarantine(ctx)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quarantineDrainBudget)
			defer cancel()
			for {
				select {
				case e := <-n.quar.q:
					n.writeQuarantine(dctx, e)
				default:
					return
				}
			}
		}
	}
}

// writeQuarantine writes one entry within quarantineBudget, and reads the
// count after it.
func (n *Node) writeQuarantine(ctx context.Context, e protocol.QuarantineEntry) {
	wctx, cancel := context.WithTimeout(ctx, quarantineBudget)
	err := n.cl.Quarantine(wctx, e)
	cancel()
	if err != nil {
		n.count(func(*NodeStatus) { n.quar.status.Failed++ })
		n.log.Warn().Err(err).Str("source", e.Source).Msg("writing a quarantine entry failed; the input is still never applied")
		return
	}
	n.count(func(*NodeStatus) { n.quar.status.Put++ })
	n.recountQuarantine(ctx)
}

// recountQuarantine reads the cluster's quarantine count into the status.
func (n *Node) recountQuarantine(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, quarantineBudget)
	count, _, err := n.cl.Quarantined(rctx, 0)
	cancel()
	if err == nil {
		n.count(func(*NodeStatus) { n.quar.status.Count = count })
	}
}

// snapshot returns a copy of the status (the caller holds Node.mu).
func (q *quarantineState) snapshot() QuarantineStatus {
	s := q.status
	s.Recent = append([]QuarantineNote(nil), q.status.Recent...)
	return s
}
