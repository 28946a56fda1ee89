package esx_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/sample"
)

// TestReseedOnSimulator: a disk grown between two points stops the task;
// a reseed makes a new VM of the new size beside the old one, deletes the
// old one and renames the new one, whose boot points then go on.
func TestReseedOnSimulator(t *testing.T) {
	ctx := context.Background()
	images := t.TempDir()
	_, err := sample.Write(ctx, images, sample.Options{DiskSize: 4 << 20, Incrementals: 1, Seed: 40})
	require.NoError(t, err)
	_, host := connectSim(t)
	task := &bootpoint.Task{Name: "db", Images: images, Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: host, VM: bootpoint.VMSpec{Name: "db-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task}}
	tick := func() bootpoint.TaskResult {
		res, err := m.Tick(ctx)
		require.NoError(t, err)
		return res[0]
	}
	require.NoError(t, tick().Err)
	old, err := host.FindVM(ctx, "db-standby")
	require.NoError(t, err)

	resized, err := sample.ExtendResized(ctx, images, 6<<20, 41, nil)
	require.NoError(t, err)
	require.ErrorIs(t, tick().Err, aipimage.ErrDiskResized)

	_, err = m.Reseed(ctx, "db")
	require.NoError(t, err)
	vm, err := host.FindVM(ctx, "db-standby")
	require.NoError(t, err)
	require.NotEqual(t, old.ID, vm.ID, "a new VM")
	_, err = host.FindVM(ctx, "db-standby-reseed-0002")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	set, err := aipimage.OpenDir(images, nil)
	require.NoError(t, err)
	defer set.Close()
	_, bps, err := task.Standby.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 1)
	require.Equal(t, resized.PointID, bps[0].Meta.PointID)
	v, err := task.Standby.VerifyBootPoint(ctx, set, -1, true)
	require.NoError(t, err)
	require.Equal(t, int64(6<<20), v.Bytes)

	_, err = sample.Extend(ctx, images, 1, 42, nil)
	require.NoError(t, err)
	r := tick()
	require.NoError(t, r.Err)
	require.True(t, r.Ran)
	_, bps, err = task.Standby.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 2)
	set2, err := aipimage.OpenDir(images, nil)
	require.NoError(t, err)
	defer set2.Close()
	_, err = task.Standby.VerifyBootPoint(ctx, set2, -1, true)
	require.NoError(t, err)
}
