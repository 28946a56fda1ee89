package bootpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/standbykit/standbykit/aipimage"
)

// Task binds an image set to a standby VM.
type Task struct {
	Name string
	// Images locates the image set: the folder of an aipimage set
	// (possibly a replica still arriving), or whatever Manager.Open takes
	// it to name.
	Images string
	// Host names the hypervisor host, for the per-host limit.
	Host    string
	Trigger Trigger
	// Standby holds the hypervisor, inspector and VM template.
	Standby *Standby
	// Passphrase unlocks an encrypted image set.
	Passphrase []byte
	// FullVerifyEvery, when set, makes a pass compare the newest boot
	// point byte for byte with its point once that long has passed since
	// the last such comparison (see Manager.Verify).
	FullVerifyEvery time.Duration
	// BootCheck says when its boot points are boot-checked:
	// BootCheckOff (""), BootCheckEvery or BootCheckDaily; with
	// BootCheckOptions (Judge nil: the Manager's).
	BootCheck        string
	BootCheckOptions BootCheckOptions
}

// ManagedSet is an image set as the Manager uses it during one pass of a
// task: its points, and Close, called when the pass is over.
// *aipimage.ImageSet is one. A ManagedSet that also implements
// PendingLister has what it lists counted in TaskState.Pending.
type ManagedSet interface {
	aipimage.Set
	Close() error
}

// PendingLister is what a ManagedSet implements when it can see points
// before they are usable (for aipimage, files still being copied).
type PendingLister interface {
	Pending() []aipimage.Pending
}

var (
	_ ManagedSet    = (*aipimage.ImageSet)(nil)
	_ PendingLister = (*aipimage.ImageSet)(nil)
)

// OpenImageDir is the Manager's default opener: the aipimage set in the
// folder t.Images, unlocked with t.Passphrase.
func OpenImageDir(ctx context.Context, t *Task) (ManagedSet, error) {
	set, err := aipimage.OpenDir(t.Images, &aipimage.OpenOptions{Passphrase: t.Passphrase})
	if err != nil {
		return nil, err
	}
	return set, nil
}

// Manager runs many tasks: on each Tick it reconciles its state with the
// hypervisors, decides which tasks are due, and runs them concurrently
// within a per-host and a global limit.
type Manager struct {
	Tasks     []*Task
	StatePath string
	// PerHost bounds tasks running at once on one host; 0 means 2.
	PerHost int
	// Global bounds tasks running at once overall; 0 means 4.
	Global int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Open opens a task's image set at the start of each of its passes;
	// the manager closes it at the end. Nil means OpenImageDir. A product
	// with its own image format sets it to open its own aipimage.Set.
	//
	// It belongs to the Manager, not to each Task, because how image sets
	// are stored is a property of the product that embeds the manager,
	// while tasks are plain configuration (typically read from a file):
	// one opener serves every task, and as it receives the task it can
	// still choose per task (by t.Images, which it may read as a name of
	// its own) when a product keeps several formats.
	Open func(ctx context.Context, t *Task) (ManagedSet, error)
	// BootChecks configures the automatic boot checks.
	BootChecks BootChecks
	// RetryDelay is how long a task waits after a failed run before it is
	// tried again; it doubles with each failure in a row, up to
	// MaxRetryDelay. Zero values mean 1 minute and 1 hour. A run stopped
	// by a shutdown is not a failure: the next pass resumes it.
	RetryDelay, MaxRetryDelay time.Duration

	mu        sync.Mutex
	state     *State
	hosts     map[string]*semaphore.Weighted
	checkSems map[string]*semaphore.Weighted
}

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

func (m *Manager) task(name string) (*Task, error) {
	for _, t := range m.Tasks {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: task %q", ErrNotFound, name)
}

// load reads the state file once.
func (m *Manager) load() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != nil {
		return nil
	}
	st, err := LoadState(m.StatePath)
	if err != nil {
		return err
	}
	m.state = st
	return nil
}

// get returns a copy of a task's state.
func (m *Manager) get(name string) TaskState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.state.task(name)
}

// update changes a task's state under the lock and saves the file.
func (m *Manager) update(name string, f func(*TaskState)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.state.task(name))
	if err := m.state.Save(m.StatePath); err != nil {
		m.logger().Error("saving state", "path", m.StatePath, "err", err)
		return err
	}
	return nil
}

// Status returns a copy of every task's state.
func (m *Manager) Status() (map[string]TaskState, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]TaskState{}
	for _, t := range m.Tasks {
		out[t.Name] = *m.state.task(t.Name)
	}
	return out, nil
}

// SetPaused pauses or resumes a task.
func (m *Manager) SetPaused(name string, paused bool) error {
	if _, err := m.task(name); err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	return m.update(name, func(s *TaskState) { s.Paused = paused })
}

// TaskResult is what one task did in a Tick.
type TaskResult struct {
	Task string
	// Ran: the task tried to make a boot point.
	Ran     bool
	Results []Result
	// Err is why the task failed; it matches ErrInterrupted when the
	// context was cancelled during the task's run.
	Err error
	// Verify is the scheduled full verification the pass made, if any.
	Verify *VerifyResult
	// BootChecks are the boot checks the pass made.
	BootChecks []BootCheck
}

// ErrInterrupted reports a task run stopped because its context was
// cancelled (a shutdown). The step in flight was undone; the next pass
// resumes the task. The state records it as Interrupted, not as a failure.
var ErrInterrupted = errors.New("bootpoint: interrupted")

// Tick runs one scheduling pass. It returns one result per task; a task's
// failure is in its result and never stops the others.
func (m *Manager) Tick(ctx context.Context) ([]TaskResult, error) {
	return m.tick(ctx)
}

// RunNow makes a boot point for one task's newest point now, whatever
// its trigger, pause or retry time say (if it has points without a boot
// point). No other task runs.
func (m *Manager) RunNow(ctx context.Context, name string) (TaskResult, error) {
	t, err := m.task(name)
	if err != nil {
		return TaskResult{}, err
	}
	if err := m.load(); err != nil {
		return TaskResult{}, err
	}
	r := m.runTask(ctx, t, true)
	m.checkBootIfDue(ctx, t, &r)
	return r, r.Err
}

// retryDelay is the wait before the next try after the given number of
// failed runs in a row.
func (m *Manager) retryDelay(failures int) time.Duration {
	d, limit := m.RetryDelay, m.MaxRetryDelay
	if d <= 0 {
		d = time.Minute
	}
	if limit <= 0 {
		limit = time.Hour
	}
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (m *Manager) sems(host string) (*semaphore.Weighted, *semaphore.Weighted) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosts == nil {
		m.hosts = map[string]*semaphore.Weighted{}
		global := m.Global
		if global <= 0 {
			global = 4
		}
		m.hosts["\x00global"] = semaphore.NewWeighted(int64(global))
	}
	s, ok := m.hosts[host]
	if !ok {
		per := m.PerHost
		if per <= 0 {
			per = 2
		}
		s = semaphore.NewWeighted(int64(per))
		m.hosts[host] = s
	}
	return s, m.hosts["\x00global"]
}

func (m *Manager) tick(ctx context.Context) ([]TaskResult, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	results := make([]TaskResult, len(m.Tasks))
	var g errgroup.Group
	for i, t := range m.Tasks {
		g.Go(func() error {
			results[i] = m.runTask(ctx, t, false)
			m.verifyIfDue(ctx, t, &results[i])
			m.checkBootIfDue(ctx, t, &results[i])
			return nil
		})
	}
	g.Wait()
	return results, nil
}

// fail records why a run of task t that began at start did not succeed,
// and returns the error for its result. A cancelled context is a
// shutdown, recorded as Interrupted: its error (often a transport's,
// naming internal URLs) goes to the log only.
func (m *Manager) fail(ctx context.Context, t *Task, start time.Time, err error) error {
	if ctx.Err() != nil {
		m.logger().Info("task interrupted", "task", t.Name, "err", err)
		m.update(t.Name, func(s *TaskState) { s.LastAttempt, s.Interrupted = start, true })
		return fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	m.logger().Warn("task failed", "task", t.Name, "err", err)
	now := m.now()
	m.update(t.Name, func(s *TaskState) {
		s.LastAttempt, s.LastError, s.LastFailure, s.Interrupted = start, stateError(err), now, false
		if errors.Is(err, ErrDiverged) {
			// Not retried: it waits for an operator's decision.
			s.Diverged = true
			return
		}
		if why := decisionNeeded(err); why != "" {
			// Nor is a resized disk (Manager.Reseed).
			s.NeedsDecision = why
			return
		}
		s.Failures++
		s.RetryAt = now.Add(m.retryDelay(s.Failures))
	})
	return err
}

// runTask reconciles one task and, if due, adds a boot point for its
// newest complete point. force runs it whatever its trigger, pause and
// retry time say.
func (m *Manager) runTask(ctx context.Context, t *Task, force bool) TaskResult {
	res := TaskResult{Task: t.Name}
	start := m.now()
	st := m.get(t.Name)
	if st.Failing() && start.Before(st.RetryAt) && !force {
		return res
	}
	open := m.Open
	if open == nil {
		open = OpenImageDir
	}
	set, err := open(ctx, t)
	if err == nil && set == nil {
		err = fmt.Errorf("bootpoint: task %s: Manager.Open returned no set and no error", t.Name)
	}
	if err != nil {
		res.Err = m.fail(ctx, t, start, err)
		return res
	}
	defer set.Close()
	waiting, last, count, err := reconcile(ctx, t.Standby, set)
	if err != nil {
		res.Err = m.fail(ctx, t, start, err)
		return res
	}
	pending := 0
	if pl, ok := set.(PendingLister); ok {
		pending = len(pl.Pending())
	}
	m.update(t.Name, func(s *TaskState) {
		s.Waiting, s.Pending, s.BootPoints = waiting, pending, count
		if last != nil {
			s.LastSequence, s.LastPointID = last.Sequence, last.PointID
		} else {
			s.LastSequence, s.LastPointID = -1, ""
		}
		if waiting == 0 {
			s.LastIdle = start
		}
		st = *s
	})
	if st.FailedOver || (st.Paused || st.Diverged || st.NeedsDecision != "") && !force {
		return res
	}
	if count > t.Standby.limit() {
		// A run that died between adding a boot point and consolidating
		// the oldest left one too many.
		if err := t.Standby.Prune(ctx); err != nil {
			res.Err = m.fail(ctx, t, start, err)
			return res
		}
		m.update(t.Name, func(s *TaskState) { s.BootPoints = t.Standby.limit() })
	}
	// A failed or interrupted run left the task as out of date as it was,
	// so its trigger is still due: it is tried again at this pass (once
	// its retry time has come), not at the next slot.
	if !force && !t.Trigger.Due(start, st.UpToDate(), waiting) || waiting == 0 {
		if !st.Diverged && (st.Failing() || st.Interrupted) {
			// Nothing to do: what failed before is behind us.
			m.update(t.Name, func(s *TaskState) { s.clearFailure() })
		}
		return res
	}

	hostSem, globalSem := m.sems(t.Host)
	if err := hostSem.Acquire(ctx, 1); err != nil {
		res.Err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		return res
	}
	defer hostSem.Release(1)
	if err := globalSem.Acquire(ctx, 1); err != nil {
		res.Err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		return res
	}
	defer globalSem.Release(1)

	res.Ran = true
	runStart := m.now()
	m.update(t.Name, func(s *TaskState) { s.LastAttempt = runStart })
	newest := len(set.Points()) - 1
	r, err := t.Standby.Add(ctx, set, newest)
	if err != nil {
		res.Err = m.fail(ctx, t, runStart, err)
		return res
	}
	now := m.now()
	m.update(t.Name, func(s *TaskState) {
		s.clearFailure()
		s.LastSuccess, s.Diverged, s.NeedsDecision = now, false, ""
		s.LastSequence, s.LastPointID = r.BootPoint.Meta.Sequence, r.BootPoint.Meta.PointID
		s.LastBytes, s.LastDuration = r.Bytes, r.Duration
		s.Waiting = 0
		if _, bps, berr := t.Standby.BootPoints(ctx); berr == nil {
			s.BootPoints = len(bps)
		}
	})
	res.Results = append(res.Results, r)
	return res
}

// reconcile reads the task's boot points from the hypervisor (the source
// of truth) and counts the complete points that have none yet.
func reconcile(ctx context.Context, s *Standby, set aipimage.Set) (waiting int, last *Metadata, count int, err error) {
	_, bps, err := s.BootPoints(ctx)
	if errors.Is(err, ErrNotFound) {
		return len(set.Points()), nil, 0, nil
	}
	if err != nil {
		return 0, nil, 0, err
	}
	if len(bps) == 0 {
		return len(set.Points()), nil, 0, nil
	}
	m := bps[len(bps)-1].Meta
	k, err := indexOf(set, m)
	if err != nil {
		return 0, nil, 0, err
	}
	return len(set.Points()) - 1 - k, &m, len(bps), nil
}
