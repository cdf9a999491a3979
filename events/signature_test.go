package events_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

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

func TestCheckSignatureTimestampWindow(t *testing.T) {
	const secret = "s3cret-token"
	content := `{"event":"contact_center.engagement_started","event_ts":1,"payload":{"account_id":"a","object":{"engagement_id":"e"}}}`
	now := time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC)
	signed := func(ts string) events.Frame {
		return events.Frame{Module: events.ModuleMessage, Content: content, Header: map[string]string{
			events.HeaderTimestamp: ts, events.HeaderSignature: zoom.Sign(secret, ts, content)}}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	sec := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	forged := signed(ms(-time.Hour))
	forged.Header[events.HeaderSignature] = zoom.Sign("another", ms(0), content)
	for _, c := range []struct {
		name   string
		f      events.Frame
		maxAge time.Duration
		want   error // nil: accepted
	}{
		{"now, milliseconds", signed(ms(0)), 0, nil},
		{"now, seconds", signed(sec(0)), 0, nil},
		{"4m old", signed(ms(-4 * time.Minute)), 0, nil},
		{"4m ahead", signed(sec(4 * time.Minute)), 0, nil},
		{"replay 6m old (ms)", signed(ms(-6 * time.Minute)), 0, events.ErrTimestampStale},
		{"replay a day old (s)", signed(sec(-24 * time.Hour)), 0, events.ErrTimestampStale},
		{"6m ahead", signed(ms(6 * time.Minute)), 0, events.ErrTimestampFuture},
		{"31s old, max age 30s", signed(ms(-31 * time.Second)), 30 * time.Second, events.ErrTimestampStale},
		{"a day old, check off", signed(ms(-24 * time.Hour)), -1, nil},
		{"not a number", signed("yesterday"), 0, events.ErrTimestampInvalid},
		{"negative", signed("-5"), 0, events.ErrTimestampInvalid},
		{"forged old frame", forged, 0, events.ErrSignatureMismatch},
		{"no headers", events.Frame{Module: events.ModuleMessage, Content: content}, 0, events.ErrSignatureMissing},
	} {
		err := events.CheckSignature(secret, c.f, now, c.maxAge)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: CheckSignature = %v; want accepted", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: CheckSignature = %v; want %v", c.name, err, c.want)
		}
		var se *events.SignatureError
		if err != nil && !errors.As(err, &se) {
			t.Errorf("%s: error %T is not a *SignatureError", c.name, err)
		}
	}
}
