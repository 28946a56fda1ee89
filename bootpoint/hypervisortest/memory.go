package hypervisortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
)

// Memory is an in-memory bootpoint.Hypervisor, NetworkConnector,
// TestBooter and VMRenamer: the reference model of the contract. Its zero value is an
// empty hypervisor ready to use; it must not be copied after first use.
//
// VM IDs are "vm-" and the name; snapshot IDs are "snapshot-N". Snapshot
// creation times come from a deterministic clock: the first snapshot taken
// on a Memory is at 2026-11-24 03:00 UTC, each later one an hour after the
// previous one.
type Memory struct {
	// Fail, when set, is consulted at each step and fails it with the
	// error it returns: "create" (before CreateStandby creates anything),
	// "write" (in AddBootPoint, once per change, after that disk's bytes
	// were written into the current state: a failure leaves a half-written
	// state that AddBootPoint then undoes), "snapshot" (before
	// AddBootPoint records the snapshot) and "remove" (before
	// RemoveSnapshot removes anything). It is called with the Memory
	// locked: it must not call the Memory's methods.
	Fail func(step string) error
	// Slow makes every AddBootPoint take at least that long.
	Slow time.Duration
	// Drop makes AddBootPoint silently lose the last extent of every
	// change: the bug that verification must catch.
	Drop bool
	// Guest plays the guest of a powered-on VM for boot checks
	// (GuestObserver): its status and its console's PNG, from the VM's
	// name and its disks' content. nil: no Tools, and no screenshot
	// (ErrUnsupportedOperation). Called with the Memory locked.
	Guest func(vmName string, disks [][]byte) (bootpoint.GuestStatus, []byte)

	mu    sync.Mutex
	vms   map[string]*memVM
	taken int // snapshots taken so far: the clock and the IDs

	inFlight, maxInFlight atomic.Int32
}

type memVM struct {
	spec    bootpoint.VMSpec
	disks   [][]byte       // the current state
	snaps   []*memSnapshot // oldest first
	current *memSnapshot   // nil: none
	powered bool
	// diverged: the current state may differ from the current snapshot's
	// (a guest wrote, or the current snapshot was removed).
	diverged bool
}

type memSnapshot struct {
	info   bootpoint.Snapshot // Current is always false here
	parent *memSnapshot       // nil for a root
	disks  [][]byte           // never changed once recorded
}

var epoch = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

var (
	_ bootpoint.Hypervisor       = (*Memory)(nil)
	_ bootpoint.NetworkConnector = (*Memory)(nil)
	_ bootpoint.TestBooter       = (*Memory)(nil)
	_ bootpoint.GuestObserver    = (*Memory)(nil)
	_ bootpoint.VMRenamer        = (*Memory)(nil)
)

func (m *Memory) step(name string) error {
	if m.Fail == nil {
		return nil
	}
	return m.Fail(name)
}

// vm finds a VM; the caller holds m.mu.
func (m *Memory) vm(v bootpoint.VM) (*memVM, error) {
	vm, ok := m.vms[v.Name]
	if !ok {
		return nil, fmt.Errorf("%w: VM %q", bootpoint.ErrNotFound, v.Name)
	}
	return vm, nil
}

// snapshot finds a VM's snapshot; the caller holds m.mu.
func (m *Memory) snapshot(v bootpoint.VM, s bootpoint.Snapshot) (*memVM, *memSnapshot, error) {
	vm, err := m.vm(v)
	if err != nil {
		return nil, nil, err
	}
	for _, x := range vm.snaps {
		if x.info.ID == s.ID {
			return vm, x, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: snapshot %q of VM %q", bootpoint.ErrNotFound, s.ID, v.Name)
}

func cloneDisks(disks [][]byte) [][]byte {
	out := make([][]byte, len(disks))
	for d, b := range disks {
		out[d] = bytes.Clone(b)
	}
	return out
}

// CreateStandby creates a powered-off VM whose disk d holds the bytes of
// disks[d].Source inside its extents and zeros elsewhere. A VM of that
// name must not exist.
func (m *Memory) CreateStandby(ctx context.Context, spec bootpoint.VMSpec, disks []bootpoint.Delta) (bootpoint.VM, error) {
	if err := ctx.Err(); err != nil {
		return bootpoint.VM{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if spec.Name == "" {
		return bootpoint.VM{}, errors.New("hypervisortest: a VM needs a name")
	}
	if _, ok := m.vms[spec.Name]; ok {
		return bootpoint.VM{}, fmt.Errorf("hypervisortest: VM %q already exists", spec.Name)
	}
	if len(disks) != len(spec.DiskSizes) {
		return bootpoint.VM{}, fmt.Errorf("hypervisortest: %d disks for %d disk sizes", len(disks), len(spec.DiskSizes))
	}
	content := make([][]byte, len(disks))
	for d, delta := range disks {
		size := spec.DiskSizes[d]
		if size <= 0 || size%bootpoint.SectorSize != 0 {
			return bootpoint.VM{}, fmt.Errorf("hypervisortest: disk %d of %d bytes: not a positive multiple of %d", d, size, bootpoint.SectorSize)
		}
		if delta.Disk != d {
			return bootpoint.VM{}, fmt.Errorf("hypervisortest: disks[%d] is for disk %d", d, delta.Disk)
		}
		if err := checkDelta(delta, size); err != nil {
			return bootpoint.VM{}, err
		}
		content[d] = make([]byte, size)
		if err := write(content[d], delta.Extents, delta.Source); err != nil {
			return bootpoint.VM{}, fmt.Errorf("hypervisortest: disk %d: %w", d, err)
		}
	}
	if err := m.step("create"); err != nil {
		return bootpoint.VM{}, err
	}
	spec.DiskSizes = slices.Clone(spec.DiskSizes)
	if m.vms == nil {
		m.vms = map[string]*memVM{}
	}
	m.vms[spec.Name] = &memVM{spec: spec, disks: content}
	return bootpoint.VM{Name: spec.Name, ID: "vm-" + spec.Name, Annotation: spec.Annotation}, nil
}

// checkDelta checks that a delta fits a disk of size bytes: extents
// sector-aligned, sorted, disjoint and inside the disk, with a source.
func checkDelta(delta bootpoint.Delta, size int64) error {
	if delta.Size != size {
		return fmt.Errorf("hypervisortest: delta for disk %d of %d bytes, the disk has %d", delta.Disk, delta.Size, size)
	}
	var end int64
	for i, e := range delta.Extents {
		switch {
		case e.Len <= 0 || e.Off < end || e.End() > size:
			return fmt.Errorf("hypervisortest: disk %d extent %d [%d,%d): empty, out of order, overlapping or beyond the disk of %d bytes", delta.Disk, i, e.Off, e.End(), size)
		case e.Off%bootpoint.SectorSize != 0 || e.End()%bootpoint.SectorSize != 0:
			return fmt.Errorf("hypervisortest: disk %d extent %d [%d,%d) is not sector-aligned", delta.Disk, i, e.Off, e.End())
		}
		end = e.End()
	}
	if len(delta.Extents) > 0 && delta.Source == nil {
		return fmt.Errorf("hypervisortest: disk %d: extents without a source", delta.Disk)
	}
	return nil
}

// write copies src's bytes inside extents into disk.
// checkBase holds a change whose Base is set to what it claims: the disk's
// content inside the change's extents.
func checkBase(c bootpoint.Delta, disk []byte) error {
	if c.Base == nil {
		return nil
	}
	for _, e := range c.Extents {
		b := make([]byte, e.Len)
		if n, err := c.Base.ReadAt(b, e.Off); n < len(b) {
			return fmt.Errorf("hypervisortest: disk %d: reading Base at [%d,%d): %v", c.Disk, e.Off, e.End(), err)
		}
		if !bytes.Equal(b, disk[e.Off:e.End()]) {
			return fmt.Errorf("hypervisortest: disk %d: Base is not the disk's content in [%d,%d)", c.Disk, e.Off, e.End())
		}
	}
	return nil
}

func write(disk []byte, extents []aipimage.Extent, src io.ReaderAt) error {
	for _, e := range extents {
		n, err := src.ReadAt(disk[e.Off:e.End()], e.Off)
		if n < int(e.Len) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading the source at [%d,%d): %w", e.Off, e.End(), err)
		}
	}
	return nil
}

// FindVM returns the VM of that name with its annotation, or ErrNotFound.
func (m *Memory) FindVM(ctx context.Context, name string) (bootpoint.VM, error) {
	if err := ctx.Err(); err != nil {
		return bootpoint.VM{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(bootpoint.VM{Name: name})
	if err != nil {
		return bootpoint.VM{}, err
	}
	return bootpoint.VM{Name: name, ID: "vm-" + name, Annotation: vm.spec.Annotation}, nil
}

// DestroyVM deletes a powered-off VM; a powered-on one is refused, as
// ESXi does.
func (m *Memory) DestroyVM(ctx context.Context, v bootpoint.VM) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(v)
	if err != nil {
		return err
	}
	if vm.powered {
		return fmt.Errorf("hypervisortest: VM %q is powered on", v.Name)
	}
	delete(m.vms, v.Name)
	return nil
}

// AddBootPoint writes each change into its disk's current state, then
// records a snapshot of every disk, which becomes the current one. On
// failure the disks are put back as they were. Changes to the disks of a
// powered-on VM are refused, as package esx does, and so are changes to
// a VM whose state may differ from its current snapshot's
// (bootpoint.ErrDiverged: WriteDisk wrote to it, or its current snapshot
// was removed).
func (m *Memory) AddBootPoint(ctx context.Context, v bootpoint.VM, changes []bootpoint.Delta, name, description string) (bootpoint.Snapshot, error) {
	n := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	for {
		old := m.maxInFlight.Load()
		if n <= old || m.maxInFlight.CompareAndSwap(old, n) {
			break
		}
	}
	if m.Slow > 0 {
		timer := time.NewTimer(m.Slow)
		select {
		case <-ctx.Done():
			timer.Stop()
			return bootpoint.Snapshot{}, ctx.Err()
		case <-timer.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return bootpoint.Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(v)
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	if len(changes) > 0 && vm.powered {
		return bootpoint.Snapshot{}, fmt.Errorf("hypervisortest: VM %q is powered on: its disks cannot be written", v.Name)
	}
	if len(changes) > 0 && (vm.diverged || vm.current == nil) {
		return bootpoint.Snapshot{}, fmt.Errorf("%w: VM %q", bootpoint.ErrDiverged, v.Name)
	}
	seen := map[int]bool{}
	for _, c := range changes {
		if c.Disk < 0 || c.Disk >= len(vm.disks) {
			return bootpoint.Snapshot{}, fmt.Errorf("hypervisortest: change for disk %d of a VM with %d disks", c.Disk, len(vm.disks))
		}
		if seen[c.Disk] {
			return bootpoint.Snapshot{}, fmt.Errorf("hypervisortest: two changes for disk %d", c.Disk)
		}
		seen[c.Disk] = true
		if err := checkDelta(c, int64(len(vm.disks[c.Disk]))); err != nil {
			return bootpoint.Snapshot{}, err
		}
		if err := checkBase(c, vm.disks[c.Disk]); err != nil {
			return bootpoint.Snapshot{}, err
		}
	}

	// Write, keeping what was there to put it back on failure.
	before := make(map[int][]byte, len(changes))
	undo := func(err error) (bootpoint.Snapshot, error) {
		for d, b := range before {
			vm.disks[d] = b
		}
		return bootpoint.Snapshot{}, err
	}
	for _, c := range changes {
		before[c.Disk] = bytes.Clone(vm.disks[c.Disk])
		extents := c.Extents
		if m.Drop && len(extents) > 0 {
			extents = extents[:len(extents)-1]
		}
		if err := write(vm.disks[c.Disk], extents, c.Source); err != nil {
			return undo(fmt.Errorf("hypervisortest: disk %d: %w", c.Disk, err))
		}
		if err := m.step("write"); err != nil {
			return undo(err)
		}
	}
	if err := m.step("snapshot"); err != nil {
		return undo(err)
	}

	s := &memSnapshot{
		info: bootpoint.Snapshot{
			ID:          fmt.Sprintf("snapshot-%d", m.taken+1),
			Name:        name,
			Description: description,
			Created:     epoch.Add(time.Duration(m.taken) * time.Hour),
		},
		parent: vm.current,
		disks:  cloneDisks(vm.disks),
	}
	m.taken++
	vm.snaps = append(vm.snaps, s)
	vm.current, vm.diverged = s, false
	out := s.info
	out.Current = true
	return out, nil
}

// Snapshots lists the VM's snapshots, oldest first; the current one is
// marked Current.
func (m *Memory) Snapshots(ctx context.Context, v bootpoint.VM) ([]bootpoint.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(v)
	if err != nil {
		return nil, err
	}
	out := make([]bootpoint.Snapshot, 0, len(vm.snaps))
	for _, s := range vm.snaps {
		info := s.info
		info.Current = s == vm.current
		out = append(out, info)
	}
	return out, nil
}

// RemoveSnapshot removes a snapshot. Its children and the current state
// keep their content; its children become children of its parent, and if
// it was the current snapshot its parent (or none) becomes current, as
// vSphere does.
func (m *Memory) RemoveSnapshot(ctx context.Context, v bootpoint.VM, s bootpoint.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, snap, err := m.snapshot(v, s)
	if err != nil {
		return err
	}
	if err := m.step("remove"); err != nil {
		return err
	}
	for _, x := range vm.snaps {
		if x.parent == snap {
			x.parent = snap.parent
		}
	}
	if vm.current == snap {
		vm.current, vm.diverged = snap.parent, true
	}
	vm.snaps = slices.DeleteFunc(vm.snaps, func(x *memSnapshot) bool { return x == snap })
	return nil
}

// Revert makes the VM's disks hold snapshot s's content and s the current
// snapshot. Like ESXi reverting to a snapshot taken without memory, it
// leaves the VM powered off.
func (m *Memory) Revert(ctx context.Context, v bootpoint.VM, s bootpoint.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, snap, err := m.snapshot(v, s)
	if err != nil {
		return err
	}
	vm.disks = cloneDisks(snap.disks)
	vm.current, vm.diverged = snap, false
	vm.powered = false
	return nil
}

// SetPower powers the VM on or off; doing it twice is no error.
func (m *Memory) SetPower(ctx context.Context, v bootpoint.VM, on bool) error {
	return m.withVM(ctx, v, func(vm *memVM) { vm.powered = on })
}

// withVM runs f on the VM with the Memory locked.
func (m *Memory) withVM(ctx context.Context, v bootpoint.VM, f func(*memVM)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(v)
	if err != nil {
		return err
	}
	f(vm)
	return nil
}

// OpenDisk reads disk d as snapshot s holds it (a snapshot's content
// never changes, so the reader needs no copy of it).
func (m *Memory) OpenDisk(ctx context.Context, v bootpoint.VM, s bootpoint.Snapshot, d int) (bootpoint.Disk, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, snap, err := m.snapshot(v, s)
	if err != nil {
		return nil, err
	}
	if d < 0 || d >= len(snap.disks) {
		return nil, fmt.Errorf("%w: disk %d of snapshot %q (%d disks)", bootpoint.ErrNotFound, d, s.ID, len(snap.disks))
	}
	return &memDisk{r: bytes.NewReader(snap.disks[d])}, nil
}

// memDisk is a disk read back; reading it after Close is an error.
type memDisk struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, os.ErrClosed
	}
	return d.r.ReadAt(p, off)
}

func (d *memDisk) Size() int64 { return d.r.Size() }

func (d *memDisk) Close() error {
	if d.closed.Swap(true) {
		return os.ErrClosed
	}
	return nil
}

// ConnectNetwork puts the VM's NIC on network and connects it.
func (m *Memory) ConnectNetwork(ctx context.Context, v bootpoint.VM, network string) error {
	return m.withVM(ctx, v, func(vm *memVM) { vm.spec.Network, vm.spec.ConnectNIC = network, true })
}

// CloneForTest makes a powered-off VM of that name whose disks hold
// snapshot s's content, with its NIC connected to network and no
// snapshot. The original is untouched.
func (m *Memory) CloneForTest(ctx context.Context, v bootpoint.VM, s bootpoint.Snapshot, name, network string) (bootpoint.VM, error) {
	if err := ctx.Err(); err != nil {
		return bootpoint.VM{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, snap, err := m.snapshot(v, s)
	if err != nil {
		return bootpoint.VM{}, err
	}
	if _, ok := m.vms[name]; ok || name == "" {
		return bootpoint.VM{}, fmt.Errorf("hypervisortest: VM %q already exists", name)
	}
	spec := vm.spec
	spec.Name, spec.Network, spec.ConnectNIC = name, network, true
	spec.DiskSizes = slices.Clone(spec.DiskSizes)
	m.vms[name] = &memVM{spec: spec, disks: cloneDisks(snap.disks)}
	return bootpoint.VM{Name: name, ID: "vm-" + name, Annotation: spec.Annotation}, nil
}

// RenameVM gives a VM another name, which no other VM may have. Its
// snapshots and disks stay as they are; its ID follows the name, as IDs
// here are made of names.
func (m *Memory) RenameVM(ctx context.Context, v bootpoint.VM, name string) (bootpoint.VM, error) {
	if err := ctx.Err(); err != nil {
		return bootpoint.VM{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, err := m.vm(v)
	if err != nil {
		return bootpoint.VM{}, err
	}
	if _, ok := m.vms[name]; ok || name == "" {
		return bootpoint.VM{}, fmt.Errorf("hypervisortest: VM %q already exists", name)
	}
	delete(m.vms, v.Name)
	vm.spec.Name = name
	m.vms[name] = vm
	return bootpoint.VM{Name: name, ID: "vm-" + name, Annotation: vm.spec.Annotation}, nil
}

// Spec returns what CreateStandby (or CloneForTest) was given for the VM
// of that name, with the changes ConnectNetwork made.
func (m *Memory) Spec(name string) (bootpoint.VMSpec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, ok := m.vms[name]
	if !ok {
		return bootpoint.VMSpec{}, false
	}
	spec := vm.spec
	spec.DiskSizes = slices.Clone(spec.DiskSizes)
	return spec, true
}

// PoweredOn reports whether the VM of that name exists and is powered on.
func (m *Memory) PoweredOn(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, ok := m.vms[name]
	return ok && vm.powered
}

// VMs returns the names of the VMs, sorted.
func (m *Memory) VMs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.vms))
	for name := range m.vms {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// WriteDisk writes p at off into disk d of the VM's current state, as
// its guest would: the VM diverges from its current snapshot.
func (m *Memory) WriteDisk(name string, d int, off int64, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, ok := m.vms[name]
	if !ok {
		return fmt.Errorf("hypervisortest: VM %q: %w", name, bootpoint.ErrNotFound)
	}
	if d < 0 || d >= len(vm.disks) || off < 0 || off+int64(len(p)) > int64(len(vm.disks[d])) {
		return fmt.Errorf("hypervisortest: VM %q has no bytes [%d,%d) on disk %d", name, off, off+int64(len(p)), d)
	}
	copy(vm.disks[d][off:], p)
	vm.diverged = true
	return nil
}

// MaxInFlight returns the most AddBootPoint calls seen running at once.
func (m *Memory) MaxInFlight() int { return int(m.maxInFlight.Load()) }

// guest returns what Guest plays for a powered-on VM.
func (m *Memory) guest(ctx context.Context, v bootpoint.VM) (bootpoint.GuestStatus, []byte, error) {
	if err := ctx.Err(); err != nil {
		return bootpoint.GuestStatus{}, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vm, ok := m.vms[v.Name]
	if !ok {
		return bootpoint.GuestStatus{}, nil, fmt.Errorf("hypervisortest: VM %s: %w", v.Name, bootpoint.ErrNotFound)
	}
	if !vm.powered {
		return bootpoint.GuestStatus{}, nil, fmt.Errorf("hypervisortest: VM %s is powered off", v.Name)
	}
	if m.Guest == nil {
		return bootpoint.GuestStatus{Heartbeat: "gray"}, nil, nil
	}
	st, png := m.Guest(v.Name, vm.disks)
	return st, png, nil
}

// GuestStatus implements bootpoint.GuestObserver (Guest plays it).
func (m *Memory) GuestStatus(ctx context.Context, v bootpoint.VM) (bootpoint.GuestStatus, error) {
	st, _, err := m.guest(ctx, v)
	return st, err
}

// Screenshot implements bootpoint.GuestObserver (Guest plays it).
func (m *Memory) Screenshot(ctx context.Context, v bootpoint.VM) ([]byte, error) {
	_, png, err := m.guest(ctx, v)
	if err == nil && png == nil {
		err = fmt.Errorf("%w: no screenshot (Memory.Guest gives none)", bootpoint.ErrUnsupportedOperation)
	}
	return png, err
}
