// Package testcerts makes throwaway PKI for tests: a CA, a server
// certificate for 127.0.0.1 and localhost, and a client certificate, as PEM
// files in a test's temporary directory. Never for production use.
//
// It is a test helper: only tests import it, never production code
// (internal/archtest checks this), and it imports nothing of this module.
package testcerts
