package esx

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
)

// delta is a fake delta disk: a descriptor naming its parent and an
// opaque extent.
type delta struct {
	bootpoint.DiskDelta
	desc, extent []byte
}

func fakeDelta(disk int, prefix string, k int, parent string) delta {
	name := fmt.Sprintf("%s-%06d", prefix, k)
	r := rand.New(rand.NewPCG(uint64(k), uint64(disk)))
	extent := make([]byte, 4096+k*1000+disk)
	for i := range extent {
		extent[i] = byte(r.Uint32())
	}
	desc := []byte(fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%08x\nparentCID=ffffffff\n"+
		"createType=\"vmfsSparse\"\nparentFileNameHint=\"%s\"\n\n# Extent description\nRW 2097152 VMFSSPARSE \"%s-delta.vmdk\"\n",
		k, parent, name))
	return delta{
		DiskDelta: bootpoint.DiskDelta{
			Disk:       disk,
			Descriptor: memFile(name+".vmdk", desc, int64(len(desc))),
			Extent:     memFile(name+"-delta.vmdk", extent, int64(len(extent))),
		},
		desc: desc, extent: extent,
	}
}

// nextDeltas makes the next delta of every disk on top of its leaf.
func nextDeltas(t *testing.T, h *Host, vm bootpoint.VM, k int) ([]bootpoint.DiskDelta, []delta) {
	t.Helper()
	var dd []bootpoint.DiskDelta
	var ds []delta
	for d, prefix := range []string{"sb", "sb_1"} {
		parent, _, err := h.LeafDescriptor(context.Background(), vm, d)
		require.NoError(t, err)
		x := fakeDelta(d, prefix, k, parent)
		dd = append(dd, x.DiskDelta)
		ds = append(ds, x)
	}
	return dd, ds
}

// readChain downloads every file of a chain.
func readChain(t *testing.T, files []bootpoint.RemoteFile) (names []string, content map[string][]byte) {
	t.Helper()
	content = map[string][]byte{}
	for _, f := range files {
		r, err := f.Open(context.Background())
		require.NoError(t, err)
		b, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.EqualValues(t, -1, f.Size, "%s: sizes are not asked for", f.Name)
		names = append(names, f.Name)
		content[f.Name] = b
	}
	return names, content
}

func TestBootPoints(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, bases := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})

	s0, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", `{"kind":"x","sequence":0}`)
	require.NoError(t, err)
	require.NotEmpty(t, s0.ID)
	require.False(t, s0.Created.IsZero())

	// Boot point 0 is the bases.
	for d, name := range []string{"sb.vmdk", "sb_1.vmdk"} {
		leaf, desc, err := h.LeafDescriptor(ctx, vm, d)
		require.NoError(t, err)
		require.Equal(t, name, leaf)
		require.Contains(t, string(desc), `createType="streamOptimized"`)
		files, err := h.DiskChain(ctx, vm, s0, d)
		require.NoError(t, err)
		names, content := readChain(t, files)
		require.Equal(t, []string{name}, names)
		require.Equal(t, bases[d], content[name])
	}

	points := []bootpoint.Snapshot{s0}
	all := [][]delta{nil}
	for k := 1; k <= 3; k++ {
		dd, ds := nextDeltas(t, h, vm, k)
		if k > 1 {
			require.Contains(t, string(ds[0].desc), fmt.Sprintf(`parentFileNameHint="sb-%06d.vmdk"`, k-1))
		}
		s, err := h.AddBootPoint(ctx, vm, dd, fmt.Sprintf("bootpoint %04d", k), fmt.Sprintf(`{"sequence":%d}`, k))
		require.NoError(t, err)
		points = append(points, s)
		all = append(all, ds)

		// The new leaf is this delta.
		for d := range 2 {
			name, desc, err := h.LeafDescriptor(ctx, vm, d)
			require.NoError(t, err)
			require.Equal(t, ds[d].Descriptor.Name, name)
			require.Equal(t, ds[d].desc, desc)
		}
	}

	snaps, err := h.Snapshots(ctx, vm)
	require.NoError(t, err)
	require.Equal(t, points, snaps)
	for k, s := range snaps {
		require.Equal(t, fmt.Sprintf("bootpoint %04d", k), s.Name)
		if k > 0 {
			require.Equal(t, fmt.Sprintf(`{"sequence":%d}`, k), s.Description)
			require.False(t, s.Created.Before(snaps[k-1].Created))
		}
	}

	// Each point's chain: exactly its files, leaf first, byte for byte.
	for k, s := range points {
		for d, base := range []string{"sb.vmdk", "sb_1.vmdk"} {
			files, err := h.DiskChain(ctx, vm, s, d)
			require.NoError(t, err)
			names, content := readChain(t, files)
			var want []string
			for j := k; j >= 1; j-- {
				x := all[j][d]
				want = append(want, x.Descriptor.Name, x.Extent.Name)
				require.Equal(t, x.desc, content[x.Descriptor.Name])
				require.Equal(t, x.extent, content[x.Extent.Name])
			}
			want = append(want, base)
			require.Equal(t, want, names, "point %d disk %d", k, d)
			require.Equal(t, bases[d], content[base])
		}
	}

	// The files are in the VM's folder, as uploaded.
	got, err := os.ReadFile(filepath.Join(sim.Dir, "sb", "sb_1-000002-delta.vmdk"))
	require.NoError(t, err)
	require.Equal(t, all[2][1].extent, got)

	// A chain name may not be reused.
	dd := []bootpoint.DiskDelta{fakeDelta(0, "sb", 3, "sb-000003.vmdk").DiskDelta}
	dd[0].Descriptor.Name = "sb-000002.vmdk"
	_, err = h.AddBootPoint(ctx, vm, dd, "bad", "bad")
	require.ErrorContains(t, err, "overwrite")
	_, err = h.DiskChain(ctx, vm, s0, 2)
	require.ErrorIs(t, err, errNoDisk)
	_, err = h.DiskChain(ctx, vm, bootpoint.Snapshot{ID: "snapshot-404"}, 0)
	require.ErrorIs(t, err, bootpoint.ErrNotFound)
}
