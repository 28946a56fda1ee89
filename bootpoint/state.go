package bootpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/standbykit/standbykit/internal/hosttext"
)

// TaskState is what the manager remembers of a task between runs. The
// hypervisor's snapshots remain the source of truth for boot points; the
// state adds what they cannot say (runs, failures, pause).
type TaskState struct {
	Paused bool `json:"paused,omitempty"`
	// LastAttempt is when the task last started a run that makes a boot
	// point, or last failed before it could start one.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	// LastSuccess is when the task last made a boot point.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastIdle is when a pass last found no point waiting. With
	// LastSuccess it says when the task was last up to date, which a
	// daily trigger needs (see Trigger.Due).
	LastIdle     time.Time `json:"lastIdle,omitzero"`
	LastSequence int       `json:"lastSequence"` // -1: no boot point
	LastPointID  string    `json:"lastPointId,omitempty"`
	BootPoints   int       `json:"bootPoints"`
	// LastError is the message of the last failure, kept until a run
	// succeeds; LastFailure is when it happened.
	LastError   string    `json:"lastError,omitempty"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	// Failures counts the failed runs since the last success; the task is
	// tried again at RetryAt (see Manager.RetryDelay), not at its next
	// trigger slot.
	Failures int       `json:"failures,omitempty"`
	RetryAt  time.Time `json:"retryAt,omitzero"`
	// Interrupted: the last run was stopped by a shutdown (its context
	// was cancelled) and undid its step in flight; the next pass resumes
	// the task. It is not a failure.
	Interrupted  bool          `json:"interrupted,omitempty"`
	LastBytes    int64         `json:"lastBytes,omitempty"`
	LastDuration time.Duration `json:"lastDuration,omitempty"`
	Waiting      int           `json:"waiting"` // complete points without a boot point
	Pending      int           `json:"pending"` // files still arriving (see PendingLister)
	// Diverged: the VM's disks changed since its current boot point (it
	// was powered on and used): no boot point is made until an operator
	// discards those changes (Manager.Discard) or keeps the VM
	// (Manager.KeepFailedOver).
	Diverged bool `json:"diverged,omitempty"`
	// FailedOver: an operator kept the VM as it runs; the task makes no
	// more boot points.
	FailedOver bool `json:"failedOver,omitempty"`
	// NeedsDecision says why the task makes no boot points until an
	// operator decides (a disk was resized: Manager.Reseed); empty when
	// none is needed.
	NeedsDecision string `json:"needsDecision,omitempty"`
	// ReseedVM is the VM a reseed in progress builds (Manager.Reseed):
	// a reseed that was interrupted resumes with it.
	ReseedVM string `json:"reseedVM,omitempty"`
	// LastFullVerify is when the newest boot point was last compared
	// byte for byte with its point (Task.FullVerifyEvery, Manager.Verify);
	// LastVerifyError is what the last verification found wrong, if it
	// did.
	LastFullVerify  time.Time `json:"lastFullVerify,omitzero"`
	LastVerifyError string    `json:"lastVerifyError,omitempty"`
	// BootChecks are the evidence of the task's boot checks, oldest
	// first (the newest 64).
	BootChecks []BootCheck `json:"bootChecks,omitempty"`
}

// UpToDate is when the task was last up to date: its last boot point, or
// the last pass that found nothing waiting, whichever is later.
func (s TaskState) UpToDate() time.Time {
	if s.LastIdle.After(s.LastSuccess) {
		return s.LastIdle
	}
	return s.LastSuccess
}

// Failing reports whether the task's last run failed (and no run has
// succeeded since).
func (s TaskState) Failing() bool { return s.Failures > 0 }

// clearFailure forgets the failures of earlier runs.
func (s *TaskState) clearFailure() {
	s.LastError, s.LastFailure, s.Failures, s.RetryAt, s.Interrupted = "", time.Time{}, 0, time.Time{}, false
}

// State is the manager's state file.
type State struct {
	Version int                   `json:"version"`
	Tasks   map[string]*TaskState `json:"tasks"`
}

const stateVersion = 1

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion, Tasks: map[string]*TaskState{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("bootpoint: state file %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("bootpoint: state file %s has version %d, want %d", path, s.Version, stateVersion)
	}
	if s.Tasks == nil {
		s.Tasks = map[string]*TaskState{}
	}
	migrateLastRun(b, &s)
	return &s, nil
}

// Save writes the state atomically: a crash leaves the old file or the
// new one, never a mix.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// migrateLastRun reads the lastRun of files written before runs and
// failures were told apart: it was set by every run, so it is a success
// only where no error was recorded.
func migrateLastRun(b []byte, s *State) {
	var old struct {
		Tasks map[string]struct {
			LastRun time.Time `json:"lastRun"`
		} `json:"tasks"`
	}
	if json.Unmarshal(b, &old) != nil {
		return
	}
	for name, o := range old.Tasks {
		t := s.Tasks[name]
		if t == nil || o.LastRun.IsZero() || !t.LastAttempt.IsZero() {
			continue
		}
		t.LastAttempt = o.LastRun
		if t.LastError == "" {
			t.LastSuccess = o.LastRun
		} else {
			t.LastFailure, t.Failures = o.LastRun, 1
		}
	}
}

func (s *State) task(name string) *TaskState {
	t, ok := s.Tasks[name]
	if !ok {
		t = &TaskState{LastSequence: -1}
		s.Tasks[name] = t
	}
	return t
}

// maxStateError bounds an error's text kept in the state: much of it
// is a hypervisor's (a task's fault, a transport's answer), of any length,
// and status prints it on a terminal.
const maxStateError = 2048

// stateError is err's text as the state keeps it: one printable line of
// at most maxStateError bytes.
func stateError(err error) string { return hosttext.Clip(err.Error(), maxStateError) }
