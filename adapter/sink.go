package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
)

// Errors of a Sink.
var (
	// ErrStaleEpoch: the recorder has seen a higher epoch; this node is no
	// longer the leader and must stop sending. It is a *StaleEpochError.
	ErrStaleEpoch = errors.New("recorder: stale epoch")
	// ErrInvalidTransition: the recorder refused the command as out of
	// order for the segment (422). Not retried; counted.
	ErrInvalidTransition = errors.New("recorder: invalid transition")
	// ErrRejected: the recorder refused the command as malformed (400). Not
	// retried; a bug, logged with the command.
	ErrRejected = errors.New("recorder: command rejected as malformed")
)

// StaleEpochError carries the recorder's highest epoch.
type StaleEpochError struct{ Epoch int64 }

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("recorder: stale epoch (recorder has seen epoch %d)", e.Epoch)
}

// Is makes errors.Is(err, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// Sink is where the leader's commands go. Implementations are safe for
// concurrent use.
type Sink interface {
	// Send delivers cmd and returns the recorder's result (applied or
	// duplicate). It retries transport errors, timeouts and 5xx with the
	// same command (same id) until the recorder decides or ctx ends; ctx
	// is the leadership context, so a deposed leader stops retrying.
	// Errors: ErrStaleEpoch (*StaleEpochError), ErrInvalidTransition,
	// ErrRejected, or ctx's error.
	Send(ctx context.Context, cmd rcapi.Command) (string, error)
	// SendAgent delivers an agent roster update (POST /v1/agents), with
	// Send's retry rules and errors.
	SendAgent(ctx context.Context, a rcapi.AgentUpdate) (string, error)
	// ClaimEpoch announces a new leader's epoch (POST /v1/epoch); retried
	// like Send. ErrStaleEpoch if the recorder has seen a higher one.
	ClaimEpoch(ctx context.Context, c rcapi.EpochClaim) error
	// OpenRecordings lists the recorder's open segments, for
	// reconciliation. One attempt per call; ctx bounds it.
	OpenRecordings(ctx context.Context) ([]rcapi.OpenRecording, error)
}

// HTTPSinkConfig configures an HTTPSink.
type HTTPSinkConfig struct {
	// URL is the recorder's base URL, e.g. http://127.0.0.1:8090. Required.
	URL string
	// RequestTimeout bounds one attempt. Default 2s.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the retry delay (full jitter,
	// doubling). Defaults 50ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// Client is the HTTP client. Default: a client with keep-alives.
	Client *http.Client
	// BearerToken, when set, is sent as Authorization: Bearer. Never logged.
	BearerToken string
	Logger      zerolog.Logger
}

// HTTPSink speaks the Recording Control API v1 (DESIGN §6) over HTTP.
type HTTPSink struct {
	cfg  HTTPSinkConfig
	base *url.URL

	mu         sync.Mutex
	failing    bool
	failSince  time.Time
	lastWarn   time.Time
	lastErr    string
	failedSent int64
}

// SinkHealth says whether the recorder answered the last attempt.
type SinkHealth struct {
	OK bool `json:"ok"`
	// Since is when the current failure began (zero while OK).
	Since time.Time `json:"since,omitzero"`
	// LastError is the last attempt's error, without credentials.
	LastError string `json:"last_error,omitempty"`
}

// Health reports the recorder's reachability as seen by the last attempt.
func (s *HTTPSink) Health() SinkHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing {
		return SinkHealth{OK: true}
	}
	return SinkHealth{Since: s.failSince, LastError: s.lastErr}
}

// noteFailure records a failed attempt: a warning when the recorder stops
// answering and every 10s while it stays down (retries themselves log at
// debug).
func (s *HTTPSink) noteFailure(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.failing {
		s.failing, s.failSince = true, now
	}
	s.lastErr = err.Error()
	s.failedSent++
	if now.Sub(s.lastWarn) >= 10*time.Second {
		s.lastWarn = now
		s.cfg.Logger.Warn().Err(err).Dur("down_for", now.Sub(s.failSince)).Int64("failed_attempts", s.failedSent).
			Msg("recorder not answering; commands are held and retried with the same ids")
	}
}

func (s *HTTPSink) noteSuccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		s.cfg.Logger.Info().Dur("down_for", time.Since(s.failSince)).Int64("failed_attempts", s.failedSent).Msg("recorder answers again")
	}
	s.failing, s.failedSent, s.lastWarn, s.lastErr = false, 0, time.Time{}, ""
}

// NewHTTPSink validates cfg and returns a sink.
func NewHTTPSink(cfg HTTPSinkConfig) (*HTTPSink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("recorder: url %q is not an http(s) URL", cfg.URL)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	}
	return &HTTPSink{cfg: cfg, base: u}, nil
}

// retryable marks an attempt whose outcome is unknown or transient.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

func (s *HTTPSink) post(ctx context.Context, path string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", path, err)
	}
	delay := s.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		res, err := s.attempt(ctx, path, b)
		var rt retryable
		if err == nil || !errors.As(err, &rt) {
			s.noteSuccess()
			return res, err
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		s.noteFailure(err)
		wait := time.Duration(rand.Int64N(int64(delay)) + 1)
		s.cfg.Logger.Debug().Err(err).Str("path", path).Int("attempt", attempt).Dur("backoff", wait).Msg("recorder not answering, retrying with the same id")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		delay = min(delay*2, s.cfg.MaxBackoff)
	}
}

func (s *HTTPSink) attempt(ctx context.Context, path string, body []byte) (string, error) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return "", retryable{fmt.Errorf("POST %s: %w", path, redact.Error(err))}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", retryable{fmt.Errorf("POST %s: read reply: %w", path, err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var r rcapi.Result
		if err := json.Unmarshal(rb, &r); err != nil || (r.Result != rcapi.ResultApplied && r.Result != rcapi.ResultDuplicate) {
			return "", retryable{fmt.Errorf("POST %s: unexpected 200 body", path)}
		}
		return r.Result, nil
	case resp.StatusCode == http.StatusConflict:
		var e rcapi.Error
		_ = json.Unmarshal(rb, &e)
		return "", &StaleEpochError{Epoch: e.Epoch}
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return "", ErrInvalidTransition
	case resp.StatusCode == http.StatusBadRequest:
		var e rcapi.Error
		_ = json.Unmarshal(rb, &e)
		return "", fmt.Errorf("%w: %s", ErrRejected, e.Message)
	default:
		return "", retryable{fmt.Errorf("POST %s: HTTP %d", path, resp.StatusCode)}
	}
}

// Send implements Sink.
func (s *HTTPSink) Send(ctx context.Context, cmd rcapi.Command) (string, error) {
	return s.post(ctx, "/v1/commands", cmd)
}

// SendAgent implements Sink.
func (s *HTTPSink) SendAgent(ctx context.Context, a rcapi.AgentUpdate) (string, error) {
	return s.post(ctx, "/v1/agents", a)
}

// ClaimEpoch implements Sink.
func (s *HTTPSink) ClaimEpoch(ctx context.Context, c rcapi.EpochClaim) error {
	_, err := s.post(ctx, "/v1/epoch", c)
	return err
}

// OpenRecordings implements Sink.
func (s *HTTPSink) OpenRecordings(ctx context.Context) ([]rcapi.OpenRecording, error) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	u := s.base.JoinPath("/v1/recordings")
	u.RawQuery = "state=open"
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if s.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/recordings: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/recordings: HTTP %d", resp.StatusCode)
	}
	var out rcapi.OpenRecordings
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /v1/recordings: %w", err)
	}
	return out.Recordings, nil
}
