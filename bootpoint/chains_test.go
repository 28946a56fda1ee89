package bootpoint_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

// openDir opens the set in dir for one step of a test.
func openDir(t *testing.T, dir string) *aipimage.ImageSet {
	t.Helper()
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	return set
}

// TestNewFullImageIsABootPoint: full, three incrementals, a new full
// image (an "active full") and two incrementals on it make seven boot
// points on one VM, each verified byte for byte. The new full's boot point
// is found by comparing it with the previous point: nothing is seeded
// again, it writes about what changed.
func TestNewFullImageIsABootPoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const diskSize = 4 << 20
	_, err := sample.Write(ctx, dir, sample.Options{DiskSize: diskSize, Incrementals: 3, Seed: 5})
	require.NoError(t, err)
	hv := &hypervisortest.Memory{}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web01"}}
	results, err := s.Sync(ctx, openDir(t, dir))
	require.NoError(t, err)
	require.Len(t, results, 4)

	full, err := sample.ExtendFull(ctx, dir, 6, nil)
	require.NoError(t, err)
	require.Equal(t, 4, full.Sequence)
	_, err = sample.Extend(ctx, dir, 2, 7, nil)
	require.NoError(t, err)
	set := openDir(t, dir)
	require.Len(t, set.Chains(), 2)
	results, err = s.Sync(ctx, set)
	require.NoError(t, err)
	require.Len(t, results, 3)

	bps := verifyAll(t, s, set)
	require.Len(t, bps, 7)
	for k, bp := range bps {
		require.Equal(t, k, bp.Meta.Sequence)
		require.Equal(t, set.Points()[k].PointID, bp.Meta.PointID)
	}
	require.Equal(t, []string{"web01"}, hv.VMs(), "one VM all along")

	newFull := results[0]
	require.Equal(t, 4, newFull.BootPoint.Meta.Sequence)
	require.Positive(t, newFull.Compared, "the new full image was compared with the previous point")
	require.LessOrEqual(t, newFull.Compared, int64(2*diskSize), "reading both points costs at most the disk size twice")
	require.Less(t, newFull.Bytes, int64(diskSize/8), "only what differs is written, not the whole image")
	require.Equal(t, newFull.Bytes, newFull.ReadBack, "what was written was read back")
	for _, r := range results[1:] {
		require.Zero(t, r.Compared, "along one chain the index says what changed")
	}
}

// TestManagerFollowsNewChain: a manager's task that catches up over a new
// full image (one boot point covering the full and an incremental after
// it) builds on the VM it has, and a task that starts after the new full
// creates its VM from the newest chain.
func TestManagerFollowsNewChain(t *testing.T) {
	ctx := context.Background()
	hv := &hypervisortest.Memory{}
	older := sampleDir(t, 2, 8)
	task := &bootpoint.Task{Name: "a", Images: older, Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "a-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task}}
	tick := func() bootpoint.TaskResult {
		r := tickOne(t, m)
		require.NoError(t, r.Err)
		return r
	}
	tick()
	_, err := sample.ExtendFull(ctx, older, 9, nil)
	require.NoError(t, err)
	_, err = sample.Extend(ctx, older, 1, 10, nil)
	require.NoError(t, err)
	r := tick()
	require.True(t, r.Ran)
	require.Len(t, r.Results, 1)
	require.Equal(t, 4, r.Results[0].BootPoint.Meta.Sequence)
	require.Positive(t, r.Results[0].Compared)
	bps := verifyAllOf(t, task)
	require.Len(t, bps, 2)
	st, err := m.Status()
	require.NoError(t, err)
	require.Equal(t, 4, st["a"].LastSequence)
	require.Empty(t, st["a"].NeedsDecision)

	// A standby kept with Sync from scratch starts at the newest chain.
	s := &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "fresh"}}
	set := openDir(t, older)
	results, err := s.Sync(ctx, set)
	require.NoError(t, err)
	require.Len(t, results, 2)
	require.Equal(t, 3, results[0].BootPoint.Meta.Sequence)
	require.Len(t, verifyAll(t, s, set), 2)
}
