package esxsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// A simulator started with Open keeps its world beside its datastore
// folder: Close (and Save) writes the inventory — every VM's
// configuration, power state and snapshot tree with each snapshot's
// configuration — to InventoryFile, and Open on the same folder registers
// the VMs again from it, so that commands run one after another (a CLI
// without ESXi) see the VMs the earlier ones made. Managed object IDs are
// not kept: a VM or snapshot loaded has a new one; names, notes, files,
// devices and the tree are as saved.

// Open is Start for a simulator that keeps its world: the VMs of dir's
// InventoryFile, if there is one, are registered again, and Close saves
// the inventory there.
func Open(ctx context.Context, dir string) (*Simulator, error) {
	s, err := Start(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.keep = true
	return s, nil
}

// InventoryFile is where the inventory of the simulator whose datastore
// is dir is kept: beside dir, not inside it, so that the datastore holds
// only what ESXi would.
func InventoryFile(dir string) string {
	dir = filepath.Clean(dir)
	return filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".esxsim.xml")
}

type savedWorld struct {
	XMLName xml.Name  `xml:"esxsimInventory"`
	Version int       `xml:"version"`
	VMs     []savedVM `xml:"vm"`
}

const inventoryVersion = 1

type savedVM struct {
	XMLName    xml.Name                       `xml:"vm"`
	Name       string                         `xml:"name"`
	Config     types.VirtualMachineConfigInfo `xml:"config"`
	PowerState types.VirtualMachinePowerState `xml:"powerState"`
	Snapshots  []savedSnapshot                `xml:"snapshot,omitempty"`
	Current    int                            `xml:"current"` // index into Snapshots, -1: none
}

// savedSnapshot is one snapshot, its parent before it in the list.
type savedSnapshot struct {
	Parent      int                            `xml:"parent"` // index, -1: a root
	Name        string                         `xml:"name"`
	Description string                         `xml:"description"`
	CreateTime  time.Time                      `xml:"createTime"`
	State       types.VirtualMachinePowerState `xml:"state"`
	Config      types.VirtualMachineConfigInfo `xml:"config"`
}

// Save writes the inventory to InventoryFile (atomically).
func (s *Simulator) Save() error {
	// Each VM is encoded under its lock: its configuration shares
	// devices with the live one, which vcsim may change meanwhile.
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, "<esxsimInventory><version>%d</version>\n", inventoryVersion)
	reg := s.model.Map()
	for _, e := range reg.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var b []byte
		var err error
		reg.WithLock(s.lockOwner, vm, func() { b, err = xml.MarshalIndent(s.saveVM(vm), "", " ") })
		if err != nil {
			return fmt.Errorf("esxsim: saving the inventory: VM %s: %w", vm.Name, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	buf.WriteString("</esxsimInventory>\n")
	path := InventoryFile(s.Dir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("esxsim: saving the inventory: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("esxsim: saving the inventory: %w", err)
	}
	return nil
}

// saveVM copies what loadVM needs of vm; the caller holds vm's lock.
func (s *Simulator) saveVM(vm *simulator.VirtualMachine) savedVM {
	sv := savedVM{Name: vm.Name, PowerState: vm.Runtime.PowerState, Current: -1}
	if vm.Config != nil {
		sv.Config = *vm.Config
	}
	if vm.Snapshot == nil {
		return sv
	}
	var walk func(trees []types.VirtualMachineSnapshotTree, parent int)
	walk = func(trees []types.VirtualMachineSnapshotTree, parent int) {
		for _, t := range trees {
			snap, ok := s.model.Map().Get(t.Snapshot).(*simulator.VirtualMachineSnapshot)
			if !ok {
				continue
			}
			i := len(sv.Snapshots)
			sv.Snapshots = append(sv.Snapshots, savedSnapshot{Parent: parent, Name: t.Name, Description: t.Description,
				CreateTime: t.CreateTime, State: t.State, Config: snap.Config})
			if vm.Snapshot.CurrentSnapshot != nil && *vm.Snapshot.CurrentSnapshot == t.Snapshot {
				sv.Current = i
			}
			walk(t.ChildSnapshotList, i)
		}
	}
	walk(vm.Snapshot.RootSnapshotList, -1)
	return sv
}

// load registers the VMs of the inventory file, if there is one.
func (s *Simulator) load(ctx context.Context) error {
	data, err := os.ReadFile(InventoryFile(s.Dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("esxsim: loading the inventory: %w", err)
	}
	var w savedWorld
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("esxsim: loading the inventory %s: %w", InventoryFile(s.Dir), err)
	}
	if w.Version != inventoryVersion {
		return fmt.Errorf("esxsim: the inventory %s has version %d, want %d", InventoryFile(s.Dir), w.Version, inventoryVersion)
	}
	if len(w.VMs) == 0 {
		return nil
	}
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer methods.Logout(ctx, c, &types.Logout{This: *c.ServiceContent.SessionManager})
	for _, sv := range w.VMs {
		if err := s.loadVM(ctx, c, sv); err != nil {
			return fmt.Errorf("esxsim: loading VM %s from the inventory: %w", sv.Name, err)
		}
	}
	return nil
}

// loadVM registers the VM of the saved .vmx path (vcsim's files are
// there already), gives it its devices and settings back, and rebuilds
// its snapshot tree and power state in vcsim's objects.
func (s *Simulator) loadVM(ctx context.Context, c *vim25.Client, sv savedVM) error {
	finder := find.NewFinder(c)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		return err
	}
	task, err := folders.VmFolder.RegisterVM(ctx, sv.Config.Files.VmPathName, sv.Name, false, pool, nil)
	if err != nil {
		return err
	}
	res, err := task.WaitForResult(ctx)
	if err != nil {
		return err
	}
	ref, ok := res.Result.(types.ManagedObjectReference)
	if !ok {
		return fmt.Errorf("RegisterVM returned %T", res.Result)
	}
	obj := object.NewVirtualMachine(c, ref)
	spec := types.VirtualMachineConfigSpec{
		GuestId: sv.Config.GuestId, NumCPUs: sv.Config.Hardware.NumCPU, MemoryMB: int64(sv.Config.Hardware.MemoryMB),
		Firmware: sv.Config.Firmware, Annotation: sv.Config.Annotation, ExtraConfig: sv.Config.ExtraConfig,
	}
	for _, d := range sv.Config.Hardware.Device {
		if restoredDevice(d) {
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
		}
	}
	task, err = obj.Reconfigure(ctx, spec)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return err
	}
	reg := s.model.Map()
	vm, ok := reg.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("registered as %s, which is no VM", ref.Value)
	}
	reg.WithLock(s.lockOwner, vm, func() { s.restoreState(vm, sv) })
	return nil
}

// restoredDevice tells the devices StandbyKit's VMs are given, which a
// registered VM gets back; vcsim makes the others (IDE, PCI, video…).
func restoredDevice(d types.BaseVirtualDevice) bool {
	switch d.(type) {
	case types.BaseVirtualSCSIController, *types.VirtualAHCIController, *types.VirtualNVMEController,
		*types.VirtualDisk, *types.VirtualSerialPort, *types.VirtualCdrom:
		return true
	case types.BaseVirtualEthernetCard:
		return true
	}
	return false
}

// restoreState rebuilds vm's snapshot tree and power state; the caller
// holds vm's lock.
func (s *Simulator) restoreState(vm *simulator.VirtualMachine, sv savedVM) {
	reg := s.model.Map()
	refs := make([]types.ManagedObjectReference, len(sv.Snapshots))
	trees := make([]*types.VirtualMachineSnapshotTree, len(sv.Snapshots))
	snaps := make([]*simulator.VirtualMachineSnapshot, len(sv.Snapshots))
	for i, ss := range sv.Snapshots {
		snap := &simulator.VirtualMachineSnapshot{}
		snap.Vm = vm.Self
		snap.Config = ss.Config
		reg.Put(snap)
		snaps[i], refs[i] = snap, snap.Self
		trees[i] = &types.VirtualMachineSnapshotTree{Snapshot: snap.Self, Vm: vm.Self, Name: ss.Name, Description: ss.Description,
			Id: int32(i + 1), CreateTime: ss.CreateTime, State: ss.State, ReplaySupported: types.NewBool(false)}
	}
	// Children before parents, so that each tree is complete when it is
	// copied into its parent's list.
	for i := len(sv.Snapshots) - 1; i >= 0; i-- {
		p := sv.Snapshots[i].Parent
		if p < 0 || p >= i {
			continue
		}
		trees[p].ChildSnapshotList = append([]types.VirtualMachineSnapshotTree{*trees[i]}, trees[p].ChildSnapshotList...)
		snaps[p].ChildSnapshot = append([]types.ManagedObjectReference{refs[i]}, snaps[p].ChildSnapshot...)
	}
	if len(sv.Snapshots) > 0 {
		info := &types.VirtualMachineSnapshotInfo{}
		for i, ss := range sv.Snapshots {
			if ss.Parent < 0 || ss.Parent >= i {
				info.RootSnapshotList = append(info.RootSnapshotList, *trees[i])
				vm.RootSnapshot = append(vm.RootSnapshot, refs[i])
			}
		}
		if sv.Current >= 0 && sv.Current < len(refs) {
			info.CurrentSnapshot = &refs[sv.Current]
		}
		vm.Snapshot = info
	}
	vm.Runtime.PowerState = sv.PowerState
	vm.Summary.Runtime.PowerState = sv.PowerState
}
