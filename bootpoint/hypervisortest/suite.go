package hypervisortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
)

// Harness tells Run how to test one Hypervisor implementation.
type Harness struct {
	// New returns a fresh, empty hypervisor; it may register cleanups on
	// t. Required.
	New func(t *testing.T) bootpoint.Hypervisor
	// FailNextWrite arranges that the next AddBootPoint on hv fails after
	// part of the changes was written and before the snapshot exists
	// (e.g. with an injected fault after the first disk's write). Nil
	// skips the failure subtest.
	FailNextWrite func(t *testing.T, hv bootpoint.Hypervisor)
	// DiskSizes are the capacities of the test VM's disks, multiples of
	// 512 bytes. Nil means 1 MiB and 2.5 MiB + 3 sectors: the second not a
	// multiple of 64 KiB and spanning a 2 MiB boundary.
	DiskSizes []int64
	// Points is the length of the chain of boot points; 0 means 8, less
	// than 4 means 4.
	Points int
	// AfterEach, when set, runs the implementation's own checks (e.g. no
	// stray files) after each step that changed the VM, failed or not.
	AfterEach func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM)
	// WriteGuest writes p at off into disk d of the VM's current state,
	// as its guest would (the VM diverges from its current snapshot). Nil
	// skips the Diverged subtest.
	WriteGuest func(t *testing.T, hv bootpoint.Hypervisor, vm bootpoint.VM, d int, off int64, p []byte) error
}

// defaultDiskSizes are the disks of the test VM when the Harness names
// none.
var defaultDiskSizes = []int64{1 << 20, 5<<19 + 3*bootpoint.SectorSize}

// Run runs the conformance suite against the hypervisors h.New makes, as
// subtests: BootPoints, Consolidation, Revert, FailedWrite, Diverged,
// BadInput, Power and (for a bootpoint.VMRenamer) Rename. Each subtest starts from a fresh hypervisor and one VM.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("hypervisortest: Harness.New is required")
	}
	for d, size := range h.DiskSizes {
		if size <= 0 || size%bootpoint.SectorSize != 0 {
			t.Fatalf("hypervisortest: Harness.DiskSizes[%d] = %d: not a positive multiple of %d", d, size, bootpoint.SectorSize)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.name == "FailedWrite" && h.FailNextWrite == nil {
				t.Skip("the harness cannot make a write fail (Harness.FailNextWrite is nil)")
			}
			if sc.name == "Diverged" && h.WriteGuest == nil {
				t.Skip("the harness cannot write as a guest (Harness.WriteGuest is nil)")
			}
			hv := h.New(t)
			if _, ok := hv.(bootpoint.VMRenamer); sc.name == "Rename" && !ok {
				t.Skip("the hypervisor does not rename VMs (bootpoint.VMRenamer)")
			}
			e := newEnv(hv, h)
			e.afterEach = func(vm bootpoint.VM) {
				if h.AfterEach != nil {
					t.Helper()
					h.AfterEach(t, hv, vm)
				}
			}
			e.failNextWrite = func() { h.FailNextWrite(t, hv) }
			e.writeGuest = func(vm bootpoint.VM, d int, off int64, p []byte) error {
				return h.WriteGuest(t, hv, vm, d, off, p)
			}
			e.logf = t.Logf
			if err := sc.run(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// env is what a scenario works with. Scenarios return errors rather than
// failing a *testing.T, so that this package's tests can run them against
// broken hypervisors and see them fail.
type env struct {
	hv            bootpoint.Hypervisor
	sizes         []int64
	points        int
	afterEach     func(vm bootpoint.VM) // never nil
	failNextWrite func()
	writeGuest    func(vm bootpoint.VM, d int, off int64, p []byte) error
	logf          func(format string, args ...any)
}

func newEnv(hv bootpoint.Hypervisor, h Harness) *env {
	sizes := h.DiskSizes
	if len(sizes) == 0 {
		sizes = defaultDiskSizes
	}
	points := h.Points
	switch {
	case points == 0:
		points = 8
	case points < 4:
		points = 4
	}
	return &env{hv: hv, sizes: sizes, points: points,
		afterEach: func(bootpoint.VM) {}, logf: func(string, ...any) {}}
}

// scenario is one subtest of Run.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env) error
}

var scenarios = []scenario{
	{"BootPoints", bootPoints},
	{"Consolidation", consolidation},
	{"Revert", revert},
	{"FailedWrite", failedWrite},
	{"Diverged", diverged},
	{"BadInput", badInput},
	{"Power", power},
	{"Rename", rename},
}

func (e *env) spec(name string) bootpoint.VMSpec {
	return bootpoint.VMSpec{Name: name, GuestID: "otherGuest64", CPUs: 1, MemoryMiB: 128, DiskSizes: e.sizes,
		Annotation: "hypervisortest conformance VM " + name}
}

// start creates the VM of a scenario from a new base and adds points boot
// points: the first without change, then one per point as pointDisks
// says. It returns the chain and the generator.
func (e *env) start(ctx context.Context, name string, seed uint64, points int) (*chain, *gen, error) {
	g := newGen(seed, e.sizes)
	c := &chain{hv: e.hv}
	content, bases := g.base()
	if err := c.create(ctx, e.spec(name), content, bases); err != nil {
		return nil, nil, err
	}
	e.afterEach(c.vm)
	if _, err := c.add(ctx, nil); err != nil {
		return nil, nil, fmt.Errorf("boot point 0: %w", err)
	}
	e.afterEach(c.vm)
	noChange := points / 2
	if noChange%3 == 2 && noChange+1 < points {
		noChange++ // keep the one-disk point
	}
	for k := 1; k < points; k++ {
		if err := e.addPoint(ctx, c, g, pointDisks(k, len(e.sizes), noChange)); err != nil {
			return nil, nil, fmt.Errorf("boot point %d: %w", k, err)
		}
	}
	return c, g, nil
}

// addPoint adds a boot point with random changes on disks on top of the
// current state.
func (e *env) addPoint(ctx context.Context, c *chain, g *gen, disks []int) error {
	_, changes := g.next(c.state, disks...)
	_, err := c.add(ctx, changes)
	e.afterEach(c.vm)
	return err
}

// bootPoints: a chain of boot points, each read back after each step.
func bootPoints(ctx context.Context, e *env) error {
	if _, err := e.hv.FindVM(ctx, "conformance-bootpoints"); !errors.Is(err, bootpoint.ErrNotFound) {
		return fmt.Errorf("FindVM before CreateStandby: %v, want ErrNotFound", err)
	}
	_, _, err := e.start(ctx, "conformance-bootpoints", 1, e.points)
	return err
}

// consolidation: remove a middle snapshot, then the oldest until few are
// left, then the current one, and add more boot points on top.
func consolidation(ctx context.Context, e *env) error {
	c, g, err := e.start(ctx, "conformance-consolidation", 2, e.points)
	if err != nil {
		return err
	}
	const limit = 3
	if err := c.remove(ctx, len(c.snaps)/2); err != nil {
		return fmt.Errorf("removing a middle snapshot: %w", err)
	}
	e.afterEach(c.vm)
	for len(c.snaps) > limit {
		if err := c.remove(ctx, 0); err != nil {
			return fmt.Errorf("removing the oldest snapshot: %w", err)
		}
		e.afterEach(c.vm)
	}
	for k := range limit + 1 {
		if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
			return fmt.Errorf("boot point %d after consolidation: %w", k, err)
		}
		if err := c.remove(ctx, 0); err != nil {
			return fmt.Errorf("removing the oldest snapshot after boot point %d: %w", k, err)
		}
		e.afterEach(c.vm)
	}
	// The current snapshot removed, the current state keeps its content,
	// which is no longer that of the (new) current snapshot: a boot point
	// with changes is refused, until a revert.
	if err := c.remove(ctx, len(c.snaps)-1); err != nil {
		return fmt.Errorf("removing the current snapshot: %w", err)
	}
	e.afterEach(c.vm)
	if err := e.refusedAsDiverged(ctx, c, g, "after removing the current snapshot"); err != nil {
		return err
	}
	if err := c.revert(ctx, len(c.snaps)-1); err != nil {
		return fmt.Errorf("reverting after removing the current snapshot: %w", err)
	}
	e.afterEach(c.vm)
	if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
		return fmt.Errorf("boot point after a revert: %w", err)
	}
	return nil
}

// refusedAsDiverged checks that a boot point with changes is refused with
// bootpoint.ErrDiverged and changes nothing.
func (e *env) refusedAsDiverged(ctx context.Context, c *chain, g *gen, when string) error {
	_, changes := g.next(c.state, allDisks(len(e.sizes))...)
	name, desc := c.names()
	_, err := e.hv.AddBootPoint(ctx, c.vm, changes, name, desc)
	e.afterEach(c.vm)
	if !errors.Is(err, bootpoint.ErrDiverged) {
		return fmt.Errorf("AddBootPoint %s: %v, want bootpoint.ErrDiverged", when, err)
	}
	if err := c.check(ctx); err != nil {
		return fmt.Errorf("after the refused AddBootPoint %s: %w", when, err)
	}
	return nil
}

// diverged: a guest writes to the VM's disks; a boot point with changes
// is then refused (never written on top, never silently discarded) until
// the VM is reverted to its current snapshot, which discards the writes.
func diverged(ctx context.Context, e *env) error {
	c, g, err := e.start(ctx, "conformance-diverged", 6, 3)
	if err != nil {
		return err
	}
	last := len(e.sizes) - 1
	if err := e.writeGuest(c.vm, last, e.sizes[last]-2*sector, bytes.Repeat([]byte{0x5a}, sector)); err != nil {
		return fmt.Errorf("the guest's write: %w", err)
	}
	if err := e.refusedAsDiverged(ctx, c, g, "after a guest wrote"); err != nil {
		return err
	}
	if err := c.revert(ctx, len(c.snaps)-1); err != nil {
		return fmt.Errorf("reverting the guest's write: %w", err)
	}
	e.afterEach(c.vm)
	if _, err := c.add(ctx, nil); err != nil {
		return fmt.Errorf("the state after the revert is not that of the current snapshot: %w", err)
	}
	e.afterEach(c.vm)
	if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
		return fmt.Errorf("boot point after a revert: %w", err)
	}
	return nil
}

// revert: revert to an older boot point, branch off it, then go back to
// the old branch and add there too; remove the branch point.
func revert(ctx context.Context, e *env) error {
	c, g, err := e.start(ctx, "conformance-revert", 3, e.points)
	if err != nil {
		return err
	}
	k := len(c.snaps) / 2
	if err := c.revert(ctx, k); err != nil {
		return err
	}
	e.afterEach(c.vm)
	if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
		return fmt.Errorf("boot point on top of reverted boot point %d: %w", k, err)
	}
	if err := e.addPoint(ctx, c, g, []int{len(e.sizes) - 1}); err != nil {
		return fmt.Errorf("second boot point of the new branch: %w", err)
	}
	oldNewest := e.points - 1
	if err := c.revert(ctx, oldNewest); err != nil {
		return fmt.Errorf("back to the old branch: %w", err)
	}
	e.afterEach(c.vm)
	if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
		return fmt.Errorf("boot point on the old branch: %w", err)
	}
	if err := c.remove(ctx, k); err != nil {
		return fmt.Errorf("removing the branch point: %w", err)
	}
	e.afterEach(c.vm)
	return nil
}

// failedWrite: an AddBootPoint that fails half way leaves the snapshots
// as they were and the current state as at the current snapshot.
func failedWrite(ctx context.Context, e *env) error {
	c, g, err := e.start(ctx, "conformance-failedwrite", 4, 3)
	if err != nil {
		return err
	}
	_, changes := g.next(c.state, allDisks(len(e.sizes))...)
	e.failNextWrite()
	name, desc := c.names()
	if _, err := e.hv.AddBootPoint(ctx, c.vm, changes, name, desc); err == nil {
		return errors.New("AddBootPoint succeeded although FailNextWrite made it fail")
	} else {
		e.logf("the injected failure: %v", err)
	}
	e.afterEach(c.vm)
	if err := c.check(ctx); err != nil {
		return fmt.Errorf("after the failed AddBootPoint: %w", err)
	}
	// A boot point without change shows the current state: what was
	// written before the failure must be gone. (Retrying the same changes
	// first would write the same bytes again and hide it.)
	if _, err := c.add(ctx, nil); err != nil {
		return fmt.Errorf("the state after the failed AddBootPoint is not that of the current snapshot: %w", err)
	}
	e.afterEach(c.vm)
	if _, err := c.add(ctx, changes); err != nil {
		return fmt.Errorf("retrying the failed AddBootPoint: %w", err)
	}
	e.afterEach(c.vm)
	return nil
}

// badInput: bad changes, snapshots, disks and names are errors that
// change nothing.
func badInput(ctx context.Context, e *env) error {
	c, g, err := e.start(ctx, "conformance-badinput", 5, 2)
	if err != nil {
		return err
	}
	last := len(e.sizes) - 1
	lastSize := e.sizes[last]
	// A valid change first, so that a hypervisor that writes it before
	// noticing the bad one must undo it.
	_, valid := g.next(c.state, 0)
	junk := bytes.NewReader(bytes.Repeat([]byte{0xa5}, int(lastSize)+4*sector))
	bad := map[string]bootpoint.Delta{
		"disk index out of range": {Disk: len(e.sizes), Size: e.sizes[0], Extents: []aipimage.Extent{{Off: 0, Len: sector}}, Source: junk},
		"negative disk index":     {Disk: -1, Size: e.sizes[0], Extents: []aipimage.Extent{{Off: 0, Len: sector}}, Source: junk},
		"extent across the end":   {Disk: last, Size: lastSize, Extents: []aipimage.Extent{{Off: 0, Len: sector}, {Off: lastSize - sector, Len: 2 * sector}}, Source: junk},
		"extent past the end":     {Disk: last, Size: lastSize, Extents: []aipimage.Extent{{Off: lastSize, Len: sector}}, Source: junk},
	}
	for _, why := range []string{"disk index out of range", "negative disk index", "extent across the end", "extent past the end"} {
		changes := append(append([]bootpoint.Delta(nil), valid...), bad[why])
		if bad[why].Disk == 0 {
			changes = []bootpoint.Delta{bad[why]}
		}
		name, desc := c.names()
		if _, err := e.hv.AddBootPoint(ctx, c.vm, changes, name, desc); err == nil {
			return fmt.Errorf("AddBootPoint with a change with %s succeeded", why)
		}
		e.afterEach(c.vm)
		if err := c.check(ctx); err != nil {
			return fmt.Errorf("after AddBootPoint with a change with %s: %w", why, err)
		}
	}
	// The state is still that of the current snapshot.
	if _, err := c.add(ctx, nil); err != nil {
		return fmt.Errorf("after AddBootPoints with bad changes: %w", err)
	}
	e.afterEach(c.vm)

	unknown := bootpoint.Snapshot{ID: "hypervisortest-no-such-snapshot", Name: "no such snapshot"}
	if d, err := e.hv.OpenDisk(ctx, c.vm, unknown, 0); err == nil {
		d.Close()
		return errors.New("OpenDisk of an unknown snapshot succeeded")
	} else if !errors.Is(err, bootpoint.ErrNotFound) {
		e.logf("OpenDisk of an unknown snapshot: %v (better: wrapping bootpoint.ErrNotFound)", err)
	}
	for _, d := range []int{len(e.sizes), -1} {
		if disk, err := e.hv.OpenDisk(ctx, c.vm, c.snaps[0].snap, d); err == nil {
			disk.Close()
			return fmt.Errorf("OpenDisk of disk %d of %d succeeded", d, len(e.sizes))
		}
	}
	if err := e.hv.Revert(ctx, c.vm, unknown); err == nil {
		return errors.New("Revert to an unknown snapshot succeeded")
	}
	if err := e.hv.RemoveSnapshot(ctx, c.vm, unknown); err == nil {
		return errors.New("RemoveSnapshot of an unknown snapshot succeeded")
	}
	if _, err := e.hv.FindVM(ctx, "conformance-no-such-vm"); !errors.Is(err, bootpoint.ErrNotFound) {
		return fmt.Errorf("FindVM of an unknown VM: %v, want ErrNotFound", err)
	}
	// A second VM of the same name would make FindVM ambiguous.
	_, bases := g.base()
	if _, err := e.hv.CreateStandby(ctx, e.spec(c.vm.Name), bases); err == nil {
		return fmt.Errorf("CreateStandby of a second VM %q succeeded", c.vm.Name)
	}
	e.afterEach(c.vm)
	return c.check(ctx)
}

// power: SetPower is idempotent; a destroyed VM is gone and its name free.
func power(ctx context.Context, e *env) error {
	const name = "conformance-power"
	c, _, err := e.start(ctx, name, 6, 2)
	if err != nil {
		return err
	}
	for _, on := range []bool{true, true, false, false} {
		if err := e.hv.SetPower(ctx, c.vm, on); err != nil {
			return fmt.Errorf("SetPower(%v): %w", on, err)
		}
		e.afterEach(c.vm)
	}
	if err := c.check(ctx); err != nil {
		return fmt.Errorf("after power on and off: %w", err)
	}
	if err := e.hv.DestroyVM(ctx, c.vm); err != nil {
		return fmt.Errorf("DestroyVM: %w", err)
	}
	if _, err := e.hv.FindVM(ctx, name); !errors.Is(err, bootpoint.ErrNotFound) {
		return fmt.Errorf("FindVM after DestroyVM: %v, want ErrNotFound", err)
	}
	// The name is free again, and nothing of the old VM shows through.
	again, _, err := e.start(ctx, name, 7, 2)
	if err != nil {
		return fmt.Errorf("creating the VM again after DestroyVM: %w", err)
	}
	return again.check(ctx)
}

// rename: a VM renamed keeps its snapshots and disks under its new name,
// takes more boot points, and frees its old name.
func rename(ctx context.Context, e *env) error {
	r := e.hv.(bootpoint.VMRenamer)
	c, g, err := e.start(ctx, "conformance-rename", 8, 3)
	if err != nil {
		return err
	}
	const name = "conformance-renamed"
	vm, err := r.RenameVM(ctx, c.vm, name)
	if err != nil {
		return fmt.Errorf("RenameVM: %w", err)
	}
	if vm.Name != name {
		return fmt.Errorf("RenameVM returned %+v, want the name %q", vm, name)
	}
	found, err := e.hv.FindVM(ctx, name)
	if err != nil {
		return fmt.Errorf("FindVM after RenameVM: %w", err)
	}
	if want := e.spec("conformance-rename").Annotation; found.ID != vm.ID || found.Annotation != want {
		return fmt.Errorf("FindVM returned %+v, RenameVM %+v (annotation %q before)", found, vm, want)
	}
	if _, err := e.hv.FindVM(ctx, "conformance-rename"); !errors.Is(err, bootpoint.ErrNotFound) {
		return fmt.Errorf("FindVM of the old name: %v, want ErrNotFound", err)
	}
	c.vm = vm
	e.afterEach(c.vm)
	if err := c.check(ctx); err != nil {
		return fmt.Errorf("after RenameVM: %w", err)
	}
	if err := e.addPoint(ctx, c, g, allDisks(len(e.sizes))); err != nil {
		return fmt.Errorf("boot point after RenameVM: %w", err)
	}
	return c.check(ctx)
}
