package faultnet

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"time"
)

// Direction is one way of a proxied connection. The faults set per
// direction (SetLatency, SetBlackhole) come on top of the proxy's Mode and
// SetDelay, which act on both ways.
type Direction int

// Directions of a proxied connection.
const (
	// Upstream is from the client that dialed the proxy to the target:
	// requests, for a client of etcd.
	Upstream Direction = iota
	// Downstream is from the target back to the client: replies.
	Downstream
)

func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// lineQueue bounds the chunks one direction of one connection holds in
// flight under a latency; a reader that gets further ahead waits (the
// sender then sees TCP back-pressure, as behind a slow link).
const lineQueue = 1024

// directions holds the per-direction faults of a Proxy.
type directions struct {
	mu      sync.Mutex
	latency [2]time.Duration
	hole    [2]bool
}

func (d *directions) get(dir Direction) (latency time.Duration, hole bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.latency[dir], d.hole[dir]
}

// SetLatency makes every chunk that travels in dir arrive d after the proxy
// read it, in order, while the proxy goes on reading: the latency of a link,
// not a cap on its throughput (unlike SetDelay, which holds each chunk in
// turn). 0 removes it for chunks read from then on. It applies to open and
// new connections, and adds to SetDelay. An unknown dir panics.
func (p *Proxy) SetLatency(dir Direction, d time.Duration) {
	p.dirs.mu.Lock()
	p.dirs.latency[dir] = max(d, 0)
	p.dirs.mu.Unlock()
}

// SetBlackhole drops every chunk read in dir while on, keeping the
// connections open, as a one-way silent partition would (requests lost,
// replies still flowing, or the reverse). Chunks read before it was set
// still arrive. It applies to open and new connections, whatever the Mode.
// An unknown dir panics.
func (p *Proxy) SetBlackhole(dir Direction, on bool) {
	p.dirs.mu.Lock()
	p.dirs.hole[dir] = on
	p.dirs.mu.Unlock()
}

// line is one direction of one proxied connection: it applies that
// direction's blackhole and latency, then hands each chunk to forward (the
// proxy's Mode and SetDelay). Only the pipe reading src calls send and
// close.
type line struct {
	p   *Proxy
	pr  *pair
	dir Direction
	dst net.Conn

	// q carries chunks to the writer goroutine once a latency was first
	// seen; from then on every chunk of the line goes through it, so that
	// chunks stay in order when the latency changes.
	q      chan chunk
	failed chan struct{} // closed by the writer when it stops early
}

type chunk struct {
	b   []byte
	due time.Time
}

// newLine returns the line that carries what the pipe reads from src.
func (p *Proxy) newLine(pr *pair, src, dst net.Conn) *line {
	dir := Downstream
	if src == pr.a {
		dir = Upstream
	}
	return &line{p: p, pr: pr, dir: dir, dst: dst}
}

// send passes b (which the caller reuses afterwards) on; it reports false
// when the connection must end.
func (l *line) send(b []byte) bool {
	latency, hole := l.p.dirs.get(l.dir)
	if hole {
		return true
	}
	if l.q == nil {
		if latency == 0 {
			return l.p.forward(l.dst, b)
		}
		l.q, l.failed = make(chan chunk, lineQueue), make(chan struct{})
		// The pipe calling send is itself counted in p.wg, so this Add
		// cannot race with Close's Wait reaching zero.
		l.p.wg.Add(1)
		go l.write()
	}
	select {
	case l.q <- chunk{b: bytes.Clone(b), due: time.Now().Add(latency)}:
		return true
	case <-l.failed:
		return false
	case <-l.p.ctx.Done():
		return false
	}
}

// write delivers the queued chunks, each at its due time, until the queue
// is closed, a write fails or the proxy closes. On failure it closes the
// connection, which ends the pipe.
func (l *line) write() {
	defer l.p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for c := range l.q {
		if d := time.Until(c.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-l.p.ctx.Done():
				close(l.failed)
				return
			}
		}
		if !l.p.forward(l.dst, c.b) {
			close(l.failed)
			l.pr.close()
			return
		}
	}
}

// close ends the writer once it has delivered what is queued (or failed to,
// the connection being closed).
func (l *line) close() {
	if l.q != nil {
		close(l.q)
	}
}
