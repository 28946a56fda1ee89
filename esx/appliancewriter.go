package esx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/p2v"
	"github.com/standbykit/standbykit/vmdk"
)

// ApplianceOptions configures the writer appliance (WriterAppliance).
type ApplianceOptions struct {
	// Name is the appliance VM's name in the Host's folder; empty means
	// "standbykit-writer".
	Name string
	// Image is the appliance's boot image (the ISO the build-appliance
	// command makes), uploaded into the appliance's folder when it is
	// deployed.
	Image File
	// WithoutBootImage deploys the appliance with no boot media. Only a
	// simulator that runs the writer in process (esx/esxsim) can run such
	// an appliance; on a real host it would never power itself off.
	WithoutBootImage bool
	// Timeout bounds one run of the appliance, from power-on to its own
	// power-off; 0 means 10 minutes.
	Timeout time.Duration
	// Poll is how often its power state is read while it runs; 0 means 2
	// seconds.
	Poll time.Duration
	// Slots is how many boot points (of as many standby VMs) one run of
	// the appliance writes at most; 0 means 4, the most (one pvscsi
	// controller each, and a VM has four). Boot points that arrive while
	// the appliance runs wait for its next run, so a per-host limit of
	// concurrent tasks up to the slots makes one run per batch of them.
	Slots int
}

const (
	defaultApplianceName = "standbykit-writer"
	payloadVMPrefix      = "standbykit-payload-"
	// maxApplianceTargets is how many leaves one boot point may give the
	// appliance: its pvscsi controller has 15 units, one of them for the
	// payload.
	maxApplianceTargets = 14
)

func (o ApplianceOptions) name() string {
	if o.Name == "" {
		return defaultApplianceName
	}
	return o.Name
}

// applianceWriter is WriterAppliance: the changes travel as a payload
// disk (appliance.WritePayload, imported through NFC as the disk of a
// throwaway VM that is never powered on), which is attached with the
// standby's leaves to the appliance, in a run with the other boot points
// waiting for it (appliancebatch.go); the appliance writes them through
// ESXi's disk stack, reports on its serial port (a datastore file) and
// powers itself off.
type applianceWriter struct{ h *Host }

type applianceWrite struct {
	h       *Host
	s       *vmState
	targets []leafTarget
	id      string
	size    int64
	spool   string

	payloadVM bootpoint.VM // the payload's VM, once imported
}

func (w *applianceWrite) payloadVMName() string {
	return payloadVMPrefix + w.id[:min(len(w.id), 16)]
}

func (a *applianceWriter) prepare(ctx context.Context, s *vmState, targets []leafTarget) (leafWrite, error) {
	if len(targets) > maxApplianceTargets {
		return nil, fmt.Errorf("esx: VM %s: %d changed disks, the appliance takes %d at once", s.mo.Name, len(targets), maxApplianceTargets)
	}
	var pts []appliance.Target
	for i, t := range targets {
		if t.change.Base == nil {
			return nil, fmt.Errorf("esx: VM %s disk %d: the writer appliance needs the disk's current content (Delta.Base) to guard its write", s.mo.Name, t.change.Disk)
		}
		if err := a.h.checkLeafEmpty(ctx, s, t); err != nil {
			return nil, err
		}
		rs, err := ranges(t.change)
		if err != nil {
			return nil, err
		}
		pts = append(pts, appliance.Target{Capacity: t.change.Size, Extents: rs, Source: t.change.Source, Base: t.change.Base,
			Unit: int(applianceUnit(i + 1))}) // as attachBatch places it
	}
	f, err := os.CreateTemp(a.h.TempDir, "esx-payload-*")
	if err != nil {
		return nil, err
	}
	w := &applianceWrite{h: a.h, s: s, targets: targets, spool: f.Name()}
	total, err := appliance.PayloadSize(pts)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	progress := bootpoint.Progress(ctx, bootpoint.StepPayload, -1)
	progress(0, total)
	w.id, w.size, err = appliance.WritePayload(ctx, &countWriter{w: f, progress: func(n int64) { progress(n, total) }}, pts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("esx: VM %s: building the payload: %w", s.mo.Name, err)
	}
	return w, nil
}

// checkLeafEmpty checks, where the leaf's format can be read (vmfsSparse),
// that nobody wrote to it; elsewhere the appliance's guard checks the
// ranges it writes.
func (h *Host) checkLeafEmpty(ctx context.Context, s *vmState, t leafTarget) error {
	name, err := relName(s, t.leaf.FileName)
	if err != nil {
		return err
	}
	leaf, embedded, err := h.readDescriptor(ctx, s.ds, path.Join(s.dir, name))
	if err != nil {
		return err
	}
	if embedded || len(leaf.Extents) != 1 || leaf.Extents[0].Type != vmdk.ExtentVMFSSparse {
		return nil
	}
	if err := h.checkEmpty(ctx, s, path.Join(path.Dir(name), leaf.Extents[0].File)); err != nil {
		return fmt.Errorf("disk %d: %w", t.change.Disk, err)
	}
	return nil
}

func (w *applianceWrite) write(ctx context.Context) error {
	if err := w.importPayload(ctx); err != nil {
		return err
	}
	w.h.logger().Debug("esx: payload imported", "vm", w.s.mo.Name, "payload", w.id, "bytes", w.size)
	return w.h.batcher().write(ctx, w.h, w)
}

// importPayload imports the payload as the only disk of a new VM (never
// powered on; destroying it deletes the payload).
func (w *applianceWrite) importPayload(ctx context.Context) error {
	f, err := os.Open(w.spool)
	if err != nil {
		return err
	}
	defer f.Close()
	capacity := (w.size + 1<<20 - 1) &^ (1<<20 - 1)
	// Live from now on: a run must not take it for a dead run's leftover.
	w.h.batcher().setLive(w.payloadVMName(), true)
	spec := bootpoint.VMSpec{Name: w.payloadVMName(), CPUs: 1, MemoryMiB: 32,
		Controller: p2v.ControllerPVSCSI, Annotation: "StandbyKit payload " + w.id + " for the writer appliance; deleted after use."}
	content := bootpoint.Delta{Disk: 0, Size: capacity, Extents: []aipimage.Extent{{Off: 0, Len: (w.size + 511) &^ 511}}, Source: f}
	if report := bootpoint.ProgressOf(ctx); report != nil {
		// The payload VM's disk is the boot point's payload, not a disk
		// of the standby.
		ctx = bootpoint.WithProgress(ctx, func(t bootpoint.Transfer) { t.Disk = -1; report(t) })
	}
	vm, err := w.h.CreateStandby(ctx, spec, []bootpoint.Delta{content})
	if err != nil {
		return fmt.Errorf("importing the payload: %w", err)
	}
	w.payloadVM = vm
	return nil
}

// applianceUnit is the unit number, on the controller a boot point has
// in the appliance, of its i-th disk: the payload at 0, then the targets
// in their order, skipping the controller's own unit 7.
func applianceUnit(i int) int32 {
	if i >= 7 {
		return int32(i + 1)
	}
	return int32(i)
}

// attachedDisks are the appliance's disks: all of them are borrowed.
func attachedDisks(app *vmState) []types.BaseVirtualDevice {
	var out []types.BaseVirtualDevice
	for _, d := range vmdisks.Of(app.mo.Config) {
		out = append(out, d)
	}
	return out
}

// cleanup deletes the payload (its run gave the disks back already).
func (w *applianceWrite) cleanup(ctx context.Context) error {
	var err error
	if w.payloadVM.ID != "" {
		err = w.h.DestroyVM(ctx, w.payloadVM)
		if err == nil {
			w.payloadVM = bootpoint.VM{}
		}
	}
	if w.id != "" {
		// Not live any more: if it could not be deleted, the next run
		// deletes it.
		w.h.batcher().setLive(w.payloadVMName(), false)
	}
	if w.spool != "" {
		os.Remove(w.spool)
		w.spool = ""
	}
	return err
}

// detachAll powers the appliance off (if a run died with it on) and
// removes every disk from it, keeping their files.
func (h *Host) detachAll(ctx context.Context, app *vmState) error {
	s, err := h.load(ctx, app.ref())
	if err != nil {
		return err
	}
	if err := h.setPower(ctx, s, false); err != nil {
		return err
	}
	var spec types.VirtualMachineConfigSpec
	for _, d := range attachedDisks(s) {
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d})
	}
	if len(spec.DeviceChange) == 0 {
		return nil
	}
	task, err := s.obj.Reconfigure(ctx, spec)
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("esx: detaching disks from the appliance %s: %w", s.mo.Name, err)
	}
	return nil
}

// runAppliance powers the appliance on and waits until it has powered
// itself off; past the timeout it is powered off and the run fails.
func (h *Host) runAppliance(ctx context.Context, app *vmState) error {
	timeout, poll := h.Appliance.Timeout, h.Appliance.Poll
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	s, err := h.load(ctx, app.ref())
	if err != nil {
		return err
	}
	if err := h.setPower(ctx, s, true); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		var props mo.VirtualMachine
		if err := s.obj.Properties(ctx, s.obj.Reference(), []string{"runtime.powerState"}, &props); err != nil {
			return fmt.Errorf("esx: watching the appliance %s: %w", s.mo.Name, err)
		}
		if props.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the appliance %s did not finish within %s", ErrApplianceTimeout, s.mo.Name, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// ErrApplianceTimeout reports an appliance run that did not end in time.
var ErrApplianceTimeout = errors.New("esx: writer appliance timed out")

// ensureAppliance returns the appliance, deployed or upgraded if needed,
// powered off and without disks (what a dead run left is undone, and its
// payload VMs deleted). Its caller has the turn.
func (h *Host) ensureAppliance(ctx context.Context) (*vmState, error) {
	name := h.Appliance.name()
	vm, err := h.FindVM(ctx, name)
	switch {
	case errors.Is(err, bootpoint.ErrNotFound):
		return h.deployAppliance(ctx, name)
	case err != nil:
		return nil, err
	}
	if !appliance.IsApplianceAnnotation(vm.Annotation) {
		return nil, fmt.Errorf("esx: a VM %s exists that is not StandbyKit's writer appliance: rename it or set another appliance name", name)
	}
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, err
	}
	if err := h.detachAll(ctx, s); err != nil {
		return nil, err
	}
	if err := h.removeStalePayloads(ctx); err != nil {
		return nil, err
	}
	if _, _, derr := applianceDevices(s); vm.Annotation != appliance.Annotation() || derr != nil {
		h.logger().Info("esx: upgrading the writer appliance", "vm", name, "version", appliance.Version)
		if err := h.DestroyVM(ctx, vm); err != nil {
			return nil, err
		}
		return h.deployAppliance(ctx, name)
	}
	return h.load(ctx, vm)
}

// removeStalePayloads deletes the payload VMs a dead run left (none of
// the boot points in progress).
func (h *Host) removeStalePayloads(ctx context.Context) error {
	vms, err := h.finder.VirtualMachineList(ctx, payloadVMPrefix+"*")
	var none *find.NotFoundError
	if errors.As(err, &none) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("esx: looking for stale payload VMs: %w", err)
	}
	var errs []error
	for _, v := range vms {
		if h.batcher().isLive(v.Name()) {
			continue
		}
		errs = append(errs, h.DestroyVM(ctx, bootpoint.VM{Name: v.Name(), ID: v.Reference().Value}))
	}
	return errors.Join(errs...)
}

// deployAppliance creates the appliance VM: BIOS, four pvscsi
// controllers for the disks it borrows (one per boot point of a run), a
// serial port for its report, no network, its boot image on a CD-ROM.
func (h *Host) deployAppliance(ctx context.Context, name string) (*vmState, error) {
	if h.Appliance.Image.Open == nil && !h.Appliance.WithoutBootImage {
		return nil, fmt.Errorf("esx: no writer appliance on this host and no boot image to deploy one (ApplianceOptions.Image: build it with go run ./esx/appliance/cmd/build-appliance)")
	}
	var devs object.VirtualDeviceList
	for range maxApplianceSlots {
		ctrl, err := devs.CreateSCSIController("pvscsi")
		if err != nil {
			return nil, err
		}
		devs = append(devs, ctrl)
	}
	serial := &types.VirtualSerialPort{VirtualDevice: types.VirtualDevice{Key: devs.NewKey(),
		Backing: &types.VirtualSerialPortFileBackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
			FileName: h.Datastore.Path(path.Join(name, "report.log"))}}}, YieldOnPoll: true}
	devs = append(devs, serial)
	spec := types.VirtualMachineConfigSpec{
		Name: name, Annotation: appliance.Annotation(), GuestId: string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs: 1, MemoryMB: 256, Firmware: string(types.GuestOsDescriptorFirmwareTypeBios),
		Files: &types.VirtualMachineFileInfo{VmPathName: h.Datastore.Path("")},
	}
	for _, d := range devs {
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
	}
	task, err := h.Folder.CreateVM(ctx, spec, h.Pool, h.HostSystem)
	var res *types.TaskInfo
	if err == nil {
		res, err = taskResult(ctx, task)
	}
	if err != nil {
		return nil, fmt.Errorf("esx: creating the writer appliance %s: %w", name, err)
	}
	vm := bootpoint.VM{Name: name, ID: res.Result.(types.ManagedObjectReference).Value}
	s, err := h.load(ctx, vm)
	if err != nil {
		return nil, err
	}
	if h.Appliance.Image.Open != nil {
		if err := h.attachBootImage(ctx, s); err != nil {
			return nil, errors.Join(err, h.destroy(context.WithoutCancel(ctx), s))
		}
	}
	h.logger().Info("esx: writer appliance deployed", "vm", name, "version", appliance.Version)
	return h.load(ctx, vm)
}

// attachBootImage uploads the boot image into the appliance's folder and
// inserts it in a new CD-ROM drive, which the BIOS boots from.
func (h *Host) attachBootImage(ctx context.Context, s *vmState) error {
	iso := path.Join(s.dir, "standbykit-writer.iso")
	if err := h.transport().Upload(ctx, s.ds, iso, h.Appliance.Image); err != nil {
		return fmt.Errorf("esx: uploading the appliance's boot image: %w", err)
	}
	devs := object.VirtualDeviceList(s.mo.Config.Hardware.Device)
	ide, err := devs.FindIDEController("")
	if err != nil {
		return fmt.Errorf("esx: the appliance has no IDE controller for its CD-ROM: %w", err)
	}
	cd, err := devs.CreateCdrom(ide)
	if err != nil {
		return err
	}
	cd = devs.InsertIso(cd, s.ds.Path(iso))
	task, err := s.obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: cd},
	}})
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("esx: inserting the appliance's boot image: %w", err)
	}
	return nil
}
