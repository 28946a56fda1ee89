package bootpoint

import (
	"context"
	"errors"
	"fmt"
)

// NetworkConnector is what failover needs beyond Hypervisor: attach the
// VM's NIC to a network and connect it.
type NetworkConnector interface {
	ConnectNetwork(ctx context.Context, vm VM, network string) error
}

// TestBooter is what a test boot needs beyond Hypervisor: a throwaway VM
// (a linked clone) whose disks are an empty child on top of snapshot s,
// with its NIC on the given network. The standby's own chain is untouched.
type TestBooter interface {
	CloneForTest(ctx context.Context, vm VM, s Snapshot, name, network string) (VM, error)
}

// ErrUnsupportedOperation reports a hypervisor that lacks an optional
// capability.
var ErrUnsupportedOperation = errors.New("bootpoint: operation not supported by this hypervisor")

// bootPoint finds the boot point of a sequence number; -1 means the newest.
func (s *Standby) bootPoint(ctx context.Context, sequence int) (VM, BootPoint, error) {
	vm, bps, err := s.BootPoints(ctx)
	if err != nil {
		return VM{}, BootPoint{}, err
	}
	if len(bps) == 0 {
		return VM{}, BootPoint{}, fmt.Errorf("%w: VM %s has no boot point", ErrNotFound, vm.Name)
	}
	if sequence < 0 {
		return vm, bps[len(bps)-1], nil
	}
	for _, bp := range bps {
		if bp.Meta.Sequence == sequence {
			return vm, bp, nil
		}
	}
	return VM{}, BootPoint{}, fmt.Errorf("%w: no boot point %d on VM %s", ErrNotFound, sequence, vm.Name)
}

// Failover reverts the standby VM to boot point sequence (-1: the newest),
// connects its NIC to network (empty: leave it as it is) and powers it on.
func (s *Standby) Failover(ctx context.Context, sequence int, network string) (BootPoint, error) {
	vm, bp, err := s.bootPoint(ctx, sequence)
	if err != nil {
		return BootPoint{}, err
	}
	if err := s.Hypervisor.SetPower(ctx, vm, false); err != nil {
		return BootPoint{}, err
	}
	if err := s.Hypervisor.Revert(ctx, vm, bp.Snapshot); err != nil {
		return BootPoint{}, err
	}
	if network != "" {
		nc, ok := s.Hypervisor.(NetworkConnector)
		if !ok {
			return BootPoint{}, fmt.Errorf("%w: connecting a network", ErrUnsupportedOperation)
		}
		if err := nc.ConnectNetwork(ctx, vm, network); err != nil {
			return BootPoint{}, err
		}
	}
	if err := s.Hypervisor.SetPower(ctx, vm, true); err != nil {
		return BootPoint{}, err
	}
	s.logger().Warn("failover: standby VM powered on", "vm", vm.Name, "bootpoint", bp.Meta.Sequence, "network", network)
	return bp, nil
}

// TestBoot powers on a throwaway clone of boot point sequence (-1: the
// newest) on an isolated network, lets check inspect it (e.g. wait for a
// heartbeat; nil: just power on), then removes the clone. The standby's
// chain is left as it was.
func (s *Standby) TestBoot(ctx context.Context, sequence int, network string, check func(ctx context.Context, clone VM) error) error {
	tb, ok := s.Hypervisor.(TestBooter)
	if !ok {
		return fmt.Errorf("%w: test boot", ErrUnsupportedOperation)
	}
	vm, bp, err := s.bootPoint(ctx, sequence)
	if err != nil {
		return err
	}
	clone, err := tb.CloneForTest(ctx, vm, bp.Snapshot, fmt.Sprintf("%s-testboot-%04d", vm.Name, bp.Meta.Sequence), network)
	if err != nil {
		return err
	}
	cleanup := func() error {
		bg := context.WithoutCancel(ctx)
		return errors.Join(s.Hypervisor.SetPower(bg, clone, false), s.Hypervisor.DestroyVM(bg, clone))
	}
	if err := s.Hypervisor.SetPower(ctx, clone, true); err != nil {
		return errors.Join(err, cleanup())
	}
	if check != nil {
		if err := check(ctx, clone); err != nil {
			return errors.Join(fmt.Errorf("test boot of boot point %d: %w", bp.Meta.Sequence, err), cleanup())
		}
	}
	return cleanup()
}

// Delete powers the standby VM off and removes it with its disks.
func (s *Standby) Delete(ctx context.Context) error {
	vm, err := s.Hypervisor.FindVM(ctx, s.VM.Name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.Hypervisor.SetPower(ctx, vm, false); err != nil {
		return err
	}
	return s.Hypervisor.DestroyVM(ctx, vm)
}

// Discard reverts a task's VM to its current boot point, throwing away
// whatever was written to its disks since (someone used it), so that the
// task makes boot points again.
func (m *Manager) Discard(ctx context.Context, name string) error {
	t, err := m.task(name)
	if err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	vm, bps, err := t.Standby.BootPoints(ctx)
	if err != nil {
		return err
	}
	bp, err := current(vm, bps)
	if err != nil {
		if len(bps) == 0 {
			return err
		}
		bp = bps[len(bps)-1] // the current snapshot is not a boot point: the newest
	}
	if err := t.Standby.Hypervisor.SetPower(ctx, vm, false); err != nil {
		return err
	}
	if err := t.Standby.Hypervisor.Revert(ctx, vm, bp.Snapshot); err != nil {
		return err
	}
	m.logger().Warn("changes since the current boot point discarded", "task", name, "vm", vm.Name, "bootpoint", bp.Meta.Sequence)
	return m.update(name, func(s *TaskState) {
		s.Diverged, s.FailedOver = false, false
		s.clearFailure()
	})
}

// KeepFailedOver records that an operator keeps a task's VM as it runs
// (failed over): the task makes no more boot points, and its VM is left
// alone.
func (m *Manager) KeepFailedOver(name string) error {
	if _, err := m.task(name); err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	return m.update(name, func(s *TaskState) { s.FailedOver, s.Diverged = true, false })
}

// DeleteTask removes a task from the manager's state and, with withVM, its
// standby VM.
func (m *Manager) DeleteTask(ctx context.Context, name string, withVM bool) error {
	t, err := m.task(name)
	if err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	if withVM {
		if err := t.Standby.Delete(ctx); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.state.Tasks, name)
	for i, x := range m.Tasks {
		if x == t {
			m.Tasks = append(m.Tasks[:i], m.Tasks[i+1:]...)
			break
		}
	}
	return m.state.Save(m.StatePath)
}
