package esx

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"
)

func backing(files ...string) *types.VirtualDiskFlatVer2BackingInfo {
	var b *types.VirtualDiskFlatVer2BackingInfo
	for i := len(files) - 1; i >= 0; i-- {
		b = &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: files[i]},
			Parent:                       b,
		}
	}
	return b
}

func TestDiskOrder(t *testing.T) {
	u := func(n int32) *int32 { return &n }
	cfg := &types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: []types.BaseVirtualDevice{
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 3, ControllerKey: 1000, UnitNumber: u(8), Backing: backing("c")}},
		&types.VirtualE1000{},
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 9, ControllerKey: 1000, UnitNumber: u(0), Backing: backing("a")}},
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 1, ControllerKey: 1000, UnitNumber: u(1), Backing: backing("b")}},
	}}}
	var names []string
	for _, d := range disks(cfg) {
		names = append(names, flat(d).FileName)
	}
	require.Equal(t, []string{"a", "b", "c"}, names)
}
