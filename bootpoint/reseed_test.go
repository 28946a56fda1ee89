package bootpoint_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/bootpoint/hypervisortest"
	"github.com/standbykit/standbykit/internal/sample"
)

// renameFails is a Memory whose next rename fails: a reseed interrupted
// after the old VM was deleted.
type renameFails struct {
	*hypervisortest.Memory
	fail bool
}

func (h *renameFails) RenameVM(ctx context.Context, vm bootpoint.VM, name string) (bootpoint.VM, error) {
	if h.fail {
		h.fail = false
		return bootpoint.VM{}, errors.New("connection lost")
	}
	return h.Memory.RenameVM(ctx, vm, name)
}

// TestResizedDiskNeedsDecision: a disk that grew, or shrank, stops the
// task in a "needs decision" state with its VM and boot points untouched;
// a reseed builds a new standby from the resized point beside the old one
// (which stays until the new one has its first boot point), then takes
// its place; the task goes on from there.
func TestResizedDiskNeedsDecision(t *testing.T) {
	for _, tc := range []struct {
		name        string
		start, size int64
	}{{"grow", 2 << 20, 3 << 20}, {"shrink", 3 << 20, 2 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			start := tc.start
			_, err := sample.Write(ctx, dir, sample.Options{DiskSize: start, Incrementals: 1, Seed: 12})
			require.NoError(t, err)
			mem := &hypervisortest.Memory{}
			hv := &renameFails{Memory: mem}
			task := &bootpoint.Task{Name: "web", Images: dir, Trigger: bootpoint.Trigger{Kind: bootpoint.Immediately},
				Standby: &bootpoint.Standby{Hypervisor: hv, Inspector: movingPatches{}, VM: bootpoint.VMSpec{Name: "web-standby"}}}
			m := &bootpoint.Manager{StatePath: filepath.Join(t.TempDir(), "state.json"), Tasks: []*bootpoint.Task{task}}
			require.NoError(t, tickOne(t, m).Err)
			_, err = sample.Extend(ctx, dir, 1, 13, nil)
			require.NoError(t, err)
			require.NoError(t, tickOne(t, m).Err)
			before := verifyAllOf(t, task)
			require.Len(t, before, 2)

			resized, err := sample.ExtendResized(ctx, dir, tc.size, 14, nil)
			require.NoError(t, err)
			r := tickOne(t, m)
			var re *bootpoint.ResizeError
			require.ErrorAs(t, r.Err, &re)
			require.ErrorIs(t, r.Err, aipimage.ErrDiskResized)
			require.Equal(t, bootpoint.ResizeError{Sequence: resized.Sequence, BootPoint: 2, Disk: 0, Old: start, New: tc.size}, *re)
			require.Contains(t, taskState(t, m, "web").NeedsDecision, "reseed")
			r = tickOne(t, m)
			require.False(t, r.Ran, "the task waits for a decision")
			require.NoError(t, r.Err)
			_, bps, err := task.Standby.BootPoints(ctx)
			require.NoError(t, err)
			require.Equal(t, len(before), len(bps), "the old boot points stay")

			// A reseed whose first boot point fails leaves the old VM as
			// it was and nothing else.
			mem.Fail = func(step string) error {
				if step == "snapshot" {
					return errors.New("host busy")
				}
				return nil
			}
			_, err = m.Reseed(ctx, "web")
			require.ErrorContains(t, err, "host busy")
			mem.Fail = nil
			require.Equal(t, []string{"web-standby"}, mem.VMs())
			require.Len(t, verifyAllOf(t, task), len(before))
			spec, _ := mem.Spec("web-standby")
			require.Equal(t, []int64{start}, spec.DiskSizes)

			// One that dies after deleting the old VM resumes.
			hv.fail = true
			_, err = m.Reseed(ctx, "web")
			require.ErrorContains(t, err, "connection lost")
			require.Equal(t, []string{"web-standby-reseed-0003"}, mem.VMs())
			require.Equal(t, "web-standby-reseed-0003", taskState(t, m, "web").ReseedVM)
			_, err = m.Reseed(ctx, "web")
			require.NoError(t, err)

			require.Equal(t, []string{"web-standby"}, mem.VMs())
			spec, _ = mem.Spec("web-standby")
			require.Equal(t, []int64{tc.size}, spec.DiskSizes)
			bps = verifyAllOf(t, task)
			require.Len(t, bps, 1)
			require.Equal(t, resized.PointID, bps[0].Meta.PointID)
			st := taskState(t, m, "web")
			require.Empty(t, st.NeedsDecision)
			require.Empty(t, st.ReseedVM)
			require.Equal(t, resized.Sequence, st.LastSequence)
			_, err = m.Reseed(ctx, "web")
			require.ErrorContains(t, err, "needs no reseed")

			_, err = sample.Extend(ctx, dir, 1, 15, nil)
			require.NoError(t, err)
			r = tickOne(t, m)
			require.NoError(t, r.Err)
			require.True(t, r.Ran)
			require.Len(t, verifyAllOf(t, task), 2)
		})
	}
}
