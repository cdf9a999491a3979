package adapter

import (
	"encoding/json"
	"net/http"
)

// Handler serves a node's operational endpoints:
//
//	GET /healthz  200 while the process runs
//	GET /readyz   200 when the socket is up and the node is leader or standby; 503 otherwise
//	GET /status   NodeStatus as JSON (no secrets)
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck // best effort
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s := n.Status()
		ready := (s.Role == RoleLeader || s.Role == RoleStandby) && (n.source == nil || s.SocketUp)
		if !ready {
			http.Error(w, "not ready: role "+s.Role, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // best effort
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.Status()) //nolint:errcheck // best effort
	})
	return mux
}
