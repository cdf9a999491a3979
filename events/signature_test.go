package events_test

import (
	"testing"

	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func TestSignatureVerification(t *testing.T) {
	content := `{"event":"contact_center.engagement_started","event_ts":1,"payload":{"account_id":"a","object":{"engagement_id":"e"}}}`
	f := events.Frame{Module: events.ModuleMessage, Content: content, Header: map[string]string{
		events.HeaderTimestamp: "1764410410000",
		events.HeaderSignature: zoom.Sign("s3cret-token", "1764410410000", content),
	}}
	if !events.VerifySignature("s3cret-token", f) {
		t.Fatal("a frame signed as the simulator signs it does not verify")
	}
	for name, mut := range map[string]func(*events.Frame){
		"other secret":   func(*events.Frame) {},
		"content edited": func(f *events.Frame) { f.Content += " " },
		"timestamp": func(f *events.Frame) {
			f.Header = map[string]string{events.HeaderTimestamp: "1", events.HeaderSignature: f.Header[events.HeaderSignature]}
		},
		"no headers": func(f *events.Frame) { f.Header = nil },
	} {
		g := f
		mut(&g)
		secret := "s3cret-token"
		if name == "other secret" {
			secret = "another"
		}
		if events.VerifySignature(secret, g) {
			t.Errorf("%s: verified", name)
		}
	}
}
