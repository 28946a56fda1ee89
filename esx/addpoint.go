package esx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/vmdk"
)

// maxEmptyLeaf bounds the download of a leaf's extent to check that it is
// empty: an empty vmfsSparse delta is a header and a grain directory (1
// MiB for a 2 TiB disk).
const maxEmptyLeaf = 16 << 20

// leafWrite is the plan for one disk of a boot point.
type leafWrite struct {
	change     bootpoint.Delta
	descriptor File // the leaf's new descriptor
	extent     File // the leaf's new extent
}

// AddBootPoint implements bootpoint.Hypervisor. The changes go into the
// current leaf of each disk: the empty delta ESXi made when it took the
// current snapshot (a VM without a snapshot takes no changes). The leaf's
// descriptor and then its extent are replaced by a vmfsSparse delta that
// holds the changes, with the same parent and names; then the snapshot
// freezes it and ESXi starts the next leaf. A leaf that is not an empty
// vmfsSparse delta is refused (ErrLeafFormat, bootpoint.ErrDiverged),
// except one that holds only an earlier, interrupted write of ours, which
// is discarded first. On any failure a snapshot the call made is removed
// and the VM is reverted to its current snapshot, which discards the
// half-written leaf.
func (h *Host) AddBootPoint(ctx context.Context, vm bootpoint.VM, changes []bootpoint.Delta, name, description string) (bootpoint.Snapshot, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	plan, err := h.planLeafWrites(ctx, s, changes)
	if errors.Is(err, errInterrupted) {
		// A boot point of ours was being written when the process died:
		// discard it, and write it again.
		h.logger().Warn("esx: discarding an interrupted boot point", "vm", s.mo.Name, "err", err)
		if err := h.revert(ctx, s, *s.mo.Snapshot.CurrentSnapshot); err != nil {
			return bootpoint.Snapshot{}, fmt.Errorf("esx: discarding an interrupted boot point of VM %s: %w", s.mo.Name, err)
		}
		if s, err = h.load(ctx, s.ref()); err != nil {
			return bootpoint.Snapshot{}, err
		}
		plan, err = h.planLeafWrites(ctx, s, changes)
	}
	if err != nil {
		return bootpoint.Snapshot{}, err
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
		if written && s.mo.Snapshot != nil && s.mo.Snapshot.CurrentSnapshot != nil {
			// The host may still be writing an upload the client gave
			// up on: let it settle, then discard the leaf.
			select {
			case <-time.After(uploadSettle):
			case <-bg.Done():
			}
			if rerr := h.revert(bg, s, *s.mo.Snapshot.CurrentSnapshot); rerr != nil {
				errs = append(errs, fmt.Errorf("esx: discarding the half-written leaves of VM %s: %w", s.mo.Name, rerr))
			}
		}
		if cerr := errors.Join(errs...); cerr != nil {
			log.Error("esx: cleanup after failed boot point", "err", cerr)
			err = errors.Join(err, fmt.Errorf("esx: cleanup: %w", cerr))
		}
		return bootpoint.Snapshot{}, err
	}

	t := h.transport()
	for _, w := range plan {
		// The descriptor first: its marker tells a later run that the
		// leaf holds a write of ours, however far the extent got.
		for _, f := range []File{w.descriptor, w.extent} {
			written = true // a partial upload is discarded too
			if err := t.Upload(ctx, s.ds, path.Join(s.dir, f.Name), f); err != nil {
				return fail(fmt.Errorf("esx: VM %s disk %d: uploading %s: %w", s.mo.Name, w.change.Disk, f.Name, err))
			}
			log.Debug("esx: uploaded", "file", f.Name)
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
			log.Info("esx: boot point added", "snapshot", ref.Value, "disks written", len(plan))
			return toSnapshot(tr, s2), nil
		}
	}
	return fail(fmt.Errorf("esx: VM %s: snapshot %s not in the snapshot tree", s.mo.Name, ref.Value))
}

// errInterrupted reports a leaf that holds a boot point this package was
// writing when its process died.
var errInterrupted = errors.New("esx: the leaf holds an interrupted boot point")

// uploadSettle is how long a host may go on writing an aborted upload.
const uploadSettle = 500 * time.Millisecond

// planLeafWrites checks the changes against the VM and prepares the new
// content of each changed disk's leaf. It changes nothing.
func (h *Host) planLeafWrites(ctx context.Context, s *vmState, changes []bootpoint.Delta) ([]leafWrite, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	if s.mo.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return nil, fmt.Errorf("esx: VM %s is %s: boot points are written with it powered off", s.mo.Name, s.mo.Runtime.PowerState)
	}
	if s.mo.Snapshot == nil || s.mo.Snapshot.CurrentSnapshot == nil {
		return nil, fmt.Errorf("esx: VM %s has no current snapshot: its first boot point takes no changes", s.mo.Name)
	}
	configs, err := h.snapshotConfigs(ctx, s)
	if err != nil {
		return nil, err
	}
	snapDisks := vmdisks.Of(configs[s.mo.Snapshot.CurrentSnapshot.Value])
	var plan []leafWrite
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
		if c.Disk >= len(snapDisks) || vmdisks.Flat(snapDisks[c.Disk]) == nil {
			return nil, fmt.Errorf("%w: disk %d of VM %s is not in its current snapshot", bootpoint.ErrDiverged, c.Disk, s.mo.Name)
		}
		frozen := vmdisks.Flat(snapDisks[c.Disk])
		if cur.Parent == nil || cur.Parent.FileName != frozen.FileName || recorded(cur.FileName, configs) {
			return nil, fmt.Errorf("%w: disk %d of VM %s is on %s, not on a new child of its current snapshot's %s",
				bootpoint.ErrDiverged, c.Disk, s.mo.Name, cur.FileName, frozen.FileName)
		}
		w, err := h.planLeaf(ctx, s, c, cur)
		if err != nil {
			return nil, err
		}
		plan = append(plan, w)
	}
	return plan, nil
}

// planLeaf reads disk c.Disk's current leaf and its parent and prepares
// the leaf's new files, after checking that the leaf is still empty.
func (h *Host) planLeaf(ctx context.Context, s *vmState, c bootpoint.Delta, cur *types.VirtualDiskFlatVer2BackingInfo) (leafWrite, error) {
	leafName, err := relName(s, cur.FileName)
	if err != nil {
		return leafWrite{}, err
	}
	parentName, err := relName(s, cur.Parent.FileName)
	if err != nil {
		return leafWrite{}, err
	}
	leaf, embedded, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, leafName))
	if err != nil {
		return leafWrite{}, err
	}
	if embedded || len(leaf.Extents) != 1 || leaf.Extents[0].Type != vmdk.ExtentVMFSSparse {
		return leafWrite{}, fmt.Errorf("%w: disk %d of VM %s: %s is %q", ErrLeafFormat, c.Disk, s.mo.Name, leafName, leaf.CreateType)
	}
	parent, _, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, parentName))
	if err != nil {
		return leafWrite{}, err
	}
	if leaf.ParentCID != parent.CID {
		return leafWrite{}, fmt.Errorf("esx: disk %d of VM %s: %s names parentCID %08x, its parent has %08x", c.Disk, s.mo.Name, leafName, leaf.ParentCID, parent.CID)
	}
	if writtenByUs(leaf) {
		return leafWrite{}, fmt.Errorf("%w: disk %d of VM %s", errInterrupted, c.Disk, s.mo.Name)
	}
	extName := path.Join(path.Dir(leafName), leaf.Extents[0].File)
	if err := h.checkEmpty(ctx, s, extName); err != nil {
		return leafWrite{}, fmt.Errorf("disk %d: %w", c.Disk, err)
	}
	desc, ext, err := leafFill(ctx, leafName, leaf, parent, c)
	if err != nil {
		return leafWrite{}, fmt.Errorf("esx: VM %s disk %d: %w", s.mo.Name, c.Disk, err)
	}
	return leafWrite{change: c, descriptor: desc, extent: ext}, nil
}

// checkEmpty tells a leaf extent that holds no data from one someone
// wrote to.
func (h *Host) checkEmpty(ctx context.Context, s *vmState, extName string) error {
	b, err := h.readRange(ctx, s.ds, path.Join(s.dir, extName), 0, maxEmptyLeaf+1)
	if err != nil {
		return err
	}
	if len(b) > maxEmptyLeaf {
		return fmt.Errorf("%w: %s of VM %s is larger than an empty delta", bootpoint.ErrDiverged, extName, s.mo.Name)
	}
	c, err := vmdk.OpenCOWD(&memRW{b: b}, int64(len(b)))
	if err != nil {
		return fmt.Errorf("esx: %s of VM %s: %w", extName, s.mo.Name, err)
	}
	if a := c.Allocated(); len(a) > 0 {
		return fmt.Errorf("%w: %s of VM %s holds data at [%d,%d)", bootpoint.ErrDiverged, extName, s.mo.Name, a[0].Off, a[0].End())
	}
	return nil
}

// memRW is a byte slice read and written at offsets.
type memRW struct{ b []byte }

func (m *memRW) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memRW) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}
