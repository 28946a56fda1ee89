package bootpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/standbykit/standbykit/aipimage"
)

// VMRenamer is what Manager.Reseed needs beyond Hypervisor: give a VM
// another name, which no other VM has.
type VMRenamer interface {
	RenameVM(ctx context.Context, vm VM, name string) (VM, error)
}

// decisionNeeded is the reason a failed pass stops a task until an
// operator decides, or "" when it does not.
func decisionNeeded(err error) string {
	var re *ResizeError
	if errors.As(err, &re) {
		return re.Error() + " (standby reseed)"
	}
	return ""
}

// Reseed starts a task's standby anew from its set's newest point: the way
// on after a disk was resized (ESXi cannot grow a disk that has snapshots,
// and a shrunk disk's boot points would lie). The new VM is built beside
// the old one, under a temporary name, with its first boot point (read
// back as every new boot point is); only then is the old VM, with its
// boot points, deleted and the new one given its name. A reseed that was
// interrupted resumes where it stopped (TaskState.ReseedVM) when called
// again. Only a task that needs a decision (TaskState.NeedsDecision) or
// is being reseeded is reseeded; one whose VM was failed over or diverged
// is refused: discard or keep its changes first.
func (m *Manager) Reseed(ctx context.Context, name string) (Result, error) {
	t, err := m.task(name)
	if err != nil {
		return Result{}, err
	}
	if err := m.load(); err != nil {
		return Result{}, err
	}
	st, err := m.taskState(name)
	if err != nil {
		return Result{}, err
	}
	if st.NeedsDecision == "" && st.ReseedVM == "" {
		return Result{}, fmt.Errorf("bootpoint: task %s needs no reseed: its disks are the standby's", name)
	}
	if st.FailedOver || st.Diverged {
		return Result{}, fmt.Errorf("bootpoint: task %s: its VM was used (failed over or diverged): keep or discard its changes before a reseed replaces it", name)
	}
	renamer, ok := t.Standby.Hypervisor.(VMRenamer)
	if !ok {
		return Result{}, fmt.Errorf("%w: renaming a VM (reseed)", ErrUnsupportedOperation)
	}
	open := m.Open
	if open == nil {
		open = OpenImageDir
	}
	set, err := open(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer set.Close()
	points := set.Points()
	if len(points) == 0 {
		return Result{}, fmt.Errorf("bootpoint: task %s: its image set has no complete point yet", name)
	}
	newest := len(points) - 1
	target := t.Standby.VM.Name
	tmp := st.ReseedVM
	if tmp == "" {
		tmp = fmt.Sprintf("%s-reseed-%04d", target, points[newest].Sequence)
		if err := m.update(name, func(s *TaskState) { s.ReseedVM = tmp }); err != nil {
			return Result{}, err
		}
	} else if done, err := reseeded(ctx, t.Standby, set, tmp, points[newest]); err != nil || done {
		// Interrupted after the rename: only the state is left to write.
		if err != nil {
			return Result{}, err
		}
		return Result{}, m.finishReseed(ctx, t)
	}
	ns := *t.Standby
	ns.VM.Name = tmp
	var res Result
	_, bps, err := ns.BootPoints(ctx)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && len(bps) == 0:
		// Add creates the VM (and removes one whose creation died).
		m.logger().Warn("reseeding: a new standby VM beside the old one", "task", name, "vm", tmp, "sequence", points[newest].Sequence)
		if res, err = ns.Add(ctx, set, newest); err != nil {
			return Result{}, fmt.Errorf("reseeding task %s: creating %s: %w", name, tmp, err)
		}
	case err != nil:
		return Result{}, err
	}
	if err := t.Standby.Delete(ctx); err != nil {
		return res, fmt.Errorf("reseeding task %s: %s is ready, but deleting the old VM %s failed: %w", name, tmp, target, err)
	}
	vm, err := t.Standby.Hypervisor.FindVM(ctx, tmp)
	if err != nil {
		return res, err
	}
	if _, err := renamer.RenameVM(ctx, vm, target); err != nil {
		return res, fmt.Errorf("reseeding task %s: renaming %s to %s: %w", name, tmp, target, err)
	}
	m.logger().Warn("reseeded: the old standby VM and its boot points are gone", "task", name, "vm", target)
	return res, m.finishReseed(ctx, t)
}

// reseeded reports whether a reseed into tmp already renamed its VM: tmp
// is gone and the task's VM is at a point of newest's disks.
func reseeded(ctx context.Context, s *Standby, set aipimage.Set, tmp string, newest aipimage.PointInfo) (bool, error) {
	if _, err := s.Hypervisor.FindVM(ctx, tmp); !errors.Is(err, ErrNotFound) {
		return false, err
	}
	vm, bps, err := s.BootPoints(ctx)
	if errors.Is(err, ErrNotFound) || err == nil && len(bps) == 0 {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	bp, err := current(vm, bps)
	if err != nil {
		return false, nil
	}
	k, err := indexOf(set, bp.Meta)
	if err != nil {
		return false, nil
	}
	return checkGeometry(set.Points()[k], newest) == nil, nil
}

// finishReseed records a reseeded task as running again.
func (m *Manager) finishReseed(ctx context.Context, t *Task) error {
	_, bps, err := t.Standby.BootPoints(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	return m.update(t.Name, func(s *TaskState) {
		s.clearFailure()
		s.ReseedVM, s.NeedsDecision, s.Diverged = "", "", false
		s.BootPoints, s.LastSuccess = len(bps), now
		if len(bps) > 0 {
			last := bps[len(bps)-1].Meta
			s.LastSequence, s.LastPointID = last.Sequence, last.PointID
		}
	})
}

// taskState returns a copy of a task's state.
func (m *Manager) taskState(name string) (TaskState, error) {
	if err := m.load(); err != nil {
		return TaskState{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.state.task(name), nil
}
