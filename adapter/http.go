package adapter

import (
	"encoding/json"
	"net/http"
	"time"
)

// Handler serves a node's operational endpoints:
//
//	GET /healthz  200 while the process runs
//	GET /readyz   200 when the node is leader or standby, reaches etcd, its socket is up and (as leader) the recorder answers,
//	              and (as standby) a node holds the election (else 503 "no leader in the pair"); 503 otherwise
//	GET /status   StatusDoc as JSON (no secrets)
//	GET /metrics  Prometheus metrics (NewCollector, plus Go runtime and process metrics)
//
// None of them carries a secret: no client secret, token, subscription URL
// or recorder credential (G8). Use HandlerWith (as adapter/assemble's
// Parts.Handler does) to add the token source's metrics.
func (n *Node) Handler() http.Handler { return n.HandlerWith(MetricsOptions{}) }

// HandlerWith is Handler with extra metric sources.
func (n *Node) HandlerWith(opts MetricsOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck // best effort
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s := n.Status()
		switch {
		case s.Role != RoleLeader && s.Role != RoleStandby:
			http.Error(w, "not ready: role "+s.Role, http.StatusServiceUnavailable)
			return
		case !s.EtcdOK:
			http.Error(w, "not ready: etcd not reachable", http.StatusServiceUnavailable)
			return
		case n.source != nil && !s.SocketUp:
			http.Error(w, "not ready: subscription socket down", http.StatusServiceUnavailable)
			return
		case !s.Recorder.OK:
			http.Error(w, "not ready: recorder not answering since "+s.Recorder.Since.Format(time.RFC3339), http.StatusServiceUnavailable)
			return
		case s.Role == RoleStandby && s.NoLeader:
			// The standby's cached look at the election (checkLeader),
			// not a read per request.
			msg := "not ready: no leader in the pair"
			if s.LastPromotionError != "" {
				msg += " (last promotion failed: " + s.LastPromotionError + ")"
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // best effort
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(StatusDoc{NodeStatus: n.Status(), Version: n.cfg.Version}) //nolint:errcheck // best effort
	})
	mux.Handle("GET /metrics", metricsHandler(n, opts))
	return mux
}
