// Package config loads a node's configuration: one YAML file, every key
// overridable by an environment variable (ZCC_ + the key path in upper case,
// '.' → '_', e.g. zoom.client_secret → ZCC_ZOOM_CLIENT_SECRET; lists are
// comma-separated), secrets from the environment or from *_file keys.
// Validate reports every problem at once, each with its key.
//
// What it does not check: that anything the configuration names answers.
// It reaches no etcd member, recorder or Zoom endpoint; `zccadapter doctor`
// does.
//
// It is a leaf: it imports nothing of this module but the leaves redact and
// wait. Mapping the configuration onto the parts of a node is the job of
// adapter/assemble (internal/archtest checks this).
package config
