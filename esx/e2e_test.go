package esx_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

// shiftingPatches plans P2V patches that differ from point to point: one
// that moves, vanishes every third point and overlaps changed data, and
// one that stays in place with a new value.
type shiftingPatches struct{}

func (shiftingPatches) Inspect(ctx context.Context, p aipimage.Point) (*p2v.Plan, error) {
	seq := int64(p.Info().Sequence)
	size := p.Info().Disks[0].Size
	plan := &p2v.Plan{Firmware: p2v.FirmwareEFI, GuestID: "windows2019srv_64Guest", Controller: p2v.ControllerLSILogicSAS}
	if seq%3 != 2 {
		plan.Patches = append(plan.Patches, p2v.Patch{Offset: (seq*7919*512 + 100) % (size - 4096), Data: []byte("patched by p2v"), Why: "moving"})
	}
	plan.Patches = append(plan.Patches, p2v.Patch{Offset: 1<<20 + 3, Data: []byte{byte(seq), 0xfe, 0x01}, Why: "in place"})
	return plan, nil
}

func connectSim(t *testing.T) (*esxsim.Simulator, *esx.Host) {
	t.Helper()
	ctx := context.Background()
	sim, err := esxsim.Start(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore})
	require.NoError(t, err)
	h.TempDir = t.TempDir()
	h.Appliance = esx.ApplianceOptions{WithoutBootImage: true, Poll: 10 * time.Millisecond, Timeout: time.Minute}
	t.Cleanup(func() { h.Close(context.Background()) })
	return sim, h
}

// localFile is the simulator's file of a datastore path.
func localFile(t *testing.T, sim *esxsim.Simulator, dsPath string) string {
	t.Helper()
	var p object.DatastorePath
	require.True(t, p.FromString(dsPath), dsPath)
	return filepath.Join(sim.Dir, filepath.FromSlash(p.Path))
}

// qemuRead reads a disk chain of the simulator's datastore with qemu-img.
func qemuRead(t *testing.T, qemu, leaf string) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "qemu.raw")
	oracle.Run(t, qemu, "convert", "-O", "raw", leaf, raw)
	got, err := os.ReadFile(raw)
	require.NoError(t, err)
	return got
}

// wantDisk is point k's source bytes with its patches applied by hand.
func wantDisk(t *testing.T, set aipimage.Set, src *sample.Set, insp bootpoint.Inspector, k int) []byte {
	t.Helper()
	p, err := set.Point(k)
	require.NoError(t, err)
	plan, err := insp.Inspect(context.Background(), p)
	require.NoError(t, err)
	want := bytes.Clone(src.Disks[k])
	for _, pt := range plan.Patches {
		copy(want[pt.Offset:], pt.Data)
	}
	return want
}

// TestEndToEndOnSimulator: a full image and 12 incrementals become a VM
// with 13 boot points; the disk chain of each, downloaded from the
// simulated datastore, equals the source data of its point with that
// point's patches, read by our chain reader and by qemu-img.
func TestEndToEndOnSimulator(t *testing.T) {
	qemu := oracle.Require(t, "qemu-img")
	ctx := context.Background()
	images := t.TempDir()
	src, err := sample.Write(ctx, images, sample.Options{DiskSize: 8 << 20, Incrementals: 12, Seed: 11, KeepContent: true})
	require.NoError(t, err)
	set, err := aipimage.OpenDir(images, nil)
	require.NoError(t, err)
	defer set.Close()

	sim, host := connectSim(t)
	sb := &bootpoint.Standby{Hypervisor: host, Inspector: shiftingPatches{},
		VM: bootpoint.VMSpec{Name: "web01-standby", Network: "VM Network"}, Library: "e2e"}
	results, err := sb.Sync(ctx, set)
	require.NoError(t, err)
	require.Len(t, results, 13)

	vm, bps, err := sb.BootPoints(ctx)
	require.NoError(t, err)
	require.Len(t, bps, 13)
	snaps, err := host.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Len(t, snaps, 13)

	for k, bp := range bps {
		require.Equal(t, k, bp.Meta.Sequence)
		require.NoError(t, sb.Verify(ctx, set, bp), "boot point %d", k)

		// Independent check: the source bytes of point k with its patches
		// applied by hand, against qemu-img's reading of the chain on the
		// datastore.
		files, err := host.ChainFiles(ctx, vm, bp.Snapshot, 0)
		require.NoError(t, err)
		require.Len(t, files, 1+k, "the base and one delta per boot point after it")
		got := qemuRead(t, qemu, localFile(t, sim, files[0]))
		require.True(t, bytes.Equal(wantDisk(t, set, src, shiftingPatches{}, k), got), "boot point %d differs from its point ⊕ patches", k)
	}
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused)

	// A second Sync has nothing to do; a new incremental adds one point.
	results, err = sb.Sync(ctx, set)
	require.NoError(t, err)
	require.Empty(t, results)
}
