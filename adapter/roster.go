package adapter

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// Agent states sent to the recorder's roster (POST /v1/agents).
const (
	AgentLoggedIn  = "logged_in"  // contact_center.user_login
	AgentLoggedOut = "logged_out" // contact_center.user_logout
	AgentSignedIn  = "signed_in"  // user.signed_in
	AgentSignedOut = "signed_out" // user.signed_out
)

// AgentUpdate turns an agent or user-activity event into a roster update
// for the recorder (DESIGN §5): login and logout, sign-in and sign-out, a
// status change (state "status:<current_status_name>") or a presence change
// ("presence:<presence_status>"). It returns false for any other event. The
// id is deterministic (agent, state and the event's dedup key), so both
// nodes send the same update; Epoch and Node are left for the sender.
func AgentUpdate(ev *events.Event) (rcapi.AgentUpdate, bool) {
	u := rcapi.AgentUpdate{At: ev.Time.UTC().Truncate(time.Millisecond), Metadata: map[string]string{"event": ev.Name}}
	switch {
	case ev.Agent != nil:
		a := ev.Agent
		u.AgentID = a.UserID
		put(u.Metadata, "agent_name", a.DisplayName)
		put(u.Metadata, "email", a.Email)
		switch strings.TrimPrefix(ev.Name, "contact_center.") {
		case "user_login":
			u.State = AgentLoggedIn
		case "user_logout":
			u.State = AgentLoggedOut
		default:
			u.State = "status:" + a.CurrentStatusName
			put(u.Metadata, "sub_status", a.CurrentSubStatusName)
			put(u.Metadata, "previous_status", a.PreviousStatusName)
		}
	case ev.User != nil:
		a := ev.User
		u.AgentID = a.ID
		put(u.Metadata, "email", a.Email)
		put(u.Metadata, "client_type", a.ClientType)
		switch ev.Name {
		case "user.signed_in":
			u.State = AgentSignedIn
		case "user.signed_out":
			u.State = AgentSignedOut
		default:
			u.State = "presence:" + a.PresenceStatus
		}
	default:
		return rcapi.AgentUpdate{}, false
	}
	if u.AgentID == "" {
		return rcapi.AgentUpdate{}, false
	}
	h := sha256.Sum256([]byte(u.AgentID + "\x00" + u.State + "\x00" + ev.Key))
	u.ID = hex.EncodeToString(h[:16])
	return u, true
}
