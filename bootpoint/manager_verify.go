package bootpoint

import (
	"context"
	"errors"
	"fmt"
)

// Verify compares boot point sequence (-1: the newest) of a task's VM
// with its point (Standby.VerifyBootPoint): with full, every byte; else
// what the boot point wrote. A full verification of the newest boot point
// that passes is recorded as TaskState.LastFullVerify; what any
// verification finds wrong is recorded as LastVerifyError (and cleared by
// one that passes).
func (m *Manager) Verify(ctx context.Context, name string, sequence int, full bool) (VerifyResult, error) {
	t, err := m.task(name)
	if err != nil {
		return VerifyResult{}, err
	}
	if err := m.load(); err != nil {
		return VerifyResult{}, err
	}
	open := m.Open
	if open == nil {
		open = OpenImageDir
	}
	set, err := open(ctx, t)
	if err != nil {
		return VerifyResult{}, err
	}
	defer set.Close()
	res, err := t.Standby.VerifyBootPoint(ctx, set, sequence, full)
	newest := false
	if _, bps, berr := t.Standby.BootPoints(ctx); berr == nil && len(bps) > 0 {
		newest = bps[len(bps)-1].Snapshot.ID == res.BootPoint.Snapshot.ID
	}
	now := m.now()
	var mismatch *MismatchError
	uerr := m.update(name, func(s *TaskState) {
		switch {
		case errors.As(err, &mismatch):
			s.LastVerifyError = stateError(err)
		case err == nil:
			s.LastVerifyError = ""
			if full && newest {
				s.LastFullVerify = now
			}
		}
	})
	return res, errors.Join(err, uerr)
}

// verifyIfDue runs a task's scheduled full verification of its newest
// boot point (Task.FullVerifyEvery) after its pass, when one is due and
// the task is in a state to make boot points, within the host limits.
func (m *Manager) verifyIfDue(ctx context.Context, t *Task, res *TaskResult) {
	if t.FullVerifyEvery <= 0 || res.Err != nil || ctx.Err() != nil {
		return
	}
	st, err := m.taskState(t.Name)
	if err != nil || st.Paused || st.FailedOver || st.Diverged || st.NeedsDecision != "" || st.BootPoints == 0 {
		return
	}
	if !st.LastFullVerify.IsZero() && m.now().Sub(st.LastFullVerify) < t.FullVerifyEvery {
		return
	}
	hostSem, globalSem := m.sems(t.Host)
	if err := hostSem.Acquire(ctx, 1); err != nil {
		return
	}
	defer hostSem.Release(1)
	if err := globalSem.Acquire(ctx, 1); err != nil {
		return
	}
	defer globalSem.Release(1)
	v, err := m.Verify(ctx, t.Name, -1, true)
	res.Verify = &v
	if err != nil {
		res.Err = fmt.Errorf("scheduled full verification: %w", err)
		m.logger().Error("scheduled full verification failed", "task", t.Name, "err", err)
		return
	}
	m.logger().Info("scheduled full verification passed", "task", t.Name, "bootpoint", v.BootPoint.Meta.Sequence, "bytes", v.Bytes, "duration", v.Duration)
}
