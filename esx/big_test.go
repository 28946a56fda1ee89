package esx

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/oracle"
)

// patterned is a sparse disk whose extents hold one byte value each: what
// qemu-io can check with read -P without reading the whole disk.
type patterned struct {
	size    int64
	extents []aipimage.Extent
	fill    []byte
}

func (p patterned) ReadAt(b []byte, off int64) (int, error) {
	clear(b)
	for i, e := range p.extents {
		lo, hi := max(off, e.Off), min(off+int64(len(b)), e.End())
		for x := lo; x < hi; x++ {
			b[x-off] = p.fill[i]
		}
	}
	return len(b), nil
}

// A 3 TiB disk: the base imported and one boot point written by the
// appliance into the (non-vmfsSparse) delta the host makes for disks of
// 2 TiB and more, with bounded memory; qemu-io reads the changed ranges
// back from the datastore files.
func TestThreeTiBDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3 TiB sparse disk")
	}
	qemuIO := oracle.Require(t, "qemu-io")
	sim, h := startHost(t)
	ctx := context.Background()
	const size = 3 << 40
	base := patterned{size: size, fill: []byte{0x11, 0x22, 0x33},
		extents: []aipimage.Extent{{Off: 0, Len: 1 << 20}, {Off: 2<<40 - 64<<10, Len: 128 << 10}, {Off: size - 1<<20, Len: 1 << 20}}}
	next := patterned{size: size, fill: []byte{0x44, 0x11, 0x22, 0x55, 0x33},
		extents: []aipimage.Extent{{Off: 0, Len: 4096}, {Off: 4096, Len: 1<<20 - 4096}, {Off: 2<<40 - 64<<10, Len: 128 << 10}, {Off: 2<<40 + 1<<20, Len: 512}, {Off: size - 1<<20, Len: 1 << 20}}}
	// The changes: the first 4 KiB, a sector past 2 TiB.
	changes := []aipimage.Extent{{Off: 0, Len: 4096}, {Off: 2<<40 + 1<<20, Len: 512}}

	stop := heapprobe.Start(20 * time.Millisecond)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "big"}, []bootpoint.Delta{{Disk: 0, Size: size, Extents: base.extents, Source: base}})
	require.NoError(t, err)
	_, err = h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, err := h.AddBootPoint(ctx, vm, []bootpoint.Delta{{Disk: 0, Size: size, Extents: changes, Source: next, Base: base}}, "bootpoint 0001", "p1")
	require.NoError(t, err)
	peak := stop()
	t.Logf("peak heap in use: %.1f MiB", float64(peak)/(1<<20))
	require.Less(t, peak, uint64(256<<20), "memory stays bounded")

	leaf := snapshotLeaf(t, h, sim, vm, s1, 0)
	for i, e := range next.extents {
		cmd := exec.Command(qemuIO, "-r", "-f", "vmdk", "-c", fmt.Sprintf("read -P 0x%02x %d %d", next.fill[i], e.Off, e.Len), leaf)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), "Pattern verification failed", "extent %d %v", i, e)
	}
	// Zeros between the extents.
	out, err := exec.Command(qemuIO, "-r", "-f", "vmdk", "-c", fmt.Sprintf("read -P 0 %d %d", int64(1<<40), 1<<20), leaf).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), "Pattern verification failed")
	require.True(t, bytes.Contains(out, []byte("read")), "%s", out)
	requireNoStrayFiles(t, sim)

	// The upload fast path refuses such a leaf: it is not vmfsSparse.
	h.Writer = WriterUpload
	_, err = h.AddBootPoint(ctx, vm, []bootpoint.Delta{{Disk: 0, Size: size, Extents: changes, Source: base, Base: next}}, "bootpoint 0002", "p2")
	require.ErrorIs(t, err, ErrLeafFormat)
}
