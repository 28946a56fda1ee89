package esx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

// base is one base disk stream ready for upload.
type base struct {
	open     func() (io.ReadCloser, error)
	size     int64 // bytes of the stream
	capacity int64 // bytes of the disk
}

// CreateStandby implements bootpoint.Hypervisor. The VM is created by an
// NFC import (ImportVApp) whose import spec carries the whole hardware, so
// each disk, written as a streamOptimized VMDK, lands as the VM's disk d
// at "[datastore] <name>/<name>.vmdk", "<name>_<d>.vmdk" for d > 0: what
// govc import.vmdk does, without an OVF. Each stream is first spooled to
// a temporary file, since the NFC upload needs a length. On failure the
// lease is aborted and the VM and its folder are removed.
func (h *Host) CreateStandby(ctx context.Context, spec bootpoint.VMSpec, contents []bootpoint.Delta) (bootpoint.VM, error) {
	if spec.Name == "" {
		return bootpoint.VM{}, errors.New("esx: VM spec without a name")
	}
	var bases []File
	for d, c := range contents {
		if c.Disk != d {
			return bootpoint.VM{}, fmt.Errorf("esx: VM %s: content %d is for disk %d", spec.Name, d, c.Disk)
		}
		f, err := h.baseStream(ctx, spec.Name, c)
		if err != nil {
			return bootpoint.VM{}, fmt.Errorf("esx: VM %s: %w", spec.Name, err)
		}
		bases = append(bases, f)
	}
	if len(bases) == 0 {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s: no base disk", spec.Name)
	}
	if _, err := h.FindVM(ctx, spec.Name); err == nil {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s already exists", spec.Name)
	} else if !errors.Is(err, bootpoint.ErrNotFound) {
		return bootpoint.VM{}, err
	}
	log := h.logger().With("vm", spec.Name)

	var srcs []base
	var spools []string
	defer func() {
		for _, p := range spools {
			_ = os.Remove(p)
		}
	}()
	for d, f := range bases {
		b, spool, err := h.spool(f)
		if spool != "" {
			spools = append(spools, spool)
		}
		if err != nil {
			return bootpoint.VM{}, fmt.Errorf("esx: VM %s base disk %d (%s): %w", spec.Name, d, f.Name, err)
		}
		b.capacity = contents[d].Size
		srcs = append(srcs, b)
	}

	config, err := h.configSpec(ctx, spec, srcs)
	if err != nil {
		return bootpoint.VM{}, err
	}
	lease, err := h.Pool.ImportVApp(ctx, &types.VirtualMachineImportSpec{ConfigSpec: *config}, h.Folder, h.HostSystem)
	if err != nil {
		return bootpoint.VM{}, fmt.Errorf("esx: VM %s: import: %w", spec.Name, err)
	}
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		return bootpoint.VM{}, errors.Join(fmt.Errorf("esx: VM %s: import lease: %w", spec.Name, err),
			h.removeFailed(ctx, log, lease, nil, spec.Name))
	}
	ref := info.Entity
	fail := func(err error) (bootpoint.VM, error) {
		return bootpoint.VM{}, errors.Join(err, h.removeFailed(ctx, log, lease, &ref, spec.Name))
	}

	var items []nfc.FileItem
	for i, u := range info.DeviceUrl {
		if u.Disk != nil && *u.Disk && i < len(info.Items) {
			items = append(items, info.Items[i])
		}
	}
	if len(items) != len(srcs) {
		return fail(fmt.Errorf("esx: VM %s: import lease has %d disks, want %d", spec.Name, len(items), len(srcs)))
	}
	updater := lease.StartUpdater(ctx, info)
	for d, item := range items {
		err := uploadBase(ctx, lease, item, srcs[d], bootpoint.Progress(ctx, bootpoint.StepUpload, d))
		if err != nil {
			updater.Done()
			return fail(fmt.Errorf("esx: VM %s: uploading base disk %d: %w", spec.Name, d, err))
		}
		log.Info("esx: base disk uploaded", "disk", d, "bytes", srcs[d].size, "target", item.Path)
	}
	updater.Done()
	if err := lease.Complete(ctx); err != nil {
		return fail(fmt.Errorf("esx: VM %s: completing import: %w", spec.Name, err))
	}
	vm := bootpoint.VM{Name: spec.Name, ID: ref.Value}
	log.Info("esx: standby VM created", "id", ref.Value, "disks", len(srcs))
	return vm, nil
}

// uploadBase streams one base disk to its NFC device URL, reporting the
// bytes sent.
func uploadBase(ctx context.Context, lease *nfc.Lease, item nfc.FileItem, b base, progress func(done, total int64)) error {
	r, err := b.open()
	if err != nil {
		return err
	}
	defer r.Close()
	progress(0, b.size)
	cr := &countReader{r: r, progress: func(n int64) { progress(n, b.size) }}
	if err := lease.Upload(ctx, item, cr, soap.Upload{ContentLength: b.size}); err != nil {
		return err
	}
	if cr.n != b.size {
		return fmt.Errorf("sent %d bytes, want %d", cr.n, b.size)
	}
	return nil
}

// removeFailed aborts a failed import and removes what it created.
func (h *Host) removeFailed(ctx context.Context, log interface {
	Warn(string, ...any)
}, lease *nfc.Lease, ref *types.ManagedObjectReference, name string) error {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if err := lease.Abort(bg, nil); err != nil && !isNotFound(err) {
		log.Warn("esx: aborting import lease", "err", err)
	}
	vm := bootpoint.VM{Name: name}
	if ref != nil {
		vm.ID = ref.Value
	}
	s, err := h.load(bg, vm)
	switch {
	case err == nil:
		errs = append(errs, h.setPower(bg, s, false), h.destroy(bg, s))
	case errors.Is(err, bootpoint.ErrNotFound):
		errs = append(errs, h.deleteFolder(bg, h.Datastore, name))
	default:
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("esx: cleanup after failed create of %s: %w", name, err)
	}
	log.Warn("esx: failed create cleaned up")
	return nil
}

// spool writes a base stream to a temporary file, to learn its size.
func (h *Host) spool(f File) (b base, spool string, err error) {
	tmp, err := os.CreateTemp(h.TempDir, "esx-base-*.vmdk")
	if err != nil {
		return base{}, "", err
	}
	spool = tmp.Name()
	r, err := f.Open()
	if err == nil {
		b.size, err = io.Copy(tmp, r)
		r.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return base{}, spool, fmt.Errorf("spooling: %w", err)
	}
	b.open = func() (io.ReadCloser, error) { return os.Open(spool) }
	return b, spool, nil
}

type countReader struct {
	r        io.Reader
	n        int64
	progress func(n int64) // nil: none
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// countWriter reports the bytes written through it.
type countWriter struct {
	w        io.Writer
	n        int64
	progress func(n int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// configSpec is the hardware of a new standby VM: controller, disks
// (created empty by the import, then filled by NFC), NIC.
func (h *Host) configSpec(ctx context.Context, spec bootpoint.VMSpec, srcs []base) (*types.VirtualMachineConfigSpec, error) {
	cfg := &types.VirtualMachineConfigSpec{
		Name:       spec.Name,
		Annotation: spec.Annotation,
		GuestId:    spec.GuestID,
		NumCPUs:    int32(spec.CPUs),
		MemoryMB:   int64(spec.MemoryMiB),
		Files:      &types.VirtualMachineFileInfo{VmPathName: h.Datastore.Path("")},
	}
	if cfg.GuestId == "" {
		cfg.GuestId = string(types.VirtualMachineGuestOsIdentifierOtherGuest64)
	}
	if cfg.NumCPUs == 0 {
		cfg.NumCPUs = 2
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 4096
	}
	switch spec.Firmware {
	case p2v.FirmwareEFI:
		cfg.Firmware = string(types.GuestOsDescriptorFirmwareTypeEfi)
	case p2v.FirmwareBIOS, "":
		cfg.Firmware = string(types.GuestOsDescriptorFirmwareTypeBios)
	default:
		return nil, fmt.Errorf("esx: VM %s: unknown firmware %q", spec.Name, spec.Firmware)
	}

	var devs object.VirtualDeviceList
	ctrl, err := newController(devs, spec.Controller)
	if err != nil {
		return nil, fmt.Errorf("esx: VM %s: %w", spec.Name, err)
	}
	devs = append(devs, ctrl)
	dsRef := h.Datastore.Reference()
	for _, b := range srcs {
		disk := &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{
				Key: devs.NewKey(),
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
						FileName:  h.Datastore.Path(""),
						Datastore: &dsRef,
					},
					DiskMode:        string(types.VirtualDiskModePersistent),
					ThinProvisioned: types.NewBool(true),
				},
			},
			CapacityInKB:    b.capacity / 1024,
			CapacityInBytes: b.capacity,
		}
		devs.AssignController(disk, ctrl.(types.BaseVirtualController))
		devs = append(devs, disk)
	}
	if spec.Network != "" {
		nic, err := h.newNIC(ctx, devs, spec.Network, spec.ConnectNIC)
		if err != nil {
			return nil, fmt.Errorf("esx: VM %s: %w", spec.Name, err)
		}
		devs = append(devs, nic)
	}
	for _, d := range devs {
		op := &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d}
		if _, ok := d.(*types.VirtualDisk); ok {
			op.FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
		cfg.DeviceChange = append(cfg.DeviceChange, op)
	}
	return cfg, nil
}

// newController creates the disk controller of kind c (empty: pvscsi).
func newController(devs object.VirtualDeviceList, c p2v.Controller) (types.BaseVirtualDevice, error) {
	switch c {
	case p2v.ControllerPVSCSI, "":
		return devs.CreateSCSIController("pvscsi")
	case p2v.ControllerLSILogicSAS:
		return devs.CreateSCSIController("lsilogic-sas")
	case p2v.ControllerSATA:
		return devs.CreateSATAController()
	case p2v.ControllerNVMe:
		return devs.CreateNVMEController()
	}
	return nil, fmt.Errorf("unknown disk controller %q", c)
}

// newNIC creates a vmxnet3 NIC on the network (port group) of that name.
func (h *Host) newNIC(ctx context.Context, devs object.VirtualDeviceList, network string, connect bool) (types.BaseVirtualDevice, error) {
	backing, err := h.networkBacking(ctx, network)
	if err != nil {
		return nil, err
	}
	nic, err := devs.CreateEthernetCard("vmxnet3", backing)
	if err != nil {
		return nil, fmt.Errorf("NIC: %w", err)
	}
	nic.GetVirtualDevice().Connectable = &types.VirtualDeviceConnectInfo{
		StartConnected:    connect,
		Connected:         connect,
		AllowGuestControl: true,
	}
	return nic, nil
}

// networkBacking is the NIC backing of a network (port group).
func (h *Host) networkBacking(ctx context.Context, network string) (types.BaseVirtualDeviceBackingInfo, error) {
	n, err := h.finder.Network(ctx, network)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", network, err)
	}
	b, err := n.EthernetCardBackingInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", network, err)
	}
	return b, nil
}
