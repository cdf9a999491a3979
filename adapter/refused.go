package adapter

import (
	"time"

	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
)

// refused counts and reports a command the recorder refused (422, 400):
// Invalid, Refused by action and RecentRefused (bounded), and an Error log.
// A refused stop, pause or resume is an alert: the recorder did not do it,
// so the recording may still be running (or still be paused, or be
// capturing a hold).
func (L *leader) refused(c rcapi.Command, err error) {
	r := RefusedCommand{At: time.Now().UTC(), EngagementID: c.EngagementID, SegmentID: c.SegmentID, Action: c.Action,
		CommandID: c.ID, Reason: redact.Truncate(redact.Text(err.Error()), 200)}
	L.n.count(func(s *NodeStatus) {
		s.Invalid++
		if s.Refused == nil {
			s.Refused = map[string]int64{}
		}
		s.Refused[c.Action]++
		s.RecentRefused = append(s.RecentRefused[max(0, len(s.RecentRefused)-MaxRecentRefused+1):], r)
	})
	msg := "recorder refused a command"
	switch c.Action {
	case rcapi.ActionStop:
		msg = "recorder refused a stop: the recording may still be running; check the segment at the recorder"
	case rcapi.ActionPause:
		msg = "recorder refused a pause: the recording may be capturing the hold; check the segment at the recorder"
	case rcapi.ActionResume:
		msg = "recorder refused a resume: the recording may stay paused; check the segment at the recorder"
	}
	L.log.Error().Err(err).Str("action", c.Action).Str("engagement_id", c.EngagementID).Str("segment_id", c.SegmentID).
		Str("command_id", c.ID).Msg(msg)
}
