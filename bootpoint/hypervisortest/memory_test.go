package hypervisortest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
)

var errInjected = errors.New("injected failure")

// failNextWrite makes the next AddBootPoint of a Memory fail after its
// first disk was written.
func failNextWrite(t *testing.T, hv bootpoint.Hypervisor) {
	m := hv.(*Memory)
	m.Fail = func(step string) error {
		if step != "write" {
			return nil
		}
		m.Fail = nil // called with m locked, like every read of Fail
		return errInjected
	}
}

func memoryHarness() Harness {
	return Harness{
		New:           func(*testing.T) bootpoint.Hypervisor { return &Memory{} },
		FailNextWrite: failNextWrite,
		WriteGuest: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM, d int, off int64, p []byte) error {
			return hv.(*Memory).WriteDisk(vm.Name, d, off, p)
		},
		AfterEach: func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM) {
			// No stray VM: the scenario's VM is the only one.
			require.Equal(t, []string{vm.Name}, hv.(*Memory).VMs())
		},
	}
}

func TestMemoryConforms(t *testing.T) {
	t.Parallel()
	Run(t, memoryHarness())
}

func TestMemoryConformsWithOtherDisks(t *testing.T) {
	t.Parallel()
	h := memoryHarness()
	h.DiskSizes = []int64{8 * bootpoint.SectorSize, 3 << 20, 64 << 10}
	h.Points = 5
	Run(t, h)
}

func TestMemoryConformsOneDisk(t *testing.T) {
	t.Parallel()
	h := memoryHarness()
	h.DiskSizes = []int64{3<<20 + bootpoint.SectorSize}
	h.Points = 2 // at least 4
	Run(t, h)
}

// The read-back check sees a boot point that lost data.
func TestReadBackCatchesDroppedExtents(t *testing.T) {
	ctx := context.Background()
	for _, drop := range []bool{false, true} {
		hv := &Memory{Drop: drop}
		g := newGen(9, defaultDiskSizes)
		content, bases := g.base()
		vm, err := hv.CreateStandby(ctx, bootpoint.VMSpec{Name: "v", DiskSizes: defaultDiskSizes}, bases)
		require.NoError(t, err)
		s0, err := hv.AddBootPoint(ctx, vm, nil, "0", "")
		require.NoError(t, err)
		require.NoError(t, readBack(ctx, hv, vm, s0, content), "a boot point without change loses nothing")

		next, changes := g.next(content, 0, 1)
		s1, err := hv.AddBootPoint(ctx, vm, changes, "1", "")
		require.NoError(t, err, "the loss is silent")
		err = readBack(ctx, hv, vm, s1, next)
		if !drop {
			require.NoError(t, err)
			continue
		}
		var mismatch *mismatchError
		require.ErrorAs(t, err, &mismatch)
		lost := changes[0].Extents[len(changes[0].Extents)-1]
		require.Equal(t, 0, mismatch.Disk)
		require.GreaterOrEqual(t, mismatch.Offset, lost.Off)
		require.Less(t, mismatch.Offset, lost.End())
		require.NoError(t, readBack(ctx, hv, vm, s0, content), "the older boot point is intact")
	}
}

// The suite fails broken hypervisors: each mutant breaks one rule and the
// scenario that checks it must say so.
func TestSuiteCatchesBrokenHypervisors(t *testing.T) {
	t.Parallel()
	mutants := []struct {
		name     string
		scenario string
		hv       func() (bootpoint.Hypervisor, func())
	}{
		{"loses the last extent of each change", "BootPoints", func() (bootpoint.Hypervisor, func()) {
			return &Memory{Drop: true}, nil
		}},
		{"marks no snapshot current", "BootPoints", func() (bootpoint.Hypervisor, func()) {
			return noCurrent{&Memory{}}, nil
		}},
		{"reverts only the current flag", "Revert", func() (bootpoint.Hypervisor, func()) {
			return &flagOnlyRevert{Memory: &Memory{}}, nil
		}},
		{"removes the wrong snapshot", "Consolidation", func() (bootpoint.Hypervisor, func()) {
			return removesNext{&Memory{}}, nil
		}},
		{"keeps what a failed AddBootPoint wrote", "FailedWrite", func() (bootpoint.Hypervisor, func()) {
			l := &leaky{Memory: &Memory{}}
			return l, func() { l.armed = true }
		}},
		{"writes over a guest's changes", "Diverged", func() (bootpoint.Hypervisor, func()) {
			return forgetsGuestWrites{&Memory{}}, nil
		}},
		{"ignores changes for unknown disks", "BadInput", func() (bootpoint.Hypervisor, func()) {
			return lenient{&Memory{}}, nil
		}},
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			hv, fail := m.hv()
			e := newEnv(hv, Harness{})
			e.failNextWrite = fail
			e.writeGuest = func(vm bootpoint.VM, d int, off int64, p []byte) error {
				return hv.(interface {
					WriteDisk(string, int, int64, []byte) error
				}).WriteDisk(vm.Name, d, off, p)
			}
			i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == m.scenario })
			require.GreaterOrEqual(t, i, 0)
			err := scenarios[i].run(t.Context(), e)
			require.Error(t, err, "scenario %s passed a hypervisor that %s", m.scenario, m.name)
			t.Logf("%s: %v", m.scenario, err)
		})
	}
}

// forgetsGuestWrites lets a guest write without the VM diverging.
type forgetsGuestWrites struct{ *Memory }

func (f forgetsGuestWrites) WriteDisk(name string, d int, off int64, p []byte) error {
	if err := f.Memory.WriteDisk(name, d, off, p); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vms[name].diverged = false
	return nil
}

// noCurrent never reports a current snapshot.
type noCurrent struct{ *Memory }

func (h noCurrent) Snapshots(ctx context.Context, vm bootpoint.VM) ([]bootpoint.Snapshot, error) {
	list, err := h.Memory.Snapshots(ctx, vm)
	for i := range list {
		list[i].Current = false
	}
	return list, err
}

// flagOnlyRevert marks the snapshot current but leaves the disks as they
// are.
type flagOnlyRevert struct {
	*Memory
}

func (h *flagOnlyRevert) Revert(ctx context.Context, v bootpoint.VM, s bootpoint.Snapshot) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	vm, snap, err := h.snapshot(v, s)
	if err != nil {
		return err
	}
	vm.current = snap
	return nil
}

// removesNext removes the snapshot after the one asked for, when there is
// one.
type removesNext struct{ *Memory }

func (h removesNext) RemoveSnapshot(ctx context.Context, vm bootpoint.VM, s bootpoint.Snapshot) error {
	list, err := h.Memory.Snapshots(ctx, vm)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(x bootpoint.Snapshot) bool { return x.ID == s.ID })
	if i >= 0 && i+1 < len(list) {
		s = list[i+1]
	}
	return h.Memory.RemoveSnapshot(ctx, vm, s)
}

// leaky fails its armed AddBootPoint after writing the first change,
// without undoing it: the current state keeps the bytes while the current
// snapshot and the list are as before.
type leaky struct {
	*Memory
	armed bool
}

func (h *leaky) AddBootPoint(ctx context.Context, vm bootpoint.VM, changes []bootpoint.Delta, name, description string) (bootpoint.Snapshot, error) {
	if !h.armed || len(changes) == 0 {
		return h.Memory.AddBootPoint(ctx, vm, changes, name, description)
	}
	h.armed = false
	s, err := h.Memory.AddBootPoint(ctx, vm, changes[:1], "partial", "")
	if err != nil {
		return bootpoint.Snapshot{}, err
	}
	// Removing the snapshot keeps the current state; its parent, the
	// previous current snapshot, is current again.
	if err := h.Memory.RemoveSnapshot(ctx, vm, s); err != nil {
		return bootpoint.Snapshot{}, err
	}
	return bootpoint.Snapshot{}, errInjected
}

// lenient skips changes for disks the VM does not have.
type lenient struct{ *Memory }

func (h lenient) AddBootPoint(ctx context.Context, vm bootpoint.VM, changes []bootpoint.Delta, name, description string) (bootpoint.Snapshot, error) {
	spec, _ := h.Spec(vm.Name)
	changes = slices.DeleteFunc(slices.Clone(changes), func(c bootpoint.Delta) bool {
		return c.Disk < 0 || c.Disk >= len(spec.DiskSizes)
	})
	return h.Memory.AddBootPoint(ctx, vm, changes, name, description)
}

func TestMemoryFailSteps(t *testing.T) {
	ctx := context.Background()
	failAt := func(m *Memory, step string) {
		m.Fail = func(s string) error {
			if s == step {
				return errInjected
			}
			return nil
		}
	}
	g := newGen(1, defaultDiskSizes)
	content, bases := g.base()
	spec := bootpoint.VMSpec{Name: "v", DiskSizes: defaultDiskSizes}

	m := &Memory{}
	failAt(m, "create")
	_, err := m.CreateStandby(ctx, spec, bases)
	require.ErrorIs(t, err, errInjected)
	require.Empty(t, m.VMs())

	m.Fail = nil
	vm, err := m.CreateStandby(ctx, spec, bases)
	require.NoError(t, err)
	c := &chain{hv: m, vm: vm, state: content}
	s0, err := c.add(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, bootpoint.Snapshot{ID: "snapshot-1", Name: s0.Name, Description: s0.Description,
		Created: time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC), Current: true}, s0)

	_, changes := g.next(content, 0, 1)
	for _, step := range []string{"write", "snapshot"} {
		failAt(m, step)
		_, err := m.AddBootPoint(ctx, vm, changes, "x", "")
		require.ErrorIs(t, err, errInjected)
		require.Equal(t, content, m.vms["v"].disks, "step %s: the state is as before", step)
	}
	m.Fail = nil
	s1, err := c.add(ctx, changes)
	require.NoError(t, err)
	require.Equal(t, "snapshot-2", s1.ID)
	require.Equal(t, time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC), s1.Created)

	failAt(m, "remove")
	require.ErrorIs(t, m.RemoveSnapshot(ctx, vm, s0), errInjected)
	m.Fail = nil
	require.NoError(t, c.check(ctx))
}

func TestMemoryPowerAndClones(t *testing.T) {
	ctx := context.Background()
	g := newGen(2, defaultDiskSizes)
	content, bases := g.base()
	m := &Memory{}
	vm, err := m.CreateStandby(ctx, bootpoint.VMSpec{Name: "v", DiskSizes: defaultDiskSizes, Network: "isolated", Annotation: "notes"}, bases)
	require.NoError(t, err)
	require.Equal(t, bootpoint.VM{Name: "v", ID: "vm-v", Annotation: "notes"}, vm)
	_, err = m.CreateStandby(ctx, bootpoint.VMSpec{Name: "v", DiskSizes: defaultDiskSizes}, bases)
	require.Error(t, err, "a second VM of the same name")
	s0, err := m.AddBootPoint(ctx, vm, nil, "0", "")
	require.NoError(t, err)

	require.NoError(t, m.SetPower(ctx, vm, true))
	require.True(t, m.PoweredOn("v"))
	require.Error(t, m.DestroyVM(ctx, vm), "a powered-on VM is not destroyed")
	_, changes := g.next(content, 0)
	_, err = m.AddBootPoint(ctx, vm, changes, "1", "")
	require.Error(t, err, "the disks of a powered-on VM are not written")
	require.NoError(t, m.Revert(ctx, vm, s0))
	require.False(t, m.PoweredOn("v"), "reverting to a snapshot without memory powers off")

	require.NoError(t, m.ConnectNetwork(ctx, vm, "prod"))
	spec, ok := m.Spec("v")
	require.True(t, ok)
	require.Equal(t, "prod", spec.Network)
	require.True(t, spec.ConnectNIC)
	require.Equal(t, defaultDiskSizes, spec.DiskSizes)

	clone, err := m.CloneForTest(ctx, vm, s0, "v-test", "lab")
	require.NoError(t, err)
	require.Equal(t, []string{"v", "v-test"}, m.VMs())
	cs, ok := m.Spec("v-test")
	require.True(t, ok)
	require.Equal(t, "lab", cs.Network)
	snaps, err := m.Snapshots(ctx, clone)
	require.NoError(t, err)
	require.Empty(t, snaps)
	require.Equal(t, content, m.vms["v-test"].disks)
	require.NoError(t, m.DestroyVM(ctx, clone))
	_, ok = m.Spec("v-test")
	require.False(t, ok)

	d, err := m.OpenDisk(ctx, vm, s0, 0)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	_, err = d.ReadAt(make([]byte, 1), 0)
	require.Error(t, err, "reading a closed disk")
}

func TestMemoryMaxInFlight(t *testing.T) {
	ctx := context.Background()
	m := &Memory{Slow: 20 * time.Millisecond}
	var vms []bootpoint.VM
	for _, name := range []string{"a", "b", "c"} {
		vm, err := m.CreateStandby(ctx, bootpoint.VMSpec{Name: name, DiskSizes: []int64{bootpoint.SectorSize}},
			[]bootpoint.Delta{{Disk: 0, Size: bootpoint.SectorSize}})
		require.NoError(t, err)
		vms = append(vms, vm)
	}
	require.Zero(t, m.MaxInFlight())
	var wg sync.WaitGroup
	for _, vm := range vms {
		wg.Go(func() {
			_, err := m.AddBootPoint(ctx, vm, nil, "0", "")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, 3, m.MaxInFlight())

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := m.AddBootPoint(cancelled, vms[0], nil, "1", "")
	require.ErrorIs(t, err, context.Canceled)
}
