package esxsim_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
)

// A simulator opened again on its folder has the VMs, snapshots, disks
// and power states of the one before it, and they keep working: boot
// points read back, new ones are added, reverts and consolidation work.
func TestOpenKeepsTheWorld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() + "/ds"
	open := func() (*esxsim.Simulator, *esx.Host) {
		t.Helper()
		sim, err := esxsim.Open(ctx, dir)
		require.NoError(t, err)
		h, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore, ApplianceImage: esx.ApplianceImageNone})
		require.NoError(t, err)
		h.TempDir = t.TempDir()
		h.Appliance.Poll = 10 * time.Millisecond
		return sim, h
	}
	closeBoth := func(sim *esxsim.Simulator, h *esx.Host) {
		require.NoError(t, h.Close(ctx))
		sim.Close()
	}
	const size = 4 << 20
	content := func(seed byte) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = seed + byte(i/4096)
		}
		return b
	}
	whole := []aipimage.Extent{{Off: 0, Len: size}}
	read := func(h *esx.Host, vm bootpoint.VM, s bootpoint.Snapshot) []byte {
		t.Helper()
		d, err := h.OpenDisk(ctx, vm, s, 0)
		require.NoError(t, err)
		defer d.Close()
		b := make([]byte, d.Size())
		_, err = d.ReadAt(b, 0)
		require.NoError(t, err)
		return b
	}

	sim, h := open()
	c0, c1, c2 := content(1), content(2), content(3)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "kept", CPUs: 2, MemoryMiB: 128, Annotation: "notes"},
		[]bootpoint.Delta{{Disk: 0, Size: size, Extents: whole, Source: bytes.NewReader(c0)}})
	require.NoError(t, err)
	p0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	p1, err := h.AddBootPoint(ctx, vm, []bootpoint.Delta{{Disk: 0, Size: size, Extents: whole, Source: bytes.NewReader(c1), Base: bytes.NewReader(c0)}}, "bootpoint 0001", "p1")
	require.NoError(t, err)
	closeBoth(sim, h)
	_, err = os.Stat(esxsim.InventoryFile(dir))
	require.NoError(t, err)

	sim, h = open()
	vms, err := h.FindVM(ctx, "kept")
	require.NoError(t, err)
	require.Equal(t, "notes", vms.Annotation)
	snaps, err := h.Snapshots(ctx, vms)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	require.Equal(t, []string{p0.Name, p1.Name}, []string{snaps[0].Name, snaps[1].Name})
	require.True(t, snaps[1].Current)
	require.Equal(t, c0, read(h, vms, snaps[0]))
	require.Equal(t, c1, read(h, vms, snaps[1]))
	// Work goes on: a new boot point, then a revert to the first.
	p2, err := h.AddBootPoint(ctx, vms, []bootpoint.Delta{{Disk: 0, Size: size, Extents: whole, Source: bytes.NewReader(c2), Base: bytes.NewReader(c1)}}, "bootpoint 0002", "p2")
	require.NoError(t, err)
	require.Equal(t, c2, read(h, vms, p2))
	require.NoError(t, h.SetPower(ctx, vms, true))
	closeBoth(sim, h)

	sim, h = open()
	defer closeBoth(sim, h)
	vms, err = h.FindVM(ctx, "kept")
	require.NoError(t, err)
	require.Equal(t, "poweredOn", powerState(t, sim, "kept"), "the power state is kept")
	require.NoError(t, h.SetPower(ctx, vms, false))
	snaps, err = h.Snapshots(ctx, vms)
	require.NoError(t, err)
	require.Len(t, snaps, 3)
	require.NoError(t, h.Revert(ctx, vms, snaps[0]))
	require.Equal(t, c0, read(h, vms, snaps[0]))
	require.NoError(t, h.RemoveSnapshot(ctx, vms, snaps[1]))
	require.Equal(t, c2, read(h, vms, snaps[2]), "consolidated into the next")
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused)
}

// A damaged inventory is an error, not an empty world.
func TestOpenDamagedInventory(t *testing.T) {
	dir := t.TempDir() + "/ds"
	require.NoError(t, os.WriteFile(esxsim.InventoryFile(dir), []byte("<esxsimInventory><version>1</version><vm><name>x"), 0o600))
	_, err := esxsim.Open(context.Background(), dir)
	require.ErrorContains(t, err, "loading the inventory")
}

func powerState(t *testing.T, sim *esxsim.Simulator, name string) string {
	t.Helper()
	state, err := sim.PowerState(name)
	require.NoError(t, err)
	return state
}
