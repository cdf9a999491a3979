package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/zccadapter/zccadapter/rcapi"
)

// reply is a status and a JSON body.
type reply struct {
	status int
	body   any
}

func okReply(result string) reply { return reply{http.StatusOK, rcapi.Result{Result: result}} }

func malformed(msg string) reply {
	return reply{http.StatusBadRequest, rcapi.Error{Error: rcapi.ErrCodeMalformed, Message: msg}}
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("body larger than %d bytes", MaxBodyBytes)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

// errTrailingData is returned by decodeStrict when the body holds more than
// one JSON value.
var errTrailingData = errors.New("data after the JSON object")

// decodeStrict decodes exactly one JSON value from b into v.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}

// decodeBody reads and decodes a request body. On error the returned value
// is what could be decoded (for the ledger) when the body was a JSON object
// with a wrongly typed field or trailing data, and nil otherwise.
func decodeBody[T any](w http.ResponseWriter, req *http.Request) (*T, error) {
	b, err := readBody(w, req)
	if err != nil {
		return nil, err
	}
	v := new(T)
	err = decodeStrict(b, v)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) && !errors.Is(err, errTrailingData) {
		return nil, err
	}
	return v, err
}

func (r *Recorder) handleRecordings(w http.ResponseWriter, req *http.Request) {
	if st := req.URL.Query().Get("state"); st != "" && st != "open" {
		writeJSON(w, malformed(fmt.Sprintf("state %q is not supported; use state=open", st)))
		return
	}
	r.mu.Lock()
	rep := reply{http.StatusOK, rcapi.OpenRecordings{Recordings: r.openLocked()}}
	if r.broken != nil {
		rep = r.unavailableLocked()
	}
	r.mu.Unlock()
	writeJSON(w, rep)
}

func (r *Recorder) handleLedger(w http.ResponseWriter, _ *http.Request) {
	// Entries are never modified after they are appended, so a shallow copy
	// is safe to encode outside the lock.
	r.mu.Lock()
	l := rcapi.Ledger{Epoch: r.epoch, Entries: slices.Clone(r.ledger)}
	r.mu.Unlock()
	if l.Entries == nil {
		l.Entries = []rcapi.LedgerEntry{}
	}
	writeJSON(w, reply{http.StatusOK, l})
}

// faultRequest is the body of POST /sim/faults and of its reply.
type faultRequest struct {
	FailNext int `json:"fail_next"`
	Status   int `json:"status"`
}

func (r *Recorder) handleFaults(w http.ResponseWriter, req *http.Request) {
	body, err := readBody(w, req)
	var f faultRequest
	if err == nil {
		err = decodeStrict(body, &f)
	}
	if err != nil {
		writeJSON(w, malformed(err.Error()))
		return
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		writeJSON(w, malformed(fmt.Sprintf("status %d: want 400-599 (0 means 503)", f.Status)))
		return
	}
	r.mu.Lock()
	r.setFaultsLocked(f.FailNext, f.Status)
	f = faultRequest{FailNext: r.failLeft, Status: r.failStatus}
	r.mu.Unlock()
	writeJSON(w, reply{http.StatusOK, f})
}

func writeJSON(w http.ResponseWriter, rep reply) {
	b, err := json.Marshal(rep.body)
	if err != nil {
		http.Error(w, "encode reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(append(b, '\n'))
}
