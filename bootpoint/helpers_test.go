package bootpoint_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

// movingPatches is a deterministic Inspector whose patches depend on the
// point: they move, change and vanish from point to point, like real P2V
// fixups when a registry hive or fstab moves on disk.
type movingPatches struct{}

func (movingPatches) Inspect(ctx context.Context, p aipimage.Point) (*p2v.Plan, error) {
	seq := int64(p.Info().Sequence)
	size := p.Info().Disks[0].Size
	plan := &p2v.Plan{Firmware: p2v.FirmwareBIOS, GuestID: "otherLinux64Guest", Controller: p2v.ControllerPVSCSI}
	if seq%3 != 2 { // every third point has no patch at all
		plan.Patches = append(plan.Patches, p2v.Patch{Offset: (seq*7919*512 + 100) % (size - 4096), Data: []byte("patched-by-p2v"), Why: "test"})
	}
	plan.Patches = append(plan.Patches, p2v.Patch{Offset: 1 << 20, Data: []byte{byte(seq), 0xfe}, Why: "same place, new value"})
	return plan, nil
}

func newSample(t *testing.T, incrementals int) aipimage.Set {
	t.Helper()
	dir := t.TempDir()
	_, err := sample.Write(context.Background(), dir, sample.Options{DiskSize: 4 << 20, Incrementals: incrementals, Seed: 3})
	require.NoError(t, err)
	set, err := aipimage.OpenDir(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	return set
}

func sampleDir(t *testing.T, incrementals int, seed uint64) string {
	dir := t.TempDir()
	_, err := sample.Write(context.Background(), dir, sample.Options{DiskSize: 2 << 20, Incrementals: incrementals, Seed: seed})
	require.NoError(t, err)
	return dir
}

// verifyAll verifies every boot point of the standby VM and returns them.
func verifyAll(t *testing.T, s *bootpoint.Standby, set aipimage.Set) []bootpoint.BootPoint {
	t.Helper()
	_, bps, err := s.BootPoints(context.Background())
	require.NoError(t, err)
	for _, bp := range bps {
		require.NoError(t, s.Verify(context.Background(), set, bp), "boot point %d", bp.Meta.Sequence)
	}
	return bps
}

func verifyAllOf(t *testing.T, task *bootpoint.Task) []bootpoint.BootPoint {
	t.Helper()
	set, err := aipimage.OpenDir(task.Images, nil)
	require.NoError(t, err)
	defer set.Close()
	return verifyAll(t, task.Standby, set)
}

// tickOne runs one tick of a manager with one task and returns the
// task's result.
func tickOne(t *testing.T, m *bootpoint.Manager) bootpoint.TaskResult {
	t.Helper()
	res, err := m.Tick(context.Background())
	require.NoError(t, err)
	require.Len(t, res, 1)
	return res[0]
}

// taskState is what the manager's state file keeps of a task.
func taskState(t *testing.T, m *bootpoint.Manager, name string) bootpoint.TaskState {
	t.Helper()
	st, err := m.Status()
	require.NoError(t, err)
	return st[name]
}
