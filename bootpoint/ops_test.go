package bootpoint

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFailoverAndTestBoot(t *testing.T) {
	set := newSample(t, 4)
	hv := newMemHypervisor()
	s := &Standby{Hypervisor: hv, Format: &rawFormat{grain: 512}, Inspector: movingPatches{}, VM: VMSpec{Name: "web01", Network: "standby-isolated"}}
	ctx := context.Background()
	_, err := s.Sync(ctx, set)
	require.NoError(t, err)
	before, err := hv.Snapshots(ctx, VM{Name: "web01"})
	require.NoError(t, err)

	// Test boot of boot point 2: the check sees a powered-on clone on the
	// isolated network; afterwards the clone is gone and the chain intact.
	var seen VM
	err = s.TestBoot(ctx, 2, "isolated", func(ctx context.Context, clone VM) error {
		seen = clone
		c := hv.vms[clone.Name]
		require.True(t, c.powered)
		require.Equal(t, "isolated", c.spec.Network)
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, seen.Name, "testboot-0002")
	_, err = hv.FindVM(ctx, seen.Name)
	require.ErrorIs(t, err, ErrNotFound)
	after, err := hv.Snapshots(ctx, VM{Name: "web01"})
	require.NoError(t, err)
	require.Equal(t, before, after)
	verifyAll(t, s, set)

	// A failing check is reported and still cleans up.
	boom := errors.New("no heartbeat")
	err = s.TestBoot(ctx, -1, "isolated", func(context.Context, VM) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Len(t, hv.vms, 1)

	// Failover to boot point 3 on the production network.
	bp, err := s.Failover(ctx, 3, "prod")
	require.NoError(t, err)
	require.Equal(t, 3, bp.Meta.Sequence)
	vm := hv.vms["web01"]
	require.True(t, vm.powered)
	require.Equal(t, "prod", vm.spec.Network)
	require.True(t, vm.spec.ConnectNIC)
	require.Equal(t, bp.Snapshot.ID, vm.snapshots[vm.current].ID)
	verifyAll(t, s, set)

	_, err = s.Failover(ctx, 42, "")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestDeleteTask(t *testing.T) {
	hv := newMemHypervisor()
	task := &Task{Name: "t", Images: sampleDir(t, 1, 5), Trigger: Trigger{Kind: Immediately},
		Standby: &Standby{Hypervisor: hv, Format: &rawFormat{grain: 512}, VM: VMSpec{Name: "vm"}}}
	m := &Manager{StatePath: filepath.Join(t.TempDir(), "s.json"), Tasks: []*Task{task}}
	ctx := context.Background()
	_, err := m.Tick(ctx)
	require.NoError(t, err)
	require.NoError(t, m.DeleteTask(ctx, "t", true))
	_, err = hv.FindVM(ctx, "vm")
	require.ErrorIs(t, err, ErrNotFound)
	st, err := LoadState(m.StatePath)
	require.NoError(t, err)
	require.NotContains(t, st.Tasks, "t")
	require.ErrorIs(t, m.DeleteTask(ctx, "t", false), ErrNotFound)
}
