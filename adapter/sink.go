package adapter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
	"github.com/zccadapter/zccadapter/wait"
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
	// reconciliation. One attempt per call; ctx bounds it. On error (a
	// malformed reply included) nothing is known about which segments are
	// open; a segment's absence from the list is not a stop.
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
	// EpochReannounce is how often a leader re-announces its epoch (POST
	// /v1/epoch) while it leads, so that a recorder that lost its fence
	// (restarted without durable state) gets it back and is noticed
	// (FenceResets). A leader also re-announces when the recorder answers
	// again after failed attempts. Default 5s; negative: never (only at
	// promotion).
	EpochReannounce time.Duration
	Logger          zerolog.Logger
}

// HTTPSink speaks the Recording Control API v1 (DESIGN §6) over HTTP.
type HTTPSink struct {
	cfg     HTTPSinkConfig
	rc      *rcapi.Client
	backoff wait.Backoff

	mu         sync.Mutex
	failing    bool
	failSince  time.Time
	lastWarn   time.Time
	lastErr    string
	failedSent int64
	// claimed is the epoch of the last claim the recorder took (applied or
	// duplicate); a later claim of it answered applied means the fence
	// went backwards.
	claimed     int64
	fenceResets int64
	badReplies  int64
	// badKinds holds the path, status and kind of the malformed replies
	// already logged at Error: a handful of paths, two statuses (200,
	// 409), seven kinds.
	badKinds map[badKind]bool
	// recovered gets a value (latest wins, never blocks) when the recorder
	// answers after failed attempts.
	recovered chan struct{}
}

// SinkCounts are an HTTPSink's counters since it was made.
type SinkCounts struct {
	// BadReplies counts replies that were not the endpoint's reply
	// (*rcapi.ReplyError): each was a failed attempt.
	BadReplies int64
	// FenceResets counts epoch claims the recorder answered applied
	// although it had taken the same epoch before: its fence had gone
	// backwards (a restart without durable state).
	FenceResets int64
}

// Counts returns the sink's counters. Safe for concurrent use.
func (s *HTTPSink) Counts() SinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SinkCounts{BadReplies: s.badReplies, FenceResets: s.fenceResets}
}

// EpochReannounce is HTTPSinkConfig.EpochReannounce with its default:
// how often a leader re-announces its epoch; ≤ 0: never.
func (s *HTTPSink) EpochReannounce() time.Duration { return s.cfg.EpochReannounce }

// Recovered delivers a value when the recorder answers after one or more
// failed attempts (latest wins: at most one value waits). Shared by every
// term of the node; a value left from an earlier term only causes one more
// re-announcement.
func (s *HTTPSink) Recovered() <-chan struct{} { return s.recovered }

// badKind is what a malformed reply is logged once for.
type badKind struct {
	path   string
	status int
	kind   string
}

// noteBadReply counts a malformed reply and logs it at Error the first
// time its path, status and kind are seen (then at Debug, with the
// retries).
func (s *HTTPSink) noteBadReply(re *rcapi.ReplyError) {
	s.mu.Lock()
	s.badReplies++
	key := badKind{re.Path, re.Status, re.Kind}
	first := !s.badKinds[key]
	s.badKinds[key] = true
	s.mu.Unlock()
	if first {
		s.cfg.Logger.Error().Err(re).Str("path", re.Path).Int("status", re.Status).Str("kind", re.Kind).Str("body", re.Body).
			Msg("the recorder's reply is not the Recording Control API's; treated as a failed attempt (logged once per path, status and kind)")
	}
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
		select {
		case s.recovered <- struct{}{}:
		default: // one waits already
		}
	}
	s.failing, s.failedSent, s.lastWarn, s.lastErr = false, 0, time.Time{}, ""
}

// NewHTTPSink validates cfg and returns a sink.
func NewHTTPSink(cfg HTTPSinkConfig) (*HTTPSink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("recorder: url %q is not an http(s) URL", cfg.URL)
	}
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 2*time.Second)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, 50*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 2*time.Second)
	cfg.EpochReannounce = cmp.Or(cfg.EpochReannounce, 5*time.Second)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	}
	rc, err := rcapi.NewClient(rcapi.ClientConfig{URL: cfg.URL, BearerToken: cfg.BearerToken,
		HTTPClient: cfg.Client, Timeout: cfg.RequestTimeout})
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	return &HTTPSink{cfg: cfg, rc: rc,
		backoff:  wait.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff, Jitter: true},
		badKinds: map[badKind]bool{}, recovered: make(chan struct{}, 1)}, nil
}

// maxReasonBytes bounds the recorder's message carried in a refusal's
// error.
const maxReasonBytes = 200

// retryable marks an attempt whose outcome is unknown or transient.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// post makes one call to the recorder through try, retrying the attempts
// whose outcome is unknown or transient (see verdict) with backoff, the
// same command each time, until the recorder decides or ctx ends, or, when
// ctx carries an attempt limit (WithAttemptLimit), until the limit is
// reached: then an *ExhaustedError.
func (s *HTTPSink) post(ctx context.Context, path string, try func(context.Context) (string, error)) (string, error) {
	for attempt := 1; ; attempt++ {
		res, err := verdict(try(ctx))
		if errors.Is(err, rcapi.ErrEncode) {
			return "", err // nothing was sent
		}
		var rt retryable
		if err == nil || !errors.As(err, &rt) {
			s.noteSuccess()
			return res, err
		}
		var re *rcapi.ReplyError
		if errors.As(err, &re) {
			s.noteBadReply(re)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		s.noteFailure(err)
		if limit := attemptLimit(ctx); limit > 0 && attempt >= limit {
			return "", &ExhaustedError{Attempts: attempt, Last: rt.err}
		}
		d := s.backoff.Delay(attempt - 1)
		s.cfg.Logger.Debug().Err(err).Str("path", path).Int("attempt", attempt).Dur("backoff", d).Msg("recorder not answering, retrying with the same id")
		if err := wait.Sleep(ctx, d); err != nil {
			return "", err
		}
	}
}

// verdict maps one attempt's outcome to the Sink's errors: 409 is a
// *StaleEpochError, 422 ErrInvalidTransition, 400 ErrRejected; any other
// status, a malformed reply (*rcapi.ReplyError: a 200 that is not a
// result, a 409 without a positive epoch) and a transport error are
// retryable.
func verdict(res string, err error) (string, error) {
	if err == nil || errors.Is(err, rcapi.ErrEncode) {
		return res, err
	}
	var se *rcapi.StatusError
	if !errors.As(err, &se) {
		return "", retryable{err}
	}
	switch se.Status {
	case http.StatusConflict:
		return "", &StaleEpochError{Epoch: se.Reply.Epoch}
	case http.StatusUnprocessableEntity:
		return "", fmt.Errorf("%w: %s", ErrInvalidTransition, redact.Truncate(se.Reply.Message, maxReasonBytes))
	case http.StatusBadRequest:
		return "", fmt.Errorf("%w: %s", ErrRejected, redact.Truncate(se.Reply.Message, maxReasonBytes))
	default:
		return "", retryable{err}
	}
}

// Send implements Sink.
func (s *HTTPSink) Send(ctx context.Context, cmd rcapi.Command) (string, error) {
	return s.post(ctx, rcapi.PathCommands, func(ctx context.Context) (string, error) { return s.rc.PostCommand(ctx, cmd) })
}

// SendAgent implements Sink.
func (s *HTTPSink) SendAgent(ctx context.Context, a rcapi.AgentUpdate) (string, error) {
	return s.post(ctx, rcapi.PathAgents, func(ctx context.Context) (string, error) { return s.rc.PostAgent(ctx, a) })
}

// ClaimEpoch implements Sink. A claim of the epoch the recorder took last
// time answered applied, not duplicate, means the recorder's fence went
// backwards (restarted without durable state): it is logged at Error and
// counted (FenceResets); the claim has restored the fence, so it is no
// error.
func (s *HTTPSink) ClaimEpoch(ctx context.Context, c rcapi.EpochClaim) error {
	res, err := s.post(ctx, rcapi.PathEpoch, func(ctx context.Context) (string, error) { return s.rc.ClaimEpoch(ctx, c) })
	if err != nil {
		return err
	}
	s.mu.Lock()
	reset := res == rcapi.ResultApplied && s.claimed == c.Epoch
	if reset {
		s.fenceResets++
	}
	s.claimed = c.Epoch
	s.mu.Unlock()
	if reset {
		s.cfg.Logger.Error().Int64("epoch", c.Epoch).
			Msg("the recorder's epoch fence went backwards (restarted without durable state?): it took this term's epoch again as new; " +
				"re-announced, so it refuses older epochs again, but a deposed leader's commands may have been accepted meanwhile " +
				"(run the recorder with durable state, SPEC.md §5)")
	}
	return nil
}

// OpenRecordings implements Sink: one attempt. A malformed reply is
// counted and logged (once per kind) and returned.
func (s *HTTPSink) OpenRecordings(ctx context.Context) ([]rcapi.OpenRecording, error) {
	open, err := s.rc.OpenRecordings(ctx)
	var re *rcapi.ReplyError
	if errors.As(err, &re) {
		s.noteBadReply(re)
	}
	return open, err
}
