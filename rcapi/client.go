package rcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/zccadapter/zccadapter/redact"
)

// Paths of the endpoints.
const (
	PathCommands   = "/v1/commands"
	PathAgents     = "/v1/agents"
	PathEpoch      = "/v1/epoch"
	PathRecordings = "/v1/recordings"
	PathLedger     = "/v1/ledger"
)

// Bounds of what a Client reads from a reply.
const (
	// MaxReplyBody bounds the body of a POST reply, and of an error reply,
	// that a Client reads: 1 MiB.
	MaxReplyBody = 1 << 20
	// MaxRecordingsBody bounds the body of GET /v1/recordings: 64 MiB.
	MaxRecordingsBody = 64 << 20
	// MaxErrorBody bounds StatusError.Body: 512 bytes.
	MaxErrorBody = 512
)

// Errors of a Client.
var (
	// ErrInvalidConfig is wrapped by every NewClient error; the message
	// names the field.
	ErrInvalidConfig = errors.New("rcapi: invalid client config")
	// ErrEncode is wrapped by the error of a call whose request body cannot
	// be encoded as JSON (a time outside years 0-9999, say), with the path
	// and the cause: "encode /v1/commands: json: …". No request was sent.
	ErrEncode = errors.New("encode")
)

// StatusError is a reply whose HTTP status is not the endpoint's success
// (200). Callers read it with errors.As; a Client never retries.
type StatusError struct {
	// Method and Path name the request, e.g. POST /v1/commands.
	Method, Path string
	// Status is the reply's HTTP status.
	Status int
	// Reply is the body read as an Error reply: zero fields when it is not
	// one. Message is scrubbed of the bearer credential.
	Reply Error
	// Body is the start of the body (at most MaxErrorBody bytes, then "…"),
	// scrubbed of the bearer credential and of token-ish text.
	Body string
}

// Error is "METHOD PATH: HTTP STATUS"; the body is left out.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
}

// ReplyError is a 200 reply that is not the endpoint's reply: its body is
// not the expected JSON, or a POST's result is neither applied nor
// duplicate. The outcome of the request is unknown. Callers read it with
// errors.As.
type ReplyError struct {
	// Method and Path name the request.
	Method, Path string
	// Err says what is wrong with the body: the JSON decoding error of a
	// GET, or "unexpected 200 body" for a POST.
	Err error
}

// Error is "METHOD PATH: " and Err.
func (e *ReplyError) Error() string { return e.Method + " " + e.Path + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ReplyError) Unwrap() error { return e.Err }

// errUnexpected200 is the ReplyError.Err of a POST reply.
var errUnexpected200 = errors.New("unexpected 200 body")

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the recorder's base URL, http:// or https:// with a host, e.g.
	// http://127.0.0.1:8090; the endpoints' paths are joined to it.
	// Required.
	URL string
	// BearerToken, when set, is sent as "Authorization: Bearer …" with every
	// request. A secret: never in an error.
	BearerToken string
	// HTTPClient performs the requests; nil means http.DefaultClient. Its
	// own Timeout, if any, applies too.
	HTTPClient *http.Client
	// Timeout bounds each call, the reading of the reply included. Zero
	// means no bound but ctx's; a negative Timeout ends every call at once
	// with context.DeadlineExceeded.
	Timeout time.Duration
}

// Client calls a recorder's Recording Control API v1 (the endpoints of the
// package doc): one HTTP request per call, never retried, so each call's
// outcome is its caller's to act on (a sink retries 5xx and timeouts with
// the same command id). Safe for concurrent use.
//
// Errors of every call: a *StatusError for a status other than 200, a
// *ReplyError for a 200 whose body is not the endpoint's reply, an error
// wrapping ErrEncode when the request body cannot be encoded, or a
// transport error ("POST /v1/commands: post: dial tcp …"), wrapped with the
// request's method and path, whose URL is dropped and which never holds the
// bearer credential (package redact). Ending ctx ends the call with a
// transport error that matches ctx's error with errors.Is.
type Client struct {
	base    *url.URL
	bearer  string
	hc      *http.Client
	timeout time.Duration
}

// NewClient validates cfg and returns a Client. Errors wrap
// ErrInvalidConfig; the URL in them is redacted.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q is not an http(s) URL with a host", ErrInvalidConfig, redact.URL(cfg.URL))
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, bearer: cfg.BearerToken, hc: hc, timeout: cfg.Timeout}, nil
}

// PostCommand sends cmd (POST /v1/commands) and returns the recorder's
// result, ResultApplied or ResultDuplicate. A refusal is a *StatusError:
// 409 (Reply.Epoch is the recorder's highest epoch), 422, 400 (see
// Reply.Message), 5xx. Blocks for one request.
func (c *Client) PostCommand(ctx context.Context, cmd Command) (string, error) {
	return c.post(ctx, PathCommands, cmd)
}

// PostAgent sends an agent roster update (POST /v1/agents), with
// PostCommand's results and errors.
func (c *Client) PostAgent(ctx context.Context, a AgentUpdate) (string, error) {
	return c.post(ctx, PathAgents, a)
}

// ClaimEpoch announces a new leader's epoch (POST /v1/epoch) and returns
// ResultApplied or ResultDuplicate. A recorder that has seen a higher epoch
// answers 409: a *StatusError whose Reply.Epoch is that epoch.
func (c *Client) ClaimEpoch(ctx context.Context, claim EpochClaim) (string, error) {
	return c.post(ctx, PathEpoch, claim)
}

// OpenRecordings lists the recorder's open segments (GET
// /v1/recordings?state=open), reading at most MaxRecordingsBody bytes.
func (c *Client) OpenRecordings(ctx context.Context) ([]OpenRecording, error) {
	var out OpenRecordings
	if err := c.get(ctx, PathRecordings, "state=open", MaxRecordingsBody, &out); err != nil {
		return nil, err
	}
	return out.Recordings, nil
}

// Ledger reads the reference recorder's ledger (GET /v1/ledger): every
// message it received, in order. The body is read whole: the ledger grows
// with the run.
func (c *Client) Ledger(ctx context.Context) (Ledger, error) {
	var out Ledger
	err := c.get(ctx, PathLedger, "", -1, &out)
	return out, err
}

// post sends body to path and reads a Result.
func (c *Client) post(ctx context.Context, path string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrEncode, path, err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", path, redact.Error(err, c.bearer))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req, path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBody))
	if err != nil {
		return "", fmt.Errorf("POST %s: read reply: %w", path, redact.Error(err, c.bearer))
	}
	if resp.StatusCode != http.StatusOK {
		return "", c.statusError(http.MethodPost, path, resp.StatusCode, rb)
	}
	var r Result
	if err := json.Unmarshal(rb, &r); err != nil || (r.Result != ResultApplied && r.Result != ResultDuplicate) {
		return "", &ReplyError{Method: http.MethodPost, Path: path, Err: errUnexpected200}
	}
	return r.Result, nil
}

// get reads path?query into out, decoding at most limit bytes (no bound
// when limit < 0).
func (c *Client) get(ctx context.Context, path, query string, limit int64, out any) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	u := c.base.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, redact.Error(err, c.bearer))
	}
	resp, err := c.do(req, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody+1)) // best effort: the status decides
		return c.statusError(http.MethodGet, path, resp.StatusCode, rb)
	}
	var body io.Reader = resp.Body
	if limit >= 0 {
		body = io.LimitReader(resp.Body, limit)
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return &ReplyError{Method: http.MethodGet, Path: path, Err: redact.Error(err, c.bearer)}
	}
	return nil
}

// do sends req with the bearer credential; a transport error is wrapped
// with the method and path, its URL dropped.
func (c *Client) do(req *http.Request, path string) (*http.Response, error) {
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, path, redact.Error(err, c.bearer))
	}
	return resp, nil
}

// statusError builds the *StatusError of a reply with body b.
func (c *Client) statusError(method, path string, status int, b []byte) *StatusError {
	e := &StatusError{Method: method, Path: path, Status: status}
	_ = json.Unmarshal(b, &e.Reply) // lenient: a body that is not an Error leaves Reply zero
	e.Reply.Message = redact.Secrets(e.Reply.Message, c.bearer)
	e.Body = redact.Truncate(redact.Text(redact.Secrets(string(b), c.bearer)), MaxErrorBody)
	return e
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout != 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}
