package esx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// The appliance's runs. One run takes the boot points waiting for the
// appliance when it is free, up to its slots: each boot point's payload
// and leaves go on a pvscsi controller of their own (the payload at unit
// 0, the leaves at the units the payload names), so that one boot of the
// appliance writes several standby VMs (appliance.ApplyBatch). A boot
// point that arrives while a run is going waits for the next one. So the
// appliance is booted once per batch rather than once per boot point,
// and never takes more boot points at once than its slots: with a
// per-host limit of concurrent tasks no greater than the slots, as many
// as the limit.

// maxApplianceSlots is how many pvscsi controllers the appliance has:
// ESXi gives a VM at most four SCSI controllers.
const maxApplianceSlots = 4

func (o ApplianceOptions) slots() int {
	if o.Slots <= 0 || o.Slots > maxApplianceSlots {
		return maxApplianceSlots
	}
	return o.Slots
}

// applianceBatcher gathers the boot points waiting for the appliance into
// runs, one run at a time.
type applianceBatcher struct {
	// turn holds a token while a run (or a test holding the appliance)
	// has the appliance.
	turn chan struct{}

	mu    sync.Mutex
	queue []*applianceJob
	// live are the payload VMs of boot points in progress, which a run
	// must not take for a dead run's leftovers.
	live map[string]bool
}

// applianceJob is one boot point waiting for, or in, a run.
type applianceJob struct {
	ctx   context.Context
	w     *applianceWrite
	taken bool // by a run
	done  chan struct{}
	err   error
}

func (h *Host) batcher() *applianceBatcher {
	h.applianceOnce.Do(func() {
		h.appliance = &applianceBatcher{turn: make(chan struct{}, 1), live: map[string]bool{}}
	})
	return h.appliance
}

func (b *applianceBatcher) setLive(name string, live bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if live {
		b.live[name] = true
	} else {
		delete(b.live, name)
	}
}

func (b *applianceBatcher) isLive(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live[name]
}

// write has w's boot point written by a run of the appliance: the next
// run that has a free slot, led by whichever of its boot points got the
// appliance first.
func (b *applianceBatcher) write(ctx context.Context, h *Host, w *applianceWrite) error {
	job := &applianceJob{ctx: ctx, w: w, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, job)
	b.mu.Unlock()
	select {
	case b.turn <- struct{}{}:
		b.mu.Lock()
		if job.taken { // by the run that just ended
			b.mu.Unlock()
			<-b.turn
			<-job.done
			return job.err
		}
		jobs := b.takeLocked(job, h.Appliance.slots())
		b.mu.Unlock()
		h.runBatch(jobs)
		<-b.turn
		return job.err
	case <-job.done:
		return job.err
	case <-ctx.Done():
		b.mu.Lock()
		if !job.taken {
			b.queue = slices.DeleteFunc(b.queue, func(j *applianceJob) bool { return j == job })
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Unlock()
		// A run has its leaves attached: wait for it to give them back.
		<-job.done
		return job.err
	}
}

// takeLocked takes first and then the longest-waiting boot points, up
// to slots, out of the queue.
func (b *applianceBatcher) takeLocked(first *applianceJob, slots int) []*applianceJob {
	jobs := []*applianceJob{first}
	first.taken = true
	for _, j := range b.queue {
		if len(jobs) == slots {
			break
		}
		if !j.taken {
			j.taken = true
			jobs = append(jobs, j)
		}
	}
	b.queue = slices.DeleteFunc(b.queue, func(j *applianceJob) bool { return j.taken })
	return jobs
}

// runBatch runs the appliance once for jobs and ends each job with its
// result. The run goes on while any of its boot points' callers still
// waits (a caller that gave up cannot take its leaves back while the
// appliance has them); the appliance's timeout bounds it.
func (h *Host) runBatch(jobs []*applianceJob) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(jobs[0].ctx))
	defer cancel()
	var waiting atomic.Int32
	waiting.Store(int32(len(jobs)))
	for _, j := range jobs {
		stop := context.AfterFunc(j.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	errs := h.runAppliancePass(ctx, jobs)
	for i, j := range jobs {
		j.err = errs[i]
		close(j.done)
	}
}

// runAppliancePass is one run: the appliance made ready, the payloads
// and leaves attached, the appliance powered on until it powers itself
// off, each payload's report read, and the disks given back whatever
// happened. It returns each job's error.
func (h *Host) runAppliancePass(ctx context.Context, jobs []*applianceJob) []error {
	errs := make([]error, len(jobs))
	all := func(err error) []error {
		for i := range errs {
			errs[i] = errors.Join(errs[i], err)
		}
		return errs
	}
	app, err := h.ensureAppliance(ctx)
	if err != nil {
		return all(err)
	}
	report := path.Join(app.dir, "report-"+jobs[0].w.id+".log")
	defer func() {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := errors.Join(h.detachAll(bg, app), h.transport().Delete(bg, app.ds, report)); err != nil {
			all(fmt.Errorf("esx: giving the disks back from the appliance: %w", err))
		}
	}()
	log := h.logger().With("appliance", app.mo.Name, "boot points", len(jobs))
	if err := h.attachBatch(ctx, app, jobs, report); err != nil {
		return all(err)
	}
	log.Debug("esx: disks attached to the appliance")
	if err := h.runAppliance(ctx, app); err != nil {
		return all(err)
	}
	log.Debug("esx: the appliance powered itself off")
	data, err := h.downloadReport(ctx, app, report)
	if err != nil {
		return all(err)
	}
	for i, j := range jobs {
		if err := appliance.ReadReport(bytes.NewReader(data), j.w.id); err != nil {
			errs[i] = fmt.Errorf("the appliance's report: %w", err)
			continue
		}
		h.logger().Info("esx: appliance wrote the boot point", "vm", j.w.s.mo.Name, "payload", j.w.id, "bytes", j.w.size, "batch", len(jobs))
	}
	return errs
}

// maxReportDownload bounds what is read of the appliance's report file:
// appliance.ReadReport reads at most 1 MiB of a report, from its start,
// so the payloads of one run share that much.
const maxReportDownload = 1 << 20

func (h *Host) downloadReport(ctx context.Context, app *vmState, report string) ([]byte, error) {
	r, _, err := h.transport().Download(ctx, app.ds, report)
	if err != nil {
		return nil, fmt.Errorf("reading the appliance's report: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxReportDownload))
	if err != nil {
		return nil, fmt.Errorf("reading the appliance's report: %w", err)
	}
	return data, nil
}

// attachBatch puts job k's payload (unit 0) and leaves (the units the
// payload names) on the appliance's k-th pvscsi controller, and points
// its serial port at a new report file.
func (h *Host) attachBatch(ctx context.Context, app *vmState, jobs []*applianceJob, report string) error {
	ctrls, serial, err := applianceDevices(app)
	if err != nil {
		return err
	}
	if len(jobs) > len(ctrls) {
		return fmt.Errorf("esx: %d boot points for the appliance's %d controllers", len(jobs), len(ctrls))
	}
	dsRef := app.ds.Reference()
	var spec types.VirtualMachineConfigSpec
	key := int32(-100)
	for k, j := range jobs {
		ps, err := h.load(ctx, j.w.payloadVM)
		if err != nil {
			return err
		}
		files := []string{vmdisks.Flat(vmdisks.Of(ps.mo.Config)[0]).FileName}
		for _, t := range j.w.targets {
			files = append(files, t.leaf.FileName)
		}
		for i, f := range files {
			u := applianceUnit(i)
			d := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{
				Key: key, ControllerKey: ctrls[k].GetVirtualDevice().Key, UnitNumber: &u,
				Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: f, Datastore: &dsRef},
					DiskMode:                     string(types.VirtualDiskModePersistent),
				},
			}}
			key--
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
		}
	}
	serial.Backing = &types.VirtualSerialPortFileBackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: app.ds.Path(report)}}
	spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: serial})
	task, err := app.obj.Reconfigure(ctx, spec)
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("attaching the disks to the appliance %s: %w", app.mo.Name, err)
	}
	return nil
}

// applianceDevices returns the appliance's pvscsi controllers, by bus
// number, and its serial port.
func applianceDevices(app *vmState) ([]types.BaseVirtualDevice, *types.VirtualSerialPort, error) {
	devs := object.VirtualDeviceList(app.mo.Config.Hardware.Device)
	ctrls := devs.SelectByType((*types.ParaVirtualSCSIController)(nil))
	serials := devs.SelectByType((*types.VirtualSerialPort)(nil))
	if len(ctrls) != maxApplianceSlots || len(serials) != 1 {
		return nil, nil, fmt.Errorf("esx: the appliance %s has %d pvscsi controllers and %d serial ports, want %d and one", app.mo.Name, len(ctrls), len(serials), maxApplianceSlots)
	}
	slices.SortFunc(ctrls, func(a, b types.BaseVirtualDevice) int {
		return int(a.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber - b.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber)
	})
	return ctrls, serials[0].(*types.VirtualSerialPort), nil
}
