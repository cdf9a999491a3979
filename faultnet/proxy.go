package faultnet

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/zccadapter/zccadapter/wait"
)

// Mode is what the proxy does with traffic.
type Mode int

// Modes of a Proxy.
const (
	// Pass forwards traffic both ways.
	Pass Mode = iota
	// Cut closes every open connection and closes new ones at once.
	Cut
	// Blackhole keeps connections open and accepts new ones, but delivers
	// nothing in either direction: the peers see silence, not an error.
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Proxy forwards TCP connections from its listener to a target address.
// Safe for concurrent use; Close stops it and joins every goroutine.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  Mode
	delay time.Duration
	conns map[*pair]struct{}
	dirs  directions // per-direction faults (direction.go)

	wg     sync.WaitGroup
	ctx    context.Context // ends when Close starts
	cancel context.CancelFunc
}

type pair struct{ a, b net.Conn }

func (p *pair) close() { p.a.Close(); p.b.Close() }

// Listen starts a proxy on addr (e.g. "127.0.0.1:0") to target.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode changes what the proxy does; Cut closes every open connection.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == Cut {
		for c := range p.conns {
			c.close()
		}
	}
}

// SetDelay adds d of latency to every chunk forwarded (0: none).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	if p.ctx.Err() != nil {
		return nil
	}
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.Mode() == Cut {
			c.Close()
			continue
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		up, err := d.DialContext(ctx, "tcp", p.target)
		cancel()
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{a: c, b: up}
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			pr.close()
			return
		}
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, c, up)
		go p.pipe(pr, up, c)
	}
}

// pipe copies src to dst, honouring the mode before each chunk is written.
func (p *Proxy) pipe(pr *pair, src, dst net.Conn) {
	defer p.wg.Done()
	l := p.newLine(pr, src, dst)
	defer l.close()
	defer func() {
		pr.close()
		p.mu.Lock()
		delete(p.conns, pr)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.send(buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward writes b to dst unless the mode says otherwise. In Blackhole the
// chunk is dropped and the connection kept; it reports false when the
// connection must end.
func (p *Proxy) forward(dst net.Conn, b []byte) bool {
	p.mu.Lock()
	mode, delay := p.mode, p.delay
	p.mu.Unlock()
	switch mode {
	case Cut:
		return false
	case Blackhole:
		return true
	}
	if delay > 0 && wait.Sleep(p.ctx, delay) != nil {
		return false
	}
	_, err := dst.Write(b)
	return err == nil
}
