package zoom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// Settings returns a copy of the current settings, defaults applied.
func (s *Server) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.clone()
}

// UpdateSettings calls change with a copy of the current settings (defaults
// applied) and, if change returns nil and the result is valid, applies the
// result at once, with defaults for its zero fields; it returns the new
// settings. An error from change, or a validation error (wrapping
// ErrInvalidConfig and naming the field), leaves the settings unchanged and
// is returned with the current ones. change runs without the server's lock;
// it must not call UpdateSettings or SetFaults (updates are serialised, so
// that would deadlock). The countdowns TokenFaultNext and LoseRefreshReply
// keep their live value unless change set them.
//
// Effects on what is already running: half-open on a subscription blackholes
// its sockets, clearing it closes them; a new HeartbeatTimeout re-arms every
// socket's watchdog; switching TokenExpiry to close-at-expiry closes the
// sockets whose token is already dead; under TokenModeCapped a lower cap
// cancels the oldest tokens. Everything else applies to what happens next.
func (s *Server) UpdateSettings(change func(*Settings) error) (Settings, error) {
	s.setOp.Lock()
	defer s.setOp.Unlock()
	snap := s.Settings()
	next := snap.clone()
	if err := change(&next); err != nil {
		return snap, err
	}
	if err := next.validate(s.cfg.Subscriptions); err != nil {
		return snap, err
	}
	next = next.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if next.TokenFaultNext == snap.TokenFaultNext {
		next.TokenFaultNext = s.set.TokenFaultNext
	}
	if next.LoseRefreshReply == snap.LoseRefreshReply {
		next.LoseRefreshReply = s.set.LoseRefreshReply
	}
	s.applyLocked(next)
	return s.set.clone(), nil
}

// applyLocked makes next the settings and applies their effects on open
// sockets and live tokens.
func (s *Server) applyLocked(next Settings) {
	old := s.set
	s.set = next
	if changed := changedSettings(old, next); len(changed) > 0 {
		s.log.Info().Strs("changed", changed).Msg("settings changed")
	}
	for _, id := range s.cfg.Subscriptions {
		if was, is := old.Faults[id].HalfOpen, next.Faults[id].HalfOpen; was != is {
			s.setHalfOpenLocked(s.subs[id], is)
		}
	}
	now := s.clock.Now()
	if next.TokenMode == TokenModeCapped {
		s.enforceCapLocked(now)
	}
	if next.TokenExpiry == TokenExpiryCloseAtExpiry && old.TokenExpiry != TokenExpiryCloseAtExpiry {
		for _, id := range s.cfg.Subscriptions {
			for _, c := range slices.Clone(s.subs[id].conns) {
				if s.accessLocked(c.token) == nil {
					s.tokenCloseLocked(c)
				}
			}
		}
	}
	if next.HeartbeatTimeout != old.HeartbeatTimeout {
		for _, sub := range s.subs {
			for _, c := range sub.conns {
				select {
				case c.retime <- struct{}{}:
				default:
				}
			}
		}
	}
}

// changedSettings returns the JSON names of the settings that differ.
func changedSettings(a, b Settings) []string {
	var ma, mb map[string]json.RawMessage
	ja, _ := json.Marshal(a) // Settings always encode
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(mb)) {
		if !bytes.Equal(ma[k], mb[k]) {
			out = append(out, k)
		}
	}
	return out
}

// Faults returns subscription id's current faults (zero: none), or
// ErrUnknownSubscription.
func (s *Server) Faults(id string) (Faults, error) {
	if s.subs[id] == nil {
		return Faults{}, fmt.Errorf("%w: %q", ErrUnknownSubscription, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.Faults[id], nil
}

// SetFaults replaces subscription id's faults (zero Faults: none) through
// UpdateSettings and returns them with defaults applied. Errors:
// ErrUnknownSubscription, or a validation error wrapping ErrInvalidConfig.
func (s *Server) SetFaults(id string, f Faults) (Faults, error) {
	return s.changeFaults(id, func(cur *Faults) error { *cur = f; return nil })
}

// changeFaults changes subscription id's faults in place.
func (s *Server) changeFaults(id string, change func(*Faults) error) (Faults, error) {
	if s.subs[id] == nil {
		return Faults{}, fmt.Errorf("%w: %q", ErrUnknownSubscription, id)
	}
	st, err := s.UpdateSettings(func(st *Settings) error {
		f := st.Faults[id]
		if err := change(&f); err != nil {
			return err
		}
		if st.Faults == nil {
			st.Faults = make(map[string]Faults)
		}
		st.Faults[id] = f
		return nil
	})
	return st.Faults[id], err
}

// decodeStrict decodes one JSON object from body onto v, refusing unknown
// fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func (s *Server) handleGetSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Settings())
}

// handlePostSettings serves POST /sim/settings: the body's fields are decoded
// onto the current settings (maps merge per key, null clears a map or list).
func (s *Server) handlePostSettings(w http.ResponseWriter, r *http.Request) {
	body, err := readControlBody(w, r)
	if err != nil {
		badRequest(w, err)
		return
	}
	st, err := s.UpdateSettings(func(st *Settings) error {
		if err := decodeStrict(body, st); err != nil {
			return fmt.Errorf("settings: %w", err)
		}
		return nil
	})
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	f, err := s.Faults(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, controlError{Error: "unknown_subscription", Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// handlePostFaults serves POST /sim/subscriptions/{id}/faults: the body's
// fields are decoded onto that subscription's current faults.
func (s *Server) handlePostFaults(w http.ResponseWriter, r *http.Request) {
	body, err := readControlBody(w, r)
	if err != nil {
		badRequest(w, err)
		return
	}
	f, err := s.changeFaults(r.PathValue("id"), func(f *Faults) error {
		if err := decodeStrict(body, f); err != nil {
			return fmt.Errorf("faults: %w", err)
		}
		return nil
	})
	s.faultsReply(w, f, err)
}

func (s *Server) handleDeleteFaults(w http.ResponseWriter, r *http.Request) {
	f, err := s.SetFaults(r.PathValue("id"), Faults{})
	s.faultsReply(w, f, err)
}

func (s *Server) faultsReply(w http.ResponseWriter, f Faults, err error) {
	switch {
	case errors.Is(err, ErrUnknownSubscription):
		writeJSON(w, http.StatusNotFound, controlError{Error: "unknown_subscription", Message: err.Error()})
	case err != nil:
		badRequest(w, err)
	default:
		writeJSON(w, http.StatusOK, f)
	}
}
