package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/rcapi"
)

// ErrCodeStateUnavailable is the error code of the 503 a recorder answers
// after it failed to write its state file: its memory is then ahead of its
// file, so it refuses everything until it is restarted from the file.
const ErrCodeStateUnavailable = "state_unavailable"

// Options configure a Recorder beyond New.
type Options struct {
	// StateFile, when set, makes the recorder durable: its epoch fence,
	// the ids of applied commands and agent updates, its segments and its
	// ledger survive a restart (rcapi/SPEC.md, Durability). It is an
	// append-only journal of ledger entries, one JSON object per line,
	// each written and fsynced before the reply that depends on it; at
	// start the journal is replayed through the same checks, and a torn
	// last line (a crash mid-write, whose reply was never sent) is cut
	// off. One recorder per file at a time. Empty: memory only, as New.
	StateFile string
}

// NewWithOptions returns a recorder configured by opts. With a StateFile it
// creates the file if missing (0600) or replays it, and fails if it cannot
// be read, holds a line that does not decode, or disagrees with itself (an
// entry whose recorded result the replay does not reproduce). The caller
// closes the recorder with Close once its handler no longer serves.
func NewWithOptions(log zerolog.Logger, opts Options) (*Recorder, error) {
	r := New(log)
	if opts.StateFile == "" {
		return r, nil
	}
	j, err := openJournal(opts.StateFile, r)
	if err != nil {
		return nil, err
	}
	r.journal = j
	r.log.Info().Str("state_file", opts.StateFile).Int("entries", len(r.ledger)).Int64("epoch", r.epoch).
		Msg("state loaded")
	return r, nil
}

// Close closes the state file, if any; a recorder with a state file then
// answers 503 to every request. A memory-only recorder has nothing to close.
// Safe to call more than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.journal == nil || r.journal.f == nil {
		return nil
	}
	err := r.journal.f.Close()
	r.journal.f = nil
	if r.broken == nil {
		r.broken = errors.New("recorder closed")
	}
	return err
}

// journal is the open state file.
type journal struct{ f *os.File }

// openJournal opens (or creates) path and replays it into r, which must be
// fresh from New.
func openJournal(path string, r *Recorder) (*journal, error) {
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recorder state file: %w", err)
	}
	j := &journal{f: f}
	good, err := j.replay(r)
	if err == nil {
		// Cut a torn last line off, and append after what was read.
		if err = f.Truncate(good); err == nil {
			_, err = f.Seek(good, io.SeekStart)
		}
	}
	if err == nil && created {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("recorder state file %s: %w", path, err)
	}
	return j, nil
}

// replay applies every complete line of the journal to r and returns the
// length of those lines.
func (j *journal) replay(r *Recorder) (int64, error) {
	log := r.log
	r.log = zerolog.Nop() // the replay repeats what was logged when it happened
	defer func() { r.log = log }()
	rd := bufio.NewReader(j.f)
	var good int64
	for n := 1; ; n++ {
		line, err := rd.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				log.Warn().Int("line", n).Int("bytes", len(line)).Msg("state file: dropping a torn last line")
			}
			return good, nil
		}
		if err != nil {
			return 0, err
		}
		var e rcapi.LedgerEntry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return 0, fmt.Errorf("line %d: %w", n, err)
		}
		if err := r.replayLocked(e); err != nil {
			return 0, fmt.Errorf("line %d: %w", n, err)
		}
		good += int64(len(line))
	}
}

// replayLocked re-runs the checks of one journaled entry against the state
// so far, which must yield the result the entry records, and appends it to
// the ledger as it was. Malformed and fault entries changed nothing.
func (r *Recorder) replayLocked(e rcapi.LedgerEntry) error {
	if want := int64(len(r.ledger)) + 1; e.Seq != want {
		return fmt.Errorf("entry seq %d, want %d", e.Seq, want)
	}
	if e.Result != rcapi.ErrCodeMalformed && e.Result != ResultFault {
		var got string
		switch {
		case e.Kind == KindCommand && e.Command != nil:
			_, got = r.decideCommandLocked(e.Command, nil)
		case e.Kind == KindAgent && e.Agent != nil:
			_, got = r.decideAgentLocked(e.Agent, nil)
		case e.Kind == KindEpoch && e.Claim != nil:
			_, got = r.decideClaimLocked(e.Claim, nil)
		default:
			return fmt.Errorf("entry %d: kind %q without its message", e.Seq, e.Kind)
		}
		if got != e.Result {
			return fmt.Errorf("entry %d: recorded %s, replayed %s", e.Seq, e.Result, got)
		}
	}
	r.ledger = append(r.ledger, e)
	return nil
}

// append writes e as one line and fsyncs it.
func (j *journal) append(e rcapi.LedgerEntry) error {
	if j.f == nil {
		return errors.New("state file closed")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode ledger entry: %w", err)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append to the state file: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync the state file: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, so that a file just created in it survives a
// crash. Windows cannot sync a directory (NTFS journals the entry itself).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
