package esx

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
)

// AddBootPoint implements bootpoint.Hypervisor. For each delta it uploads
// the extent and then the descriptor into the VM's folder; then it
// reconfigures each disk onto its new descriptor (with the previous leaf as
// parent, so that the snapshot records the whole chain) and takes a
// snapshot without memory. On any failure it removes a snapshot the failed
// call left, puts the disks back on their previous backings and deletes
// the uploaded files.
func (h *Host) AddBootPoint(ctx context.Context, vm bootpoint.VM, deltas []bootpoint.DiskDelta, name, description string) (bootpoint.Snapshot, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	if len(deltas) > 0 && s.mo.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return bootpoint.Snapshot{}, fmt.Errorf("esx: VM %s is %s: deltas need it powered off", s.mo.Name, s.mo.Runtime.PowerState)
	}
	type change struct {
		delta   bootpoint.DiskDelta
		disk    *types.VirtualDisk
		cur     *types.VirtualDiskFlatVer2BackingInfo
		parent  *types.VirtualDiskFlatVer2BackingInfo
		newPath string // datastore path of the new descriptor
	}
	var changes []change
	seen := map[int]bool{}
	list := disks(s.mo.Config)
	for _, d := range deltas {
		if seen[d.Disk] {
			return bootpoint.Snapshot{}, fmt.Errorf("esx: two deltas for disk %d", d.Disk)
		}
		seen[d.Disk] = true
		cur, parent, err := h.leafBacking(ctx, s, d.Disk)
		if err != nil {
			return bootpoint.Snapshot{}, err
		}
		for _, n := range []string{d.Descriptor.Name, d.Extent.Name} {
			if n == "" || strings.ContainsAny(n, `/\`) || n == "." || n == ".." {
				return bootpoint.Snapshot{}, fmt.Errorf("esx: disk %d: bad delta file name %q", d.Disk, n)
			}
			// The parent's chain must stay; the current leaf may be an
			// unrecorded delta an interrupted run left, which this replaces.
			if inChain(parent, s.ds.Path(path.Join(s.dir, n))) {
				return bootpoint.Snapshot{}, fmt.Errorf("esx: disk %d: delta file %s would overwrite the disk chain", d.Disk, n)
			}
		}
		if d.Descriptor.Name == d.Extent.Name {
			return bootpoint.Snapshot{}, fmt.Errorf("esx: disk %d: descriptor and extent are both %s", d.Disk, d.Extent.Name)
		}
		changes = append(changes, change{
			delta: d, disk: list[d.Disk], cur: cur, parent: parent,
			newPath: s.ds.Path(path.Join(s.dir, d.Descriptor.Name)),
		})
	}
	before := map[string]bool{}
	for _, t := range snapshotTree(s) {
		before[t.Snapshot.Value] = true
	}
	log := h.logger().With("vm", s.mo.Name, "bootpoint", name)

	var uploaded []string
	reconfigured := false
	fail := func(err error) (bootpoint.Snapshot, error) {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		var errs []error
		if s2, lerr := h.load(bg, s.ref()); lerr != nil {
			errs = append(errs, lerr)
		} else {
			for _, t := range snapshotTree(s2) {
				if !before[t.Snapshot.Value] && t.Name == name && t.Description == description {
					log.Warn("esx: removing snapshot of failed boot point", "snapshot", t.Snapshot.Value)
					errs = append(errs, h.removeSnapshot(bg, t.Snapshot))
				}
			}
		}
		if reconfigured {
			var orig []types.BaseVirtualDevice
			for _, c := range changes {
				orig = append(orig, c.disk)
			}
			if rerr := h.editDevices(bg, s, orig...); rerr != nil {
				errs = append(errs, fmt.Errorf("esx: restoring disks of VM %s: %w", s.mo.Name, rerr))
			}
		}
		for _, p := range uploaded {
			errs = append(errs, h.transport().Delete(bg, s.ds, p))
		}
		if len(uploaded) > 0 {
			// The host may still be writing an upload the client gave
			// up on, and create the file after the delete: delete again
			// once it has settled.
			select {
			case <-time.After(uploadSettle):
			case <-bg.Done():
			}
			for _, p := range uploaded {
				errs = append(errs, h.transport().Delete(bg, s.ds, p))
			}
		}
		if cerr := errors.Join(errs...); cerr != nil {
			log.Error("esx: cleanup after failed boot point", "err", cerr)
			err = errors.Join(err, fmt.Errorf("esx: cleanup: %w", cerr))
		}
		return bootpoint.Snapshot{}, err
	}

	t := h.transport()
	for _, c := range changes {
		for _, f := range []bootpoint.File{c.delta.Extent, c.delta.Descriptor} {
			p := path.Join(s.dir, f.Name)
			uploaded = append(uploaded, p) // a partial file is deleted too
			if err := t.Upload(ctx, s.ds, p, f); err != nil {
				return fail(fmt.Errorf("esx: VM %s disk %d: uploading %s: %w", s.mo.Name, c.delta.Disk, f.Name, err))
			}
			log.Debug("esx: uploaded", "file", f.Name)
		}
	}

	if len(changes) > 0 {
		var edits []types.BaseVirtualDevice
		for _, c := range changes {
			e := *c.disk
			b := *c.cur
			b.FileName = c.newPath
			b.Parent = cloneBacking(c.parent)
			b.Uuid, b.ChangeId, b.ContentId = "", "", ""
			e.Backing = &b
			edits = append(edits, &e)
		}
		reconfigured = true // a failed task may still have changed some
		if err := h.editDevices(ctx, s, edits...); err != nil {
			return fail(fmt.Errorf("esx: VM %s: attaching deltas: %w", s.mo.Name, err))
		}
	}

	task, err := s.obj.CreateSnapshot(ctx, name, description, false, false)
	var res *types.TaskInfo
	if err == nil {
		res, err = task.WaitForResult(ctx)
	}
	if err != nil {
		return fail(fmt.Errorf("esx: VM %s: snapshot %q: %w", s.mo.Name, name, err))
	}
	ref, ok := res.Result.(types.ManagedObjectReference)
	if !ok {
		return fail(fmt.Errorf("esx: VM %s: snapshot %q: task returned %T", s.mo.Name, name, res.Result))
	}
	s2, err := h.load(ctx, s.ref())
	if err != nil {
		return fail(err)
	}
	for _, tr := range snapshotTree(s2) {
		if tr.Snapshot.Value == ref.Value {
			log.Info("esx: boot point added", "snapshot", ref.Value, "deltas", len(changes))
			return toSnapshot(tr), nil
		}
	}
	return fail(fmt.Errorf("esx: VM %s: snapshot %s not in the snapshot tree", s.mo.Name, ref.Value))
}

// uploadSettle is how long a host may go on writing an aborted upload.
const uploadSettle = 500 * time.Millisecond

// inChain tells whether datastore path p is a file of backing b's chain.
func inChain(b *types.VirtualDiskFlatVer2BackingInfo, p string) bool {
	for ; b != nil; b = b.Parent {
		if b.FileName == p {
			return true
		}
	}
	return false
}
