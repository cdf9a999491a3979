// Package redact owns guarantee G8 (DESIGN §3): the client secret, access
// and refresh tokens, the recorder's bearer credential and the subscription
// WebSocket URL with its token never reach a log line, an error string, a
// status page or test output. Every scrubbing of a secret in this module is
// one of its functions:
//
//   - [URL] redacts the token-ish parameters and password of a URL;
//   - [Text] redacts token-ish name=value pairs and bearer credentials in
//     free text;
//   - [Secrets] replaces known secret values (and their query-escaped forms);
//   - [Error] makes an error fit to show: a [*net/url.Error]'s URL dropped,
//     then [Scrub];
//   - [Scrub] replaces an error whose text holds a secret by a clean one;
//   - [Truncate] bounds a text taken from a peer, [Tail] hints at a secret.
//
// Every redacted value becomes the text REDACTED.
//
// It is a leaf: it imports nothing of this module, and every package may
// import it, events and auth included.
//
// What it does not guarantee: it recognises secrets by parameter name and
// by the values its callers pass. A secret under an innocent name in free
// text, and not passed to [Secrets], [Error] or [Scrub], is not found.
// Redact before truncating: a cut secret no longer matches.
package redact
