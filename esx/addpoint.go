package esx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// Writer is how boot points reach the standby's current leaves.
type Writer string

const (
	// WriterAppliance writes through ESXi's own disk stack: the changes
	// travel as a payload disk imported through NFC, and a small appliance
	// VM with the leaves attached writes them (see package
	// esx/appliance). It works whatever the delta format. The default.
	WriterAppliance Writer = "appliance"
	// WriterUpload replaces the leaf's files through the datastore file
	// interface with a vmfsSparse delta holding the changes: a fast path
	// for hosts whose deltas are vmfsSparse (VMFS5 and NFS datastores,
	// disks under 2 TiB); refused elsewhere.
	WriterUpload Writer = "upload"
)

// writingKey is the standby VM's extraConfig key that records a boot
// point being written: set before the first byte reaches a leaf, cleared
// once its snapshot exists or the VM is reverted. Found set at the start
// of AddBootPoint, it means that a run died while writing: the leaves hold
// a partial boot point of ours, which a revert discards.
const writingKey = "standbykit.writingBootPoint"

// leafTarget is one changed disk and its current leaf.
type leafTarget struct {
	change bootpoint.Delta
	leaf   *types.VirtualDiskFlatVer2BackingInfo
}

// leafWriter writes boot-point changes into current leaves.
type leafWriter interface {
	// prepare checks what it can and readies the write; it changes
	// nothing on the host.
	prepare(ctx context.Context, s *vmState, targets []leafTarget) (leafWrite, error)
}

// leafWrite is a prepared write: write does it, cleanup removes what it
// left besides the leaves (which a revert discards on failure).
type leafWrite interface {
	write(ctx context.Context) error
	cleanup(ctx context.Context) error
}

func (h *Host) leafWriter() (leafWriter, error) {
	switch h.Writer {
	case WriterAppliance, "":
		return &applianceWriter{h: h}, nil
	case WriterUpload:
		return uploadWriter{h: h}, nil
	}
	return nil, fmt.Errorf("esx: unknown writer %q", h.Writer)
}

// AddBootPoint implements bootpoint.Hypervisor. The changes go into the
// current leaf of each disk: the empty delta ESXi made when it took the
// current snapshot (a VM without a snapshot takes no changes), by the
// Writer; then the snapshot freezes the leaves and ESXi starts the next
// ones. A leaf that is not the empty child of the current snapshot is
// refused (bootpoint.ErrDiverged), except one that holds only an earlier,
// interrupted write of ours (writingKey), which is discarded first. On
// any failure a snapshot the call made is removed and the VM is reverted
// to its current snapshot, which discards the half-written leaves.
func (h *Host) AddBootPoint(ctx context.Context, vm bootpoint.VM, changes []bootpoint.Delta, name, description string) (bootpoint.Snapshot, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	if s, err = h.recoverInterrupted(ctx, s); err != nil {
		return bootpoint.Snapshot{}, err
	}
	targets, err := h.checkLeaves(ctx, s, changes)
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	var prepared leafWrite
	if len(targets) > 0 {
		w, err := h.leafWriter()
		if err != nil {
			return bootpoint.Snapshot{}, err
		}
		if prepared, err = w.prepare(ctx, s, targets); err != nil {
			return bootpoint.Snapshot{}, err
		}
	}
	before := map[string]bool{}
	for _, t := range snapshotTree(s) {
		before[t.Snapshot.Value] = true
	}
	log := h.logger().With("vm", s.mo.Name, "bootpoint", name)
	written := false
	fail := func(err error) (bootpoint.Snapshot, error) {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		var errs []error
		if prepared != nil {
			errs = append(errs, prepared.cleanup(bg))
		}
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
		if written {
			// The host may still be writing an upload the client gave
			// up on: let it settle, then discard the leaves.
			select {
			case <-time.After(uploadSettle):
			case <-bg.Done():
			}
			if rerr := h.revert(bg, s, *s.mo.Snapshot.CurrentSnapshot); rerr != nil {
				errs = append(errs, fmt.Errorf("esx: discarding the half-written leaves of VM %s: %w", s.mo.Name, rerr))
			} else {
				errs = append(errs, h.setWriting(bg, s, ""))
			}
		}
		if cerr := errors.Join(errs...); cerr != nil {
			log.Error("esx: cleanup after failed boot point", "err", cerr)
			err = errors.Join(err, fmt.Errorf("esx: cleanup: %w", cerr))
		}
		return bootpoint.Snapshot{}, err
	}

	if prepared != nil {
		if err := h.setWriting(ctx, s, name); err != nil {
			return fail(err)
		}
		written = true
		if err := prepared.write(ctx); err != nil {
			return fail(fmt.Errorf("esx: VM %s: writing boot point %q: %w", s.mo.Name, name, err))
		}
		if err := prepared.cleanup(ctx); err != nil {
			return fail(err)
		}
		prepared = nil
	}

	task, err := s.obj.CreateSnapshot(ctx, name, description, false, false)
	var res *types.TaskInfo
	if err == nil {
		res, err = taskResult(ctx, task)
	}
	if err != nil {
		return fail(fmt.Errorf("esx: VM %s: snapshot %q: %w", s.mo.Name, name, err))
	}
	ref, ok := res.Result.(types.ManagedObjectReference)
	if !ok {
		return fail(fmt.Errorf("esx: VM %s: snapshot %q: task returned %T", s.mo.Name, name, res.Result))
	}
	if written {
		// The boot point exists: a failure to clear the mark only leaves
		// a stale one, which the next call recognises.
		if err := h.setWriting(ctx, s, ""); err != nil {
			log.Warn("esx: clearing the writing mark", "err", err)
		}
	}
	s2, err := h.load(ctx, s.ref())
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	for _, tr := range snapshotTree(s2) {
		if tr.Snapshot.Value == ref.Value {
			log.Info("esx: boot point added", "snapshot", ref.Value, "disks written", len(targets))
			return toSnapshot(tr, s2), nil
		}
	}
	return fail(fmt.Errorf("esx: VM %s: snapshot %s not in the snapshot tree", s.mo.Name, ref.Value))
}

// uploadSettle is how long a host may go on writing an aborted upload.
const uploadSettle = 500 * time.Millisecond

// writing returns the boot point the VM's writing mark names, if any.
func writing(s *vmState) string {
	for _, o := range s.mo.Config.ExtraConfig {
		if v := o.GetOptionValue(); v != nil && v.Key == writingKey {
			if str, ok := v.Value.(string); ok {
				return str
			}
		}
	}
	return ""
}

// setWriting sets the VM's writing mark to name, or removes it ("").
func (h *Host) setWriting(ctx context.Context, s *vmState, name string) error {
	task, err := s.obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: writingKey, Value: name}},
	})
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("esx: VM %s: setting %s: %w", s.mo.Name, writingKey, err)
	}
	return nil
}

// recoverInterrupted handles a writing mark a dead run left: when its
// snapshot exists the mark is stale and goes; otherwise the leaves hold a
// partial boot point of ours, discarded by reverting to the current
// snapshot.
func (h *Host) recoverInterrupted(ctx context.Context, s *vmState) (*vmState, error) {
	name := writing(s)
	if name == "" {
		return s, nil
	}
	exists := false
	for _, t := range snapshotTree(s) {
		exists = exists || t.Name == name
	}
	if !exists && s.mo.Snapshot != nil && s.mo.Snapshot.CurrentSnapshot != nil {
		h.logger().Warn("esx: discarding an interrupted boot point", "vm", s.mo.Name, "bootpoint", name)
		if err := h.revert(ctx, s, *s.mo.Snapshot.CurrentSnapshot); err != nil {
			return nil, fmt.Errorf("esx: discarding the interrupted boot point %q of VM %s: %w", name, s.mo.Name, err)
		}
	}
	if err := h.setWriting(ctx, s, ""); err != nil {
		return nil, err
	}
	return h.load(ctx, s.ref())
}

// checkLeaves checks the changes against the VM: powered off, a current
// snapshot, each changed disk on the new child ESXi made at that
// snapshot, changes that fit their disks. It changes nothing.
func (h *Host) checkLeaves(ctx context.Context, s *vmState, changes []bootpoint.Delta) ([]leafTarget, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	if s.mo.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return nil, fmt.Errorf("esx: VM %s is %s: boot points are written with it powered off", s.mo.Name, s.mo.Runtime.PowerState)
	}
	if s.mo.Snapshot == nil || s.mo.Snapshot.CurrentSnapshot == nil {
		return nil, fmt.Errorf("%w: VM %s has no current snapshot: its first boot point takes no changes", bootpoint.ErrDiverged, s.mo.Name)
	}
	configs, err := h.snapshotConfigs(ctx, s)
	if err != nil {
		return nil, err
	}
	snapDisks := vmdisks.Of(configs[s.mo.Snapshot.CurrentSnapshot.Value])
	var out []leafTarget
	seen := map[int]bool{}
	for _, c := range changes {
		if seen[c.Disk] {
			return nil, fmt.Errorf("esx: two changes for disk %d", c.Disk)
		}
		seen[c.Disk] = true
		cur, err := currentBacking(s, c.Disk)
		if err != nil {
			return nil, err
		}
		if _, err := ranges(c); err != nil {
			return nil, err
		}
		if c.Disk >= len(snapDisks) || vmdisks.Flat(snapDisks[c.Disk]) == nil {
			return nil, fmt.Errorf("%w: disk %d of VM %s is not in its current snapshot", bootpoint.ErrDiverged, c.Disk, s.mo.Name)
		}
		frozen := vmdisks.Flat(snapDisks[c.Disk])
		if cur.Parent == nil || cur.Parent.FileName != frozen.FileName || recorded(cur.FileName, configs) {
			return nil, fmt.Errorf("%w: disk %d of VM %s is on %s, not on a new child of its current snapshot's %s",
				bootpoint.ErrDiverged, c.Disk, s.mo.Name, cur.FileName, frozen.FileName)
		}
		if capacity := diskCapacity(s, c.Disk); capacity != c.Size {
			return nil, fmt.Errorf("esx: disk %d of VM %s holds %d bytes, the change says %d", c.Disk, s.mo.Name, capacity, c.Size)
		}
		if len(c.Extents) > 0 { // a disk without change is checked, not written
			out = append(out, leafTarget{change: c, leaf: cur})
		}
	}
	return out, nil
}

// diskCapacity is the capacity of disk d in bytes.
func diskCapacity(s *vmState, d int) int64 {
	disk := vmdisks.Of(s.mo.Config)[d]
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}
