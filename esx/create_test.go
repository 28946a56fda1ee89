package esx

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/p2v"
	"github.com/standbykit/standbykit/vmdk"
)

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
	ds := vmdisks.Of(cfg)
	require.Len(t, ds, 2)
	for i, want := range []string{"[datastore1] sb/sb.vmdk", "[datastore1] sb/sb_1.vmdk"} {
		require.Equal(t, want, vmdisks.Flat(ds[i]).FileName)
		require.Equal(t, ctrls[0].GetVirtualDevice().Key, ds[i].ControllerKey)
	}
	require.EqualValues(t, testDiskSizes[0], ds[0].CapacityInBytes)
	require.EqualValues(t, testDiskSizes[1], ds[1].CapacityInBytes)
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	require.Len(t, nics, 1)
	require.IsType(t, &types.VirtualVmxnet3{}, nics[0])
	require.False(t, nics[0].GetVirtualDevice().Connectable.StartConnected)
	require.Equal(t, types.VirtualMachinePowerStatePoweredOff, s.mo.Runtime.PowerState)

	// The disks as the host stores them (a vmfs descriptor and its flat
	// extent), read by qemu-img from the datastore folder.
	for i, name := range []string{"sb.vmdk", "sb_1.vmdk"} {
		desc, err := os.ReadFile(filepath.Join(sim.Dir, "sb", name))
		require.NoError(t, err)
		require.Contains(t, string(desc), `createType="vmfs"`)
		require.FileExists(t, filepath.Join(sim.Dir, "sb", vmdk.FlatName(name)))
		require.True(t, bytes.Equal(bases[i], qemuRead(t, filepath.Join(sim.Dir, "sb", name))), name)
	}

	// A second VM of the same name is refused; the first is untouched.
	again, _ := baseContents(2)
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, again)
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
		contents, _ := baseContents(3)
		vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: name, Controller: tc.c}, contents[:1])
		require.NoError(t, err, tc.c)
		s, err := h.load(ctx, vm)
		require.NoError(t, err)
		require.Equal(t, "bios", s.mo.Config.Firmware)
		devs := object.VirtualDeviceList(s.mo.Config.Hardware.Device)
		require.Len(t, devs.SelectByType(tc.want), 1, tc.c)
		require.Len(t, vmdisks.Of(s.mo.Config), 1)
		require.Empty(t, devs.SelectByType((*types.VirtualEthernetCard)(nil)))
	}
}

func TestCreateStandbyFailureLeavesNothing(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	contents, _ := baseContents(1)
	// The import fails at its end: the VM and its folder go.
	sim.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "HttpNfcLeaseComplete", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeGeneric, Message: "injected import failure",
		MaxCount: 1, Enabled: true,
	})
	_, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, contents)
	require.ErrorContains(t, err, "injected import failure")
	_, err = h.FindVM(ctx, "sb")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))

	// Content that cannot be read fails before anything is created.
	broken := contents[0]
	broken.Source = failingReader{}
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, []bootpoint.Delta{broken})
	require.ErrorIs(t, err, errInjected)
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))

	// Extents beyond the disk, and a disk size that is not whole sectors,
	// are refused up front.
	bad := contents[0]
	bad.Extents = []aipimage.Extent{{Off: bad.Size - 512, Len: 1024}}
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, []bootpoint.Delta{bad})
	require.ErrorContains(t, err, "outside")
	bad = contents[0]
	bad.Size--
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, []bootpoint.Delta{bad})
	require.ErrorContains(t, err, "multiple of 512")
	_, err = h.CreateStandby(ctx, bootpoint.VMSpec{Name: "sb"}, nil)
	require.ErrorContains(t, err, "no base disk")
	require.NoDirExists(t, filepath.Join(sim.Dir, "sb"))
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errInjected }
