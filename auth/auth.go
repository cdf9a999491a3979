// Package auth obtains and shares Zoom OAuth access tokens.
//
// A TokenSource yields a valid access token; the cluster shares one token
// between the nodes of a pair through a Store (implemented on etcd by package
// cluster), so two nodes on one Server-to-Server OAuth client never cancel
// each other's tokens (PROTOCOL.md §2, "legacy-invalidate").
//
// Nothing in this package logs or returns a secret: errors carry Zoom's
// reason/error fields, never the client secret or a token.
package auth

import (
	"context"

	"golang.org/x/oauth2"
)

// TokenSource yields access tokens. Implementations are safe for concurrent
// use and refresh lazily. Token blocks until a token is available or ctx ends;
// ctx bounds the whole call, including any token-endpoint request.
type TokenSource interface {
	Token(ctx context.Context) (*oauth2.Token, error)
	// Invalidate reports that the server rejected tok (for example a
	// build_connection failure frame); the next Token call returns a
	// different, freshly fetched token. Invalidating a token that is no
	// longer current is a no-op.
	Invalidate(tok *oauth2.Token)
}
