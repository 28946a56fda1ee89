package esx

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// ConnectNetwork implements bootpoint.NetworkConnector: the VM's first NIC
// (a new vmxnet3 NIC if it has none) goes on that port group, connected
// now and at power-on.
func (h *Host) ConnectNetwork(ctx context.Context, vm bootpoint.VM, network string) error {
	s, err := h.load(ctx, vm)
	if err != nil {
		return err
	}
	devs := object.VirtualDeviceList(s.mo.Config.Hardware.Device)
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	spec := types.VirtualMachineConfigSpec{}
	if len(nics) == 0 {
		nic, err := h.newNIC(ctx, devs, network, true)
		if err != nil {
			return fmt.Errorf("esx: VM %s: %w", s.mo.Name, err)
		}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic,
		})
	} else {
		backing, err := h.networkBacking(ctx, network)
		if err != nil {
			return fmt.Errorf("esx: VM %s: %w", s.mo.Name, err)
		}
		nic := nics[0]
		d := nic.GetVirtualDevice()
		d.Backing = backing
		d.Connectable = &types.VirtualDeviceConnectInfo{Connected: true, StartConnected: true, AllowGuestControl: true}
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: nic,
		})
	}
	task, err := s.obj.Reconfigure(ctx, spec)
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("esx: VM %s: connecting to network %s: %w", s.mo.Name, network, err)
	}
	h.logger().Info("esx: NIC connected", "vm", s.mo.Name, "network", network)
	return nil
}

// CloneForTest implements bootpoint.TestBooter. The clone is a new VM,
// name, with the hardware snapshot sn recorded, whose disks are new empty
// vmfsSparse children in the clone's own folder on top of the snapshot's
// disks, and whose NIC is connected to network (no NIC when network is
// empty). DestroyVM of the clone deletes only its own folder.
func (h *Host) CloneForTest(ctx context.Context, vm bootpoint.VM, sn bootpoint.Snapshot, name, network string) (bootpoint.VM, error) {
	s, err := h.load(ctx, vm)
	if err != nil {
		return bootpoint.VM{}, err
	}
	t, err := findSnapshot(s, sn)
	if err != nil {
		return bootpoint.VM{}, err
	}
	cfg, err := h.snapshotConfig(ctx, t.Snapshot)
	if err != nil {
		return bootpoint.VM{}, err
	}
	if _, err := h.FindVM(ctx, name); err == nil {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s already exists", name)
	} else if !errors.Is(err, bootpoint.ErrNotFound) {
		return bootpoint.VM{}, err
	}

	// The empty children, named relative to the clone's folder.
	parents := vmdisks.Of(cfg)
	type child struct{ descriptor, extent File }
	children := make([]child, len(parents))
	for d, disk := range parents {
		b := vmdisks.Flat(disk)
		if b == nil {
			return bootpoint.VM{}, fmt.Errorf("esx: VM %s disk %d: unsupported backing %T", s.mo.Name, d, disk.Backing)
		}
		var dp object.DatastorePath
		dp.FromString(b.FileName)
		if dp.Datastore != h.Datastore.Name() {
			return bootpoint.VM{}, fmt.Errorf("esx: VM %s disk %d is on datastore %s, clones go on %s",
				s.mo.Name, d, dp.Datastore, h.Datastore.Name())
		}
		desc, _, err := h.readDescriptor(ctx, s.ds, dp.Path)
		if err != nil {
			return bootpoint.VM{}, err
		}
		cd, ce, err := emptyChild(ctx, "../"+dp.Path, desc)
		if err != nil {
			return bootpoint.VM{}, fmt.Errorf("esx: child of %s: %w", b.FileName, err)
		}
		children[d] = child{cd, ce}
	}

	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  cfg.GuestId,
		Firmware: cfg.Firmware,
		NumCPUs:  cfg.Hardware.NumCPU,
		MemoryMB: int64(cfg.Hardware.MemoryMB),
		Files:    &types.VirtualMachineFileInfo{VmPathName: h.Datastore.Path("")},
	}
	task, err := h.Folder.CreateVM(ctx, spec, h.Pool, h.HostSystem)
	var res *types.TaskInfo
	if err == nil {
		res, err = taskResult(ctx, task)
	}
	if err != nil {
		return bootpoint.VM{}, errors.Join(fmt.Errorf("esx: creating test clone %s: %w", name, err),
			h.removeClone(ctx, bootpoint.VM{Name: name}))
	}
	clone := bootpoint.VM{Name: name, ID: res.Result.(types.ManagedObjectReference).Value}
	fail := func(err error) (bootpoint.VM, error) {
		return bootpoint.VM{}, errors.Join(err, h.removeClone(ctx, clone))
	}
	cs, err := h.load(ctx, clone)
	if err != nil {
		return fail(err)
	}

	var devs object.VirtualDeviceList
	ctrls := map[int32]types.BaseVirtualController{}
	for d, disk := range parents {
		ctrl, ok := ctrls[disk.ControllerKey]
		if !ok {
			old := object.VirtualDeviceList(cfg.Hardware.Device).FindByKey(disk.ControllerKey)
			c, err := copyController(devs, old)
			if err != nil {
				return fail(fmt.Errorf("esx: test clone %s: %w", name, err))
			}
			devs = append(devs, c)
			ctrl = c.(types.BaseVirtualController)
			ctrls[disk.ControllerKey] = ctrl
		}
		for _, f := range []File{children[d].extent, children[d].descriptor} {
			if err := h.transport().Upload(ctx, cs.ds, path.Join(cs.dir, f.Name), f); err != nil {
				return fail(fmt.Errorf("esx: test clone %s: uploading %s: %w", name, f.Name, err))
			}
		}
		b := vmdisks.Clone(vmdisks.Flat(disk))
		b.Parent = vmdisks.Clone(vmdisks.Flat(disk))
		b.FileName = cs.ds.Path(path.Join(cs.dir, children[d].descriptor.Name))
		b.Uuid, b.ContentId = "", ""
		nd := &types.VirtualDisk{
			VirtualDevice:   types.VirtualDevice{Key: devs.NewKey(), Backing: b},
			CapacityInKB:    disk.CapacityInKB,
			CapacityInBytes: disk.CapacityInBytes,
		}
		devs.AssignController(nd, ctrl)
		devs = append(devs, nd)
	}
	if network != "" {
		nic, err := h.newNIC(ctx, devs, network, true)
		if err != nil {
			return fail(fmt.Errorf("esx: test clone %s: %w", name, err))
		}
		devs = append(devs, nic)
	}
	var add []types.BaseVirtualDeviceConfigSpec
	for _, d := range devs { // no file operation: the disks exist
		add = append(add, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
	}
	task, err = cs.obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: add})
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fail(fmt.Errorf("esx: test clone %s: attaching disks: %w", name, err))
	}
	h.logger().Info("esx: test clone created", "vm", s.mo.Name, "snapshot", t.Name, "clone", name, "network", network)
	return clone, nil
}

// removeClone removes a half-made test clone.
func (h *Host) removeClone(ctx context.Context, clone bootpoint.VM) error {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	s, err := h.load(bg, clone)
	if errors.Is(err, bootpoint.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.destroy(bg, s)
}

// copyController creates a controller of the same kind as old.
func copyController(devs object.VirtualDeviceList, old types.BaseVirtualDevice) (types.BaseVirtualDevice, error) {
	switch old.(type) {
	case types.BaseVirtualSCSIController:
		return devs.CreateSCSIController(devs.Type(old))
	case *types.VirtualAHCIController:
		return devs.CreateSATAController()
	case *types.VirtualNVMEController:
		return devs.CreateNVMEController()
	case nil:
		return nil, errors.New("disk without controller")
	}
	return nil, fmt.Errorf("unsupported disk controller %T", old)
}
