package esxsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/vmdk"
)

// ApplianceFault makes the simulated writer appliance misbehave, once,
// for failure tests.
type ApplianceFault string

const (
	// ApplianceHangs: the appliance never powers itself off.
	ApplianceHangs ApplianceFault = "hang"
	// ApplianceCorruptsWrites: the data reaching the target disks is
	// damaged (its first byte flipped): the leaves are half-written with
	// wrong data, which the appliance's read-back check reports.
	ApplianceCorruptsWrites ApplianceFault = "corrupt-writes"
	// ApplianceBreaksReport: the report is cut before its last line.
	ApplianceBreaksReport ApplianceFault = "break-report"
)

// takeFault returns the fault set for the next run and clears it.
func (s *Simulator) takeFault() ApplianceFault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.applianceFault
	s.applianceFault = ""
	return f
}

// SetApplianceFault makes the next run of the writer appliance misbehave.
func (s *Simulator) SetApplianceFault(f ApplianceFault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.applianceFault = f
}

// ApplianceRuns returns, for each run of the writer appliance so far, how
// many payloads (boot points) it was given.
func (s *Simulator) ApplianceRuns() []int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return slices.Clone(s.applianceRuns)
}

func (s *Simulator) countRun(payloads int) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.applianceRuns = append(s.applianceRuns, payloads)
}

// powerOn: a VM vcsim has powered on that is a writer appliance (its
// notes say so) boots the writer: Apply runs in process against the disk
// files attached to it, reports to the file its serial port writes to,
// and the VM powers itself off.
func (s *Simulator) powerOn(vmRef string) func() func() error {
	return func() func() error {
		return func() error {
			ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: vmRef}
			vm, ok := s.model.Map().Get(ref).(*simulator.VirtualMachine)
			if !ok {
				return nil
			}
			var notes, name string
			s.model.Map().WithLock(s.lockOwner, vm, func() { notes, name = vm.Config.Annotation, vm.Name })
			if !appliance.IsApplianceAnnotation(notes) {
				b := s.guestOf(name)
				s.model.Map().WithLock(s.lockOwner, vm, func() { s.startGuest(vm, b) })
				return nil
			}
			go s.bootAppliance(vm)
			return nil
		}
	}
}

// bootAppliance is the appliance's life from power-on to power-off.
func (s *Simulator) bootAppliance(vm *simulator.VirtualMachine) {
	var disks []attachedDisk
	var report string
	release := s.serialize()
	s.model.Map().WithLock(s.lockOwner, vm, func() {
		for _, d := range vmdisks.Of(vm.Config) {
			if b := vmdisks.Flat(d); b != nil {
				unit := -1
				if d.UnitNumber != nil {
					unit = int(*d.UnitNumber)
				}
				disks = append(disks, attachedDisk{file: b.FileName, unit: unit, controller: int(d.ControllerKey)})
			}
		}
		for _, d := range vm.Config.Hardware.Device {
			if sp, ok := d.(*types.VirtualSerialPort); ok {
				if b, ok := sp.Backing.(*types.VirtualSerialPortFileBackingInfo); ok {
					report = b.FileName
				}
			}
		}
	})
	release()
	fault := s.takeFault()
	if fault == ApplianceHangs {
		return
	}
	if err := s.runWriter(disks, report, fault); err != nil {
		s.logf("esxsim: writer appliance %s: %v", vm.Name, err)
	}
	if err := s.powerOff(vm.Reference()); err != nil {
		s.logf("esxsim: powering off the writer appliance %s: %v", vm.Name, err)
	}
}

// attachedDisk is a disk on one of the appliance's controllers.
type attachedDisk struct {
	file       string
	unit       int // -1: none
	controller int // the controller's device key
}

// runWriter runs appliance.ApplyBatch as the appliance's program would:
// every payload disk attached, each with the disks on its controller.

func (s *Simulator) runWriter(disks []attachedDisk, reportPath string, fault ApplianceFault) error {
	s.disks.Lock()
	defer s.disks.Unlock()
	reportFile, err := s.localPath(reportPath)
	if err != nil {
		return err
	}
	out, err := os.Create(reportFile)
	if err != nil {
		return err
	}
	defer out.Close()
	fmt.Fprintln(out, "esxsim: writer appliance booting") // a console's noise before the report
	var report io.Writer = out
	if fault == ApplianceBreaksReport {
		report = &cutWriter{w: out}
	}

	var payloads []appliance.Payload
	var targets []appliance.Disk
	var opened []*leafDisk
	defer func() {
		for _, d := range opened {
			d.close()
		}
	}()
	for _, a := range disks {
		p, err := s.localPath(a.file)
		if err != nil {
			return err
		}
		d, err := openLeafDisk(p, a.unit, a.controller, fault == ApplianceCorruptsWrites)
		if err != nil {
			return err
		}
		opened = append(opened, d)
		if _, err := appliance.PayloadID(d, d.Size()); err == nil {
			payloads = append(payloads, appliance.Payload{Data: d, Size: d.Size(), Controller: a.controller})
			continue
		}
		targets = append(targets, d)
	}
	s.countRun(len(payloads))
	if len(payloads) == 0 {
		fmt.Fprintln(report, `{"event":"error","ok":false,"error":"no payload disk attached"}`)
		return errors.New("no payload disk")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	results, err := appliance.ApplyBatch(ctx, payloads, targets, report)
	for _, res := range results {
		for _, i := range res.Targets {
			// ESXi gives a disk a new content ID when it first writes to it.
			if werr := targets[i].(*leafDisk).newCID(); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

// cutWriter passes on all but the last line it is given.
type cutWriter struct {
	w       io.Writer
	pending []byte
}

func (c *cutWriter) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	if i := bytes.LastIndexByte(c.pending[:max(len(c.pending)-1, 0)], '\n'); i >= 0 {
		if _, err := c.w.Write(c.pending[:i+1]); err != nil {
			return 0, err
		}
		c.pending = c.pending[i+1:]
	}
	return len(p), nil
}

// powerOff powers a VM off through the simulator's own API, as the guest
// shutting down would.
func (s *Simulator) powerOff(ref types.ManagedObjectReference) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer methods.Logout(ctx, c, &types.Logout{This: *c.ServiceContent.SessionManager})
	res, err := methods.PowerOffVM_Task(ctx, c, &types.PowerOffVM_Task{This: ref})
	if err != nil {
		return err
	}
	return object.NewTask(c, res.Returnval).Wait(ctx)
}

// leafDisk is a disk chain attached to the appliance, as the appliance's
// kernel sees it: reads see the whole chain, writes go into its leaf.
type leafDisk struct {
	desc string
	size int64
	w    interface {
		WriteAt([]byte, int64) (int, error)
	}
	close func() error
	// corrupt flips the first byte of every write.
	corrupt bool
	// unit is the disk's unit number on the appliance's controller, as
	// the appliance's kernel sees it (-1: unknown).
	unit int
	// controller is the device key of that controller.
	controller int
}

var (
	_ appliance.Addressed  = (*leafDisk)(nil)
	_ appliance.Controlled = (*leafDisk)(nil)
)

func openLeafDisk(desc string, unit, controller int, corrupt bool) (*leafDisk, error) {
	chain, err := vmdk.OpenChain(os.DirFS(filepath.Dir(desc)), filepath.Base(desc))
	if err != nil {
		return nil, err
	}
	size := chain.Size()
	chain.Close()
	w, _, closeFn, err := diskWriter(desc)
	if err != nil {
		return nil, err
	}
	return &leafDisk{desc: desc, size: size, w: w, close: closeFn, corrupt: corrupt, unit: unit, controller: controller}, nil
}

// ReadAt reads the chain afresh: a grain-table cache would not see the
// writes.
func (d *leafDisk) ReadAt(p []byte, off int64) (int, error) {
	chain, err := vmdk.OpenChain(os.DirFS(filepath.Dir(d.desc)), filepath.Base(d.desc))
	if err != nil {
		return 0, err
	}
	defer chain.Close()
	return chain.ReadAt(p, off)
}

func (d *leafDisk) WriteAt(p []byte, off int64) (int, error) {
	if d.corrupt && len(p) > 0 {
		p = bytes.Clone(p)
		p[0] ^= 0xff
	}
	return d.w.WriteAt(p, off)
}

func (d *leafDisk) Size() int64 { return d.size }

// Unit implements appliance.Addressed.
func (d *leafDisk) Unit() (int, bool) { return d.unit, d.unit >= 0 }
func (d *leafDisk) Sync() error       { return nil }

// Controller implements appliance.Controlled.
func (d *leafDisk) Controller() (int, bool) { return d.controller, true }

func (d *leafDisk) newCID() error {
	desc, err := readDescriptor(d.desc)
	if err != nil {
		return err
	}
	desc.SetCID(vmdk.NewCID())
	return writeDescriptor(d.desc, desc)
}
