package zoom

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// StartTraffic starts a traffic model built from cfg, with Publish as its
// emitter, and returns without waiting. A cfg without AccountID gets
// Config.AccountID. The model generates calls until StopTraffic or Close.
// Errors: ErrTrafficRunning while traffic runs (including a stopped one whose
// drain failed), ErrClosed after Close, or the traffic package's
// validation error (wrapping traffic.ErrInvalidConfig).
func (s *Server) StartTraffic(cfg traffic.Config) error {
	s.trafficOp.Lock()
	defer s.trafficOp.Unlock()
	s.mu.Lock()
	closed, running := s.closed, s.run != nil
	s.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case running:
		return ErrTrafficRunning
	}
	cfg.AccountID = cmp.Or(cfg.AccountID, s.cfg.AccountID)
	m, err := s.newModel(cfg, s.Publish, s.log.With().Str("component", "traffic").Logger())
	if err != nil {
		return fmt.Errorf("new traffic model: %w", err)
	}
	ctx, cancel := context.WithCancel(s.stopCtx)
	run := &trafficRun{model: m, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return ErrClosed
	}
	s.wg.Add(1)
	s.run, s.model = run, m
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(run.done)
		if err := m.Run(ctx); err != nil {
			s.log.Error().Err(err).Msg("traffic run failed")
		}
	}()
	return nil
}

// StopTraffic stops generating calls, waits for the model's Run to return,
// then drains it: every active call ends with its proper end events, and
// StopTraffic waits for all of them. It returns the model's ground truth.
// ctx bounds the wait; if it ends first the error wraps ctx's error, the
// traffic stays registered as running, and a later StopTraffic (or Close)
// finishes the drain. Returns ErrTrafficNotRunning when no traffic runs.
func (s *Server) StopTraffic(ctx context.Context) (traffic.Truth, error) {
	s.trafficOp.Lock()
	defer s.trafficOp.Unlock()
	return s.stopTrafficLocked(ctx)
}

func (s *Server) stopTrafficLocked(ctx context.Context) (traffic.Truth, error) {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run == nil {
		return traffic.Truth{}, ErrTrafficNotRunning
	}
	run.cancel()
	select {
	case <-run.done:
	case <-ctx.Done():
		return run.model.Truth(), fmt.Errorf("stop traffic: %w", ctx.Err())
	}
	if err := run.model.Drain(ctx); err != nil {
		return run.model.Truth(), fmt.Errorf("stop traffic: %w", err)
	}
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
	t := run.model.Truth()
	s.log.Info().Int("calls", t.Calls).Int("events", t.Events).Int("undelivered", t.Undelivered).Msg("traffic stopped")
	return t, nil
}

// Truth returns the ground truth of the running or most recent traffic
// model, and false if traffic was never started.
func (s *Server) Truth() (traffic.Truth, bool) {
	s.mu.Lock()
	m := s.model
	s.mu.Unlock()
	if m == nil {
		return traffic.Truth{}, false
	}
	return m.Truth(), true
}

// readControlBody reads a control request body (at most maxControlBody).
func readControlBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
}

func badRequest(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, controlError{Error: "bad_request", Message: err.Error()})
}

func (s *Server) handleTrafficStart(w http.ResponseWriter, r *http.Request) {
	body, err := readControlBody(w, r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var cfg traffic.Config
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			badRequest(w, fmt.Errorf("traffic config: %w", err))
			return
		}
	}
	switch err := s.StartTraffic(cfg); {
	case errors.Is(err, ErrTrafficRunning):
		writeJSON(w, http.StatusConflict, controlError{Error: "running", Message: err.Error()})
	case errors.Is(err, ErrClosed):
		writeJSON(w, http.StatusServiceUnavailable, controlError{Error: "closed", Message: err.Error()})
	case err != nil:
		badRequest(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "started"})
	}
}

func (s *Server) handleTrafficStop(w http.ResponseWriter, r *http.Request) {
	t, err := s.StopTraffic(r.Context())
	switch {
	case errors.Is(err, ErrTrafficNotRunning):
		writeJSON(w, http.StatusConflict, controlError{Error: "not_running", Message: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, controlError{Error: "drain_failed", Message: err.Error()})
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

func (s *Server) handleTruth(w http.ResponseWriter, _ *http.Request) {
	t, ok := s.Truth()
	if !ok {
		writeJSON(w, http.StatusNotFound, controlError{Error: "no_traffic", Message: "traffic was never started"})
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleSubscriptions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Subscriptions())
}

func (s *Server) handleDrop(w http.ResponseWriter, r *http.Request) {
	n, err := s.Drop(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, controlError{Error: "unknown_subscription", Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"dropped": n})
}

// eventsRequest is the body of POST /sim/events: Event (any JSON value) is
// sent as the content, through content faults when it is an object, and
// recorded for REST when it is an event envelope; Content, if set instead,
// is sent verbatim (it may be malformed); ContentBase64, if set instead, is
// the standard base64 of content bytes sent verbatim, for bytes a JSON
// string cannot carry (invalid UTF-8: the frame then holds them raw). All go
// through delivery faults. Subscriptions nil or absent means all.
type eventsRequest struct {
	Subscriptions []string        `json:"subscriptions"`
	Event         json.RawMessage `json:"event"`
	Content       *string         `json:"content"`
	ContentBase64 *string         `json:"content_base64"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	body, err := readControlBody(w, r)
	if err != nil {
		badRequest(w, err)
		return
	}
	var req eventsRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		badRequest(w, err)
		return
	}
	var raw json.RawMessage
	given := 0
	for _, set := range []bool{req.Event != nil, req.Content != nil, req.ContentBase64 != nil} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		badRequest(w, errors.New(`give one of "event", "content" and "content_base64"`))
		return
	case req.Content != nil:
		raw = json.RawMessage(*req.Content)
	case req.ContentBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.ContentBase64)
		if err != nil {
			badRequest(w, fmt.Errorf("content_base64: %w", err))
			return
		}
		raw = b
	case req.Event != nil:
		raw = req.Event
	default:
		badRequest(w, errors.New(`"event", "content" or "content_base64" is required`))
		return
	}
	for _, id := range req.Subscriptions {
		if _, ok := s.subs[id]; !ok {
			writeJSON(w, http.StatusNotFound, controlError{Error: "unknown_subscription", Message: fmt.Sprintf("%q", id)})
			return
		}
	}
	subs := req.Subscriptions
	if subs == nil {
		subs = s.cfg.Subscriptions
	}
	if req.Event != nil {
		s.recordEnvelope(raw)
	}
	// An "event" goes through content faults; raw "content" is always sent
	// verbatim.
	n := s.publish(subs, raw, req.Event != nil)
	writeJSON(w, http.StatusOK, map[string]int{"delivered": n})
}
