// Package authtest is a strict fake of Zoom's token endpoint for tests of the
// authorization-code and refresh-token grants (PROTOCOL.md §2): codes are
// single-use, every refresh rotates the refresh token and the old one stops
// working, and the reply of a processed refresh can be lost (C-07).
//
// The fake asserts every request — POST to /oauth/token, Basic client auth,
// an application/x-www-form-urlencoded body, an empty query string, no
// client secret in the body — and fails the test on a malformed request and
// on any request of a grant the test did not Allow.
//
// It is a test helper: only tests import it, never production code
// (internal/archtest checks this).
package authtest
