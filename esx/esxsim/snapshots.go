package esxsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// The snapshot calls are wrapped at the HTTP level, around vcsim's own
// handling (vcsim lets a session's view of an object take precedence over
// any replacement handler, so its methods cannot be overridden): the
// request is read, passed on to vcsim with the answer held back, vcsim's
// task is awaited, the disk work ESXi would do is done, and only then is
// the answer released; if the disk work fails, the task fails.

var (
	soapCall   = regexp.MustCompile(`<(CreateScreenshot_Task|PowerOnVM_Task|CreateSnapshot_Task|RemoveSnapshot_Task|RevertToSnapshot_Task|CreateSnapshotEx_Task|RevertToCurrentSnapshot_Task|RemoveAllSnapshots_Task|ConsolidateVMDisks_Task)[\s>]`)
	soapThis   = regexp.MustCompile(`<_this[^>]*>([^<]+)</_this>`)
	soapTask   = regexp.MustCompile(`<returnval[^>]*>(task-[^<]+)</returnval>`)
	createTask = regexp.MustCompile(`<CreateTask[\s>]`)
	removeKids = regexp.MustCompile(`<removeChildren>\s*(true|1)\s*</removeChildren>`)
)

// serveSDK passes SOAP calls to vcsim and adds ESXi's disk semantics to
// the snapshot calls.
func (s *Simulator) serveSDK(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if longPoll.Match(body) {
		s.Service.ServeSDK(w, r)
		return
	}
	if createTask.Match(body) {
		// vcsim's ESX model panics on it and leaves its task manager
		// locked, which would hang every later task.
		writeFault(w, "esxsim: CreateTask is not modelled (ESXi has no extension tasks to create)")
		return
	}
	call := soapCall.FindSubmatch(body)
	this := soapThis.FindSubmatch(body)
	if call != nil && this != nil && string(call[1]) == "CreateScreenshot_Task" {
		s.serveScreenshot(w, r, body, string(this[1]))
		return
	}
	defer s.serialize()()
	if call == nil || this == nil {
		s.Service.ServeSDK(w, r)
		return
	}
	method, ref := string(call[1]), string(this[1])
	var before func() (after func() error)
	switch method {
	case "CreateSnapshot_Task":
		before = s.createSnapshot(ref)
	case "RemoveSnapshot_Task":
		if removeKids.Match(body) {
			writeFault(w, "esxsim: removing a snapshot with its children is not modelled")
			return
		}
		before = s.removeSnapshot(ref)
	case "RevertToSnapshot_Task":
		before = s.revertToSnapshot(ref)
	case "PowerOnVM_Task":
		before = s.powerOn(ref)
	default:
		writeFault(w, "esxsim: "+method+" is not modelled with its disk semantics")
		return
	}
	after := before()
	rec := httptest.NewRecorder()
	s.Service.ServeSDK(rec, r)
	if task := soapTask.FindSubmatch(rec.Body.Bytes()); task != nil && after != nil {
		ref := types.ManagedObjectReference{Type: "Task", Value: string(task[1])}
		if s.waitTask(ref) {
			s.disks.Lock()
			err := after()
			s.disks.Unlock()
			if err != nil {
				s.failTask(ref, fmt.Errorf("%s of %s: %w", method, string(this[1]), err))
			}
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// writeFault answers a SOAP call with a NotSupported fault.
func writeFault(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>
<detail><NotSupportedFault xmlns="urn:vim25" xsi:type="NotSupported"></NotSupportedFault></detail>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>`, esc.String())
}

// createSnapshot: the snapshot keeps the disks as they are (vcsim copies
// the configuration, with the current leaves) and then the VM goes on
// with an empty child delta of every disk.
func (s *Simulator) createSnapshot(vmRef string) func() func() error {
	return func() func() error {
		return func() error {
			vm, ok := s.model.Map().Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: vmRef}).(*simulator.VirtualMachine)
			if !ok {
				return fmt.Errorf("no VM %s", vmRef)
			}
			var err error
			s.model.Map().WithLock(s.lockOwner, vm, func() { err = s.moveToChildren(vm) })
			return err
		}
	}
}

// removeSnapshot consolidates once vcsim has removed the snapshot from
// the tree: the delta that the snapshot's disks have as their only child
// is merged into them and deleted, and every configuration that named the
// child names the merged disk instead, so that every other snapshot and
// the current state read as before.
func (s *Simulator) removeSnapshot(snapRef string) func() func() error {
	return func() func() error {
		reg := s.model.Map()
		snap, ok := reg.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: snapRef}).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return nil // vcsim answers with its own fault
		}
		vm, ok := reg.Get(snap.Vm).(*simulator.VirtualMachine)
		if !ok {
			return nil
		}
		reg.WithLock(s.lockOwner, vm, func() {
			// vcsim deletes the file whose layout key the snapshot
			// recorded, but it renumbers those keys whenever it refreshes
			// the VM's storage, so the key may name a disk still in use:
			// unset it, and vcsim deletes nothing.
			for i := range vm.LayoutEx.Snapshot {
				if vm.LayoutEx.Snapshot[i].Key == snap.Self {
					vm.LayoutEx.Snapshot[i].DataKey = -1
					vm.LayoutEx.Snapshot[i].MemoryKey = -1
				}
			}
		})
		return func() error {
			var err error
			reg.WithLock(s.lockOwner, vm, func() { err = s.consolidate(reg, vm, &snap.Config) })
			return err
		}
	}
}

// revertToSnapshot discards the VM's current leaves (unless a snapshot
// still needs them) and puts every disk on a new empty child of the
// snapshot's disk.
func (s *Simulator) revertToSnapshot(snapRef string) func() func() error {
	return func() func() error {
		reg := s.model.Map()
		snap, ok := reg.Get(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: snapRef}).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return nil
		}
		vm, ok := reg.Get(snap.Vm).(*simulator.VirtualMachine)
		if !ok {
			return nil
		}
		return func() error {
			var err error
			reg.WithLock(s.lockOwner, vm, func() { err = s.revertDisks(reg, vm, &snap.Config) })
			return err
		}
	}
}

// waitTask waits until a task vcsim runs has ended and tells whether it
// succeeded.
func (s *Simulator) waitTask(ref types.ManagedObjectReference) bool {
	reg := s.model.Map()
	for {
		t, ok := reg.Get(ref).(*simulator.Task)
		if !ok {
			return false
		}
		var state types.TaskInfoState
		reg.WithLock(s.lockOwner, t, func() { state = t.Info.State })
		switch state {
		case types.TaskInfoStateSuccess:
			return true
		case types.TaskInfoStateError:
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// failTask turns a finished task into a failed one: what the client sees
// when the disk work after vcsim's part failed.
func (s *Simulator) failTask(ref types.ManagedObjectReference, err error) {
	s.logf("esxsim: %v", err)
	reg := s.model.Map()
	t, ok := reg.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	reg.WithLock(s.lockOwner, t, func() {
		t.Info.State = types.TaskInfoStateError
		t.Info.Result = nil
		t.Info.Error = &types.LocalizedMethodFault{
			Fault:            &types.GenericVmConfigFault{Reason: err.Error()},
			LocalizedMessage: err.Error(),
		}
	})
}

// moveToChildren puts every disk of the VM on a new empty child of its
// current leaf.
func (s *Simulator) moveToChildren(vm *simulator.VirtualMachine) error {
	for _, d := range vmdisks.Of(vm.Config) {
		b := vmdisks.Flat(d)
		if b == nil {
			return fmt.Errorf("disk %d of VM %s has a %T backing", d.Key, vm.Name, d.Backing)
		}
		nb, err := s.childBacking(b)
		if err != nil {
			return fmt.Errorf("VM %s: %w", vm.Name, err)
		}
		d.Backing = nb
	}
	return nil
}

// childBacking creates an empty child of the disk of backing b and
// returns the backing of that child (with b's chain as its parent).
func (s *Simulator) childBacking(b *types.VirtualDiskFlatVer2BackingInfo) (*types.VirtualDiskFlatVer2BackingInfo, error) {
	parent, err := s.localPath(b.FileName)
	if err != nil {
		return nil, err
	}
	child, err := newChild(parent)
	if err != nil {
		return nil, fmt.Errorf("child of %s: %w", b.FileName, err)
	}
	name, err := s.datastorePath(child)
	if err != nil {
		return nil, err
	}
	nb := vmdisks.Clone(b)
	nb.Parent = vmdisks.Clone(b)
	nb.FileName = name
	nb.Uuid, nb.ContentId, nb.ChangeId = "", "", ""
	return nb, nil
}

func (s *Simulator) revertDisks(reg *simulator.Registry, vm *simulator.VirtualMachine, snap *types.VirtualMachineConfigInfo) error {
	configs := s.snapshotConfigs(reg, vm)
	want := map[int32]*types.VirtualDiskFlatVer2BackingInfo{}
	for _, d := range vmdisks.Of(snap) {
		want[d.Key] = vmdisks.Flat(d)
	}
	for _, d := range vmdisks.Of(vm.Config) {
		target := want[d.Key]
		cur := vmdisks.Flat(d)
		if target == nil || cur == nil {
			return fmt.Errorf("disk %d is not in the snapshot", d.Key)
		}
		if cur.FileName != target.FileName && !referenced(cur.FileName, configs) {
			p, err := s.localPath(cur.FileName)
			if err != nil {
				return err
			}
			if err := deleteDisk(p); err != nil {
				return fmt.Errorf("discarding %s: %w", cur.FileName, err)
			}
		}
		nb, err := s.childBacking(target)
		if err != nil {
			return err
		}
		d.Backing = nb
	}
	return nil
}

// consolidate merges, for every disk, the only child of the snapshot's
// disk into it. A disk with several children (a tree after a revert)
// stays as it is: its children still need it; one with none that no
// configuration names (the tip of a branch the VM left) is deleted.
func (s *Simulator) consolidate(reg *simulator.Registry, vm *simulator.VirtualMachine, snap *types.VirtualMachineConfigInfo) error {
	configs := append([]*types.VirtualMachineConfigInfo{vm.Config}, s.snapshotConfigs(reg, vm)...)
	for _, d := range vmdisks.Of(snap) {
		own := vmdisks.Flat(d)
		if own == nil {
			continue
		}
		children := map[string]bool{}
		for _, c := range configs {
			for _, x := range vmdisks.Of(c) {
				for b := vmdisks.Flat(x); b != nil && b.Parent != nil; b = b.Parent {
					if b.Parent.FileName == own.FileName {
						children[b.FileName] = true
					}
				}
			}
		}
		if len(children) == 0 && !referenced(own.FileName, configs) {
			// A snapshot at the tip of a branch the VM left: its disk
			// holds nothing anyone needs.
			p, err := s.localPath(own.FileName)
			if err != nil {
				return err
			}
			if err := deleteDisk(p); err != nil {
				return fmt.Errorf("deleting %s: %w", own.FileName, err)
			}
			continue
		}
		if len(children) != 1 {
			continue
		}
		var child string
		for c := range children {
			child = c
		}
		childPath, err := s.localPath(child)
		if err != nil {
			return err
		}
		parentPath, err := s.localPath(own.FileName)
		if err != nil {
			return err
		}
		if err := mergeChild(childPath, parentPath); err != nil {
			return err
		}
		for _, c := range configs {
			for _, x := range vmdisks.Of(c) {
				if b := vmdisks.Flat(x); b != nil {
					x.Backing = dropLink(b, child)
				}
			}
		}
		if err := renameParentHints(filepath.Dir(childPath), filepath.Base(childPath), filepath.Base(parentPath)); err != nil {
			return err
		}
		if err := deleteDisk(childPath); err != nil {
			return fmt.Errorf("deleting the merged %s: %w", child, err)
		}
	}
	return nil
}

// dropLink removes the disk file from a backing chain: its child (or the
// device, when it is the leaf) then names its parent.
func dropLink(b *types.VirtualDiskFlatVer2BackingInfo, file string) *types.VirtualDiskFlatVer2BackingInfo {
	if b == nil {
		return nil
	}
	if b.FileName == file && b.Parent != nil {
		nb := *b
		p := b.Parent
		nb.FileName, nb.Parent, nb.Uuid, nb.ContentId = p.FileName, p.Parent, p.Uuid, p.ContentId
		return &nb
	}
	for n := b; n.Parent != nil; n = n.Parent {
		if n.Parent.FileName == file {
			n.Parent = n.Parent.Parent
			break
		}
	}
	return b
}

// snapshotConfigs returns the configuration every snapshot of the VM
// recorded.
func (s *Simulator) snapshotConfigs(reg *simulator.Registry, vm *simulator.VirtualMachine) []*types.VirtualMachineConfigInfo {
	var out []*types.VirtualMachineConfigInfo
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(l []types.VirtualMachineSnapshotTree) {
		for _, t := range l {
			if sn, ok := reg.Get(t.Snapshot).(*simulator.VirtualMachineSnapshot); ok {
				out = append(out, &sn.Config)
			}
			walk(t.ChildSnapshotList)
		}
	}
	if vm.Snapshot != nil {
		walk(vm.Snapshot.RootSnapshotList)
	}
	return out
}

// referenced tells whether some configuration's disk chain has file.
func referenced(file string, configs []*types.VirtualMachineConfigInfo) bool {
	for _, c := range configs {
		for _, d := range vmdisks.Of(c) {
			for b := vmdisks.Flat(d); b != nil; b = b.Parent {
				if b.FileName == file {
					return true
				}
			}
		}
	}
	return false
}
