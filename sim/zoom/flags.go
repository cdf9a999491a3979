package zoom

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultSettings returns the settings a zero Settings stands for, every
// default filled in.
func DefaultSettings() Settings { return Settings{}.withDefaults() }

// RegisterFlags defines one flag per setting on fs, bound to s, named after
// the setting's JSON name with '-' for '_' (token_mode: -token-mode), with
// s's current values as the defaults. List and map settings take: scopes a
// comma-separated list; failure-wordings one wording per use (repeat it);
// rate-limit-qps and rate-limit-daily category=N pairs, comma-separated;
// faults a JSON object keyed by subscription id. New validates the result.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&s.Seed, "seed", s.Seed, "seed of every random fault decision, key shuffle and volatile value")

	fs.StringVar(&s.TokenMode, "token-mode", s.TokenMode, "access tokens: multi (all valid until expiry), legacy-invalidate (a new one cancels the earlier ones) or capped")
	fs.IntVar(&s.TokenCap, "token-cap", s.TokenCap, "most live access tokens in capped mode; one more cancels the oldest")
	durationFlag(fs, &s.TokenTTL, "token-ttl", "access token lifetime (expires_in)")
	fs.StringVar(&s.TokenExpiry, "token-expiry", s.TokenExpiry, "open socket whose token expires or is cancelled: connect-only (kept) or close-at-expiry (failure frame, close)")
	fs.Var(&wordingsFlag{p: &s.FailureWordings}, "failure-wordings", "build_connection `text` of an invalid token, used in turn; repeat the flag for several (default "+quoteList(s.FailureWordings)+")")
	fs.Var(&listFlag{&s.Scopes}, "scopes", "comma-separated `scopes` granted to new tokens (default: the PROTOCOL §4 list)")
	fs.IntVar(&s.InvalidClientStatus, "invalid-client-status", s.InvalidClientStatus, "HTTP status for bad client credentials (400-499)")
	fs.BoolVar(&s.TokenQueryParams, "token-query-params", s.TokenQueryParams, "also read token-request parameters from the query string (default: form body only)")
	fs.StringVar(&s.TokenFault, "token-fault", s.TokenFault, `token endpoint fault: "429", "5xx" or "slow" (empty: none)`)
	fs.IntVar(&s.TokenFaultNext, "token-fault-next", s.TokenFaultNext, "the next N token requests get --token-fault")
	fs.Float64Var(&s.TokenFaultProbability, "token-fault-probability", s.TokenFaultProbability, "then each token request gets --token-fault with this probability")
	fs.IntVar(&s.TokenFaultStatus, "token-fault-status", s.TokenFaultStatus, `HTTP status of the "5xx" fault (500-599)`)
	durationFlag(fs, &s.TokenRetryAfter, "token-retry-after", `Retry-After of the "429" fault (whole seconds, rounded up)`)
	durationFlag(fs, &s.TokenDelay, "token-delay", `delay of the "slow" fault`)

	durationFlag(fs, &s.RefreshTokenTTL, "refresh-token-ttl", "refresh token lifetime")
	fs.IntVar(&s.RefreshReuseTolerance, "refresh-reuse-tolerance", s.RefreshReuseTolerance, "uses allowed of a rotated-out refresh token (beyond: invalid_grant 4740)")
	fs.IntVar(&s.LoseRefreshReply, "lose-refresh-reply", s.LoseRefreshReply, "the next N refresh requests are processed but their connection is closed without a reply")

	fs.StringVar(&s.ConnectedContent, "connected-content", s.ConnectedContent, "content of a build_connection success frame")
	fs.IntVar(&s.CloseCode, "close-code", s.CloseCode, "WebSocket close code of refused, kicked, timed-out and token-expired sockets")
	fs.StringVar(&s.SecondConnection, "second-connection", s.SecondConnection, "second socket on one subscription: kick, reject or allow")
	durationFlag(fs, &s.HeartbeatTimeout, "heartbeat-timeout", "close a socket that sent no heartbeat this long (0: never)")
	fs.Var(&faultsFlag{&s.Faults}, "faults", "per-subscription delivery faults as a `JSON` object, e.g. {\"sub-a\":{\"delay\":\"2s\",\"drop\":0.1,\"half_open\":false}}")

	fs.IntVar(&s.ScopeErrorStatus, "scope-error-status", s.ScopeErrorStatus, "HTTP status of a REST call whose token lacks a scope (code 4711)")
	fs.Var(&limitsFlag{&s.RateLimitQPS}, "rate-limit-qps", "REST requests per second per category, `category=N,...` e.g. light=20,medium=10,heavy=5 (default: none)")
	fs.Var(&limitsFlag{&s.RateLimitDaily}, "rate-limit-daily", "REST requests per UTC day per category, `category=N,...` e.g. heavy=1000 (default: none)")
}

// durationFlag binds a Duration setting.
func durationFlag(fs *flag.FlagSet, d *Duration, name, usage string) {
	fs.DurationVar((*time.Duration)(d), name, time.Duration(*d), usage)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// listFlag is a comma-separated list; each use replaces the list.
type listFlag struct{ p *[]string }

func (f *listFlag) String() string {
	if f == nil || f.p == nil || slices.Equal(*f.p, defaultScopes) {
		return "" // too long to show as a default
	}
	return strings.Join(*f.p, ",")
}

func (f *listFlag) Set(v string) error {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	*f.p = out
	return nil
}

// wordingsFlag is a list given one entry per use; the first use replaces
// the default.
type wordingsFlag struct {
	p   *[]string
	set bool // the default was replaced
}

func (f *wordingsFlag) String() string { return "" }

func (f *wordingsFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty wording")
	}
	if !f.set {
		f.set = true
		*f.p = nil
	}
	*f.p = append(*f.p, v)
	return nil
}

// limitsFlag is category=N pairs, comma-separated; each use adds to the map.
type limitsFlag struct{ p *map[string]int }

func (f *limitsFlag) String() string {
	if f == nil || f.p == nil || len(*f.p) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(*f.p)) {
		parts = append(parts, k+"="+strconv.Itoa((*f.p)[k]))
	}
	return strings.Join(parts, ",")
}

func (f *limitsFlag) Set(v string) error {
	if *f.p == nil {
		*f.p = make(map[string]int)
	}
	for _, pair := range strings.Split(v, ",") {
		k, n, ok := strings.Cut(strings.TrimSpace(pair), "=")
		i, err := strconv.Atoi(n)
		if !ok || err != nil {
			return fmt.Errorf("%q: want category=N", pair)
		}
		(*f.p)[strings.ToLower(k)] = i
	}
	return nil
}

// faultsFlag is a JSON object of Faults keyed by subscription id; each use
// replaces the faults of the subscriptions it names.
type faultsFlag struct{ p *map[string]Faults }

func (f *faultsFlag) String() string {
	if f == nil || f.p == nil || len(*f.p) == 0 {
		return ""
	}
	b, _ := json.Marshal(*f.p)
	return string(b)
}

func (f *faultsFlag) Set(v string) error {
	var m map[string]Faults
	if err := decodeStrict([]byte(v), &m); err != nil {
		return fmt.Errorf("faults JSON: %w", err)
	}
	if *f.p == nil {
		*f.p = make(map[string]Faults)
	}
	maps.Copy(*f.p, m)
	return nil
}
