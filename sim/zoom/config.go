package zoom

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/sim/traffic"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("5s", "250ms"); reading also accepts an integer number of
// nanoseconds. It is the traffic model's type, so every /sim/* body spells
// durations the same way.
type Duration = traffic.Duration

// Second-connection policies (Settings.SecondConnection): what happens when a
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

// Token modes (Settings.TokenMode): how a newly issued access token affects
// the earlier ones (PROTOCOL §2). They apply to every access token of the one
// OAuth app, whatever grant issued it.
const (
	// TokenModeMulti keeps every issued token valid until it expires (Zoom
	// since mid-2023).
	TokenModeMulti = "multi"
	// TokenModeLegacyInvalidate cancels every earlier token when a new one is
	// issued (Zoom before mid-2023): a socket dialled with a cancelled token
	// gets an invalid-token failure, a REST call 401 code 124.
	TokenModeLegacyInvalidate = "legacy-invalidate"
	// TokenModeCapped keeps at most Settings.TokenCap live tokens; issuing one
	// more cancels the oldest.
	TokenModeCapped = "capped"
)

// Token-expiry policies (Settings.TokenExpiry) for sockets that are already
// open when their token expires or is cancelled (PROTOCOL §1: unknown).
const (
	// TokenExpiryConnectOnly checks the token only at connect: an open socket
	// outlives its token.
	TokenExpiryConnectOnly = "connect-only"
	// TokenExpiryCloseAtExpiry sends the socket a build_connection failure
	// frame (content: the next failure wording) and closes it when its token
	// expires or is cancelled (token mode, cap, /sim/tokens/revoke).
	TokenExpiryCloseAtExpiry = "close-at-expiry"
)

// Token-endpoint faults (Settings.TokenFault).
const (
	// TokenFault429 answers 429 with a Retry-After header.
	TokenFault429 = "429"
	// TokenFault5xx answers Settings.TokenFaultStatus (default 503).
	TokenFault5xx = "5xx"
	// TokenFaultSlow delays the request by Settings.TokenDelay, then serves
	// it normally.
	TokenFaultSlow = "slow"
)

// Rate-limit categories of Zoom's REST API (PROTOCOL §4), the keys of
// Settings.RateLimitQPS and Settings.RateLimitDaily. The simulated endpoints
// belong to: GET engagements/{id} light, GET users medium, GET engagements
// (a listing over a time range) heavy.
const (
	RateLimitLight  = "light"
	RateLimitMedium = "medium"
	RateLimitHeavy  = "heavy"
)

// Defaults applied to zero-valued settings.
const (
	// DefaultTokenTTL is the lifetime of an access token (expires_in 3600).
	DefaultTokenTTL = time.Hour
	// DefaultTokenMode is the default token mode.
	DefaultTokenMode = TokenModeMulti
	// DefaultTokenCap is the live-token cap of TokenModeCapped. Zoom's real
	// cap, if any, is unknown.
	DefaultTokenCap = 2
	// DefaultTokenExpiry is the default token-expiry policy.
	DefaultTokenExpiry = TokenExpiryConnectOnly
	// DefaultInvalidClientStatus is the status for bad client credentials.
	DefaultInvalidClientStatus = 401
	// DefaultTokenFaultStatus is the status of TokenFault5xx.
	DefaultTokenFaultStatus = 503
	// DefaultTokenRetryAfter is the Retry-After of TokenFault429.
	DefaultTokenRetryAfter = time.Second
	// DefaultTokenDelay is the delay of TokenFaultSlow.
	DefaultTokenDelay = 5 * time.Second
	// DefaultRefreshTokenTTL is the lifetime of a refresh token: 90 days
	// (sources disagree: 90 days or 15 years).
	DefaultRefreshTokenTTL = 90 * 24 * time.Hour
	// DefaultConnectedContent is the content of a build_connection success.
	DefaultConnectedContent = "connected"
	// DefaultCloseCode is the close code of policy closes (refused, kicked,
	// heartbeat timeout, token expired): 1008 policy violation.
	DefaultCloseCode = 1008
	// DefaultSecondConnection is the default second-connection policy.
	DefaultSecondConnection = SecondConnectionKick
	// DefaultScopeErrorStatus is the status of a REST call whose token lacks
	// a scope (code 4711).
	DefaultScopeErrorStatus = 400
	// DefaultReorderWindow is Faults.ReorderWindow when Reorder is set.
	DefaultReorderWindow = 3
	// DefaultReorderMaxHold is Faults.ReorderMaxHold when Reorder is set.
	DefaultReorderMaxHold = time.Second
	// AuthCodeTTL is the lifetime of an authorization code (PROTOCOL §2, H).
	AuthCodeTTL = 5 * time.Minute
)

// DefaultFailureWordings are the texts of invalid-token build_connection
// failures seen in the wild (PROTOCOL §1), used in turn.
var DefaultFailureWordings = []string{"Invalid Token", "Token is invalid"}

// ErrInvalidConfig is wrapped by every error New, UpdateSettings and SetFaults
// return for a bad setting; the message names the field (Go and JSON names)
// and the value. Test with errors.Is.
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
// applies the defaults. The identity fields below are fixed for the server's
// life; the embedded Settings can be changed while it runs (UpdateSettings,
// POST /sim/settings).
type Config struct {
	// AccountID, ClientID and ClientSecret are the one OAuth app's
	// credentials. All three are required. AccountID is also the
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
	// "v0:"+ts+":"+content)). Empty: frames carry the timestamp only. Never
	// logged.
	SecretToken string

	// Logger receives the server's logs (component "zoomsim"). The zero value
	// discards them. Secrets, tokens, codes and socket URLs are never logged.
	Logger zerolog.Logger

	// Settings are the behaviours PROTOCOL.md marks M, L or ?, and the faults.
	Settings
}

// Settings are the simulator's changeable behaviours: every M/L/? fact of
// PROTOCOL.md and every fault. The zero value of each field means its default
// (see the Default* constants). GET /sim/settings returns them with defaults
// applied; POST /sim/settings takes a JSON object with any subset of them.
// Durations are JSON strings ("5s"). Each field is also a flag of `zccadapter
// sim zoom` (the JSON name with '-' for '_').
type Settings struct {
	// Seed seeds every random choice of the server (delivery faults, key
	// shuffles, volatile values, token-endpoint fault probability): the n-th
	// frame of a subscription, or the n-th token request, draws from a stream
	// derived from (Seed, subscription, n), so the same settings and the same
	// sequence of events give the same choices. 0 is a seed like any other.
	Seed int64 `json:"seed"`

	// TokenMode is TokenModeMulti (default when empty),
	// TokenModeLegacyInvalidate or TokenModeCapped.
	TokenMode string `json:"token_mode"`
	// TokenCap is the most live access tokens under TokenModeCapped; issuing
	// one more cancels the oldest. Zero means DefaultTokenCap (2); negative
	// is invalid. Ignored in the other modes. Lowering it cancels the oldest
	// live tokens at once.
	TokenCap int `json:"token_cap"`
	// TokenTTL is the lifetime of each access token issued from now on;
	// expires_in is its whole seconds. Zero means DefaultTokenTTL (1h);
	// otherwise at least 1s.
	TokenTTL Duration `json:"token_ttl"`
	// TokenExpiry is the policy for open sockets whose token expires or is
	// cancelled: TokenExpiryConnectOnly (default when empty) or
	// TokenExpiryCloseAtExpiry. Switching to close-at-expiry closes the open
	// sockets whose token is already expired or cancelled.
	TokenExpiry string `json:"token_expiry"`
	// FailureWordings are the contents of invalid-token build_connection
	// failures (unknown, expired or cancelled token, at connect or at
	// close-at-expiry), used round-robin. Empty means DefaultFailureWordings;
	// an empty entry is invalid. "token is empty" (no token in the query) is
	// fixed (PROTOCOL §1, H). A client must never depend on these.
	FailureWordings []string `json:"failure_wordings"`
	// Scopes is the granted scope list of tokens issued from now on, reported
	// space-separated by the token endpoint and checked by the REST subset.
	// Empty means the scopes named in PROTOCOL §4 (granular and classic).
	Scopes []string `json:"scopes"`
	// InvalidClientStatus is the HTTP status for bad client credentials
	// (error "invalid_client", unknown in PROTOCOL §2). Zero means
	// DefaultInvalidClientStatus (401); otherwise 400-499.
	InvalidClientStatus int `json:"invalid_client_status"`
	// TokenQueryParams, when true, also reads token-request parameters from
	// the query string. False (default): only the form body counts, so
	// query-string parameters get 400 (PROTOCOL §2, M).
	TokenQueryParams bool `json:"token_query_params"`

	// TokenFault is the fault injected on POST /oauth/token: "" (none, the
	// default), TokenFault429, TokenFault5xx or TokenFaultSlow. It hits the
	// next TokenFaultNext requests, then each request with probability
	// TokenFaultProbability. A 429 or 5xx is answered before anything else
	// is checked and changes nothing; a slow request is served normally
	// after its delay.
	TokenFault string `json:"token_fault"`
	// TokenFaultNext is how many of the next token requests get TokenFault;
	// it counts down as they come (GET /sim/settings shows what is left).
	// Zero: none; negative is invalid.
	TokenFaultNext int `json:"token_fault_next"`
	// TokenFaultProbability is the chance, in [0, 1], that a token request
	// gets TokenFault once TokenFaultNext is used up. Zero: never.
	TokenFaultProbability float64 `json:"token_fault_probability"`
	// TokenFaultStatus is the status of TokenFault5xx. Zero means
	// DefaultTokenFaultStatus (503); otherwise 500-599.
	TokenFaultStatus int `json:"token_fault_status"`
	// TokenRetryAfter is the Retry-After of TokenFault429, sent as whole
	// seconds (rounded up). Zero means DefaultTokenRetryAfter (1s).
	TokenRetryAfter Duration `json:"token_retry_after"`
	// TokenDelay is how long TokenFaultSlow holds a request. Zero means
	// DefaultTokenDelay (5s).
	TokenDelay Duration `json:"token_delay"`

	// RefreshTokenTTL is the lifetime of each refresh token issued from now
	// on (each rotation starts a new one). Zero means DefaultRefreshTokenTTL
	// (90 days); otherwise at least 1s.
	RefreshTokenTTL Duration `json:"refresh_token_ttl"`
	// RefreshReuseTolerance is how many times a rotated-out refresh token may
	// still be used; each such use returns a new access token and the
	// current refresh token (no further rotation). Beyond it: 400
	// invalid_grant code 4740. Zero (default): never.
	RefreshReuseTolerance int `json:"refresh_reuse_tolerance"`
	// LoseRefreshReply is how many of the next refresh_token-grant requests
	// are processed (a refresh rotates) but get no reply: the server hijacks
	// the HTTP connection and closes it (case C-07). Counts down. Zero: none.
	LoseRefreshReply int `json:"lose_refresh_reply"`

	// ConnectedContent is the content of a build_connection success frame
	// (unknown in PROTOCOL §1). Zero means DefaultConnectedContent.
	ConnectedContent string `json:"connected_content"`
	// CloseCode is the WebSocket close code of policy closes: refused
	// build_connection, kicked, heartbeat timeout, token expired or
	// cancelled. Zoom's codes are unknown. Zero means DefaultCloseCode
	// (1008); otherwise a code that may be sent (1000-1003, 1007-1014,
	// 3000-4999).
	CloseCode int `json:"close_code"`
	// SecondConnection is the policy for a second socket on one subscription:
	// SecondConnectionKick (the default when empty), SecondConnectionReject or
	// SecondConnectionAllow. It applies to sockets connecting from now on.
	SecondConnection string `json:"second_connection"`
	// HeartbeatTimeout is how long a socket may go without a client heartbeat
	// frame ({"module":"heartbeat"}) before the server closes it, counted from
	// build_connection and from each heartbeat. Zero means never: Zoom's own
	// timeout is unknown (PROTOCOL §1). Negative is invalid. A change applies
	// to open sockets at once.
	HeartbeatTimeout Duration `json:"heartbeat_timeout"`
	// Faults are per-subscription delivery faults, keyed by subscription id
	// (a key not in Config.Subscriptions is invalid). A subscription not
	// listed has none. In a POST /sim/settings body, "faults" replaces the
	// faults of each subscription it lists and keeps the others; null clears
	// them all. POST /sim/subscriptions/{id}/faults changes one subscription.
	Faults map[string]Faults `json:"faults"`

	// ScopeErrorStatus is the HTTP status of a REST call whose token lacks
	// the endpoint's scope (body code 4711; the status is unknown). Zero
	// means DefaultScopeErrorStatus (400); otherwise 400-499.
	ScopeErrorStatus int `json:"scope_error_status"`
	// RateLimitQPS caps REST requests per second per category (keys
	// RateLimitLight, RateLimitMedium, RateLimitHeavy), for the whole
	// account. A missing key or 0: no limit (the default). Over it: 429
	// code 429 with X-RateLimit-Type QPS.
	RateLimitQPS map[string]int `json:"rate_limit_qps"`
	// RateLimitDaily caps REST requests per UTC day per category, like
	// RateLimitQPS. Over it: 429 with X-RateLimit-Type Daily-limit and
	// Retry-After the next UTC midnight as an ISO date-time.
	RateLimitDaily map[string]int `json:"rate_limit_daily"`
}

// Faults are one subscription's delivery faults. The zero value is no fault.
// Each frame sent to the subscription draws, from its own seeded stream and
// in this order, whether it is dropped, duplicated, held back (reorder), and
// its jitter; the draws happen whatever the settings, so changing one
// probability does not reshuffle the others. Content faults (EventTSSkew,
// ShuffleKeys, VolatileField) change the event JSON of this subscription's
// copies; they apply to events (Publish, PublishTo and POST /sim/events
// "event" with a JSON object), never to raw "content".
type Faults struct {
	// Delay holds each frame this long before sending it to the sockets
	// open at that time; with no socket then, the frame is lost (counted
	// in SubscriptionStatus.Lost). Zero: no delay.
	Delay Duration `json:"delay"`
	// Jitter adds a uniform random extra delay in [0, Jitter) to each frame;
	// frames may then overtake each other. Zero: none.
	Jitter Duration `json:"jitter"`
	// Reorder is the chance, in [0, 1], that a frame is held back until
	// 1..ReorderWindow later frames (uniform) have been sent, or until
	// ReorderMaxHold has passed. Zero: never.
	Reorder float64 `json:"reorder"`
	// ReorderWindow is the most later frames that overtake a held frame.
	// Zero means DefaultReorderWindow (3).
	ReorderWindow int `json:"reorder_window"`
	// ReorderMaxHold is the longest a frame is held back. Zero means
	// DefaultReorderMaxHold (1s).
	ReorderMaxHold Duration `json:"reorder_max_hold"`
	// Duplicate is the chance, in [0, 1], that a frame is sent twice, back to
	// back, byte-identical. Zero: never.
	Duplicate float64 `json:"duplicate"`
	// Drop is the chance, in [0, 1], that a frame is never sent to this
	// subscription. A dropped copy does not count as delivered. Zero: never.
	Drop float64 `json:"drop"`
	// HalfOpen blackholes the subscription: its open sockets stay open, but
	// the server sends them nothing at all (no events, no heartbeat replies,
	// no close) and ignores what it reads; a new socket is accepted the same
	// way, without even build_connection. Setting it false again closes
	// those sockets abruptly (no close frame), as a server that gave up on
	// them; new sockets then work normally.
	HalfOpen bool `json:"half_open"`
	// EventTSSkew is added to event_ts of this subscription's copies, in
	// milliseconds (negative: older). Zero: none.
	EventTSSkew int64 `json:"event_ts_skew"`
	// ShuffleKeys re-encodes each copy's event JSON with a random key order
	// (at every level) that differs from the sorted order.
	ShuffleKeys bool `json:"shuffle_keys"`
	// VolatileField, when set, is a payload.object field (e.g.
	// "download_url") set on each copy to a value unique to this
	// subscription and copy, like a signed download URL.
	VolatileField string `json:"volatile_field"`
}

// zero reports whether f has no fault.
func (f Faults) zero() bool { return f == Faults{} }

// changesContent reports whether f changes the event JSON.
func (f Faults) changesContent() bool {
	return f.EventTSSkew != 0 || f.ShuffleKeys || f.VolatileField != ""
}

// withDefaults returns f with the reorder defaults applied.
func (f Faults) withDefaults() Faults {
	f.ReorderWindow = cmp.Or(f.ReorderWindow, DefaultReorderWindow)
	f.ReorderMaxHold = cmp.Or(f.ReorderMaxHold, Duration(DefaultReorderMaxHold))
	return f
}

// withDefaults returns a copy of c with defaults applied and slices cloned.
func (c Config) withDefaults() Config {
	c.Subscriptions = slices.Clone(c.Subscriptions)
	c.Settings = c.Settings.withDefaults()
	return c
}

// withDefaults returns a deep copy of s with every zero field that has a
// default set to it.
func (s Settings) withDefaults() Settings {
	s = s.clone()
	s.TokenMode = cmp.Or(s.TokenMode, DefaultTokenMode)
	s.TokenCap = cmp.Or(s.TokenCap, DefaultTokenCap)
	s.TokenTTL = cmp.Or(s.TokenTTL, Duration(DefaultTokenTTL))
	s.TokenExpiry = cmp.Or(s.TokenExpiry, DefaultTokenExpiry)
	if len(s.FailureWordings) == 0 {
		s.FailureWordings = slices.Clone(DefaultFailureWordings)
	}
	if len(s.Scopes) == 0 {
		s.Scopes = slices.Clone(defaultScopes)
	}
	s.InvalidClientStatus = cmp.Or(s.InvalidClientStatus, DefaultInvalidClientStatus)
	s.TokenFaultStatus = cmp.Or(s.TokenFaultStatus, DefaultTokenFaultStatus)
	s.TokenRetryAfter = cmp.Or(s.TokenRetryAfter, Duration(DefaultTokenRetryAfter))
	s.TokenDelay = cmp.Or(s.TokenDelay, Duration(DefaultTokenDelay))
	s.RefreshTokenTTL = cmp.Or(s.RefreshTokenTTL, Duration(DefaultRefreshTokenTTL))
	s.ConnectedContent = cmp.Or(s.ConnectedContent, DefaultConnectedContent)
	s.CloseCode = cmp.Or(s.CloseCode, DefaultCloseCode)
	s.SecondConnection = cmp.Or(s.SecondConnection, DefaultSecondConnection)
	s.ScopeErrorStatus = cmp.Or(s.ScopeErrorStatus, DefaultScopeErrorStatus)
	for id, f := range s.Faults {
		if f.zero() {
			delete(s.Faults, id)
			continue
		}
		s.Faults[id] = f.withDefaults()
	}
	return s
}

// clone returns a deep copy of s.
func (s Settings) clone() Settings {
	s.FailureWordings = slices.Clone(s.FailureWordings)
	s.Scopes = slices.Clone(s.Scopes)
	s.Faults = maps.Clone(s.Faults)
	s.RateLimitQPS = maps.Clone(s.RateLimitQPS)
	s.RateLimitDaily = maps.Clone(s.RateLimitDaily)
	return s
}
