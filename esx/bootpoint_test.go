package esx

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/vmdk"
)

// addPoint adds boot point k with changes on both disks of cur and returns
// the snapshot and the new content.
func addPoint(t *testing.T, h *Host, vm bootpoint.VM, k int, cur [][]byte) (bootpoint.Snapshot, [][]byte) {
	t.Helper()
	changes, next := nextChanges(k, cur)
	s, err := h.AddBootPoint(context.Background(), vm, changes, fmt.Sprintf("bootpoint %04d", k), fmt.Sprintf(`{"sequence":%d}`, k))
	require.NoError(t, err)
	return s, next
}

// Boot points are ESXi's own deltas: each snapshot freezes the leaf that
// holds its changes, named as ESXi names them, and the chains read right
// by our reader and by qemu-img from the datastore files.
func TestBootPointFiles(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})

	s0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", `{"sequence":0}`)
	require.NoError(t, err)
	require.NotEmpty(t, s0.ID)
	require.False(t, s0.Created.IsZero())
	require.True(t, s0.Current)
	points, contents := []bootpoint.Snapshot{s0}, [][][]byte{cur}
	for k := 1; k <= 3; k++ {
		var s bootpoint.Snapshot
		s, cur = addPoint(t, h, vm, k, cur)
		points, contents = append(points, s), append(contents, cur)
		requireNoStrayFiles(t, sim)
	}

	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	for k, s := range snaps {
		require.Equal(t, fmt.Sprintf("bootpoint %04d", k), s.Name)
		require.Equal(t, fmt.Sprintf(`{"sequence":%d}`, k), s.Description)
		require.Equal(t, k == 3, s.Current, "snapshot %d", k)
		require.Equal(t, points[k].ID, s.ID)
		if k > 0 {
			require.False(t, s.Created.Before(snaps[k-1].Created))
		}
	}

	for k, s := range points {
		for d, base := range []string{"sb", "sb_1"} {
			leaf := snapshotLeaf(t, h, sim, vm, s, d)
			want := base + ".vmdk"
			if k > 0 {
				want = fmt.Sprintf("%s-%06d.vmdk", base, k)
			}
			require.Equal(t, want, filepath.Base(leaf), "boot point %d disk %d", k, d)
			require.True(t, bytes.Equal(contents[k][d], readDisk(t, h, vm, s, d)), "boot point %d disk %d read back", k, d)
			require.True(t, bytes.Equal(contents[k][d], qemuRead(t, leaf)), "boot point %d disk %d by qemu-img", k, d)
		}
	}

	// The VM runs on the next, empty leaf ESXi made at the last snapshot.
	st, err := h.load(ctx, vm)
	require.NoError(t, err)
	b, err := currentBacking(st, 1)
	require.NoError(t, err)
	require.Equal(t, "[datastore1] sb/sb_1-000004.vmdk", b.FileName)
	desc, err := os.ReadFile(filepath.Join(sim.Dir, "sb", "sb_1-000004.vmdk"))
	require.NoError(t, err)
	d, err := vmdk.ParseDescriptor(desc)
	require.NoError(t, err)
	require.Equal(t, "sb_1-000003.vmdk", d.ParentFileNameHint)

	_, err = h.OpenDisk(ctx, vm, s0, 2)
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	_, err = h.OpenDisk(ctx, vm, bootpoint.Snapshot{ID: "snapshot-404"}, 0)
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
}

// A leaf someone wrote to (the standby was powered on and used) is never
// written over: the boot point is refused until the VM is reverted.
func TestDivergedLeafIsRefused(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, cur := addPoint(t, h, vm, 1, cur)

	require.NoError(t, sim.WriteDisk("sb", 0, 4096, bytes.Repeat([]byte{0xee}, 512)))
	changes, next := nextChanges(2, cur)
	_, err = h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, bootpoint.ErrDiverged)

	// Reverting discards the guest's writes; then the boot point goes in.
	require.NoError(t, h.Revert(ctx, vm, s1))
	requireNoStrayFiles(t, sim)
	s2, err := h.AddBootPoint(ctx, vm, changes, "bootpoint 0002", "p2")
	require.NoError(t, err)
	for d := range next {
		require.True(t, bytes.Equal(next[d], readDisk(t, h, vm, s2, d)))
		require.True(t, bytes.Equal(cur[d], readDisk(t, h, vm, s1, d)))
	}
}

// Two disks of the same size with the same content where one of them
// changes (empty data disks): the appliance tells them apart by the unit
// each is attached at, and the guard checks it.
func TestEqualDisksThroughTheAppliance(t *testing.T) {
	_, h := startHost(t)
	ctx := context.Background()
	empty := func(d int) bootpoint.Delta {
		return bootpoint.Delta{Disk: d, Size: 4 << 20, Source: bytes.NewReader(make([]byte, 4<<20))}
	}
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "twins"}, []bootpoint.Delta{empty(0), empty(1)})
	require.NoError(t, err)
	_, err = h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	// Both change at the same place, where both were zero: the same
	// guard for both targets.
	var changes []bootpoint.Delta
	var want [][]byte
	for d, fill := range []byte{0xab, 0xcd} {
		next := make([]byte, 4<<20)
		copy(next[1<<20:], bytes.Repeat([]byte{fill}, 4096))
		changes = append(changes, bootpoint.Delta{Disk: d, Size: 4 << 20, Extents: []aipimage.Extent{{Off: 1 << 20, Len: 4096}},
			Source: bytes.NewReader(next), Base: bytes.NewReader(make([]byte, 4<<20))})
		want = append(want, next)
	}
	s1, err := h.AddBootPoint(ctx, vm, changes, "bootpoint 0001", "p1")
	require.NoError(t, err)
	for d := range want {
		require.True(t, bytes.Equal(want[d], readDisk(t, h, vm, s1, d)), "disk %d", d)
	}
}
