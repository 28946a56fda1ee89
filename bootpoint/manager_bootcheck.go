package bootpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sync/semaphore"
)

// When a task's boot points are boot-checked (Task.BootCheck).
const (
	BootCheckOff   = "off"   // never (also "")
	BootCheckEvery = "every" // every new boot point, right after it is made
	BootCheckDaily = "daily" // the newest boot point, once a day
)

// BootChecks configures the manager's automatic boot checks.
type BootChecks struct {
	// PerHost bounds boot checks running at once on one host (each is a
	// real boot, costing the host CPU and memory); 0 means 1. They are
	// counted apart from the tasks' limit.
	PerHost int
	// Judge decides from a screenshot when a guest has no VMware Tools
	// (bootcheck.Rules.JudgePNG); nil: such a guest fails its check.
	Judge ScreenJudge
	// EvidenceDir keeps each check's screenshot, as
	// TASK/bootpoint-NNNN-YYYYMMDDTHHMMSSZ.png; "" means a folder
	// "evidence" beside the state file.
	EvidenceDir string
	// Alert is called when a check fails or times out (CommandAlert runs
	// a command with the alert as JSON on its standard input); its error
	// is logged.
	Alert func(ctx context.Context, a BootAlert) error
}

// BootAlert is what an alert says.
type BootAlert struct {
	Event string    `json:"event"` // "bootcheck-failed"
	Task  string    `json:"task"`
	VM    string    `json:"vm"`
	Check BootCheck `json:"check"`
}

// maxBootChecksKept bounds the evidence a task's state keeps.
const maxBootChecksKept = 64

func (m *Manager) checkSem(host string) *semaphore.Weighted {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checkSems == nil {
		m.checkSems = map[string]*semaphore.Weighted{}
	}
	s, ok := m.checkSems[host]
	if !ok {
		n := m.BootChecks.PerHost
		if n <= 0 {
			n = 1
		}
		s = semaphore.NewWeighted(int64(n))
		m.checkSems[host] = s
	}
	return s
}

// CheckBoot boot-checks boot point sequence (-1: the newest) of a task
// (Standby.CheckBoot, within BootChecks.PerHost), keeps its screenshot
// in the evidence folder, records the verdict in the task's state and
// raises an alert when it did not pass.
func (m *Manager) CheckBoot(ctx context.Context, name string, sequence int) (BootCheck, error) {
	t, err := m.task(name)
	if err != nil {
		return BootCheck{}, err
	}
	if err := m.load(); err != nil {
		return BootCheck{}, err
	}
	sem := m.checkSem(t.Host)
	if err := sem.Acquire(ctx, 1); err != nil {
		return BootCheck{}, err
	}
	defer sem.Release(1)
	o := t.BootCheckOptions
	if o.Judge == nil {
		o.Judge = m.BootChecks.Judge
	}
	check, err := t.Standby.CheckBoot(ctx, sequence, o)
	if err != nil {
		return BootCheck{}, err
	}
	check.At = m.now() // the manager's clock schedules the daily checks
	if len(check.Screenshot) > 0 {
		file, werr := m.keepScreenshot(name, check)
		if werr != nil {
			m.logger().Warn("bootpoint: keeping a boot check's screenshot", "task", name, "err", werr)
		}
		check.ScreenshotFile = file
	}
	kept := check
	kept.Screenshot = nil // in its file: the state keeps the evidence's name
	if err := m.update(name, func(s *TaskState) {
		s.BootChecks = append(s.BootChecks, kept)
		if n := len(s.BootChecks); n > maxBootChecksKept {
			s.BootChecks = append([]BootCheck(nil), s.BootChecks[n-maxBootChecksKept:]...)
		}
	}); err != nil {
		return check, err
	}
	if check.Verdict != BootPassed && m.BootChecks.Alert != nil {
		a := BootAlert{Event: "bootcheck-failed", Task: name, VM: t.Standby.VM.Name, Check: check}
		if aerr := m.BootChecks.Alert(ctx, a); aerr != nil {
			m.logger().Error("bootpoint: boot check alert", "task", name, "err", aerr)
		}
	}
	return check, nil
}

func (m *Manager) evidenceDir() string {
	if m.BootChecks.EvidenceDir != "" {
		return m.BootChecks.EvidenceDir
	}
	return filepath.Join(filepath.Dir(m.StatePath), "evidence")
}

// keepScreenshot writes a check's screenshot into the evidence folder
// and returns its path.
func (m *Manager) keepScreenshot(task string, c BootCheck) (string, error) {
	dir := filepath.Join(m.evidenceDir(), filepath.Base(task))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	file := filepath.Join(dir, fmt.Sprintf("bootpoint-%04d-%s.png", c.Sequence, c.At.UTC().Format("20060102T150405Z")))
	if err := os.WriteFile(file, c.Screenshot, 0o644); err != nil {
		return "", err
	}
	return file, nil
}

// checkBootIfDue runs a task's boot checks after its pass: each new boot
// point (BootCheckEvery), or the newest once a day (BootCheckDaily).
func (m *Manager) checkBootIfDue(ctx context.Context, t *Task, res *TaskResult) {
	if res.Err != nil || ctx.Err() != nil {
		return
	}
	st, err := m.taskState(t.Name)
	if err != nil || st.Paused || st.FailedOver || st.Diverged || st.NeedsDecision != "" || st.BootPoints == 0 {
		return
	}
	var sequences []int
	switch t.BootCheck {
	case BootCheckEvery:
		for _, r := range res.Results {
			sequences = append(sequences, r.BootPoint.Meta.Sequence)
		}
	case BootCheckDaily:
		var last time.Time
		for _, c := range st.BootChecks {
			if c.At.After(last) {
				last = c.At
			}
		}
		if last.IsZero() || m.now().Sub(last) >= 24*time.Hour {
			sequences = []int{-1}
		}
	}
	for _, seq := range sequences {
		c, err := m.CheckBoot(ctx, t.Name, seq)
		if err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("boot check: %w", err))
			m.logger().Error("bootpoint: boot check could not be made", "task", t.Name, "err", err)
			continue
		}
		res.BootChecks = append(res.BootChecks, c)
	}
}

// NewestProven returns the newest boot point of a task whose last boot
// check passed and that is still there; ErrNotFound if there is none.
func (m *Manager) NewestProven(ctx context.Context, name string) (BootPoint, BootCheck, error) {
	t, err := m.task(name)
	if err != nil {
		return BootPoint{}, BootCheck{}, err
	}
	st, err := m.taskState(name)
	if err != nil {
		return BootPoint{}, BootCheck{}, err
	}
	last := map[int]BootCheck{} // sequence → its latest check
	for _, c := range st.BootChecks {
		if prev, ok := last[c.Sequence]; !ok || !c.At.Before(prev.At) {
			last[c.Sequence] = c
		}
	}
	_, bps, err := t.Standby.BootPoints(ctx)
	if err != nil {
		return BootPoint{}, BootCheck{}, err
	}
	for i := len(bps) - 1; i >= 0; i-- {
		if c, ok := last[bps[i].Meta.Sequence]; ok && c.Verdict == BootPassed {
			return bps[i], c, nil
		}
	}
	return BootPoint{}, BootCheck{}, fmt.Errorf("%w: task %s has no boot point whose boot check passed", ErrNotFound, name)
}

// CommandAlert returns a BootChecks.Alert that runs argv with the alert
// as JSON on its standard input, within a minute.
func CommandAlert(argv []string) func(ctx context.Context, a BootAlert) error {
	return func(ctx context.Context, a BootAlert) error {
		if len(argv) == 0 {
			return errors.New("bootpoint: empty alert command")
		}
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("bootpoint: alert command %s: %w: %.200s", argv[0], err, out)
		}
		return nil
	}
}
