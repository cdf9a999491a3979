package events

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeWithBudget closes conn cleanly within CloseTimeout, then at once (C-14).
// It returns when conn is closed.
func (c *Client) closeWithBudget(conn *websocket.Conn, raw *rawConns, cancelConn context.CancelFunc, code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() { // joined below, on every path
		defer close(done)
		_ = conn.Close(code, reason)
	}()
	t := time.NewTimer(c.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	c.log.Debug().Dur("close_timeout", c.cfg.CloseTimeout).Msg("clean close over budget; closing at once")
	c.forceClose(conn, raw, cancelConn)
	<-done
}

// forceClose closes conn without a handshake, unblocking every goroutine that
// uses it: cancelling connCtx closes a pending read, closing the raw
// connection unblocks a pending write or close handshake.
func (c *Client) forceClose(conn *websocket.Conn, raw *rawConns, cancelConn context.CancelFunc) {
	cancelConn()
	raw.closeAll()
	_ = conn.CloseNow()
}

// rawConnsKey is the context key under which a dial finds its rawConns.
type rawConnsKey struct{}

// rawConns collects the network connections one dial opened, so that a close
// that overruns its budget can close them under coder/websocket.
type rawConns struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (r *rawConns) add(c net.Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
}

func (r *rawConns) closeAll() {
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// trackingHTTPClient returns a copy of user (or a new client) whose transport
// records each dialed connection in the rawConns of the request context. The
// transport is returned when it is one of ours, to close idle connections.
func trackingHTTPClient(user *http.Client) (*http.Client, *http.Transport) {
	var hc http.Client
	if user != nil {
		hc = *user
	}
	var t *http.Transport
	switch rt := hc.Transport.(type) {
	case nil:
		dt, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return &hc, nil
		}
		t = dt.Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		return &hc, nil
	}
	t.DisableKeepAlives = true // one handshake per connection: each dial is seen
	dial := t.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	t.DialContext = trackDial(dial)
	if t.DialTLSContext != nil {
		t.DialTLSContext = trackDial(t.DialTLSContext)
	}
	hc.Transport = t
	return &hc, t
}

func trackDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err == nil {
			if r, ok := ctx.Value(rawConnsKey{}).(*rawConns); ok {
				r.add(conn)
			}
		}
		return conn, err
	}
}
