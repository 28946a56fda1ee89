// Package vmdisks reads the disks of a VM configuration the way package
// esx and its simulator both need: in a stable order, with their VMDK
// backing chains.
package vmdisks

import (
	"cmp"
	"slices"

	"github.com/vmware/govmomi/vim25/types"
)

// Of lists a configuration's disks in a stable order: by controller, then
// unit number (creation order).
func Of(c *types.VirtualMachineConfigInfo) []*types.VirtualDisk {
	if c == nil {
		return nil
	}
	var out []*types.VirtualDisk
	for _, d := range c.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out = append(out, disk)
		}
	}
	unit := func(d *types.VirtualDisk) int32 {
		if d.UnitNumber == nil {
			return -1
		}
		return *d.UnitNumber
	}
	slices.SortStableFunc(out, func(a, b *types.VirtualDisk) int {
		return cmp.Or(cmp.Compare(a.ControllerKey, b.ControllerKey), cmp.Compare(unit(a), unit(b)))
	})
	return out
}

// Flat is a disk's backing when it is a (possibly delta) VMDK file.
func Flat(d *types.VirtualDisk) *types.VirtualDiskFlatVer2BackingInfo {
	b, _ := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	return b
}

// Clone copies a backing and its parent chain, without the change IDs the
// host assigns.
func Clone(b *types.VirtualDiskFlatVer2BackingInfo) *types.VirtualDiskFlatVer2BackingInfo {
	if b == nil {
		return nil
	}
	c := *b
	c.Parent = Clone(b.Parent)
	c.ChangeId = ""
	return &c
}
