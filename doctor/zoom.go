package doctor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/redact"
)

// ScopeNeed is one permission the adapter needs, satisfied by any of its
// scope names (the granular name first, then the classic one).
type ScopeNeed struct {
	What   string
	Scopes []string
}

// MinimumScopes is the seed's minimum scope list (PROTOCOL §4), each need
// with its granular and classic forms.
var MinimumScopes = []ScopeNeed{
	{"read Contact Center tasks", []string{"contact_center:read:task:admin", "contact_center_task:read:admin"}},
	{"read users", []string{"user:read:user:admin", "user:read:admin"}},
	{"read user presence", []string{"user:read:presence_status:admin", "user:read:admin"}},
	{"read engagements", []string{"contact_center:read:engagement:admin", "contact_center_engagement:read:admin"}},
	{"read Contact Center users", []string{"contact_center:read:user:admin", "contact_center_user:read:admin"}},
}

// MissingScopes returns the needs of MinimumScopes that granted does not
// satisfy.
func MissingScopes(granted []string) []ScopeNeed {
	have := make(map[string]bool, len(granted))
	for _, s := range granted {
		have[s] = true
	}
	var out []ScopeNeed
	for _, n := range MinimumScopes {
		ok := false
		for _, s := range n.Scopes {
			ok = ok || have[s]
		}
		if !ok {
			out = append(out, n)
		}
	}
	return out
}

// checkToken fetches a Server-to-Server token of its own (the cluster's
// shared token is left alone) and keeps its scopes and the endpoint's Date.
func (r *run) checkToken(ctx context.Context) Result {
	z := r.cfg.Zoom
	tokenURL := cmp.Or(z.TokenURL, defaultTokenURL)
	grant := cmp.Or(z.GrantType, "account_credentials")
	if grant == "refresh_token" {
		// Each refresh rotates the refresh token, and exactly one refresher
		// per cluster may hold it (PROTOCOL §2): doctor does not refresh.
		// It only samples the endpoint's clock.
		r.sampleZoomClock(ctx, tokenURL)
		return skip("grant_type refresh_token: not refreshed by doctor (the refresh token rotates; the cluster's one refresher owns it), so scopes and the subscription are not checked here")
	}
	form := url.Values{"grant_type": {grant}}
	if grant == "account_credentials" {
		form.Set("account_id", z.AccountID)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fail("set zoom.token_url to Zoom's token endpoint, https://zoom.us/oauth/token", "zoom.token_url is not a URL")
	}
	req.SetBasicAuth(z.ClientID, z.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	sent := r.opts.Now()
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return fail("check outbound HTTPS from this host to "+hostOf(tokenURL)+" (DNS, firewall, proxy)",
			"token endpoint %s unreachable: %v", hostOf(tokenURL), redact.URL(redact.Error(err, z.ClientSecret).Error()))
	}
	defer resp.Body.Close()
	recv := r.opts.Now()
	if d, ok := sampleDate(resp, sent, recv); ok {
		r.zoomDate = &d
	}
	var body struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
		Reason      string `json:"reason"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail("check outbound HTTPS from this host to "+hostOf(tokenURL)+" (a proxy cutting replies?)",
			"token endpoint %s: HTTP %d, reply unreadable: %v", hostOf(tokenURL), resp.StatusCode, redact.URL(redact.Error(err, z.ClientSecret).Error()))
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		// Not the token endpoint's JSON (a proxy's page, say): reported
		// below as a refusal with the HTTP status and this reason.
		body.AccessToken, body.Error = "", "unreadable reply (not JSON)"
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		detail := fmt.Sprintf("token endpoint refused the %s grant: HTTP %d, error=%q, reason=%q",
			grant, resp.StatusCode, body.Error, redact.Secrets(body.Reason, z.ClientSecret))
		switch {
		case resp.StatusCode == http.StatusUnauthorized || body.Error == "invalid_client":
			return fail("copy the Client ID into zoom.client_id and the Client Secret into ZCC_ZOOM_CLIENT_SECRET (or zoom.client_secret_file) from the Server-to-Server app's App Credentials", "%s", detail)
		case strings.Contains(strings.ToLower(body.Reason), "account"):
			return fail("copy the Account ID from the app's App Credentials into zoom.account_id", "%s", detail)
		case body.Error == "unsupported_grant_type":
			return fail("set zoom.grant_type to account_credentials (a Server-to-Server OAuth app)", "%s", detail)
		}
		return fail("check zoom.account_id, zoom.client_id and the client secret against the app's App Credentials, and that the app is activated", "%s", detail)
	}
	r.token = body.AccessToken
	r.scopes = strings.Fields(body.Scope)
	return pass("%s grant at %s: token issued (expires in %ds, %d scopes)", grant, hostOf(tokenURL), body.ExpiresIn, len(r.scopes))
}

// sampleZoomClock reads the Date of an unauthenticated GET of the token
// endpoint (any answer carries one).
func (r *run) sampleZoomClock(ctx context.Context, tokenURL string) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tokenURL, nil)
	if err != nil {
		return
	}
	sent := r.opts.Now()
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	if d, ok := sampleDate(resp, sent, r.opts.Now()); ok {
		r.zoomDate = &d
	}
}

func (r *run) checkScopes(context.Context) Result {
	if r.token == "" {
		return skip("no token (see %s)", CheckZoomToken)
	}
	if len(r.scopes) == 0 {
		return skip("the token reply lists no scopes; cannot compare with the minimum list")
	}
	missing := MissingScopes(r.scopes)
	if len(missing) == 0 {
		return pass("all %d minimum scopes granted (granular or classic)", len(MinimumScopes))
	}
	var names []string
	for _, m := range missing {
		names = append(names, fmt.Sprintf("%s (%s)", m.Scopes[0], m.What))
	}
	return fail("add the missing scopes to the app (Marketplace → your app → Scopes) and activate it again; the classic names "+classicNames(missing)+" also do",
		"missing: %s", strings.Join(names, ", "))
}

func classicNames(needs []ScopeNeed) string {
	var out []string
	for _, n := range needs {
		out = append(out, n.Scopes[len(n.Scopes)-1])
	}
	return strings.Join(out, ", ")
}

func (r *run) checkZoomClock(context.Context) Result {
	if r.zoomDate == nil {
		return skip("the token endpoint sent no Date header (or did not answer)")
	}
	return skewResult(*r.zoomDate, r.opts.MaxClockSkew, "Zoom's token endpoint", fixClock)
}

// checkSubscription connects to this node's subscription with the probe's
// token, expects build_connection success, sends a heartbeat and waits for
// its reply. It leaves a running node's subscription alone (package doc).
func (r *run) checkSubscription(ctx context.Context) Result {
	sub := subscriptionID(r.cfg.Zoom.SubscriptionURL)
	if r.token == "" {
		return skip("no token (see %s)", CheckZoomToken)
	}
	if !r.opts.ProbeRunning {
		var holders []string
		for _, m := range r.members {
			if m.Node != r.cfg.Node && m.Subscription == sub {
				holders = append(holders, m.Node)
			}
		}
		if len(holders) > 0 {
			return skip("subscription %s is held by live node(s) %s; not probed, so as not to displace their socket (see %s)",
				sub, strings.Join(holders, ", "), CheckSharedSub)
		}
		for _, m := range r.members {
			if m.Node != r.cfg.Node || m.Subscription != sub || r.opts.NodeClient == nil {
				continue
			}
			st, _, err := fetchStatus(ctx, r.opts.NodeClient, m.Address, r.opts.Timeout)
			if err == nil && st.SocketUp {
				return pass("subscription %s: node %s is running and reports its socket up (not probed, so as not to displace its socket; --probe-running probes anyway)", sub, m.Node)
			}
		}
	}
	return probeSubscription(ctx, r.opts.HTTPClient, r.cfg.Zoom.SubscriptionURL, r.token, r.opts.Timeout)
}

// probeSubscription dials one subscription with token and checks
// build_connection and a heartbeat round trip within timeout.
func probeSubscription(ctx context.Context, hc *http.Client, subURL, token string, timeout time.Duration) Result {
	sub := subscriptionID(subURL)
	host := hostOf(subURL)
	u, err := url.Parse(subURL)
	if err != nil {
		return fail("set zoom.subscription_url to the subscription's URL, wss://ws.zoom.us/ws?subscriptionId=…", "zoom.subscription_url is not a URL")
	}
	u.RawQuery += "&access_token=" + url.QueryEscape(token)
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, timeout)
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: hc})
	dcancel()
	if err != nil {
		msg := redact.Secrets(redact.URL(err.Error()), token)
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return fail("the app needs the WebSocket scope (marketplace:write:websocket_connection) and this subscription must use the WebSocket method",
				"subscription %s: handshake refused the token (HTTP %d)", sub, resp.StatusCode)
		}
		return fail("check outbound wss:// from this host to "+host+" (DNS, firewall, a proxy that allows WebSocket upgrades)",
			"subscription %s: cannot connect to %s: %s", sub, host, msg)
	}
	defer conn.CloseNow() //nolint:errcheck // after the clean close below, a no-op
	conn.SetReadLimit(events.DefaultReadLimit)
	first, err := readFrame(ctx, conn)
	if err != nil {
		return fail("check zoom.subscription_url, and that nothing between this host and Zoom ends WebSocket connections",
			"subscription %s: no build_connection frame: %s", sub, redact.Secrets(err.Error(), token))
	}
	if first.Module != events.ModuleBuildConnection || first.Success == nil || !*first.Success {
		reason := redact.Truncate(redact.Secrets(first.Content, token), 120)
		return fail("set zoom.subscription_url to one of the app's event subscriptions using the WebSocket method (Marketplace → your app → Features → Event Subscriptions), each node its own",
			"subscription %s: Zoom refused the connection: %q", sub, reason)
	}
	if err := conn.Write(ctx, websocket.MessageText, events.HeartbeatFrame()); err != nil {
		return fail("check that nothing between this host and Zoom blocks WebSocket frames",
			"subscription %s: connected, but the heartbeat could not be sent: %v", sub, err)
	}
	hbSent := time.Now()
	others := 0
	for {
		f, err := readFrame(ctx, conn)
		if err != nil {
			return fail("check that nothing between this host and Zoom buffers or drops WebSocket frames (proxies, TLS inspection)",
				"subscription %s: connected, but no heartbeat reply within %s (%d other frames)", sub, 2*timeout, others)
		}
		if f.Module == events.ModuleHeartbeat {
			break
		}
		others++
	}
	rtt := time.Since(hbSent)
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer ccancel()
	_ = closeWithin(cctx, conn)
	return pass("subscription %s at %s: connected, heartbeat answered in %s", sub, host, rtt.Round(time.Millisecond))
}

// closeWithin closes conn cleanly, or at once when ctx ends first.
func closeWithin(ctx context.Context, conn *websocket.Conn) error {
	done := make(chan error, 1)
	go func() { done <- conn.Close(websocket.StatusNormalClosure, "doctor done") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		conn.CloseNow() //nolint:errcheck // ends the Close above
		return <-done
	}
}

func readFrame(ctx context.Context, conn *websocket.Conn) (events.Frame, error) {
	typ, b, err := conn.Read(ctx)
	if err != nil {
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return events.Frame{}, fmt.Errorf("closed by Zoom: %d %s", ce.Code, redact.Truncate(ce.Reason, 80))
		}
		return events.Frame{}, err
	}
	if typ != websocket.MessageText {
		return events.Frame{}, errors.New("binary frame")
	}
	return events.ParseFrame(b)
}

// fetchStatus GETs a node's /status.
func fetchStatus(ctx context.Context, hc *http.Client, addr string, timeout time.Duration) (adapter.NodeStatus, string, error) {
	var doc adapter.StatusDoc
	if addr == "" {
		return doc.NodeStatus, "", errors.New("no address in the membership record")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status", nil)
	if err != nil {
		return doc.NodeStatus, "", fmt.Errorf("address %q: %w", addr, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return doc.NodeStatus, "", fmt.Errorf("GET /status: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return doc.NodeStatus, "", fmt.Errorf("GET /status: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return doc.NodeStatus, "", fmt.Errorf("GET /status: %w", err)
	}
	return doc.NodeStatus, doc.Version, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(no host)"
	}
	return u.Host
}
