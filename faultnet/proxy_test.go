package faultnet

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// roundTrip sends a line and waits up to limit for its echo.
func roundTrip(c net.Conn, limit time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxyModes(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("pass: %q, %v", got, err)
	}

	p.SetMode(Blackhole)
	if got, err := roundTrip(c, 200*time.Millisecond); err == nil {
		t.Fatalf("blackhole delivered %q", got)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackhole: want a timeout (silence), got %v", err)
	}

	p.SetMode(Cut)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("cut: connection still open")
	}

	p.SetMode(Pass)
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("healed: %q, %v", got, err)
	}
	if p.Mode() != Pass || Cut.String() != "cut" {
		t.Fatal("mode bookkeeping")
	}
}

// sink is a server that reports every line it receives on got and echoes
// it, so a test can tell a lost request from a lost reply.
func sink(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- line
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), lines
}

func TestLatencyAndBlackholePerDirection(t *testing.T) {
	addr, got := sink(t)
	p, err := Listen("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))

	// Latency downstream: the request arrives at once, each reply
	// `latency` later, and ten replies in flight together take about one
	// latency, not ten (a link's latency, not a held pipe).
	const latency = 300 * time.Millisecond
	p.SetLatency(Downstream, latency)
	began := time.Now()
	for i := range 10 {
		if _, err := fmt.Fprintf(c, "m%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		select {
		case line := <-got:
			if want := fmt.Sprintf("m%d\n", i); line != want {
				t.Fatalf("server got %q, want %q", line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the request path is delayed too")
		}
	}
	for i := range 10 {
		line, err := r.ReadString('\n')
		if err != nil || line != fmt.Sprintf("m%d\n", i) {
			t.Fatalf("reply %d: %q, %v", i, line, err)
		}
	}
	if took := time.Since(began); took < latency || took >= 10*latency {
		t.Fatalf("ten replies took %s; want at least %s and well under %s", took, latency, 10*latency)
	}

	// Blackhole upstream: the server hears nothing, the connection stays.
	p.SetLatency(Downstream, 0)
	p.SetBlackhole(Upstream, true)
	if _, err := c.Write([]byte("lost\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("a blackholed request was answered: %q", line)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("upstream blackhole: want silence, got %v", err)
	}
	select {
	case line := <-got:
		t.Fatalf("the server received %q through an upstream blackhole", line)
	default:
	}

	// Blackhole downstream only: the request arrives, its reply does not.
	p.SetBlackhole(Upstream, false)
	p.SetBlackhole(Downstream, true)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("half\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if line != "half\n" {
			t.Fatalf("server got %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not pass with only the reply path blackholed")
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("a reply passed a downstream blackhole: %q", line)
	}

	// Healed: traffic flows both ways on the same connection.
	p.SetBlackhole(Downstream, false)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("back\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "back\n" {
		t.Fatalf("healed: %q, %v", line, err)
	}
	if Upstream.String() != "upstream" || Downstream.String() != "downstream" {
		t.Fatal("direction names")
	}
}
