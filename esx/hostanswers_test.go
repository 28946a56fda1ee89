package esx

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/vim25/types"
)

// A host's snapshot tree is checked before it is walked.
func TestCheckSnapshotTree(t *testing.T) {
	chain := func(depth int) *types.VirtualMachineSnapshotInfo {
		var t *types.VirtualMachineSnapshotTree
		for range depth {
			n := types.VirtualMachineSnapshotTree{Name: "s"}
			if t != nil {
				n.ChildSnapshotList = []types.VirtualMachineSnapshotTree{*t}
			}
			t = &n
		}
		return &types.VirtualMachineSnapshotInfo{RootSnapshotList: []types.VirtualMachineSnapshotTree{*t}}
	}
	require.NoError(t, checkSnapshotTree(nil))
	require.NoError(t, checkSnapshotTree(chain(31)))
	require.NoError(t, checkSnapshotTree(chain(maxSnapshotDepth)))
	require.ErrorIs(t, checkSnapshotTree(chain(maxSnapshotDepth+1)), ErrImplausible)

	wide := &types.VirtualMachineSnapshotInfo{RootSnapshotList: make([]types.VirtualMachineSnapshotTree, maxSnapshots)}
	require.NoError(t, checkSnapshotTree(wide))
	wide.RootSnapshotList = append(wide.RootSnapshotList, types.VirtualMachineSnapshotTree{})
	require.ErrorIs(t, checkSnapshotTree(wide), ErrImplausible)
}
