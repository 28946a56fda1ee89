package esx_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
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

func connectSim(t *testing.T) (*esx.Simulator, *esx.Host) {
	t.Helper()
	ctx := context.Background()
	sim, err := esx.StartSimulator(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h, err := esx.Connect(ctx, sim.Config())
	require.NoError(t, err)
	t.Cleanup(func() { h.Close(context.Background()) })
	return sim, h
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

	_, host := connectSim(t)
	format := bootpoint.VMDK{TempDir: t.TempDir()}
	sb := &bootpoint.Standby{Hypervisor: host, Format: format, Inspector: shiftingPatches{},
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
		// applied by hand, against qemu-img's reading of the chain.
		p, err := set.Point(k)
		require.NoError(t, err)
		plan, err := shiftingPatches{}.Inspect(ctx, p)
		require.NoError(t, err)
		want := bytes.Clone(src.Disks[k])
		for _, pt := range plan.Patches {
			copy(want[pt.Offset:], pt.Data)
		}
		files, err := host.DiskChain(ctx, vm, bp.Snapshot, 0)
		require.NoError(t, err)
		require.Len(t, files, 1+2*k, "the base file and, per delta, a descriptor and an extent")
		dir := t.TempDir()
		for _, f := range files {
			rc, err := f.Open(ctx)
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), b, 0o644))
		}
		raw := filepath.Join(dir, "qemu.raw")
		oracle.Run(t, qemu, "convert", "-O", "raw", filepath.Join(dir, files[0].Name), raw)
		got, err := os.ReadFile(raw)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "boot point %d differs from its point ⊕ patches", k)
	}

	// A second Sync has nothing to do; a new incremental adds one point.
	results, err = sb.Sync(ctx, set)
	require.NoError(t, err)
	require.Empty(t, results)
}
