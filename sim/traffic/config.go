package traffic

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultAgents              = 20
	DefaultCallsPerSecond      = 2.0
	DefaultMinCall             = 5 * time.Second
	DefaultMaxCall             = 60 * time.Second
	DefaultHoldProbability     = 0.3
	DefaultTransferProbability = 0.2
	DefaultOutboundFraction    = 0.1
	DefaultQueueTimeout        = 20 * time.Second
	DefaultAccountID           = "acct-sim"
)

// Limits enforced by validation, to keep a typo from starting a runaway simulation.
const (
	// MaxAgents is the largest accepted Config.Agents.
	MaxAgents = 10000
	// MaxCallsPerSecond is the largest accepted Config.CallsPerSecond.
	MaxCallsPerSecond = 1000.0
)

var (
	// ErrInvalidConfig is wrapped by every *ConfigError that New returns; test with errors.Is.
	ErrInvalidConfig = errors.New("invalid traffic config")
	// ErrAlreadyRun is returned by Run when Run was called before on the same Model.
	ErrAlreadyRun = errors.New("traffic: Run already called")
	// ErrDrained is returned by Run when Drain was called before Run started.
	ErrDrained = errors.New("traffic: model drained")
)

// ConfigError reports one invalid Config field. Field is the field's JSON name
// ("calls_per_second"), Value the rejected value as given. It unwraps to ErrInvalidConfig.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

// Error returns "traffic config: <field> = <value>: <reason>".
func (e *ConfigError) Error() string {
	return fmt.Sprintf("traffic config: %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Duration is a time.Duration that reads and writes JSON as a Go duration string ("5s",
// "250ms"). Reading also accepts a JSON number, taken as nanoseconds.
type Duration time.Duration

// String returns the duration in Go syntax ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("5s") or an integer number of nanoseconds.
// JSON null leaves the value unchanged.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(data), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt64 {
			return fmt.Errorf("duration: %q is neither a duration string nor an integer number of nanoseconds", data)
		}
		n = int64(f)
	}
	*d = Duration(n)
	return nil
}

// Config shapes the simulated contact center. The zero value of every field means its
// default (see the Default* constants); New applies the defaults and validates once.
type Config struct {
	// Seed makes the simulation reproducible: the same Seed (and the same other settings)
	// gives the same agents, IDs, arrival gaps and call stories. 0 is a seed like any other.
	Seed int64 `json:"seed"`
	// Agents is the number of agents that log in when Run starts. Default 20, at most
	// MaxAgents; negative is invalid.
	Agents int `json:"agents"`
	// CallsPerSecond is the mean rate of the Poisson call arrivals (inbound and outbound
	// together). Default 2, at most MaxCallsPerSecond; negative, NaN or infinite is invalid.
	CallsPerSecond float64 `json:"calls_per_second"`
	// MinCall is the shortest connected (talk) time of a call; the talk time is drawn
	// uniformly from [MinCall, MaxCall], and holds and a transfer happen inside it.
	// Default 5s; negative is invalid.
	MinCall Duration `json:"min_call"`
	// MaxCall is the longest talk time. Default 60s; must be >= MinCall (mind the 5s default
	// of MinCall when setting only MaxCall); negative is invalid.
	MaxCall Duration `json:"max_call"`
	// HoldProbability is the chance a call has one hold. A hold lasts 1-5s, shrunk to at most
	// half of the talk time around it when the call is shorter. Default 0.3; 0 means the
	// default, a negative value means never; above 1 or NaN is invalid.
	HoldProbability float64 `json:"hold_probability"`
	// TransferProbability is the chance an inbound call is warm-transferred once, to another
	// agent who is free at that moment (no free agent: no transfer). Default 0.2; 0 means
	// the default, a negative value means never; above 1 or NaN is invalid.
	TransferProbability float64 `json:"transfer_probability"`
	// OutboundFraction is the share of arrivals that are outbound calls placed by a free
	// agent (no free agent: the arrival is skipped). Default 0.1; 0 means the default,
	// a negative value means never; above 1 or NaN is invalid.
	OutboundFraction float64 `json:"outbound_fraction"`
	// QueueTimeout is how long an inbound caller waits for a free agent before abandoning.
	// Default 20s; negative is invalid.
	QueueTimeout Duration `json:"queue_timeout"`
	// AccountID is the Zoom account the events belong to; the model does not put it in
	// event objects (it belongs to the envelope's payload.account_id). Default "acct-sim".
	AccountID string `json:"account_id"`
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Agents = cmp.Or(c.Agents, DefaultAgents)
	c.CallsPerSecond = cmp.Or(c.CallsPerSecond, DefaultCallsPerSecond)
	c.MinCall = cmp.Or(c.MinCall, Duration(DefaultMinCall))
	c.MaxCall = cmp.Or(c.MaxCall, Duration(DefaultMaxCall))
	c.HoldProbability = cmp.Or(c.HoldProbability, DefaultHoldProbability)
	c.TransferProbability = cmp.Or(c.TransferProbability, DefaultTransferProbability)
	c.OutboundFraction = cmp.Or(c.OutboundFraction, DefaultOutboundFraction)
	c.QueueTimeout = cmp.Or(c.QueueTimeout, Duration(DefaultQueueTimeout))
	c.AccountID = cmp.Or(c.AccountID, DefaultAccountID)
	return c
}

// validate checks a config that already has its defaults. It returns every problem found,
// joined; each is a *ConfigError.
func (c Config) validate() error {
	var errs []error
	bad := func(field string, v any, reason string) {
		errs = append(errs, &ConfigError{Field: field, Value: v, Reason: reason})
	}
	if c.Agents < 0 || c.Agents > MaxAgents {
		bad("agents", c.Agents, fmt.Sprintf("must be between 1 and %d (0 means %d)", MaxAgents, DefaultAgents))
	}
	if math.IsNaN(c.CallsPerSecond) || c.CallsPerSecond < 0 || c.CallsPerSecond > MaxCallsPerSecond {
		bad("calls_per_second", c.CallsPerSecond, fmt.Sprintf("must be > 0 and <= %g", MaxCallsPerSecond))
	}
	if c.MinCall < 0 {
		bad("min_call", c.MinCall, "must not be negative")
	}
	if c.MaxCall < 0 {
		bad("max_call", c.MaxCall, "must not be negative")
	}
	if c.MinCall >= 0 && c.MaxCall >= 0 && c.MaxCall < c.MinCall {
		bad("max_call", c.MaxCall, fmt.Sprintf("must be >= min_call (%s)", c.MinCall))
	}
	for _, p := range []struct {
		field string
		v     float64
	}{
		{"hold_probability", c.HoldProbability},
		{"transfer_probability", c.TransferProbability},
		{"outbound_fraction", c.OutboundFraction},
	} {
		if math.IsNaN(p.v) || p.v > 1 {
			bad(p.field, p.v, "must be at most 1 (negative means never, 0 means the default)")
		}
	}
	if c.QueueTimeout < 0 {
		bad("queue_timeout", c.QueueTimeout, "must not be negative")
	}
	return errors.Join(errs...)
}

// prob turns a probability setting into a chance in [0, 1]: negative means never.
func prob(p float64) float64 {
	if p < 0 {
		return 0
	}
	return p
}
