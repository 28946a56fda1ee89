package bootpoint

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

// movingPatches is a deterministic Inspector whose patches depend on the
// point: they move, change and vanish from point to point, like real P2V
// fixups when a registry hive or fstab moves on disk.
type movingPatches struct{}

func (movingPatches) Inspect(ctx context.Context, p aipimage.Point) (*p2v.Plan, error) {
	seq := int64(p.Info().Sequence)
	size := p.Info().Disks[0].Size
	plan := &p2v.Plan{Firmware: p2v.FirmwareBIOS, GuestID: "otherLinux64Guest", Controller: p2v.ControllerPVSCSI}
	if seq%3 != 2 { // every third point has no patch at all
		plan.Patches = append(plan.Patches, p2v.Patch{Offset: (seq*7919*512 + 100) % (size - 4096), Data: []byte("patched-by-p2v"), Why: "test"})
	}
	plan.Patches = append(plan.Patches, p2v.Patch{Offset: 1 << 20, Data: []byte{byte(seq), 0xfe}, Why: "same place, new value"})
	return plan, nil
}

func newSample(t *testing.T, incrementals int) aipimage.Set {
	t.Helper()
	dir := t.TempDir()
	_, err := sample.Write(context.Background(), dir, sample.Options{DiskSize: 4 << 20, Incrementals: incrementals, Seed: 3})
	require.NoError(t, err)
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	return set
}

func verifyAll(t *testing.T, s *Standby, set aipimage.Set) []BootPoint {
	t.Helper()
	_, bps, err := s.BootPoints(context.Background())
	require.NoError(t, err)
	for _, bp := range bps {
		require.NoError(t, s.Verify(context.Background(), set, bp), "boot point %d", bp.Meta.Sequence)
	}
	return bps
}

func TestSyncMakesOneVerifiedBootPointPerPoint(t *testing.T) {
	for _, grain := range []int64{512, 64 << 10} {
		set := newSample(t, 8)
		hv := newMemHypervisor()
		s := &Standby{Hypervisor: hv, Format: &rawFormat{grain: grain}, Inspector: movingPatches{}, VM: VMSpec{Name: "web01"}, Library: "test"}
		results, err := s.Sync(context.Background(), set)
		require.NoError(t, err)
		require.Len(t, results, 9)
		bps := verifyAll(t, s, set)
		require.Len(t, bps, 9)
		for k, bp := range bps {
			info := set.Points()[k]
			require.Equal(t, info.Sequence, bp.Meta.Sequence)
			require.Equal(t, info.PointID, bp.Meta.PointID)
			require.Equal(t, SnapshotName(info.Sequence, info.Time), bp.Snapshot.Name)
		}
		vm := hv.vms["web01"]
		require.Equal(t, p2v.ControllerPVSCSI, vm.spec.Controller)
		require.False(t, vm.spec.ConnectNIC)
		// Nothing more to do.
		results, err = s.Sync(context.Background(), set)
		require.NoError(t, err)
		require.Empty(t, results)
	}
}

func TestVerifyCatchesABrokenDelta(t *testing.T) {
	set := newSample(t, 3)
	s := &Standby{Hypervisor: newMemHypervisor(), Format: &rawFormat{grain: 512, drop: true}, Inspector: movingPatches{}, VM: VMSpec{Name: "v"}}
	_, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	_, bps, err := s.BootPoints(context.Background())
	require.NoError(t, err)
	var mismatch *MismatchError
	require.ErrorAs(t, s.Verify(context.Background(), set, bps[len(bps)-1]), &mismatch)
}

func TestCatchUpCoversSeveralIncrements(t *testing.T) {
	set := newSample(t, 8)
	s := &Standby{Hypervisor: newMemHypervisor(), Format: &rawFormat{grain: 512}, Inspector: movingPatches{}, VM: VMSpec{Name: "v"}}
	ctx := context.Background()
	for _, k := range []int{0, 4, 5, 8} {
		_, err := s.Add(ctx, set, k)
		require.NoError(t, err)
	}
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 4)
	_, err := s.Add(ctx, set, 7)
	require.ErrorIs(t, err, ErrChainMismatch, "a point older than the newest boot point cannot be added")
}

func TestCapConsolidatesOldest(t *testing.T) {
	set := newSample(t, 9)
	s := &Standby{Hypervisor: newMemHypervisor(), Format: &rawFormat{grain: 512}, VM: VMSpec{Name: "v"}, MaxBootPoints: 4}
	_, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 4)
	require.Equal(t, 6, bps[0].Meta.Sequence)
	require.Equal(t, 9, bps[3].Meta.Sequence)
}

func TestFailuresLeaveNoHalfBootPointAndRetrySucceeds(t *testing.T) {
	set := newSample(t, 4)
	hv := newMemHypervisor()
	s := &Standby{Hypervisor: hv, Format: &rawFormat{grain: 512}, Inspector: movingPatches{}, VM: VMSpec{Name: "v"}}
	ctx := context.Background()
	boom := errors.New("injected")

	// The first snapshot fails: the VM is removed, the retry creates it.
	hv.fail = func(step string) error {
		if step == "snapshot" {
			return boom
		}
		return nil
	}
	_, err := s.Sync(ctx, set)
	require.ErrorIs(t, err, boom)
	_, err = hv.FindVM(ctx, "v")
	require.ErrorIs(t, err, ErrNotFound)

	// Uploads fail on the third boot point: the VM stays at the second.
	hv.fail = nil
	_, err = s.Add(ctx, set, 0)
	require.NoError(t, err)
	_, err = s.Add(ctx, set, 1)
	require.NoError(t, err)
	hv.fail = func(step string) error {
		if step == "upload" {
			return boom
		}
		return nil
	}
	_, err = s.Sync(ctx, set)
	require.ErrorIs(t, err, boom)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 2)

	hv.fail = nil
	_, err = s.Sync(ctx, set)
	require.NoError(t, err)
	require.Len(t, verifyAll(t, s, set), 5)
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
	s := &Standby{Hypervisor: newMemHypervisor(), Format: &rawFormat{grain: 512}, Inspector: flakyPlans{&n}, VM: VMSpec{Name: "v"}}
	_, err := s.Sync(context.Background(), set)
	require.ErrorIs(t, err, ErrChainMismatch)
}

func TestMetadataRoundTrip(t *testing.T) {
	m := Metadata{SetID: "a", PointID: "b", Sequence: 7, PatchDigest: "d", Library: "x"}
	got, err := ParseMetadata(m.Description())
	require.NoError(t, err)
	m.Kind = metadataKind
	require.Equal(t, m, got)
	_, err = ParseMetadata("taken by hand before patching")
	require.ErrorIs(t, err, ErrNotBootPoint)
}

// A VM created from a later point holds everything the chain wrote up to
// it, not just that point's changes.
func TestCreateFromLaterPoint(t *testing.T) {
	set := newSample(t, 6)
	s := &Standby{Hypervisor: newMemHypervisor(), Format: &rawFormat{grain: 64 << 10}, Inspector: movingPatches{}, VM: VMSpec{Name: "v"}}
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
		hv := newMemHypervisor()
		spec := VMSpec{Name: "v", DiskSizes: []int64{set.Points()[0].Disks[0].Size}}
		if ours {
			spec.Annotation = standbyAnnotation(set.Points()[0].SetID)
		}
		_, err := hv.CreateStandby(ctx, spec, []File{{Name: "b", Size: 0, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("")), nil
		}}})
		require.NoError(t, err)
		s := &Standby{Hypervisor: hv, Format: &rawFormat{grain: 512}, VM: VMSpec{Name: "v"}}
		_, err = s.Sync(ctx, set)
		if !ours {
			require.ErrorIs(t, err, ErrChainMismatch)
			continue
		}
		require.NoError(t, err)
		require.Len(t, verifyAll(t, s, set), 3)
	}
}

// silentRemover claims to remove snapshots but keeps them.
type silentRemover struct{ *memHypervisor }

func (silentRemover) RemoveSnapshot(context.Context, VM, Snapshot) error { return nil }

func TestConsolidationIsChecked(t *testing.T) {
	set := newSample(t, 3)
	s := &Standby{Hypervisor: silentRemover{newMemHypervisor()}, Format: &rawFormat{grain: 512}, VM: VMSpec{Name: "v"}, MaxBootPoints: 2}
	_, err := s.Sync(context.Background(), set)
	require.ErrorIs(t, err, ErrConsolidation)
}
