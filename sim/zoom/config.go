package zoom

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Second-connection policies (Config.SecondConnection): what happens when a
// socket connects to a subscription that already has an open socket. Zoom's
// behaviour is unknown (PROTOCOL §1), so all three are simulated.
const (
	// SecondConnectionKick closes the old socket(s); the new one gets events.
	SecondConnectionKick = "kick"
	// SecondConnectionReject answers the new socket with a build_connection
	// failure and closes it; the old one keeps its events.
	SecondConnectionReject = "reject"
	// SecondConnectionAllow keeps every socket; each gets every event.
	SecondConnectionAllow = "allow"
)

// Defaults applied by New to zero-valued Config fields.
const (
	// DefaultTokenTTL is the lifetime of an access token (expires_in 3600).
	DefaultTokenTTL = time.Hour
	// DefaultSecondConnection is the default second-connection policy.
	DefaultSecondConnection = SecondConnectionKick
)

// ErrInvalidConfig is wrapped by every error New returns for a bad Config;
// the message names the field and the value. Test with errors.Is.
var ErrInvalidConfig = errors.New("zoom: invalid config")

// defaultScopes are the scopes of PROTOCOL §4: the seed's minimum granular
// scopes, the engagement/user read and recording-control scopes, the
// WebSocket connect scope and the classic equivalents.
var defaultScopes = []string{
	"contact_center:read:task:admin",
	"user:read:user:admin",
	"user:read:presence_status:admin",
	"contact_center:read:engagement:admin",
	"contact_center:read:user:admin",
	"contact_center:update:engagement_recording_control:admin",
	"marketplace:write:websocket_connection",
	"contact_center_task:read:admin",
	"contact_center_task:write:admin",
	"contact_center_engagement:read:admin",
	"contact_center_user:read:admin",
	"contact_center_user:write:admin",
	"user:read:admin",
}

// Config configures a simulated Zoom. New validates it once (see Validate) and
// applies the defaults; the Server never changes it afterwards.
type Config struct {
	// AccountID, ClientID and ClientSecret are the one Server-to-Server OAuth
	// app's credentials. All three are required. AccountID is also the
	// payload.account_id of every event Publish sends. ClientSecret is never
	// logged.
	AccountID, ClientID, ClientSecret string

	// Subscriptions lists the event-subscription ids accepted at /ws, each
	// with its own socket(s) and its own copy of every event. Required: at
	// least one, none empty, no repeats.
	Subscriptions []string

	// SecretToken, when set, signs every message frame like Zoom's webhooks:
	// header x-zm-request-timestamp = ts (unix milliseconds, decimal string)
	// and x-zm-signature = "v0=" + hex(HMAC-SHA256(SecretToken,
	// "v0:"+ts+":"+content)). Empty: frames carry the timestamp only.
	SecretToken string

	// TokenTTL is the lifetime of each issued access token; expires_in is its
	// whole seconds. Zero means DefaultTokenTTL (1h); otherwise it must be at
	// least 1s. Every issued token stays valid until it expires, however many
	// are issued after it ("multi" mode, PROTOCOL §2). A token is checked only
	// when a socket connects; an open socket outlives its token.
	TokenTTL time.Duration

	// HeartbeatTimeout is how long a socket may go without a client heartbeat
	// frame ({"module":"heartbeat"}) before the server closes it, counted from
	// build_connection and reset by each heartbeat. Zero means never: Zoom's
	// own timeout is unknown (PROTOCOL §1). Negative is invalid.
	HeartbeatTimeout time.Duration

	// SecondConnection is the policy for a second socket on one subscription:
	// SecondConnectionKick (the default when empty), SecondConnectionReject or
	// SecondConnectionAllow.
	SecondConnection string

	// Scopes is the granted scope list reported by the token endpoint, joined
	// with spaces. Empty means the scopes named in PROTOCOL §4 (granular and
	// classic). Set a shorter list to test a scope check.
	Scopes []string

	// Logger receives the server's logs (component "zoomsim"). The zero value
	// discards them. Secrets, tokens and socket URLs are never logged.
	Logger zerolog.Logger
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
	if c.TokenTTL < 0 || (c.TokenTTL > 0 && c.TokenTTL < time.Second) {
		return bad("TokenTTL", c.TokenTTL, "must be 0 (default 1h) or at least 1s")
	}
	if c.HeartbeatTimeout < 0 {
		return bad("HeartbeatTimeout", c.HeartbeatTimeout, "must not be negative (0 means never)")
	}
	switch c.SecondConnection {
	case "", SecondConnectionKick, SecondConnectionReject, SecondConnectionAllow:
	default:
		return bad("SecondConnection", fmt.Sprintf("%q", c.SecondConnection), `want "kick", "reject" or "allow"`)
	}
	for i, sc := range c.Scopes {
		if sc == "" {
			return bad(fmt.Sprintf("Scopes[%d]", i), `""`, "empty scope")
		}
	}
	return nil
}

// withDefaults returns a copy of c with defaults applied and slices cloned.
func (c Config) withDefaults() Config {
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.SecondConnection == "" {
		c.SecondConnection = DefaultSecondConnection
	}
	if len(c.Scopes) == 0 {
		c.Scopes = defaultScopes
	}
	c.Scopes = append([]string(nil), c.Scopes...)
	c.Subscriptions = append([]string(nil), c.Subscriptions...)
	return c
}
