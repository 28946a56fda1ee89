package vmdisks

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
			ChangeId:                     "52 1f/" + files[i],
		}
	}
	return b
}

func TestOrder(t *testing.T) {
	u := func(n int32) *int32 { return &n }
	cfg := &types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: []types.BaseVirtualDevice{
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 3, ControllerKey: 1000, UnitNumber: u(8), Backing: backing("c")}},
		&types.VirtualE1000{},
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 9, ControllerKey: 1000, UnitNumber: u(0), Backing: backing("a")}},
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 7, ControllerKey: 1001, UnitNumber: u(0), Backing: &types.VirtualDiskRawDiskMappingVer1BackingInfo{}}},
		&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 1, ControllerKey: 1000, UnitNumber: u(1), Backing: backing("b")}},
	}}}
	var names []string
	for _, d := range Of(cfg) {
		if b := Flat(d); b != nil {
			names = append(names, b.FileName)
		} else {
			names = append(names, "other")
		}
	}
	require.Equal(t, []string{"a", "b", "c", "other"}, names)
	require.Nil(t, Of(nil))
}

func TestClone(t *testing.T) {
	b := backing("leaf", "mid", "base")
	c := Clone(b)
	var got []string
	for n := c; n != nil; n = n.Parent {
		got = append(got, n.FileName)
		require.Empty(t, n.ChangeId)
	}
	require.Equal(t, []string{"leaf", "mid", "base"}, got)
	c.Parent.FileName = "changed"
	require.Equal(t, "mid", b.Parent.FileName, "the copy shares nothing")
	require.Nil(t, Clone(nil))
}
