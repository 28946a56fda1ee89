package esxsim_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/internal/oracle"
)

func start(t *testing.T) (*esxsim.Simulator, *esx.Host) {
	t.Helper()
	ctx := context.Background()
	sim, err := esxsim.Start(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h, err := esx.Connect(ctx, esx.Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore, ApplianceImage: esx.ApplianceImageNone})
	require.NoError(t, err)
	h.TempDir = t.TempDir()
	h.Appliance.Poll = 10 * time.Millisecond
	t.Cleanup(func() { h.Close(context.Background()) })
	return sim, h
}

// disk is a 16 MiB disk with data in its first and last sector.
func disk(fill byte) ([]byte, bootpoint.Delta) {
	b := make([]byte, 16<<20)
	copy(b, bytes.Repeat([]byte{fill}, 512))
	copy(b[len(b)-512:], bytes.Repeat([]byte{fill}, 512))
	return b, bootpoint.Delta{Size: int64(len(b)), Extents: []aipimage.Extent{{Off: 0, Len: 512}, {Off: int64(len(b)) - 512, Len: 512}}, Source: bytes.NewReader(b)}
}

func qemuRead(t *testing.T, leaf string) []byte {
	t.Helper()
	qemu := oracle.Require(t, "qemu-img")
	oracle.Run(t, qemu, "check", leaf)
	raw := filepath.Join(t.TempDir(), "raw")
	oracle.Run(t, qemu, "convert", "-O", "raw", leaf, raw)
	b, err := os.ReadFile(raw)
	require.NoError(t, err)
	return b
}

// An NFC import lands as a thin vmfs disk: a descriptor and a sparse
// flat extent that qemu-img reads as the imported content.
func TestImportIsThin(t *testing.T) {
	sim, h := start(t)
	want, content := disk(0x11)
	_, err := h.CreateStandby(context.Background(), bootpoint.VMSpec{Name: "thin"}, []bootpoint.Delta{content})
	require.NoError(t, err)
	flat := filepath.Join(sim.Dir, "thin", "thin-flat.vmdk")
	st, err := os.Stat(flat)
	require.NoError(t, err)
	require.EqualValues(t, len(want), st.Size())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks > 0 {
		require.Less(t, sys.Blocks*512, st.Size()/4, "the flat extent is sparse")
	}
	require.True(t, bytes.Equal(want, qemuRead(t, filepath.Join(sim.Dir, "thin", "thin.vmdk"))))
}

// A snapshot tree: after a revert, the VM branches off an older snapshot;
// removing the branch point keeps its disk (two children need it),
// removing the tip of the branch the VM left deletes that tip's disk, and
// every remaining snapshot reads as before.
func TestBranchedTree(t *testing.T) {
	sim, h := start(t)
	ctx := context.Background()
	d0, c0 := disk(0x22)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "tree"}, []bootpoint.Delta{c0})
	require.NoError(t, err)
	s0, err := h.AddBootPoint(ctx, vm, nil, "s0", "")
	require.NoError(t, err)
	change := func(d []byte, off int64, fill byte) ([]byte, []bootpoint.Delta) {
		n := bytes.Clone(d)
		copy(n[off:], bytes.Repeat([]byte{fill}, 512))
		return n, []bootpoint.Delta{{Size: int64(len(n)), Extents: []aipimage.Extent{{Off: off, Len: 512}}, Source: bytes.NewReader(n), Base: bytes.NewReader(d)}}
	}
	d1, ch1 := change(d0, 4096, 0x33)
	s1, err := h.AddBootPoint(ctx, vm, ch1, "s1", "")
	require.NoError(t, err)
	require.NoError(t, h.Revert(ctx, vm, s0))
	d2, ch2 := change(d0, 8192, 0x44)
	s2, err := h.AddBootPoint(ctx, vm, ch2, "s2", "")
	require.NoError(t, err)
	reads := func(s bootpoint.Snapshot, want []byte) {
		t.Helper()
		files, err := h.ChainFiles(ctx, vm, s, 0)
		require.NoError(t, err)
		var p object.DatastorePath
		require.True(t, p.FromString(files[0]))
		require.True(t, bytes.Equal(want, qemuRead(t, filepath.Join(sim.Dir, p.Path))), s.Name)
	}
	unused := func() {
		t.Helper()
		u, err := sim.UnusedDiskFiles()
		require.NoError(t, err)
		require.Empty(t, u)
	}
	reads(s1, d1)
	reads(s2, d2)
	unused()

	require.NoError(t, h.RemoveSnapshot(ctx, vm, s0))
	require.FileExists(t, filepath.Join(sim.Dir, "tree", "tree-flat.vmdk"))
	reads(s1, d1)
	reads(s2, d2)
	unused()

	require.NoError(t, h.RemoveSnapshot(ctx, vm, s1))
	reads(s2, d2)
	unused()
	require.NoFileExists(t, filepath.Join(sim.Dir, "tree", "tree-000001.vmdk"))
}

// The snapshot calls whose disk semantics the simulator does not model
// fail instead of running without them.
func TestUnmodelledCallsFail(t *testing.T) {
	_, h := start(t)
	ctx := context.Background()
	_, c := disk(0x55)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "nope"}, []bootpoint.Delta{c})
	require.NoError(t, err)
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.ID}
	_, err = methods.RemoveAllSnapshots_Task(ctx, h.Client, &types.RemoveAllSnapshots_Task{This: ref})
	require.ErrorContains(t, err, "not modelled")
	_, err = methods.CreateSnapshotEx_Task(ctx, h.Client, &types.CreateSnapshotEx_Task{This: ref, Name: "x"})
	require.ErrorContains(t, err, "not modelled")
}

// WriteDisk writes into the VM's current leaf, which grows, and gives it a
// new content ID.
func TestWriteDisk(t *testing.T) {
	sim, h := start(t)
	ctx := context.Background()
	d0, c := disk(0x66)
	vm, err := h.CreateStandby(ctx, bootpoint.VMSpec{Name: "guest"}, []bootpoint.Delta{c})
	require.NoError(t, err)
	_, err = h.AddBootPoint(ctx, vm, nil, "s0", "")
	require.NoError(t, err)
	leaf := filepath.Join(sim.Dir, "guest", "guest-000001.vmdk")
	before, err := os.ReadFile(leaf)
	require.NoError(t, err)
	require.NoError(t, sim.WriteDisk("guest", 0, 1<<20, bytes.Repeat([]byte{0x77}, 1024)))
	after, err := os.ReadFile(leaf)
	require.NoError(t, err)
	require.NotEqual(t, before, after, "the descriptor's CID changed")
	want := bytes.Clone(d0)
	copy(want[1<<20:], bytes.Repeat([]byte{0x77}, 1024))
	require.True(t, bytes.Equal(want, qemuRead(t, leaf)))
	require.Error(t, sim.WriteDisk("guest", 1, 0, make([]byte, 512)))
	require.Error(t, sim.WriteDisk("nobody", 0, 0, make([]byte, 512)))
}
