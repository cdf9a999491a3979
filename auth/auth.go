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
