package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/redact"
)

// ReauthorizeStep is the operator's next step when the refresh token is gone:
// it is part of every [ReauthorizeError] message.
const ReauthorizeStep = "re-authorise the app: open its authorization URL, approve, and within 5 minutes run " +
	"`zccadapter auth exchange --config FILE --code CODE --redirect-uri URI` with the code from the redirect"

// Errors of this package.
var (
	// ErrReauthorize is matched (errors.Is) by every *ReauthorizeError: the
	// refresh-token grant cannot go on until an operator re-authorises the app
	// with `zccadapter auth exchange`. Retrying does not help.
	ErrReauthorize = errors.New("auth: the Zoom app must be re-authorised: " + ReauthorizeStep)
	// ErrTokenUnreadable is matched by a Store's error when the stored token
	// was sealed with another client secret (a rotated secret, or nodes
	// configured with different secrets). A SharedSource then fetches a new
	// token, which replaces it: only a node whose secret Zoom accepts can.
	ErrTokenUnreadable = errors.New("auth: the stored token cannot be decrypted with this client secret")
)

// ReauthorizeError is returned by the refresh-token grant ([NewRefresh], and
// [SharedSource.Token] on top of it) when it cannot go on without an
// operator: the cluster store holds no refresh token, or Zoom refused it with
// invalid_grant (it was already used — for example the reply of a processed
// refresh was lost, case C-07 — or revoked by a re-authorisation). It
// matches [ErrReauthorize] with errors.Is and unwraps to the *TokenError when
// there is one.
type ReauthorizeError struct {
	// Cause is Zoom's refusal of the refresh token; nil when no refresh token
	// was stored.
	Cause *TokenError
}

// Error says why the grant cannot go on and what the operator must run.
func (e *ReauthorizeError) Error() string {
	if e.Cause == nil {
		return "auth: the cluster store holds no refresh token for the refresh_token grant; " + ReauthorizeStep
	}
	return fmt.Sprintf("auth: Zoom refused the stored refresh token (%s): it was already used or was revoked "+
		"(if the reply of an earlier refresh was lost, Zoom rotated it and the new one never arrived); %s",
		e.Cause.fields(), ReauthorizeStep)
}

// Is reports whether target is ErrReauthorize.
func (e *ReauthorizeError) Is(target error) bool { return target == ErrReauthorize }

// Unwrap returns Cause, or nil.
func (e *ReauthorizeError) Unwrap() error {
	if e.Cause == nil {
		return nil
	}
	return e.Cause
}

// TokenError is the token endpoint's refusal, with Zoom's fields and the
// operator's next step. It never holds a secret: Reason is scrubbed of the
// request's secrets before it is stored.
type TokenError struct {
	Grant  string // grant_type of the refused request, e.g. refresh_token
	Status int    // HTTP status
	Code   string // Zoom's "error" field, e.g. invalid_client, invalid_grant
	Reason string // Zoom's "reason" field
	Number int    // Zoom's numbered error ("code"), e.g. 4740; 0 when absent
}

// Error renders the grant, Zoom's fields and NextStep.
func (e *TokenError) Error() string {
	grant := cmp.Or(e.Grant, "token")
	return fmt.Sprintf("token endpoint refused the %s grant (%s); next step: %s", grant, e.fields(), e.NextStep())
}

// fields renders Zoom's fields of the refusal.
func (e *TokenError) fields() string {
	s := fmt.Sprintf("HTTP %d, error=%q, reason=%q", e.Status, e.Code, e.Reason)
	if e.Number != 0 {
		s += fmt.Sprintf(", code %d", e.Number)
	}
	return s
}

// Refusal classes of NextStep, from Zoom's numbered errors (PROTOCOL.md §2).
func (e *TokenError) badClient() bool {
	return e.Status == http.StatusUnauthorized || e.Code == "invalid_client" || e.Number == 4702 || e.Number == 4704
}

// NextStep says what the operator should do about the refusal.
func (e *TokenError) NextStep() string {
	reason := strings.ToLower(e.Reason)
	switch {
	case e.badClient():
		return "check zoom.client_id and the client secret (ZCC_ZOOM_CLIENT_SECRET or zoom.client_secret_file) " +
			"against the app's credentials in the Zoom App Marketplace"
	case e.Code == "unsupported_grant_type" || e.Number == 4705:
		return "set zoom.grant_type to a grant this app supports: account_credentials (or client_credentials) " +
			"for a Server-to-Server OAuth app, refresh_token for an app authorised by a user"
	case e.Status == http.StatusTooManyRequests:
		return "Zoom is rate limiting token requests; the node retries with backoff — check that no other " +
			"client on this app fetches tokens in a loop"
	case e.Status >= 500:
		return "Zoom's token endpoint failed; the node retries with backoff; if it persists see status.zoom.us"
	case e.Grant == GrantAuthorizationCode && (e.Number == 4709 || strings.Contains(reason, "redirect")):
		return "--redirect-uri must equal, character for character, the redirect URL used to get the code " +
			"and registered on the app"
	case e.Grant == GrantAuthorizationCode:
		return "codes are single-use and expire after 5 minutes; get a new one"
	case e.Grant == GrantRefreshToken && isInvalidGrant(e):
		return ReauthorizeStep
	case e.Grant == GrantAccountCredentials && strings.Contains(reason, "account"):
		return "check zoom.account_id against the app's credentials in the Zoom App Marketplace"
	default:
		return "check the app in the Zoom App Marketplace (type, activation, scopes) and the zoom section of the configuration"
	}
}

// isInvalidGrant reports whether te refuses the grant itself (the code or
// refresh token), not the client.
func isInvalidGrant(te *TokenError) bool {
	return te.Code == "invalid_grant" || te.Number == 4740 || te.Number == 4741
}

// tokenError converts an error of golang.org/x/oauth2's token request into
// a *TokenError (a refusal) or a wrapped transport error, with every secret
// scrubbed from the text.
func tokenError(grant string, err error, secrets ...string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("token endpoint (%s grant): %w", grant, err)
		}
		return fmt.Errorf("token endpoint (%s grant): %w", grant, redact.Scrub(err, secrets...))
	}
	te := &TokenError{Grant: grant, Code: re.ErrorCode}
	if re.Response != nil {
		te.Status = re.Response.StatusCode
	}
	var body struct {
		Reason string          `json:"reason"`
		Error  string          `json:"error"`
		Code   json.RawMessage `json:"code"`
	}
	if json.Unmarshal(re.Body, &body) == nil {
		te.Reason = body.Reason
		te.Code = cmp.Or(te.Code, body.Error)
		te.Number = zoomNumber(body.Code)
	}
	te.Reason = redact.Truncate(redact.Secrets(te.Reason, secrets...), 300)
	te.Code = redact.Truncate(redact.Secrets(te.Code, secrets...), 64)
	return te
}

// zoomNumber reads Zoom's numbered error, a JSON number or a numeric string.
func zoomNumber(raw json.RawMessage) int {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
