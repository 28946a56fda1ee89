package bootpoint_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
)

func TestFailoverAndTestBoot(t *testing.T) {
	set := newSample(t, 4)
	hv := &hypervisortest.Memory{}
	s := &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web01", Network: "standby-isolated"}}
	ctx := context.Background()
	_, err := s.Sync(ctx, set)
	require.NoError(t, err)
	before, err := hv.Snapshots(ctx, bootpoint.VM{Name: "web01"})
	require.NoError(t, err)

	// Test boot of boot point 2: the check sees a powered-on clone on the
	// isolated network; afterwards the clone is gone and the chain intact.
	var seen bootpoint.VM
	err = s.TestBoot(ctx, 2, "isolated", func(ctx context.Context, clone bootpoint.VM) error {
		seen = clone
		require.True(t, hv.PoweredOn(clone.Name))
		spec, ok := hv.Spec(clone.Name)
		require.True(t, ok)
		require.Equal(t, "isolated", spec.Network)
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, seen.Name, "testboot-0002")
	_, err = hv.FindVM(ctx, seen.Name)
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	after, err := hv.Snapshots(ctx, bootpoint.VM{Name: "web01"})
	require.NoError(t, err)
	require.Equal(t, before, after)
	verifyAll(t, s, set)

	// A failing check is reported and still cleans up.
	boom := errors.New("no heartbeat")
	err = s.TestBoot(ctx, -1, "isolated", func(context.Context, bootpoint.VM) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, []string{"web01"}, hv.VMs())

	// Failover to boot point 3 on the production network.
	bp, err := s.Failover(ctx, 3, "prod")
	require.NoError(t, err)
	require.Equal(t, 3, bp.Meta.Sequence)
	require.True(t, hv.PoweredOn("web01"))
	spec, ok := hv.Spec("web01")
	require.True(t, ok)
	require.Equal(t, "prod", spec.Network)
	require.True(t, spec.ConnectNIC)
	snaps, err := hv.Snapshots(ctx, bootpoint.VM{Name: "web01"})
	require.NoError(t, err)
	var current []string
	for _, sn := range snaps {
		if sn.Current {
			current = append(current, sn.ID)
		}
	}
	require.Equal(t, []string{bp.Snapshot.ID}, current)
	verifyAll(t, s, set)

	_, err = s.Failover(ctx, 42, "")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
}

func TestDeleteTask(t *testing.T) {
	hv := &hypervisortest.Memory{}
	task := &bootpoint.Task{Name: "t", Images: sampleDir(t, 1, 5), Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
		Standby: &bootpoint.Standby{Hypervisor: hv, VM: bootpoint.VMSpec{Name: "vm"}}}
	m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "s.json"), Tasks: []*bootpoint.Task{task}}
	ctx := context.Background()
	_, err := m.Tick(ctx)
	require.NoError(t, err)
	require.NoError(t, m.DeleteTask(ctx, "t", true))
	_, err = hv.FindVM(ctx, "vm")
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
	st, err := bootpoint.LoadState(m.StatePath)
	require.NoError(t, err)
	require.NotContains(t, st.Tasks, "t")
	require.ErrorIs(t, m.DeleteTask(ctx, "t", false), bootpoint.ErrNotFound)
}
