package esx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/standbykit/standbykit/bootpoint"
)

// queued is how many boot points wait for the appliance.
func (b *applianceBatcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Boot points of several standby VMs that wait for the appliance at once
// are written by one run, up to its slots, each on its own controller.
// The VMs' disks are alike (the same base, the same units, changes of the
// same sizes), so a payload's guard alone would match every VM's disks:
// only the controllers keep each VM's changes on its own disks.
func TestApplianceBatches(t *testing.T) {
	for _, c := range []struct {
		vms, slots int
		runs       []int
	}{
		{vms: 4, slots: 0, runs: []int{4}},
		{vms: 5, slots: 2, runs: []int{2, 2, 1}},
	} {
		t.Run(fmt.Sprintf("%d VMs, %d slots", c.vms, c.slots), func(t *testing.T) {
			sim, h := startHost(t)
			h.Appliance.Slots = c.slots
			ctx := context.Background()
			vms := make([]bootpoint.VM, c.vms)
			bases := make([][][]byte, c.vms)
			for i := range vms {
				vms[i], bases[i] = createStandby(t, h, bootpoint.VMSpec{Name: fmt.Sprintf("sb%d", i), CPUs: 1, MemoryMiB: 64})
				_, err := h.AddBootPoint(ctx, vms[i], nil, "bootpoint 0000", "p0")
				require.NoError(t, err)
			}
			// Deployed by a first run, then held while every boot point
			// comes to wait.
			app, release, err := h.acquireAppliance(ctx)
			require.NoError(t, err)
			require.NotNil(t, app)
			before := len(sim.ApplianceRuns())
			var g errgroup.Group
			snaps := make([]bootpoint.Snapshot, c.vms)
			wants := make([][][]byte, c.vms)
			for i := range vms {
				changes, next := nextChanges(i+1, bases[i])
				wants[i] = next
				g.Go(func() (err error) {
					snaps[i], err = h.AddBootPoint(ctx, vms[i], changes, "bootpoint 0001", "p1")
					return err
				})
			}
			require.Eventually(t, func() bool { return h.batcher().queued() == c.vms }, time.Minute, 5*time.Millisecond)
			release()
			require.NoError(t, g.Wait())
			assert.Equal(t, c.runs, sim.ApplianceRuns()[before:])
			for i := range vms {
				for d, want := range wants[i] {
					assert.Equal(t, want, readDisk(t, h, vms[i], snaps[i], d), "VM %d disk %d", i, d)
				}
			}
			requireNoStrayFiles(t, sim)
			// No payload VM is left.
			_, err = h.finder.VirtualMachineList(ctx, payloadVMPrefix+"*")
			assert.Error(t, err)
		})
	}
}

// A boot point whose caller gives up while it waits for the appliance
// leaves the queue (its VM as it was, its payload deleted); the others
// are written.
func TestApplianceQueueCancel(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	var vms [2]bootpoint.VM
	var bases [2][][]byte
	var p0 [2]bootpoint.Snapshot
	for i := range vms {
		vms[i], bases[i] = createStandby(t, h, bootpoint.VMSpec{Name: fmt.Sprintf("sb%d", i), CPUs: 1, MemoryMiB: 64})
		var err error
		p0[i], err = h.AddBootPoint(ctx, vms[i], nil, "bootpoint 0000", "p0")
		require.NoError(t, err)
	}
	_, release, err := h.acquireAppliance(ctx)
	require.NoError(t, err)
	quit, cancel := context.WithCancel(ctx)
	errs := make(chan error, 2)
	want, next := nextChanges(1, bases[1])
	var written bootpoint.Snapshot
	go func() {
		changes, _ := nextChanges(1, bases[0])
		_, err := h.AddBootPoint(quit, vms[0], changes, "bootpoint 0001", "p1")
		errs <- err
	}()
	go func() {
		var err error
		written, err = h.AddBootPoint(ctx, vms[1], want, "bootpoint 0001", "p1")
		errs <- err
	}()
	require.Eventually(t, func() bool { return h.batcher().queued() == 2 }, time.Minute, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-errs, context.Canceled)
	require.Eventually(t, func() bool { return h.batcher().queued() == 1 }, time.Minute, 5*time.Millisecond)
	release()
	require.NoError(t, <-errs)
	for d := range next {
		assert.Equal(t, next[d], readDisk(t, h, vms[1], written, d))
		assert.Equal(t, bases[0][d], readDisk(t, h, vms[0], p0[0], d))
	}
	snaps, err := h.Snapshots(ctx, vms[0])
	require.NoError(t, err)
	require.Len(t, snaps, 1, "no boot point made for the VM whose caller gave up")
	requireNoStrayFiles(t, sim)
}
