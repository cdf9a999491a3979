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
	"strconv"
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
	// MaxErrorBody bounds StatusError.Body and ReplyError.Body: 512 bytes.
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

// Kinds of malformed reply (ReplyError.Kind): each names one way a reply
// departs from SPEC.md, so that a caller can log each kind once.
const (
	// ReplyNotJSON: the body is not one JSON value of the reply's shape (a
	// syntax error, an HTML page, a truncated body, a field of the wrong
	// type).
	ReplyNotJSON = "not_json"
	// ReplyTrailingData: data follows the JSON object.
	ReplyTrailingData = "trailing_data"
	// ReplyTooLarge: the body is larger than the call reads.
	ReplyTooLarge = "too_large"
	// ReplyMissingField: a field SPEC.md requires is absent or null.
	ReplyMissingField = "missing_field"
	// ReplyUnknownResult: a 200's result is neither applied nor duplicate,
	// or a 409's error is not stale_epoch.
	ReplyUnknownResult = "unknown_result"
	// ReplyUnknownState: an open segment's state is neither recording nor
	// paused.
	ReplyUnknownState = "unknown_state"
	// ReplyInvalidValue: a field holds a value SPEC.md rules out (an empty
	// id, an epoch ≤ 0, negative pauses, a paused segment without a pause,
	// a segment listed twice).
	ReplyInvalidValue = "invalid_value"
)

// ReplyError is a reply that is not the endpoint's reply (SPEC.md §4,
// "malformed reply"): a 200 whose body is not the expected JSON object with
// every required field and known values, or a 409 without a stale_epoch
// error and a positive epoch. The outcome of the request is unknown: it is
// never a success, and a sender treats it as a failed attempt (retried as a
// 5xx, same id). Callers read it with errors.As.
type ReplyError struct {
	// Method and Path name the request.
	Method, Path string
	// Status is the reply's HTTP status (200, or 409).
	Status int
	// Kind is one of the Reply* kinds.
	Kind string
	// Err says what is wrong with the body, naming the field, e.g.
	// `recordings[2].state "done" is not recording or paused`. Values taken
	// from the body are truncated and scrubbed.
	Err error
	// Body is the start of the body (at most MaxErrorBody bytes, then "…"),
	// scrubbed of the bearer credential and of token-ish text.
	Body string
}

// Error is "METHOD PATH: HTTP STATUS: malformed reply: " and Err; the body
// is left out.
func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: malformed reply: %v", e.Method, e.Path, e.Status, e.Err)
}

// Unwrap returns Err.
func (e *ReplyError) Unwrap() error { return e.Err }

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
// *ReplyError for a reply that is not the endpoint's (a 200 whose body is
// not the expected JSON object with every required field and known values,
// a 409 without a stale_epoch error and a positive epoch), an error
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
// 409 (Reply.Epoch is the recorder's highest epoch, always > 0), 422, 400
// (see Reply.Message), 5xx. Blocks for one request.
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
// /v1/recordings?state=open), reading at most MaxRecordingsBody bytes. The
// reply is decoded strictly (SPEC.md §3): a body without the recordings
// array (`{}`, `{"recordings":null}`), a segment missing a field or with
// a state other than recording or paused, or data after the object is a
// *ReplyError, never an empty list. The list is never nil on success.
func (c *Client) OpenRecordings(ctx context.Context) ([]OpenRecording, error) {
	b, err := c.get(ctx, PathRecordings, "state=open", MaxRecordingsBody)
	if err != nil {
		return nil, err
	}
	var w struct {
		Recordings *[]wireOpenRecording `json:"recordings"`
	}
	if kind, err := decodeOne(b, &w); err != nil {
		return nil, c.replyError(http.MethodGet, PathRecordings, http.StatusOK, kind, err, b)
	}
	if w.Recordings == nil {
		return nil, c.replyError(http.MethodGet, PathRecordings, http.StatusOK, ReplyMissingField, errors.New("recordings is missing"), b)
	}
	out := make([]OpenRecording, 0, len(*w.Recordings))
	seen := make(map[string]bool, len(*w.Recordings))
	for i, r := range *w.Recordings {
		o, kind, err := r.check(i, seen)
		if err != nil {
			return nil, c.replyError(http.MethodGet, PathRecordings, http.StatusOK, kind, err, b)
		}
		out = append(out, o)
	}
	return out, nil
}

// wireOpenRecording is an OpenRecording as read, every field a pointer so
// that an absent one is told from a zero one.
type wireOpenRecording struct {
	SegmentID    *string    `json:"segment_id"`
	EngagementID *string    `json:"engagement_id"`
	State        *string    `json:"state"`
	Pauses       *int       `json:"pauses"`
	StartedAt    *time.Time `json:"started_at"`
	Epoch        *int64     `json:"epoch"`
}

// check returns r as an OpenRecording, or the kind and error of its first
// departure from SPEC.md; r is element i of the list, seen the segment ids
// before it (check adds r's).
func (r wireOpenRecording) check(i int, seen map[string]bool) (OpenRecording, string, error) {
	at := func(field string) string { return fmt.Sprintf("recordings[%d].%s", i, field) }
	for _, f := range []struct {
		name    string
		present bool
	}{{"segment_id", r.SegmentID != nil}, {"engagement_id", r.EngagementID != nil}, {"state", r.State != nil},
		{"pauses", r.Pauses != nil}, {"started_at", r.StartedAt != nil}, {"epoch", r.Epoch != nil}} {
		if !f.present {
			return OpenRecording{}, ReplyMissingField, fmt.Errorf("%s is missing", at(f.name))
		}
	}
	o := OpenRecording{SegmentID: *r.SegmentID, EngagementID: *r.EngagementID, State: *r.State,
		Pauses: *r.Pauses, StartedAt: *r.StartedAt, Epoch: *r.Epoch}
	bad := func(format string, args ...any) (OpenRecording, string, error) {
		return OpenRecording{}, ReplyInvalidValue, fmt.Errorf(format, args...)
	}
	switch {
	case o.SegmentID == "":
		return bad("%s is empty", at("segment_id"))
	case o.EngagementID == "":
		return bad("%s is empty", at("engagement_id"))
	case o.State != StateRecording && o.State != StatePaused:
		return OpenRecording{}, ReplyUnknownState, fmt.Errorf("%s %s is not %s or %s", at("state"), quote(o.State), StateRecording, StatePaused)
	case o.Pauses < 0:
		return bad("%s %d is negative", at("pauses"), o.Pauses)
	case o.State == StatePaused && o.Pauses == 0:
		return bad("%s is paused with pauses 0", at("state"))
	case o.StartedAt.IsZero():
		return bad("%s is the zero time", at("started_at"))
	case o.Epoch <= 0:
		return bad("%s %d is not positive", at("epoch"), o.Epoch)
	case seen[o.SegmentID]:
		return bad("%s %s is listed twice", at("segment_id"), quote(o.SegmentID))
	}
	seen[o.SegmentID] = true
	return o, "", nil
}

// Ledger reads the reference recorder's ledger (GET /v1/ledger): every
// message it received, in order. The body is read whole: the ledger grows
// with the run. A body without epoch or entries, or with data after the
// object, is a *ReplyError.
func (c *Client) Ledger(ctx context.Context) (Ledger, error) {
	b, err := c.get(ctx, PathLedger, "", -1)
	if err != nil {
		return Ledger{}, err
	}
	var w struct {
		Epoch   *int64         `json:"epoch"`
		Entries *[]LedgerEntry `json:"entries"`
	}
	if kind, err := decodeOne(b, &w); err != nil {
		return Ledger{}, c.replyError(http.MethodGet, PathLedger, http.StatusOK, kind, err, b)
	}
	switch {
	case w.Epoch == nil:
		return Ledger{}, c.replyError(http.MethodGet, PathLedger, http.StatusOK, ReplyMissingField, errors.New("epoch is missing"), b)
	case w.Entries == nil:
		return Ledger{}, c.replyError(http.MethodGet, PathLedger, http.StatusOK, ReplyMissingField, errors.New("entries is missing"), b)
	}
	return Ledger{Epoch: *w.Epoch, Entries: *w.Entries}, nil
}

// post sends body to path and reads a Result: 200 with applied or
// duplicate, else a *StatusError (a 409 also needs a stale_epoch error and
// a positive epoch) or a *ReplyError.
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
	rb, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBody+1))
	if err != nil {
		return "", fmt.Errorf("POST %s: read reply: %w", path, redact.Error(err, c.bearer))
	}
	switch {
	case resp.StatusCode == http.StatusConflict:
		return "", c.conflict(path, rb)
	case resp.StatusCode != http.StatusOK:
		return "", c.statusError(http.MethodPost, path, resp.StatusCode, rb)
	case len(rb) > MaxReplyBody:
		return "", c.replyError(http.MethodPost, path, http.StatusOK, ReplyTooLarge, fmt.Errorf("body larger than %d bytes", MaxReplyBody), rb)
	}
	var r struct {
		Result *string `json:"result"`
	}
	if kind, err := decodeOne(rb, &r); err != nil {
		return "", c.replyError(http.MethodPost, path, http.StatusOK, kind, err, rb)
	}
	switch {
	case r.Result == nil:
		return "", c.replyError(http.MethodPost, path, http.StatusOK, ReplyMissingField, errors.New("result is missing"), rb)
	case *r.Result != ResultApplied && *r.Result != ResultDuplicate:
		return "", c.replyError(http.MethodPost, path, http.StatusOK, ReplyUnknownResult,
			fmt.Errorf("result %s is not %s or %s", quote(*r.Result), ResultApplied, ResultDuplicate), rb)
	}
	return *r.Result, nil
}

// conflict reads a 409: a *StatusError when the body is a stale_epoch
// error with a positive epoch (the recorder's fence), else a *ReplyError (a
// 409 that does not say which epoch fenced the sender proves nothing).
func (c *Client) conflict(path string, rb []byte) error {
	var r struct {
		Error *string `json:"error"`
		Epoch *int64  `json:"epoch"`
	}
	kind, err := decodeOne(rb, &r)
	switch {
	case err != nil:
	case r.Error == nil:
		kind, err = ReplyMissingField, errors.New("error is missing")
	case *r.Error != ErrCodeStaleEpoch:
		kind, err = ReplyUnknownResult, fmt.Errorf("error %s is not %s", quote(*r.Error), ErrCodeStaleEpoch)
	case r.Epoch == nil:
		kind, err = ReplyMissingField, errors.New("epoch is missing")
	case *r.Epoch <= 0:
		kind, err = ReplyInvalidValue, fmt.Errorf("epoch %d is not positive", *r.Epoch)
	}
	if err != nil {
		return c.replyError(http.MethodPost, path, http.StatusConflict, kind, err, rb)
	}
	return c.statusError(http.MethodPost, path, http.StatusConflict, rb)
}

// get reads the 200 body of path?query, at most limit bytes (no bound when
// limit < 0): a larger body is a *ReplyError (ReplyTooLarge), another
// status a *StatusError.
func (c *Client) get(ctx context.Context, path, query string, limit int64) ([]byte, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	u := c.base.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, redact.Error(err, c.bearer))
	}
	resp, err := c.do(req, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody+1)) // best effort: the status decides
		return nil, c.statusError(http.MethodGet, path, resp.StatusCode, rb)
	}
	var body io.Reader = resp.Body
	if limit >= 0 {
		body = io.LimitReader(resp.Body, limit+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read reply: %w", path, redact.Error(err, c.bearer))
	}
	if limit >= 0 && int64(len(b)) > limit {
		return nil, c.replyError(http.MethodGet, path, http.StatusOK, ReplyTooLarge, fmt.Errorf("body larger than %d bytes", limit), b)
	}
	return b, nil
}

// errTrailingData is the error of a body with data after its JSON value.
var errTrailingData = errors.New("data after the JSON object")

// decodeOne decodes exactly one JSON value from b into v (unknown fields are
// ignored, SPEC.md §1), or returns the kind and the error.
func decodeOne(b []byte, v any) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return ReplyNotJSON, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ReplyTrailingData, errTrailingData
	}
	return "", nil
}

// quote is a value taken from a reply, fit for an error: scrubbed,
// truncated to 64 bytes, quoted.
func quote(v string) string { return strconv.Quote(redact.Truncate(redact.Text(v), 64)) }

// replyError builds the *ReplyError of a reply with body b.
func (c *Client) replyError(method, path string, status int, kind string, err error, b []byte) *ReplyError {
	return &ReplyError{Method: method, Path: path, Status: status, Kind: kind,
		Err: redact.Error(err, c.bearer), Body: c.bodyStart(b)}
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
	e.Body = c.bodyStart(b)
	return e
}

// bodyStart is the start of a reply's body for an error: at most
// MaxErrorBody bytes, then "…", scrubbed of the bearer credential and of
// token-ish text. Only the first 8×MaxErrorBody bytes are scrubbed, which
// bounds the work on a large body.
func (c *Client) bodyStart(b []byte) string {
	if len(b) > 8*MaxErrorBody {
		b = b[:8*MaxErrorBody]
	}
	return redact.Truncate(redact.Text(redact.Secrets(string(b), c.bearer)), MaxErrorBody)
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout != 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}
