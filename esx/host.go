package esx

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// cleanupTimeout bounds the work that undoes a failed change.
const cleanupTimeout = 2 * time.Minute

// vmState is what the methods read of a VM.
type vmState struct {
	obj *object.VirtualMachine
	mo  mo.VirtualMachine
	ds  *object.Datastore // the datastore of the VM's folder
	dir string            // the VM's folder, relative to ds
}

// vmProps are the VM properties vmState holds.
var vmProps = []string{"name", "config", "snapshot", "runtime.powerState"}

// load reads the VM's state; vm.ID wins over vm.Name.
func (h *Host) load(ctx context.Context, vm bootpoint.VM) (*vmState, error) {
	var ref types.ManagedObjectReference
	if vm.ID != "" {
		ref = types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}
	} else {
		found, err := h.FindVM(ctx, vm.Name)
		if err != nil {
			return nil, err
		}
		ref.Type, ref.Value = "VirtualMachine", found.ID
	}
	s := &vmState{obj: object.NewVirtualMachine(h.Client, ref)}
	if err := s.obj.Properties(ctx, ref, vmProps, &s.mo); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return nil, fmt.Errorf("esx: VM %s (%s): %w", vm.Name, vm.ID, bootpoint.ErrNotFound)
		}
		return nil, fmt.Errorf("esx: reading VM %s (%s): %w", vm.Name, vm.ID, err)
	}
	if s.mo.Config == nil {
		return nil, fmt.Errorf("esx: VM %s has no configuration (inaccessible?)", s.mo.Name)
	}
	if err := checkSnapshotTree(s.mo.Snapshot); err != nil {
		return nil, fmt.Errorf("esx: VM %s: %w", s.mo.Name, err)
	}
	var p object.DatastorePath
	if !p.FromString(s.mo.Config.Files.VmPathName) {
		return nil, fmt.Errorf("esx: VM %s: bad path %q", s.mo.Name, s.mo.Config.Files.VmPathName)
	}
	ds, err := h.datastore(ctx, p.Datastore)
	if err != nil {
		return nil, err
	}
	s.ds, s.dir = ds, path.Dir(p.Path)
	return s, nil
}

func (s *vmState) ref() bootpoint.VM {
	return bootpoint.VM{Name: s.mo.Name, ID: s.obj.Reference().Value}
}

// datastore returns the datastore of that name.
func (h *Host) datastore(ctx context.Context, name string) (*object.Datastore, error) {
	if name == "" || name == h.Datastore.Name() {
		return h.Datastore, nil
	}
	ds, err := h.finder.Datastore(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("esx: datastore %s: %w", name, err)
	}
	return ds, nil
}

// FindVM implements bootpoint.Hypervisor: the VM of that name in the
// configured folder.
func (h *Host) FindVM(ctx context.Context, name string) (bootpoint.VM, error) {
	ref, err := object.NewSearchIndex(h.Client).FindChild(ctx, h.Folder, name)
	if err != nil {
		return bootpoint.VM{}, fmt.Errorf("esx: finding VM %s: %w", name, err)
	}
	if ref == nil || ref.Reference().Type != "VirtualMachine" {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s: %w", name, bootpoint.ErrNotFound)
	}
	var props mo.VirtualMachine
	if err := object.NewVirtualMachine(h.Client, ref.Reference()).Properties(ctx, ref.Reference(), []string{"config.annotation"}, &props); err != nil {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s: %w", name, err)
	}
	vm := bootpoint.VM{Name: name, ID: ref.Reference().Value}
	if props.Config != nil {
		vm.Annotation = props.Config.Annotation
	}
	return vm, nil
}

// SetPower implements bootpoint.Hypervisor. Asking for the state the VM
// is in is not an error.
func (h *Host) SetPower(ctx context.Context, vm bootpoint.VM, on bool) error {
	s, err := h.load(ctx, vm)
	if err != nil {
		return err
	}
	return h.setPower(ctx, s, on)
}

func (h *Host) setPower(ctx context.Context, s *vmState, on bool) error {
	state := s.mo.Runtime.PowerState
	var task *object.Task
	var err error
	switch {
	case on && state != types.VirtualMachinePowerStatePoweredOn:
		task, err = s.obj.PowerOn(ctx)
	case !on && state != types.VirtualMachinePowerStatePoweredOff:
		task, err = s.obj.PowerOff(ctx)
	default:
		return nil
	}
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil && !fault.Is(err, &types.InvalidPowerState{}) {
		return fmt.Errorf("esx: powering VM %s on=%t: %w", s.mo.Name, on, err)
	}
	h.logger().Info("esx: VM power", "vm", s.mo.Name, "on", on)
	return nil
}

// DestroyVM implements bootpoint.Hypervisor. It powers the VM off, removes
// it and deletes its folder. Files outside the folder are left: a test
// clone's parent disks belong to the standby.
func (h *Host) DestroyVM(ctx context.Context, vm bootpoint.VM) error {
	s, err := h.load(ctx, vm)
	if err != nil {
		return err
	}
	if err := h.setPower(ctx, s, false); err != nil {
		return err
	}
	return h.destroy(ctx, s)
}

func (h *Host) destroy(ctx context.Context, s *vmState) error {
	shared, err := h.usesForeignFiles(ctx, s)
	if err != nil {
		return err
	}
	if shared {
		// Destroy_Task would delete the whole disk chain on ESXi.
		if err := s.obj.Unregister(ctx); err != nil {
			return fmt.Errorf("esx: unregistering VM %s: %w", s.mo.Name, err)
		}
	} else {
		task, err := s.obj.Destroy(ctx)
		if err == nil {
			err = waitTask(ctx, task)
		}
		if err != nil {
			return fmt.Errorf("esx: destroying VM %s: %w", s.mo.Name, err)
		}
	}
	if err := h.deleteFolder(ctx, s.ds, s.dir); err != nil {
		return err
	}
	h.logger().Info("esx: VM destroyed", "vm", s.mo.Name, "unregistered", shared)
	return nil
}

// deleteFolder deletes a VM folder and everything in it.
func (h *Host) deleteFolder(ctx context.Context, ds *object.Datastore, dir string) error {
	if dir == "" || dir == "." || dir == "/" {
		return fmt.Errorf("esx: refusing to delete datastore folder %q", dir)
	}
	fm := object.NewFileManager(h.Client)
	task, err := fm.DeleteDatastoreFile(ctx, ds.Path(dir), h.Datacenter)
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("esx: deleting %s: %w", ds.Path(dir), err)
	}
	return nil
}

// usesForeignFiles tells whether a disk of the VM, now or in a snapshot,
// has a file outside the VM's folder.
func (h *Host) usesForeignFiles(ctx context.Context, s *vmState) (bool, error) {
	configs := []*types.VirtualMachineConfigInfo{s.mo.Config}
	snaps, err := h.snapshotConfigs(ctx, s)
	if err != nil {
		return false, err
	}
	for _, c := range snaps {
		configs = append(configs, c)
	}
	own := s.ds.Path(s.dir) + "/"
	for _, c := range configs {
		for _, d := range vmdisks.Of(c) {
			for b := vmdisks.Flat(d); b != nil; b = b.Parent {
				if len(b.FileName) < len(own) || b.FileName[:len(own)] != own {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// ErrImplausible reports an answer from the host that cannot be right (a
// snapshot tree deeper or larger than ESXi makes, say): answers are
// checked before they drive loops, as input from outside.
var ErrImplausible = errors.New("esx: implausible answer from the host")

// Bounds of a snapshot tree as the host reports it: ESXi keeps at most
// 32 links in a disk chain (so a branch of at most 31 snapshots) and
// advises far fewer snapshots in all.
const (
	maxSnapshotDepth = 64
	maxSnapshots     = 4096
)

// checkSnapshotTree checks a VM's snapshot tree against those bounds, so
// that walking it (snapshotTree) is bounded.
func checkSnapshotTree(info *types.VirtualMachineSnapshotInfo) error {
	if info == nil {
		return nil
	}
	n := 0
	var walk func(l []types.VirtualMachineSnapshotTree, depth int) error
	walk = func(l []types.VirtualMachineSnapshotTree, depth int) error {
		if len(l) > 0 && depth > maxSnapshotDepth {
			return fmt.Errorf("%w: a snapshot tree deeper than %d", ErrImplausible, maxSnapshotDepth)
		}
		for _, t := range l {
			if n++; n > maxSnapshots {
				return fmt.Errorf("%w: more than %d snapshots", ErrImplausible, maxSnapshots)
			}
			if err := walk(t.ChildSnapshotList, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(info.RootSnapshotList, 1)
}

// snapshotTree lists the snapshots of a VM load checked
// (checkSnapshotTree), oldest first.
func snapshotTree(s *vmState) []types.VirtualMachineSnapshotTree {
	var out []types.VirtualMachineSnapshotTree
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(l []types.VirtualMachineSnapshotTree) {
		for _, t := range l {
			out = append(out, t)
			walk(t.ChildSnapshotList)
		}
	}
	if s.mo.Snapshot != nil {
		walk(s.mo.Snapshot.RootSnapshotList)
	}
	slices.SortStableFunc(out, func(a, b types.VirtualMachineSnapshotTree) int {
		return a.CreateTime.Compare(b.CreateTime)
	})
	return out
}

func toSnapshot(t types.VirtualMachineSnapshotTree, s *vmState) bootpoint.Snapshot {
	cur := s.mo.Snapshot != nil && s.mo.Snapshot.CurrentSnapshot != nil && *s.mo.Snapshot.CurrentSnapshot == t.Snapshot
	return bootpoint.Snapshot{ID: t.Snapshot.Value, Name: t.Name, Description: t.Description, Created: t.CreateTime, Current: cur}
}

// Snapshots implements bootpoint.Hypervisor.
func (h *Host) Snapshots(ctx context.Context, vm bootpoint.VM) ([]bootpoint.Snapshot, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, err
	}
	var out []bootpoint.Snapshot
	for _, t := range snapshotTree(s) {
		out = append(out, toSnapshot(t, s))
	}
	return out, nil
}

// findSnapshot finds snapshot sn by ID or, without one, by its unique name.
func findSnapshot(s *vmState, sn bootpoint.Snapshot) (types.VirtualMachineSnapshotTree, error) {
	var found []types.VirtualMachineSnapshotTree
	for _, t := range snapshotTree(s) {
		if (sn.ID != "" && t.Snapshot.Value == sn.ID) || (sn.ID == "" && t.Name == sn.Name) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return types.VirtualMachineSnapshotTree{}, fmt.Errorf("esx: VM %s has no snapshot %s %q: %w",
			s.mo.Name, sn.ID, sn.Name, bootpoint.ErrNotFound)
	default:
		return types.VirtualMachineSnapshotTree{}, fmt.Errorf("esx: VM %s has %d snapshots named %q",
			s.mo.Name, len(found), sn.Name)
	}
}

// snapshotConfigs reads the configuration recorded in each snapshot.
func (h *Host) snapshotConfigs(ctx context.Context, s *vmState) (map[string]*types.VirtualMachineConfigInfo, error) {
	tree := snapshotTree(s)
	out := make(map[string]*types.VirtualMachineConfigInfo, len(tree))
	if len(tree) == 0 {
		return out, nil
	}
	refs := make([]types.ManagedObjectReference, len(tree))
	for i, t := range tree {
		refs[i] = t.Snapshot
	}
	var snaps []mo.VirtualMachineSnapshot
	if err := property.DefaultCollector(h.Client).Retrieve(ctx, refs, []string{"config"}, &snaps); err != nil {
		return nil, fmt.Errorf("esx: reading snapshots of VM %s: %w", s.mo.Name, err)
	}
	for i := range snaps {
		out[snaps[i].Self.Value] = &snaps[i].Config
	}
	return out, nil
}

// snapshotConfig reads one snapshot's recorded configuration.
func (h *Host) snapshotConfig(ctx context.Context, ref types.ManagedObjectReference) (*types.VirtualMachineConfigInfo, error) {
	var snap mo.VirtualMachineSnapshot
	if err := property.DefaultCollector(h.Client).RetrieveOne(ctx, ref, []string{"config"}, &snap); err != nil {
		return nil, fmt.Errorf("esx: reading snapshot %s: %w", ref.Value, err)
	}
	return &snap.Config, nil
}

// RemoveSnapshot implements bootpoint.Hypervisor: the snapshot goes, its
// children stay, its disks are consolidated.
func (h *Host) RemoveSnapshot(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot) error {
	s, err := h.load(ctx, vm)
	if err != nil {
		return err
	}
	t, err := findSnapshot(s, sn)
	if err != nil {
		return err
	}
	if err := h.removeSnapshot(ctx, t.Snapshot); err != nil {
		return fmt.Errorf("esx: removing snapshot %q of VM %s: %w", t.Name, s.mo.Name, err)
	}
	h.logger().Info("esx: snapshot removed", "vm", s.mo.Name, "snapshot", t.Name)
	return nil
}

func (h *Host) removeSnapshot(ctx context.Context, ref types.ManagedObjectReference) error {
	consolidate := true
	res, err := methods.RemoveSnapshot_Task(ctx, h.Client, &types.RemoveSnapshot_Task{
		This: ref, RemoveChildren: false, Consolidate: &consolidate,
	})
	if err != nil {
		return err
	}
	return waitTask(ctx, object.NewTask(h.Client, res.Returnval))
}

// Revert implements bootpoint.Hypervisor: ESXi discards the current
// leaves and puts the VM on a new empty child of the snapshot's disks.
func (h *Host) Revert(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot) error {
	s, err := h.load(ctx, vm)
	if err != nil {
		return err
	}
	t, err := findSnapshot(s, sn)
	if err != nil {
		return err
	}
	if err := h.revert(ctx, s, t.Snapshot); err != nil {
		return fmt.Errorf("esx: reverting VM %s to %q: %w", s.mo.Name, t.Name, err)
	}
	// The revert discarded whatever an interrupted boot point wrote.
	if writing(s) != "" {
		if err := h.setWriting(ctx, s, ""); err != nil {
			return err
		}
	}
	h.logger().Info("esx: reverted", "vm", s.mo.Name, "snapshot", t.Name)
	return nil
}

func (h *Host) revert(ctx context.Context, s *vmState, ref types.ManagedObjectReference) error {
	suppress := true
	res, err := methods.RevertToSnapshot_Task(ctx, h.Client, &types.RevertToSnapshot_Task{
		This: ref, SuppressPowerOn: &suppress,
	})
	if err != nil {
		return err
	}
	return waitTask(ctx, object.NewTask(h.Client, res.Returnval))
}

// recorded tells whether some snapshot's disk has file as its leaf.
func recorded(file string, configs map[string]*types.VirtualMachineConfigInfo) bool {
	for _, c := range configs {
		for _, d := range vmdisks.Of(c) {
			if b := vmdisks.Flat(d); b != nil && b.FileName == file {
				return true
			}
		}
	}
	return false
}

// errNoDisk reports a disk index out of range.
var errNoDisk = fmt.Errorf("esx: no such disk: %w", bootpoint.ErrNotFound)
