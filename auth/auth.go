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
// (C-07).
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
package auth

import (
	"context"

	"golang.org/x/oauth2"
)

// TokenSource yields access tokens. Implementations are safe for concurrent
// use and refresh lazily. Token blocks until a token is available or ctx ends;
// ctx bounds the whole call, including any token-endpoint request (see
// [SharedSource.Token] for the one exception, a refresh already sent).
type TokenSource interface {
	Token(ctx context.Context) (*oauth2.Token, error)
	// Invalidate reports that the server rejected tok (for example a
	// build_connection failure frame); the next Token call returns a
	// different, freshly fetched token. Invalidating a token that is no
	// longer current is a no-op.
	Invalidate(tok *oauth2.Token)
}
