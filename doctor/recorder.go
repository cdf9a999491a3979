package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// RecorderProbe is the outcome of one GET /v1/recordings?state=open at the
// recorder, with the node's TLS settings and bearer credential.
type RecorderProbe struct {
	// URL is recorder.url, redacted.
	URL string `json:"url"`
	// Reachable is true when the recorder answered 200 with a list.
	Reachable bool `json:"reachable"`
	// Open is the number of open recordings it listed.
	Open int `json:"open_recordings"`
	// Seconds is the request's duration.
	Seconds float64 `json:"seconds"`
	// Status is the HTTP status; 0 when there was no answer.
	Status int `json:"http_status,omitempty"`
	// Error says why it is not reachable; Fix what to do. Never a secret.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

// ProbeRecorder asks the recorder of rc for its open recordings, bounded
// by timeout. It never returns an error: an unreachable recorder is a
// RecorderProbe with Reachable false, an Error and a Fix.
func ProbeRecorder(ctx context.Context, rc config.Recorder, timeout time.Duration) RecorderProbe {
	p := RecorderProbe{URL: events.RedactURL(rc.URL)}
	hc, err := assemble.RecorderClient(rc)
	if err != nil {
		p.Error, p.Fix = err.Error(), "fix recorder.tls.ca_file, cert_file and key_file (PEM files readable by this user)"
		return p
	}
	defer hc.CloseIdleConnections()
	u, err := url.Parse(rc.URL)
	if err != nil || u.Host == "" {
		p.Error, p.Fix = "recorder.url is not a URL", "set recorder.url to the recorder's base URL, e.g. https://ris-recorder:8090"
		return p
	}
	u = u.JoinPath("/v1/recordings")
	u.RawQuery = "state=open"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		p.Error, p.Fix = "recorder.url is not a URL", "set recorder.url to the recorder's base URL, e.g. https://ris-recorder:8090"
		return p
	}
	if rc.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+rc.BearerToken)
	}
	start := time.Now()
	resp, err := hc.Do(req)
	p.Seconds = time.Since(start).Seconds()
	if err != nil {
		p.Error = scrub(err, rc.BearerToken)
		var uae x509.UnknownAuthorityError
		var hne x509.HostnameError
		var cve *tls.CertificateVerificationError
		switch {
		case errors.As(err, &hne):
			p.Fix = "the recorder's certificate does not name " + u.Hostname() + ": use the name on the certificate in recorder.url, or reissue the certificate"
		case errors.As(err, &uae), errors.As(err, &cve):
			p.Fix = "set recorder.tls.ca_file to the CA that signed the recorder's certificate"
		default:
			p.Fix = "is the recorder running at " + p.URL + "? check recorder.url, recorder.tls.* and the firewall"
		}
		return p
	}
	defer resp.Body.Close()
	p.Status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		p.Error = fmt.Sprintf("HTTP %d: the recorder refused the credential", resp.StatusCode)
		p.Fix = "set the recorder's bearer credential in ZCC_RECORDER_BEARER_TOKEN or recorder.bearer_token_file (or the client certificate in recorder.tls.cert_file/key_file)"
		return p
	case resp.StatusCode != http.StatusOK:
		p.Error = fmt.Sprintf("HTTP %d from GET /v1/recordings?state=open", resp.StatusCode)
		p.Fix = "check that recorder.url points at the Recording Control API v1 and that the recorder is healthy"
		return p
	}
	var out rcapi.OpenRecordings
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		p.Error = "the answer is not a recordings list: " + err.Error()
		p.Fix = "check that recorder.url points at the Recording Control API v1"
		return p
	}
	p.Reachable, p.Open = true, len(out.Recordings)
	return p
}

func (r *run) checkRecorder(ctx context.Context) Result {
	p := ProbeRecorder(ctx, r.cfg.Recorder, r.opts.Timeout)
	if !p.Reachable {
		return fail(p.Fix, "recorder %s: %s", p.URL, p.Error)
	}
	return pass("recorder %s answers in %s; %d open recordings", p.URL, time.Duration(p.Seconds*float64(time.Second)).Round(time.Millisecond), p.Open)
}
