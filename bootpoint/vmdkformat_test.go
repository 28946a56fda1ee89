package bootpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/vmdk"
)

// The ESXi format through the whole pipeline: streamOptimized base,
// vmfsSparse deltas, every boot point verified by reading its chain with
// vmdk.OpenChain against point ⊕ patches.
func TestSyncWithVMDKFormat(t *testing.T) {
	set := newSample(t, 6)
	hv := newMemHypervisor()
	s := &Standby{Hypervisor: hv, Format: VMDK{TempDir: t.TempDir()}, Inspector: movingPatches{}, VM: VMSpec{Name: "web01"}}
	results, err := s.Sync(context.Background(), set)
	require.NoError(t, err)
	require.Len(t, results, 7)
	bps := verifyAll(t, s, set)
	require.Len(t, bps, 7)

	// The leaf is the sixth delta, chained on the base's CID.
	name, desc, err := hv.LeafDescriptor(context.Background(), VM{Name: "web01"}, 0)
	require.NoError(t, err)
	require.Equal(t, "web01_0-000006.vmdk", name)
	d, err := vmdk.ParseDescriptor(desc)
	require.NoError(t, err)
	require.Equal(t, vmdk.CreateVMFSSparse, d.CreateType)
	require.Equal(t, "web01_0-000005.vmdk", d.ParentFileNameHint)

	// A delta that lost data fails verification: corrupt one delta extent
	// byte inside the data area of the newest boot point.
	vm := hv.vms["web01"]
	ext := vm.files["web01_0-000006-delta.vmdk"]
	require.NotNil(t, ext)
	broken := bytes.Clone(ext)
	hdr := 4*512 + 512 // header + the one-sector directory of a 4 MiB disk
	broken[hdr+32*512+7] ^= 0xff
	vm.files["web01_0-000006-delta.vmdk"] = broken
	err = s.Verify(context.Background(), set, bps[len(bps)-1])
	var mm *MismatchError
	require.True(t, errors.As(err, &mm), "got %v", err)
}

func TestVMDKFormatRefusesAMismatchedParent(t *testing.T) {
	f := VMDK{}
	parent := vmdk.BaseDescriptor(vmdk.CreateVMFS, vmdk.ExtentVMFS, "p-flat.vmdk", 1<<20, "")
	text, err := parent.MarshalText()
	require.NoError(t, err)
	_, err = f.Delta(context.Background(), "p.vmdk", text, Delta{Size: 2 << 20, Source: bytes.NewReader(nil)})
	require.Error(t, err)
	_, err = f.Delta(context.Background(), "p.vmdk", []byte("garbage"), Delta{Size: 1 << 20})
	require.ErrorIs(t, err, vmdk.ErrCorrupt)

	child, err := f.EmptyChild(context.Background(), "p.vmdk", text)
	require.NoError(t, err)
	rc, err := child.Extent.Open()
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, child.Extent.Size, int64(len(b)))
}
