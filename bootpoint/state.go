package bootpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// TaskState is what the manager remembers of a task between runs. The
// hypervisor's snapshots remain the source of truth for boot points; the
// state adds what they cannot say (last run, last error, pause).
type TaskState struct {
	Paused       bool          `json:"paused,omitempty"`
	LastRun      time.Time     `json:"lastRun,omitzero"`
	LastSequence int           `json:"lastSequence"` // -1: no boot point
	LastPointID  string        `json:"lastPointId,omitempty"`
	BootPoints   int           `json:"bootPoints"`
	LastError    string        `json:"lastError,omitempty"`
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

func (s *State) task(name string) *TaskState {
	t, ok := s.Tasks[name]
	if !ok {
		t = &TaskState{LastSequence: -1}
		s.Tasks[name] = t
	}
	return t
}
