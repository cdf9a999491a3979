package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
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
	p := RecorderProbe{URL: redact.URL(rc.URL)}
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
	client, err := rcapi.NewClient(rcapi.ClientConfig{URL: rc.URL, BearerToken: rc.BearerToken, HTTPClient: hc, Timeout: timeout})
	if err != nil {
		p.Error, p.Fix = "recorder.url is not a URL", "set recorder.url to the recorder's base URL, e.g. https://ris-recorder:8090"
		return p
	}
	start := time.Now()
	open, err := client.OpenRecordings(ctx)
	p.Seconds = time.Since(start).Seconds()
	var se *rcapi.StatusError
	var re *rcapi.ReplyError
	switch {
	case err == nil:
		p.Status = http.StatusOK
		p.Reachable, p.Open = true, len(open)
	case errors.As(err, &se):
		p.Status = se.Status
		if se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden {
			p.Error = fmt.Sprintf("HTTP %d: the recorder refused the credential", se.Status)
			p.Fix = "set the recorder's bearer credential in ZCC_RECORDER_BEARER_TOKEN or recorder.bearer_token_file (or the client certificate in recorder.tls.cert_file/key_file)"
			return p
		}
		p.Error = fmt.Sprintf("HTTP %d from GET /v1/recordings?state=open", se.Status)
		p.Fix = "check that recorder.url points at the Recording Control API v1 and that the recorder is healthy"
	case errors.As(err, &re):
		p.Status = http.StatusOK
		p.Error = "the answer is not a recordings list: " + re.Err.Error()
		p.Fix = "check that recorder.url points at the Recording Control API v1"
	default:
		p.Error = redact.URL(redact.Error(err, rc.BearerToken).Error())
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
	}
	return p
}

func (r *run) checkRecorder(ctx context.Context) Result {
	p := ProbeRecorder(ctx, r.cfg.Recorder, r.opts.Timeout)
	if !p.Reachable {
		return fail(p.Fix, "recorder %s: %s", p.URL, p.Error)
	}
	return pass("recorder %s answers in %s; %d open recordings", p.URL, time.Duration(p.Seconds*float64(time.Second)).Round(time.Millisecond), p.Open)
}
