package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/wait"
)

// waitReady waits until a node is leader or standby with its socket up.
func (d *drill) waitReady(ctx context.Context, node string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !d.be.Running(node) {
			return fmt.Errorf("node %s exited; see %s", node, d.be.Logs())
		}
		if s, err := d.status(ctx, node); err == nil && s.SocketUp && (s.Role == adapter.RoleLeader || s.Role == adapter.RoleStandby) {
			return nil
		}
		if err := wait.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("node %s not ready after %s; see %s", node, limit, d.be.Logs())
}

func (d *drill) status(ctx context.Context, node string) (adapter.NodeStatus, error) {
	doc, _, err := d.statusDoc(ctx, node)
	return doc.NodeStatus, err
}

// nodeDoc is a node's /status as the drill reads it.
type nodeDoc struct {
	adapter.StatusDoc
}

// statusDoc reads a node's /status (through Options.NodeClient when set:
// TLS and the ops bearer token); url is the base URL it was read from (a
// local node gets a new one at each start).
func (d *drill) statusDoc(ctx context.Context, node string) (nodeDoc, string, error) {
	var doc nodeDoc
	url := d.be.NodeURL(node)
	if d.o.NodeClient == nil {
		err := d.getJSON(ctx, url+"/status", &doc)
		return doc, url, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.hc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return doc, url, err
	}
	err = d.doWith(d.o.NodeClient, req, &doc)
	return doc, url, err
}

// waitLeader waits for a live leader other than `not` with an epoch above
// minEpoch.
func (d *drill) waitLeader(ctx context.Context, not string, minEpoch int64, limit time.Duration) (string, adapter.NodeStatus, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, name := range d.sc.NodeNames() {
			if name == not || !d.be.Running(name) {
				continue
			}
			s, err := d.status(ctx, name)
			if err == nil && s.Role == adapter.RoleLeader && s.Epoch > minEpoch {
				return name, s, nil
			}
		}
		if err := wait.Sleep(ctx, 20*time.Millisecond); err != nil {
			return "", adapter.NodeStatus{}, err
		}
	}
	return "", adapter.NodeStatus{}, fmt.Errorf("no leader after %s", limit)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readLedger reads the ledger of the recorder at base (GET /v1/ledger)
// through hc. A refusal's error ends with the start of the recorder's reply.
func readLedger(ctx context.Context, hc *http.Client, base string) (rcapi.Ledger, error) {
	rc, err := rcapi.NewClient(rcapi.ClientConfig{URL: base, HTTPClient: hc})
	if err != nil {
		return rcapi.Ledger{}, err
	}
	l, err := rc.Ledger(ctx)
	var se *rcapi.StatusError
	if errors.As(err, &se) && strings.TrimSpace(se.Body) != "" {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(se.Body))
	}
	return l, err
}

func (d *drill) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return d.do(req, out)
}

func (d *drill) postJSON(ctx context.Context, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return d.do(req, out)
}

func (d *drill) do(req *http.Request, out any) error {
	hc := d.hc
	if req.Method == http.MethodPost {
		hc = &http.Client{Timeout: 2 * time.Minute} // traffic stop drains every call
	}
	return d.doWith(hc, req, out)
}

func (d *drill) doWith(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 512))
		if rerr != nil {
			return fmt.Errorf("%s %s: HTTP %d (reply unreadable: %w)", req.Method, req.URL.Path, resp.StatusCode, rerr)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
