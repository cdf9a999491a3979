package config

import (
	"net"
	"net/url"
	"strings"
)

// Warnings lists what the configuration allows but an operator should know:
// each credential that travels in clear text to a host other than loopback
// because allow_insecure_credentials says so. The node logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	for _, e := range c.cleartextCredentials() {
		if e.allowed {
			w = append(w, e.key+": "+e.what+" ("+e.allowKey+" is set)")
		}
	}
	return w
}

// HTTPTLS reports whether the node serves its endpoints over HTTPS.
func (c *Config) HTTPTLS() bool { return c.HTTPTLSCertFile != "" }

// exposure is a credential that travels in clear text to a host other than
// loopback.
type exposure struct {
	key, what, fix string
	allowKey       string // the setting that allows it
	allowed        bool
}

// cleartextCredentials lists the credentials c sends in clear text to hosts
// other than loopback.
func (c *Config) cleartextCredentials() []exposure {
	var out []exposure
	add := func(key, what, fix, section string, sectionAllows bool) {
		e := exposure{key: key, what: what, fix: fix, allowKey: "allow_insecure_credentials"}
		if section != "" {
			e.allowKey = section + ".allow_insecure_credentials"
		}
		switch {
		case section != "" && sectionAllows:
			e.allowed = true
		case c.AllowInsecureCredentials:
			e.allowed, e.allowKey = true, "allow_insecure_credentials"
		}
		out = append(out, e)
	}
	if u, ok := cleartextURL(c.Zoom.TokenURL, "http"); ok {
		add("zoom.token_url", "sends the client secret in clear text to "+u.Host, "https://", "zoom", c.Zoom.AllowInsecureCredentials)
	}
	if u, ok := cleartextURL(c.Zoom.SubscriptionURL, "ws"); ok {
		add("zoom.subscription_url", "sends the access token in clear text to "+u.Host, "wss://", "zoom", c.Zoom.AllowInsecureCredentials)
	}
	if u, ok := cleartextURL(c.Recorder.URL, "http"); ok && c.Recorder.BearerToken != "" {
		add("recorder.url", "sends the recorder bearer token in clear text to "+u.Host, "https:// with recorder.tls if needed", "recorder", c.Recorder.AllowInsecureCredentials)
	}
	if c.Etcd.Username != "" && !c.Etcd.TLS.Enabled() {
		for _, ep := range c.Etcd.Endpoints {
			if host, ok := cleartextEndpoint(ep); ok {
				add("etcd.endpoints", "sends the etcd password in clear text to "+host, "etcd.tls (or https:// endpoints)", "etcd", c.Etcd.AllowInsecureCredentials)
				break
			}
		}
	}
	if c.HTTPBearerToken != "" && !c.HTTPTLS() && !isLoopbackAddr(c.HTTPAddr) {
		add("http_bearer_token", "is sent in clear text to "+c.HTTPAddr+" by status, doctor and monitoring", "http_tls_cert_file and http_tls_key_file", "", false)
	}
	return out
}

// cleartextURL parses raw and reports whether its scheme is plain (http or
// ws) and its host is not loopback.
func cleartextURL(raw, plain string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, plain) || u.Host == "" {
		return nil, false
	}
	return u, !isLoopbackHost(u.Hostname())
}

// cleartextEndpoint reports an etcd endpoint's host when the connection to
// it is plain (no https:// scheme) and the host is not loopback.
func cleartextEndpoint(ep string) (string, bool) {
	hostport := ep
	if scheme, rest, ok := strings.Cut(ep, "://"); ok {
		if strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "unixs") {
			return "", false
		}
		if strings.EqualFold(scheme, "unix") {
			return "", false
		}
		hostport = rest
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return hostport, !isLoopbackHost(host)
}

// isLoopbackAddr reports whether a listen address host:port binds loopback
// only (an empty or unspecified host binds every interface).
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP. Names
// are not resolved.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// SecretFile is a file named by the configuration that holds a secret.
type SecretFile struct {
	Key  string // e.g. "zoom.client_secret_file"
	Path string // as configured: relative paths are relative to the node's working directory
}

// SecretFiles lists the files of c that hold secrets (the *_file secret
// keys and the TLS private keys), in a fixed order, without the unset ones.
func (c *Config) SecretFiles() []SecretFile {
	var out []SecretFile
	for _, f := range []SecretFile{
		{"zoom.client_secret_file", c.Zoom.ClientSecretFile},
		{"zoom.secret_token_file", c.Zoom.SecretTokenFile},
		{"etcd.password_file", c.Etcd.PasswordFile},
		{"etcd.tls.key_file", c.Etcd.TLS.KeyFile},
		{"recorder.bearer_token_file", c.Recorder.BearerTokenFile},
		{"recorder.tls.key_file", c.Recorder.TLS.KeyFile},
		{"http_bearer_token_file", c.HTTPBearerTokenFile},
		{"http_tls_key_file", c.HTTPTLSKeyFile},
	} {
		if f.Path != "" {
			out = append(out, f)
		}
	}
	return out
}
