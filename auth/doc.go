// Package auth obtains and shares Zoom OAuth access tokens (PROTOCOL.md §2).
//
// Three grants are supported, each as a [Fetcher]:
//
//   - Server-to-Server (account_credentials, or client_credentials): [NewS2S].
//   - Authorization code: [Exchange], run once by an operator
//     (`zccadapter auth exchange`); it yields the first refresh token.
//   - Refresh token with rotation: [NewRefresh], a [Refresher] that trades
//     the refresh token the cluster holds for a new access token and a new
//     refresh token (the old one stops working at once).
//
// A [SharedSource] is the [TokenSource] the nodes use: it shares one token
// between the nodes of a pair through a [Store] (implemented on etcd by
// package cluster), fetches only under the store's cluster-wide lock, and so
// never lets two nodes on one OAuth client fetch or refresh at once. That is
// what keeps two nodes from cancelling each other's tokens
// ("legacy-invalidate", case C-06) and from spending one refresh token twice
// (C-07). [MinimumScopes] and [MissingScopes] say which granted scopes the
// adapter needs (doctor and `zccadapter auth token` report them).
//
// What this package does not guarantee: a refresh whose reply is lost after
// Zoom processed it cannot be recovered by any client. Zoom has rotated the
// refresh token and the new one never arrived; every later refresh gets
// invalid_grant. The [SharedSource] turns that into [ErrReauthorize] (logged
// once as an alert, no retry loop against the token endpoint) and the
// operator must re-authorise with `zccadapter auth exchange`.
//
// Nothing in this package logs or returns a secret: errors carry Zoom's
// reason/error fields and the operator's next step, never the client secret,
// an access or refresh token, or an authorization code.
//
// It imports nothing of this module but the leaves redact and wait: the
// [Store] is an interface, so auth knows nothing of etcd or of the cluster
// (internal/archtest checks this).
package auth
