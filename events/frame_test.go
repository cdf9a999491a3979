package events

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFrame(t *testing.T) {
	tru, fls := true, false
	tests := []struct {
		name    string
		in      string
		want    Frame
		errPath string // expected ParseError.Field; "" means no error
	}{
		{"build ok", `{"module":"build_connection","success":true,"content":"ok","header":{}}`,
			Frame{Module: ModuleBuildConnection, Success: &tru, Content: "ok", Header: map[string]string{}}, ""},
		{"build failed", `{"module":"build_connection","success":false,"content":"token is empty","header":{}}`,
			Frame{Module: ModuleBuildConnection, Success: &fls, Content: "token is empty", Header: map[string]string{}}, ""},
		{"heartbeat reply", `{"module":"heartbeat","success":true,"content":"live","header":{}}`,
			Frame{Module: ModuleHeartbeat, Success: &tru, Content: "live", Header: map[string]string{}}, ""},
		{"heartbeat", `{"module":"heartbeat"}`, Frame{Module: ModuleHeartbeat}, ""},
		{"message", `{"module":"message","header":{"x-zm-request-timestamp":"1764410415","x-zm-signature":"v0=ab"},"content":"{\"event\":\"x\"}"}`,
			Frame{Module: ModuleMessage, Content: `{"event":"x"}`, Header: map[string]string{"x-zm-request-timestamp": "1764410415", "x-zm-signature": "v0=ab"}}, ""},
		{"message nested object", `{"module":"message","content":{"event":"x"}}`, Frame{Module: ModuleMessage, Content: `{"event":"x"}`}, ""},
		{"numeric header", `{"module":"message","header":{"x-zm-request-timestamp":1764410415,"n":null,"o":{}}}`,
			Frame{Module: ModuleMessage, Header: map[string]string{"x-zm-request-timestamp": "1764410415", "n": ""}}, ""},
		{"unknown module", `{"module":"surprise"}`, Frame{Module: "surprise"}, ""},
		{"null success", `{"module":"heartbeat","success":null}`, Frame{Module: ModuleHeartbeat}, ""},
		{"no module", `{"success":true}`, Frame{}, "frame.module"},
		{"empty module", `{"module":""}`, Frame{}, "frame.module"},
		{"module number", `{"module":1}`, Frame{}, "frame.module"},
		{"success string", `{"module":"heartbeat","success":"true"}`, Frame{}, "frame.success"},
		{"content number", `{"module":"message","content":5}`, Frame{}, "frame.content"},
		{"header array", `{"module":"message","header":[]}`, Frame{}, "frame.header"},
		{"not object", `[1]`, Frame{}, "frame"},
		{"garbage", `{"module":`, Frame{}, "frame"},
		{"empty", ``, Frame{}, "frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFrame([]byte(tt.in))
			if tt.errPath != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Field != tt.errPath {
					t.Fatalf("ParseFrame err = %v; want a ParseError on %s", err, tt.errPath)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFrame: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFrame =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestMessageFrameParsedTwice(t *testing.T) {
	for _, name := range sampleNames(t) {
		sample := loadSample(t, name)
		frame := mustJSON(t, map[string]any{
			"module":  "message",
			"header":  map[string]string{"x-zm-request-timestamp": "1", "x-zm-signature": "v0=x"},
			"content": string(sample),
		})
		f, err := ParseFrame(frame)
		if err != nil {
			t.Fatalf("%s: ParseFrame: %v", name, err)
		}
		ev, err := parseNearSamples([]byte(f.Content))
		if err != nil || ev.Name != name {
			t.Fatalf("%s: Parse(content) = %v, %v", name, ev, err)
		}
	}
}

func TestHeartbeatFrame(t *testing.T) {
	a := HeartbeatFrame()
	if string(a) != `{"module":"heartbeat"}` {
		t.Fatalf("HeartbeatFrame = %s", a)
	}
	a[0] = 'x'
	if string(HeartbeatFrame()) != `{"module":"heartbeat"}` {
		t.Error("HeartbeatFrame returns shared memory")
	}
	f, err := ParseFrame(HeartbeatFrame())
	if err != nil || f.Module != ModuleHeartbeat {
		t.Errorf("ParseFrame(HeartbeatFrame()) = %+v, %v", f, err)
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, name := range sampleNames(f) {
		f.Add(mustJSON(f, map[string]any{"module": "message", "content": string(loadSample(f, name))}))
	}
	f.Add([]byte(`{"module":"build_connection","success":false,"content":"Invalid Token","header":{}}`))
	f.Add([]byte(`{"module":"heartbeat","success":true,"content":"live","header":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %T; want *ParseError", err)
			}
			return
		}
		if fr.Module == "" {
			t.Fatal("frame without module accepted")
		}
		if fr.Module == ModuleMessage {
			_, _ = Parse([]byte(fr.Content)) // must not panic
		}
	})
}
