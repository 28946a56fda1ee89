package esx

import (
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

// createStandby creates VM "sb" with two disks and returns it with the
// base bytes.
func createStandby(t *testing.T, h *Host, spec bootpoint.VMSpec) (bootpoint.VM, [][]byte) {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "sb"
	}
	b0 := fakeStreamVMDK(1, 1<<30, spec.Name+".vmdk")
	b1 := fakeStreamVMDK(2, 2<<30, spec.Name+"_1.vmdk")
	vm, err := h.CreateStandby(context.Background(), spec,
		[]bootpoint.File{memFile("base0", b0, int64(len(b0))), memFile("base1", b1, -1)})
	require.NoError(t, err)
	return vm, [][]byte{b0, b1}
}

func TestCreateStandby(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, bases := createStandby(t, h, bootpoint.VMSpec{
		Name: "sb", Firmware: p2v.FirmwareEFI, Controller: p2v.ControllerPVSCSI,
		CPUs: 4, Network: "VM Network",
	})
	require.NotEmpty(t, vm.ID)

	found, err := h.FindVM(ctx, "sb")
	require.NoError(t, err)
	require.Equal(t, vm, found)

	// The hardware, read back through the API.
	s, err := h.load(ctx, vm)
	require.NoError(t, err)
	cfg := s.mo.Config
	require.Equal(t, "efi", cfg.Firmware)
	require.Equal(t, "otherGuest64", cfg.GuestId)
	require.EqualValues(t, 4, cfg.Hardware.NumCPU)
	require.EqualValues(t, 4096, cfg.Hardware.MemoryMB)
	devs := object.VirtualDeviceList(cfg.Hardware.Device)
	ctrls := devs.SelectByType((*types.ParaVirtualSCSIController)(nil))
	require.Len(t, ctrls, 1)
	ds := disks(cfg)
	require.Len(t, ds, 2)
	for i, want := range []string{"[datastore1] sb/sb.vmdk", "[datastore1] sb/sb_1.vmdk"} {
		require.Equal(t, want, flat(ds[i]).FileName)
		require.Equal(t, ctrls[0].GetVirtualDevice().Key, ds[i].ControllerKey)
	}
	require.EqualValues(t, 1<<30, ds[0].CapacityInBytes)
	require.EqualValues(t, 2<<30, ds[1].CapacityInBytes)
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	require.Len(t, nics, 1)
	require.IsType(t, &types.VirtualVmxnet3{}, nics[0])
	require.False(t, nics[0].GetVirtualDevice().Connectable.StartConnected)
	require.Equal(t, types.VirtualMachinePowerStatePoweredOff, s.mo.Runtime.PowerState)

	// The bytes, read from the datastore folder directly.
	for i, name := range []string{"sb.vmdk", "sb_1.vmdk"} {
		got, err := os.ReadFile(filepath.Join(sim.Dir, "sb", name))
		require.NoError(t, err)
		require.Equal(t, bases[i], got, name)
	}

	// A second VM of the same name is refused; the first is untouched.
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, []bootpoint.File{memFile("x", bases[0], -1)})
	require.ErrorContains(t, err, "already exists")
}

func TestCreateStandbyControllers(t *testing.T) {
	_, h := startHost(t)
	ctx := context.Background()
	for _, tc := range []struct {
		c    p2v.Controller
		want types.BaseVirtualDevice
	}{
		{"", (*types.ParaVirtualSCSIController)(nil)},
		{p2v.ControllerLSILogicSAS, (*types.VirtualLsiLogicSASController)(nil)},
		{p2v.ControllerSATA, (*types.VirtualAHCIController)(nil)},
		{p2v.ControllerNVMe, (*types.VirtualNVMEController)(nil)},
	} {
		name := "vm-" + string(tc.c)
		b := fakeStreamVMDK(3, 1<<20, name+".vmdk")
		vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: name, Controller: tc.c},
			[]bootpoint.File{memFile("b", b, int64(len(b)))})
		require.NoError(t, err, tc.c)
		s, err := h.load(ctx, vm)
		require.NoError(t, err)
		require.Equal(t, "bios", s.mo.Config.Firmware)
		devs := object.VirtualDeviceList(s.mo.Config.Hardware.Device)
		require.Len(t, devs.SelectByType(tc.want), 1, tc.c)
		require.Len(t, disks(s.mo.Config), 1)
		require.Empty(t, devs.SelectByType((*types.VirtualEthernetCard)(nil)))
	}
}

func TestCreateStandbyFailureLeavesNothing(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	b := fakeStreamVMDK(1, 1<<20, "sb.vmdk")
	// The stream is shorter than announced: the upload fails.
	_, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"},
		[]bootpoint.File{memFile("b", b, int64(len(b))+100)})
	require.Error(t, err)
	_, err = h.FindVM(ctx, "sb")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))

	// Unknown capacity (no header, no DiskSizes) is refused up front.
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, []bootpoint.File{memFile("b", []byte("junk"), 4)})
	require.ErrorContains(t, err, "capacity")
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))
}
