package esx

import (
	"context"
	"errors"
	"fmt"

	"github.com/standbykit/standbykit/bootpoint"
)

// RenameVM implements bootpoint.VMRenamer: the VM takes a name no other VM
// in the folder has. Its files stay where they are (ESXi does not move a
// VM's folder on a rename), so its snapshots and disks are as before.
func (h *Host) RenameVM(ctx context.Context, vm bootpoint.VM, name string) (bootpoint.VM, error) {
	if _, err := h.FindVM(ctx, name); err == nil {
		return bootpoint.VM{}, fmt.Errorf("esx: renaming VM %s: a VM named %s exists", vm.Name, name)
	} else if !errors.Is(err, bootpoint.ErrNotFound) {
		return bootpoint.VM{}, err
	}
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.VM{}, err
	}
	task, err := s.obj.Rename(ctx, name)
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return bootpoint.VM{}, fmt.Errorf("esx: renaming VM %s to %s: %w", s.mo.Name, name, err)
	}
	h.logger().Info("esx: VM renamed", "from", s.mo.Name, "to", name)
	return h.FindVM(ctx, name)
}
