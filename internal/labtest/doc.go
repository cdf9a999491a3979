// Package labtest is the in-process redundancy lab the adapter and doctor
// tests share: embedded etcd on loopback, the simulated Zoom and the
// reference recorder as httptest servers, and node runtimes built by
// adapter/assemble as `zccadapter run` builds them.
//
// It is a test helper: only tests import it, never production code
// (internal/archtest checks this). It builds nodes in-process, never through
// cmd or deploy.
package labtest
