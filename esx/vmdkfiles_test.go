package esx

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
	"github.com/standbykit/standbykit/vmdk"
)

// A delta that lost data reads differently: corrupting one byte of a
// boot point's delta on the datastore shows in what OpenDisk reads.
func TestCorruptedDeltaShows(t *testing.T) {
	sim, h := startHost(t)
	ctx := context.Background()
	vm, cur := createStandby(t, h, bootpoint.VMSpec{Name: "sb"})
	_, err := h.AddBootPoint(ctx, vm, nil, "bootpoint 0000", "p0")
	require.NoError(t, err)
	s1, next := addPoint(t, h, vm, 1, cur)
	require.True(t, bytes.Equal(next[0], readDisk(t, h, vm, s1, 0)))

	p := filepath.Join(sim.Dir, "sb", "sb-000001-delta.vmdk")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	// The first data sector follows the header (4 sectors), the grain
	// directory (1 sector for 2 MiB) and the first grain table (32).
	b[(4+1+32)*512] ^= 0xff
	require.NoError(t, os.WriteFile(p, b, 0o644))
	require.False(t, bytes.Equal(next[0], readDisk(t, h, vm, s1, 0)))
}

func TestLeafFillRefusesWhatItCannotWrite(t *testing.T) {
	ctx := context.Background()
	parent := vmdk.BaseDescriptor(vmdk.CreateVMFS, vmdk.ExtentVMFS, "p-flat.vmdk", 1<<20, "")
	change := bootpoint.Delta{Size: 1 << 20, Extents: []aipimage.Extent{{Off: 0, Len: 512}}, Source: bytes.NewReader(make([]byte, 1<<20))}

	// A flat leaf (a VM without snapshot, or a format we do not write).
	_, _, err := leafFill(ctx, "p.vmdk", parent, parent, change)
	require.ErrorIs(t, err, ErrLeafFormat)

	// A leaf of another size than the change says.
	d, ext, err := emptyChild(ctx, "p.vmdk", parent)
	require.NoError(t, err)
	leaf := readAll(t, d)
	ld, err := vmdk.ParseDescriptor(leaf)
	require.NoError(t, err)
	big := change
	big.Size = 2 << 20
	_, _, err = leafFill(ctx, d.Name, ld, parent, big)
	require.ErrorContains(t, err, "holds")

	// The empty child reads as its parent and is of the size it says.
	require.Equal(t, ext.Size, int64(len(readAll(t, ext))))
	require.Equal(t, "p.vmdk", ld.ParentFileNameHint)
	require.Equal(t, parent.CID, ld.ParentCID)

	// A filled leaf keeps its names and parent, with a new CID.
	nd, next, err := leafFill(ctx, d.Name, ld, parent, change)
	require.NoError(t, err)
	filled, err := vmdk.ParseDescriptor(readAll(t, nd))
	require.NoError(t, err)
	require.NotEqual(t, ld.CID, filled.CID)
	require.Equal(t, ld.ParentCID, filled.ParentCID)
	require.Equal(t, ld.ParentFileNameHint, filled.ParentFileNameHint)
	require.Equal(t, ld.Extents, filled.Extents)
	require.Equal(t, next.Size, int64(len(readAll(t, next))))
}

func readAll(t *testing.T, f File) []byte {
	t.Helper()
	rc, err := f.Open()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}
