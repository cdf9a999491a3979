package zoom

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// fieldError returns an ErrInvalidConfig error naming a field by its Go and
// JSON names.
func fieldError(goName, jsonName string, value any, why string) error {
	return fmt.Errorf("%w: %s (%s) = %v: %s", ErrInvalidConfig, goName, jsonName, value, why)
}

// Validate reports the first invalid field of c, wrapped in
// ErrInvalidConfig. It does not apply defaults and does not change c.
func (c Config) Validate() error {
	bad := func(field string, value any, why string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, value, why)
	}
	switch {
	case c.AccountID == "":
		return bad("AccountID", `""`, "required")
	case c.ClientID == "":
		return bad("ClientID", `""`, "required")
	case c.ClientSecret == "":
		return bad("ClientSecret", `""`, "required")
	case len(c.Subscriptions) == 0:
		return bad("Subscriptions", "[]", "at least one subscription id is required")
	}
	seen := make(map[string]bool, len(c.Subscriptions))
	for i, id := range c.Subscriptions {
		if id == "" {
			return bad(fmt.Sprintf("Subscriptions[%d]", i), `""`, "empty subscription id")
		}
		if seen[id] {
			return bad(fmt.Sprintf("Subscriptions[%d]", i), fmt.Sprintf("%q", id), "listed twice")
		}
		seen[id] = true
	}
	return c.Settings.validate(c.Subscriptions)
}

// validate reports the first invalid setting; subs are the known
// subscription ids.
func (s Settings) validate(subs []string) error {
	bad := fieldError
	oneOf := func(goName, jsonName, v string, allowed ...string) error {
		if v == "" || slices.Contains(allowed, v) {
			return nil
		}
		return bad(goName, jsonName, fmt.Sprintf("%q", v), fmt.Sprintf("want one of %q", allowed))
	}
	statusIn := func(goName, jsonName string, v, lo, hi int) error {
		if v == 0 || (v >= lo && v <= hi) {
			return nil
		}
		return bad(goName, jsonName, v, fmt.Sprintf("must be 0 (default) or %d-%d", lo, hi))
	}
	prob := func(goName, jsonName string, p float64) error {
		if p >= 0 && p <= 1 {
			return nil
		}
		return bad(goName, jsonName, p, "must be a probability in [0, 1]")
	}
	nonNeg := func(goName, jsonName string, d Duration) error {
		if d >= 0 {
			return nil
		}
		return bad(goName, jsonName, d, "must not be negative")
	}
	errs := []error{
		oneOf("TokenMode", "token_mode", s.TokenMode, TokenModeMulti, TokenModeLegacyInvalidate, TokenModeCapped),
		oneOf("TokenExpiry", "token_expiry", s.TokenExpiry, TokenExpiryConnectOnly, TokenExpiryCloseAtExpiry),
		oneOf("TokenFault", "token_fault", s.TokenFault, TokenFault429, TokenFault5xx, TokenFaultSlow),
		oneOf("SecondConnection", "second_connection", s.SecondConnection, SecondConnectionKick, SecondConnectionReject, SecondConnectionAllow),
		statusIn("InvalidClientStatus", "invalid_client_status", s.InvalidClientStatus, 400, 499),
		statusIn("TokenFaultStatus", "token_fault_status", s.TokenFaultStatus, 500, 599),
		statusIn("ScopeErrorStatus", "scope_error_status", s.ScopeErrorStatus, 400, 499),
		prob("TokenFaultProbability", "token_fault_probability", s.TokenFaultProbability),
		nonNeg("TokenRetryAfter", "token_retry_after", s.TokenRetryAfter),
		nonNeg("TokenDelay", "token_delay", s.TokenDelay),
		nonNeg("HeartbeatTimeout", "heartbeat_timeout", s.HeartbeatTimeout),
	}
	if err := firstError(errs); err != nil {
		return err
	}
	switch {
	case s.TokenCap < 0:
		return bad("TokenCap", "token_cap", s.TokenCap, "must not be negative (0 means 2)")
	case s.TokenTTL < 0 || (s.TokenTTL > 0 && s.TokenTTL < Duration(time.Second)):
		return bad("TokenTTL", "token_ttl", s.TokenTTL, "must be 0 (default 1h) or at least 1s")
	case s.RefreshTokenTTL < 0 || (s.RefreshTokenTTL > 0 && s.RefreshTokenTTL < Duration(time.Second)):
		return bad("RefreshTokenTTL", "refresh_token_ttl", s.RefreshTokenTTL, "must be 0 (default 90 days) or at least 1s")
	case s.TokenFaultNext < 0:
		return bad("TokenFaultNext", "token_fault_next", s.TokenFaultNext, "must not be negative")
	case s.TokenFault == "" && (s.TokenFaultNext > 0 || s.TokenFaultProbability > 0):
		return bad("TokenFault", "token_fault", `""`, "must be set when token_fault_next or token_fault_probability is")
	case s.RefreshReuseTolerance < 0:
		return bad("RefreshReuseTolerance", "refresh_reuse_tolerance", s.RefreshReuseTolerance, "must not be negative")
	case s.LoseRefreshReply < 0:
		return bad("LoseRefreshReply", "lose_refresh_reply", s.LoseRefreshReply, "must not be negative")
	case s.CloseCode != 0 && !sendableCloseCode(s.CloseCode):
		return bad("CloseCode", "close_code", s.CloseCode, "must be 0 (default 1008) or 1000-1003, 1007-1014, 3000-4999")
	}
	for i, w := range s.FailureWordings {
		if w == "" {
			return bad(fmt.Sprintf("FailureWordings[%d]", i), fmt.Sprintf("failure_wordings[%d]", i), `""`, "empty wording")
		}
	}
	for i, sc := range s.Scopes {
		if sc == "" {
			return bad(fmt.Sprintf("Scopes[%d]", i), fmt.Sprintf("scopes[%d]", i), `""`, "empty scope")
		}
	}
	for _, m := range []struct {
		goName, jsonName string
		limits           map[string]int
	}{{"RateLimitQPS", "rate_limit_qps", s.RateLimitQPS}, {"RateLimitDaily", "rate_limit_daily", s.RateLimitDaily}} {
		for _, k := range slices.Sorted(maps.Keys(m.limits)) {
			switch v := m.limits[k]; {
			case k != RateLimitLight && k != RateLimitMedium && k != RateLimitHeavy:
				return bad(m.goName+"["+k+"]", m.jsonName+"."+k, v, `unknown category: want "light", "medium" or "heavy"`)
			case v < 0:
				return bad(m.goName+"["+k+"]", m.jsonName+"."+k, v, "must not be negative (0 means no limit)")
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Faults)) {
		if !slices.Contains(subs, id) {
			return bad("Faults["+id+"]", "faults."+id, "{…}", "unknown subscription")
		}
		if err := s.Faults[id].validate("Faults["+id+"].", "faults."+id+"."); err != nil {
			return err
		}
	}
	return nil
}

// validate reports the first invalid fault; the prefixes name the owner.
func (f Faults) validate(goPrefix, jsonPrefix string) error {
	bad := func(goName, jsonName string, v any, why string) error {
		return fieldError(goPrefix+goName, jsonPrefix+jsonName, v, why)
	}
	for _, d := range []struct {
		goName, jsonName string
		v                Duration
	}{{"Delay", "delay", f.Delay}, {"Jitter", "jitter", f.Jitter}, {"ReorderMaxHold", "reorder_max_hold", f.ReorderMaxHold}} {
		if d.v < 0 {
			return bad(d.goName, d.jsonName, d.v, "must not be negative")
		}
	}
	for _, p := range []struct {
		goName, jsonName string
		v                float64
	}{{"Reorder", "reorder", f.Reorder}, {"Duplicate", "duplicate", f.Duplicate}, {"Drop", "drop", f.Drop}} {
		if !(p.v >= 0 && p.v <= 1) {
			return bad(p.goName, p.jsonName, p.v, "must be a probability in [0, 1]")
		}
	}
	if f.ReorderWindow < 0 {
		return bad("ReorderWindow", "reorder_window", f.ReorderWindow, "must not be negative (0 means 3)")
	}
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sendableCloseCode reports whether code may be sent in a close frame.
func sendableCloseCode(code int) bool {
	switch {
	case code == 1004 || code == 1005 || code == 1006 || code == 1015:
		return false
	case code >= 1000 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}
