package esx

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

// fileTree maps every file under dir to its content.
func fileTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	}))
	return out
}

func TestSnapshotsRevertRemove(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, c0 := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	s0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, c1 := addPoint(t, h, vm, 1, c0)
	s2, c2 := addPoint(t, h, vm, 2, c1)
	s3, c3 := addPoint(t, h, vm, 3, c2)
	reads := func(s bootpoint.Snapshot, want [][]byte) {
		t.Helper()
		for d := range want {
			require.True(t, bytes.Equal(want[d], readDisk(t, h, vm, s, d)), "%s disk %d", s.Name, d)
		}
	}

	// Revert to boot point 1: the VM is on a new empty child of its leaf,
	// which is current.
	require.NoError(t, h.Revert(ctx, vm, s1))
	require.Equal(t, []string{"[datastore1] sb/sb-000004.vmdk", "[datastore1] sb/sb-000001.vmdk", "[datastore1] sb/sb.vmdk"}, backings(t, h, vm)[0])
	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.True(t, snaps[1].Current)
	require.NoError(t, h.Revert(ctx, vm, s2))
	require.Equal(t, "[datastore1] sb/sb-000002.vmdk", backings(t, h, vm)[0][1])
	require.NoError(t, h.Revert(ctx, vm, s0))
	require.Equal(t, [][]string{{"[datastore1] sb/sb-000004.vmdk", "[datastore1] sb/sb.vmdk"}, {"[datastore1] sb/sb_1-000004.vmdk", "[datastore1] sb/sb_1.vmdk"}}, backings(t, h, vm))
	require.NoError(t, h.Revert(ctx, vm, s3))
	requireNoStrayFiles(t, sim)

	// Remove the oldest and a middle one: the others read as before, the
	// merged deltas are gone.
	require.NoError(t, h.RemoveSnapshot(ctx, vm, s0))
	requireNoStrayFiles(t, sim)
	require.NoFileExists(t, filepath.Join(sim.Dir, "sb", "sb-000001.vmdk"))
	require.NoError(t, h.RemoveSnapshot(ctx, vm, bootpoint.Snapshot{Name: s2.Name}))
	requireNoStrayFiles(t, sim)
	snaps, err = h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	require.Equal(t, []string{s1.ID, s3.ID}, []string{snaps[0].ID, snaps[1].ID})
	reads(s1, c1)
	reads(s3, c3)
	for d := range c3 {
		require.True(t, bytes.Equal(c3[d], qemuRead(t, snapshotLeaf(t, h, sim, vm, s3, d))))
	}
	require.ErrorIs(t, h.RemoveSnapshot(ctx, vm, s2), bootpoint.ErrNotFound)
	require.ErrorIs(t, h.Revert(ctx, vm, s0), bootpoint.ErrNotFound)
}

func TestPowerFindDestroy(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	other, _ := createStandby(t, h, bootpoint.VMSpec{Name: "other"})

	power := func() types.VirtualMachinePowerState {
		s, err := h.load(ctx, vm)
		require.NoError(t, err)
		return s.mo.Runtime.PowerState
	}
	require.NoError(t, h.SetPower(ctx, vm, false)) // already off
	require.NoError(t, h.SetPower(ctx, vm, true))
	require.Equal(t, types.VirtualMachinePowerStatePoweredOn, power())
	require.NoError(t, h.SetPower(ctx, vm, true)) // already on
	require.NoError(t, h.SetPower(ctx, vm, false))
	require.Equal(t, types.VirtualMachinePowerStatePoweredOff, power())
	require.NoError(t, h.SetPower(ctx, vm, true))

	// A running VM takes no changes, but a snapshot.
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	changes, _ := nextChanges(1, cur)
	_, err = h.AddBootPoint(ctx, vm, changes, "bootpoint 0001", "p1")
	require.ErrorContains(t, err, "powered off")

	_, err = h.FindVM(ctx, "nope")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	_, err = h.Snapshots(ctx, bootpoint.VM{Name: "nope"})
	require.ErrorIs(t, err, bootpoint.ErrNotFound)

	// Destroying a running VM powers it off first; by name only works.
	require.NoError(t, h.DestroyVM(ctx, bootpoint.VM{Name: "sb"}))
	_, err = h.FindVM(ctx, "sb")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))
	require.ErrorIs(t, h.DestroyVM(ctx, vm), bootpoint.ErrNotFound)
	_, err = h.FindVM(ctx, "other")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(sim.Dir, "other", "other.vmdk"))
	_ = other
}

func TestConnectNetwork(t *testing.T) {
	_, h := startHost(t)
	ctx := context.Background()
	nic := func(vm bootpoint.VM) (types.BaseVirtualDevice, string) {
		s, err := h.load(ctx, vm)
		require.NoError(t, err)
		nics := object.VirtualDeviceList(s.mo.Config.Hardware.Device).SelectByType((*types.VirtualEthernetCard)(nil))
		require.Len(t, nics, 1)
		b := nics[0].GetVirtualDevice().Backing.(*types.VirtualEthernetCardNetworkBackingInfo)
		return nics[0], b.DeviceName
	}

	vm, _ := createStandby(t, h, bootpoint.VMSpec{Name: "sb", Network: "VM Network"})
	d, net := nic(vm)
	require.Equal(t, "VM Network", net)
	require.False(t, d.GetVirtualDevice().Connectable.StartConnected)

	require.NoError(t, h.ConnectNetwork(ctx, vm, "Failover Network"))
	d, net = nic(vm)
	require.Equal(t, "Failover Network", net)
	require.True(t, d.GetVirtualDevice().Connectable.StartConnected)
	require.NoError(t, h.SetPower(ctx, vm, true))
	d, _ = nic(vm)
	require.True(t, d.GetVirtualDevice().Connectable.Connected)
	require.NoError(t, h.SetPower(ctx, vm, false))
	require.IsType(t, &types.VirtualVmxnet3{}, d)

	// A VM without NIC gets one.
	bare, _ := createStandby(t, h, bootpoint.VMSpec{Name: "bare"})
	require.NoError(t, h.ConnectNetwork(ctx, bare, "Isolated Network"))
	d, net = nic(bare)
	require.Equal(t, "Isolated Network", net)
	require.True(t, d.GetVirtualDevice().Connectable.StartConnected)

	require.ErrorContains(t, h.ConnectNetwork(ctx, vm, "No Such Network"), "No Such Network")
}

func TestCloneForTest(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, c0 := createStandby(t, h, bootpoint.VMSpec{Name: "sb", Firmware: p2v.FirmwareEFI, Controller: p2v.ControllerNVMe, Network: "VM Network"})
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, c1 := addPoint(t, h, vm, 1, c0)
	addPoint(t, h, vm, 2, c1)

	before := fileTree(t, filepath.Join(sim.Dir, "sb"))
	clone, err := h.CloneForTest(ctx, vm, s1, "sb-testboot-0001", "Isolated Network")
	require.NoError(t, err)

	s, err := h.load(ctx, clone)
	require.NoError(t, err)
	require.Equal(t, "efi", s.mo.Config.Firmware)
	devs := object.VirtualDeviceList(s.mo.Config.Hardware.Device)
	require.Len(t, devs.SelectByType((*types.VirtualNVMEController)(nil)), 1)
	cb := backings(t, h, clone)
	require.Equal(t, [][]string{
		{"[datastore1] sb-testboot-0001/sb-000002.vmdk", "[datastore1] sb/sb-000001.vmdk", "[datastore1] sb/sb.vmdk"},
		{"[datastore1] sb-testboot-0001/sb_1-000002.vmdk", "[datastore1] sb/sb_1-000001.vmdk", "[datastore1] sb/sb_1.vmdk"},
	}, cb)
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	require.Len(t, nics, 1)
	require.Equal(t, "Isolated Network", nics[0].GetVirtualDevice().Backing.(*types.VirtualEthernetCardNetworkBackingInfo).DeviceName)
	require.True(t, nics[0].GetVirtualDevice().Connectable.StartConnected)
	// The clone's disk reads as boot point 1 (qemu-img follows the
	// parent into the standby's folder).
	for d := range c1 {
		leaf := filepath.Join(sim.Dir, "sb-testboot-0001", filepath.Base(cb[d][0][len("[datastore1] "):]))
		require.True(t, bytes.Equal(c1[d], qemuRead(t, leaf)), "disk %d", d)
	}

	// Boot, then throw away: the standby's files are untouched.
	require.NoError(t, h.SetPower(ctx, clone, true))
	require.NoError(t, h.SetPower(ctx, clone, false))
	require.NoError(t, h.DestroyVM(ctx, clone))
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb-testboot-0001"))
	require.Equal(t, before, fileTree(t, filepath.Join(sim.Dir, "sb")))
	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, snaps, 3)
	requireNoStrayFiles(t, sim)
}
