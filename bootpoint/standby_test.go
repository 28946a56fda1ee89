package bootpoint_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/p2v"
)

func TestSyncMakesOneVerifiedBootPointPerPoint(t *testing.T) {
	set := newSample(t, 8)
	hv := &hypervisortest.Memory{}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web01"}, Library: "test"}
	results, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	require.Len(t, results, 9)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 9)
	for k, bp := range bps {
		info := set.Points()[k]
		require.Equal(t, info.Sequence, bp.Meta.Sequence)
		require.Equal(t, info.PointID, bp.Meta.PointID)
		require.Equal(t, bootpoint.SnapshotName(info.Sequence, info.Time), bp.Snapshot.Name)
	}
	spec, ok := hv.Spec("web01")
	require.True(t, ok)
	require.Equal(t, p2v.ControllerPVSCSI, spec.Controller)
	require.False(t, spec.ConnectNIC)
	// Nothing more to do.
	results, err = s.Sync(context.Background(), set)
	require.NoError(t, err)
	require.Empty(t, results)
}

// A hypervisor that loses data is caught: by Add, which reads every new
// boot point's written ranges back and removes one that differs; and with
// that off, by Verify and by the next boot point's Base (what the disk
// must hold before the change), which a hypervisor checks before writing.
func TestVerifyCatchesABrokenDelta(t *testing.T) {
	ctx := context.Background()
	set := newSample(t, 3)
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{Drop: true}, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	_, err := s.Add(ctx, set, 0)
	require.NoError(t, err)
	_, err = s.Add(ctx, set, 1)
	var mismatch *bootpoint.MismatchError
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, 1, mismatch.Sequence)
	require.ErrorContains(t, err, "the boot point was removed")
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 1, "only the good boot point is left")
	require.True(t, bps[0].Snapshot.Current, "and the VM is back at it")

	s.SkipReadBack = true
	r, err := s.Add(ctx, set, 1)
	require.NoError(t, err)
	require.Zero(t, r.ReadBack)
	_, bps, err = s.BootPoints(ctx)
	require.NoError(t, err)
	require.ErrorAs(t, s.Verify(ctx, set, bps[len(bps)-1]), &mismatch)
	_, err = s.Add(ctx, set, 2)
	require.ErrorContains(t, err, "Base is not the disk's content")
}

func TestCatchUpCoversSeveralIncrements(t *testing.T) {
	set := newSample(t, 8)
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	ctx := context.Background()
	for _, k := range []int{0, 4, 5, 8} {
		_, err := s.Add(ctx, set, k)
		require.NoError(t, err)
	}
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 4)
	_, err := s.Add(ctx, set, 7)
	require.ErrorIs(t, err, bootpoint.ErrChainMismatch, "a point older than the newest boot point cannot be added")
}

func TestCapConsolidatesOldest(t *testing.T) {
	set := newSample(t, 9)
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, VM: bootpoint.VMSpec{Name: "v"}, MaxBootPoints: 4}
	_, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 4)
	require.Equal(t, 6, bps[0].Meta.Sequence)
	require.Equal(t, 9, bps[3].Meta.Sequence)
}

// failAt makes hv fail at every occurrence of step.
func failAt(hv *hypervisortest.Memory, step string, err error) {
	hv.Fail = func(s string) error {
		if s == step {
			return err
		}
		return nil
	}
}

func TestFailuresLeaveNoHalfBootPointAndRetrySucceeds(t *testing.T) {
	set := newSample(t, 4)
	ctx := context.Background()
	boom := errors.New("injected")
	newStandby := func(hv *hypervisortest.Memory) *bootpoint.Standby {
		return &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	}

	// Creating the VM or its first snapshot fails: no VM is left, the
	// retry creates it.
	for _, step := range []string{"create", "snapshot"} {
		hv := &hypervisortest.Memory{}
		s := newStandby(hv)
		failAt(hv, step, boom)
		_, err := s.Sync(ctx, set)
		require.ErrorIs(t, err, boom, step)
		_, err = hv.FindVM(ctx, "v")
		require.ErrorIs(t, err, bootpoint.ErrNotFound, step)
		require.Empty(t, hv.VMs(), step)

		hv.Fail = nil
		_, err = s.Sync(ctx, set)
		require.NoError(t, err, step)
		require.Len(t, verifyAll(t, s, set), 5, step)
	}

	// Writing the changes or the snapshot fails on the third boot point:
	// the VM stays at the second, its disks as the second left them.
	for _, step := range []string{"write", "snapshot"} {
		hv := &hypervisortest.Memory{}
		s := newStandby(hv)
		for k := range 2 {
			_, err := s.Add(ctx, set, k)
			require.NoError(t, err, step)
		}
		failAt(hv, step, boom)
		_, err := s.Sync(ctx, set)
		require.ErrorIs(t, err, boom, step)
		bps := verifyAll(t, s, set)
		require.Len(t, bps, 2, step)

		// No half-written disk either: a snapshot of the current state
		// (not a boot point) verifies as the second boot point.
		hv.Fail = nil
		vm, err := hv.FindVM(ctx, "v")
		require.NoError(t, err)
		probe, err := hv.AddBootPoint(ctx, vm, nil, "probe", "not a boot point")
		require.NoError(t, err)
		require.NoError(t, s.Verify(ctx, set, bootpoint.BootPoint{Snapshot: probe, Meta: bps[1].Meta}), step)
		require.NoError(t, hv.Revert(ctx, vm, bps[1].Snapshot))
		require.NoError(t, hv.RemoveSnapshot(ctx, vm, probe))

		_, err = s.Sync(ctx, set)
		require.NoError(t, err, step)
		require.Len(t, verifyAll(t, s, set), 5, step)
	}

	// Consolidating the oldest fails: the new boot point stays, and the
	// next run consolidates before it adds more.
	hv := &hypervisortest.Memory{}
	s := newStandby(hv)
	s.MaxBootPoints = 2
	for k := range 2 {
		_, err := s.Add(ctx, set, k)
		require.NoError(t, err)
	}
	failAt(hv, "remove", boom)
	_, err := s.Sync(ctx, set)
	require.ErrorIs(t, err, boom)
	require.Len(t, verifyAll(t, s, set), 3)
	hv.Fail = nil
	_, err = s.Sync(ctx, set)
	require.NoError(t, err)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 2)
	require.Equal(t, 3, bps[0].Meta.Sequence)
	require.Equal(t, 4, bps[1].Meta.Sequence)
}

// flakyPlans returns a different plan each time: the previous boot
// point's patches could not be undone reliably, so Add refuses.
type flakyPlans struct{ n *int }

func (f flakyPlans) Inspect(ctx context.Context, p aipimage.Point) (*p2v.Plan, error) {
	*f.n++
	return &p2v.Plan{Patches: []p2v.Patch{{Offset: int64(*f.n) * 512, Data: []byte("x")}}}, nil
}

func TestNonDeterministicInspectorIsRefused(t *testing.T) {
	set := newSample(t, 2)
	n := 0
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, Inspector: flakyPlans{&n}, VM: bootpoint.VMSpec{Name: "v"}}
	_, err := s.Sync(context.Background(), set)
	require.ErrorIs(t, err, bootpoint.ErrChainMismatch)
}

// A VM created from a later point holds everything the chain wrote up to
// it, not just that point's changes.
func TestCreateFromLaterPoint(t *testing.T) {
	set := newSample(t, 6)
	s := &bootpoint.Standby{Hypervisor: &hypervisortest.Memory{}, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	_, err := s.Add(context.Background(), set, 4)
	require.NoError(t, err)
	_, err = s.Add(context.Background(), set, 6)
	require.NoError(t, err)
	require.Len(t, verifyAll(t, s, set), 2)
}

// A process that died between creating the VM and its first snapshot left
// a standby VM without boot points: the next run replaces it. A VM of that
// name that StandbyKit did not make is left alone.
func TestInterruptedCreationIsRedone(t *testing.T) {
	set := newSample(t, 2)
	ctx := context.Background()
	for _, ours := range []bool{true, false} {
		hv := &hypervisortest.Memory{}
		size := set.Points()[0].Disks[0].Size
		spec := bootpoint.VMSpec{Name: "v", DiskSizes: []int64{size}}
		if ours {
			spec.Annotation = bootpoint.StandbyAnnotation(set.Points()[0].SetID)
		}
		_, err := hv.CreateStandby(ctx, spec, []bootpoint.Delta{{Disk: 0, Size: size}})
		require.NoError(t, err)
		s := &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "v"}}
		_, err = s.Sync(ctx, set)
		if !ours {
			require.ErrorIs(t, err, bootpoint.ErrChainMismatch)
			continue
		}
		require.NoError(t, err)
		require.Len(t, verifyAll(t, s, set), 3)
	}
}

// silentRemover claims to remove snapshots but keeps them.
type silentRemover struct{ *hypervisortest.Memory }

func (silentRemover) RemoveSnapshot(context.Context, bootpoint.VM, bootpoint.Snapshot) error {
	return nil
}

func TestConsolidationIsChecked(t *testing.T) {
	set := newSample(t, 3)
	s := &bootpoint.Standby{Hypervisor: silentRemover{&hypervisortest.Memory{}}, VM: bootpoint.VMSpec{Name: "v"}, MaxBootPoints: 2}
	_, err := s.Sync(context.Background(), set)
	require.ErrorIs(t, err, bootpoint.ErrConsolidation)
}

// After a revert to an older boot point k (a failover, say), Add builds
// the next boot point on k, the current snapshot, not on the newest: the
// newest point added again verifies, and so does k.
func TestAddBuildsOnTheCurrentBootPoint(t *testing.T) {
	set := newSample(t, 5)
	hv := &hypervisortest.Memory{}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	ctx := context.Background()
	_, err := s.Sync(ctx, set)
	require.NoError(t, err)
	vm, bps, err := s.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 6)

	const k = 2
	require.NoError(t, hv.Revert(ctx, vm, bps[k].Snapshot))
	newest := len(set.Points()) - 1
	r, err := s.Add(ctx, set, newest)
	require.NoError(t, err)
	require.Equal(t, newest, r.BootPoint.Meta.Sequence)
	require.NoError(t, s.Verify(ctx, set, r.BootPoint))
	require.NoError(t, s.Verify(ctx, set, bps[k]))

	_, after, err := s.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, after, 7)
	require.Equal(t, r.BootPoint.Snapshot.ID, after[6].Snapshot.ID)
	require.True(t, after[6].Snapshot.Current, "the new boot point is current")
	verifyAll(t, s, set)
}
