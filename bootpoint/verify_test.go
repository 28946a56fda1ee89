package bootpoint_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

// countingHV counts the bytes read back through OpenDisk: an account of
// verification's cost kept apart from the code that reports it.
type countingHV struct {
	*hypervisortest.Memory
	read atomic.Int64
}

func (h *countingHV) OpenDisk(ctx context.Context, vm bootpoint.VM, s bootpoint.Snapshot, d int) (bootpoint.Disk, error) {
	disk, err := h.Memory.OpenDisk(ctx, vm, s, d)
	if err != nil {
		return nil, err
	}
	return countingDisk{disk, &h.read}, nil
}

type countingDisk struct {
	bootpoint.Disk
	n *atomic.Int64
}

func (d countingDisk) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.Disk.ReadAt(p, off)
	d.n.Add(int64(n))
	return n, err
}

// TestReadBackCostsWhatWasWritten: each new boot point is read back from
// the host where it was written, no more; a full verification reads the
// whole disk; verifying what a boot point wrote reads that again.
func TestReadBackCostsWhatWasWritten(t *testing.T) {
	ctx := context.Background()
	const diskSize = 16 << 20
	dir := t.TempDir()
	_, err := sample.Write(ctx, dir, sample.Options{DiskSize: diskSize, Incrementals: 3, Seed: 20})
	require.NoError(t, err)
	set := openDir(t, dir)
	hv := &countingHV{Memory: &hypervisortest.Memory{}}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "v"}}
	for k := range set.Points() {
		before := hv.read.Load()
		r, err := s.Add(ctx, set, k)
		require.NoError(t, err)
		require.Equal(t, r.Bytes, r.ReadBack, "point %d", k)
		require.Equal(t, r.Bytes, hv.read.Load()-before, "point %d: the host was read where it was written", k)
		if k > 0 {
			require.Less(t, r.ReadBack, int64(diskSize/10), "an increment reads back its changes, not the disk")
		}

		before = hv.read.Load()
		v, err := s.VerifyBootPoint(ctx, set, -1, false)
		require.NoError(t, err)
		require.Equal(t, r.Bytes, v.Bytes, "verifying what boot point %d wrote", k)
		require.Equal(t, v.Bytes, hv.read.Load()-before)
	}
	before := hv.read.Load()
	v, err := s.VerifyBootPoint(ctx, set, 1, true)
	require.NoError(t, err)
	require.True(t, v.Full)
	require.Equal(t, 1, v.BootPoint.Meta.Sequence)
	require.Equal(t, int64(diskSize), v.Bytes)
	require.Equal(t, int64(diskSize), hv.read.Load()-before)

	_, err = s.VerifyBootPoint(ctx, set, 9, false)
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
}

// TestScheduledFullVerification: a task with FullVerifyEvery compares its
// newest boot point byte for byte once per period, and a boot point that
// a broken host got wrong (read-back off) is found there and recorded.
func TestScheduledFullVerification(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	mem := &hypervisortest.Memory{}
	task := &bootpoint.Task{Name: "web", Images: sampleDir(t, 1, 21), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		FullVerifyEvery: 7 * 24 * time.Hour,
		Standby:         &bootpoint.Standby{Hypervisor: mem, VM: bootpoint.VMSpec{Name: "web-standby"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task},
		Now: func() time.Time { return now }}
	r := tickOne(t, m)
	require.NoError(t, r.Err)
	require.NotNil(t, r.Verify, "no full verification yet: one is due")
	require.True(t, r.Verify.Full)
	require.Equal(t, int64(2<<20), r.Verify.Bytes)
	require.Equal(t, now, taskState(t, m, "web").LastFullVerify)

	now = now.Add(24 * time.Hour)
	require.Nil(t, tickOne(t, m).Verify, "not due again for a week")

	// A host that loses data, with read-back off: the boot point is bad.
	mem.Drop, task.Standby.SkipReadBack = true, true
	_, err := sample.Extend(ctx, task.Images, 1, 22, nil)
	require.NoError(t, err)
	r = tickOne(t, m)
	require.NoError(t, r.Err)
	require.True(t, r.Ran)
	require.Nil(t, r.Verify)

	now = now.Add(7 * 24 * time.Hour)
	r = tickOne(t, m)
	var mismatch *bootpoint.MismatchError
	require.ErrorAs(t, r.Err, &mismatch)
	require.NotNil(t, r.Verify)
	require.Contains(t, taskState(t, m, "web").LastVerifyError, "differs")

	// Verifying what the boot point wrote finds it too, at a fraction of
	// the cost.
	v, err := m.Verify(ctx, "web", -1, false)
	require.ErrorAs(t, err, &mismatch)
	require.Less(t, v.Bytes, int64(2<<20))
}
