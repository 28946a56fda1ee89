package esx

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/esx/esxsim"
	"github.com/standbykit/standbykit/esx/internal/vmdisks"
	"github.com/standbykit/standbykit/internal/oracle"
)

// simConfig is how to connect to a simulator.
func simConfig(sim *esxsim.Simulator) Config {
	return Config{URL: sim.URL(), Insecure: true, Datastore: esxsim.Datastore}
}

// startHost starts a simulator on a fresh temporary folder and connects.
func startHost(t *testing.T) (*esxsim.Simulator, *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sim, err := esxsim.Start(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	h, err := Connect(ctx, simConfig(sim))
	require.NoError(t, err)
	h.TempDir = t.TempDir()
	h.Appliance = simAppliance
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return sim, h
}

// simAppliance is the writer appliance as the simulator runs it.
var simAppliance = ApplianceOptions{WithoutBootImage: true, Poll: 10 * time.Millisecond, Timeout: time.Minute}

// testDiskSizes are the disks of the test VMs: 2 MiB, and 3 MiB + 512
// bytes (not a whole number of 2 MiB grain-table regions).
var testDiskSizes = []int64{2 << 20, 3<<20 + 512}

// randomData fills b from seed.
func randomData(seed uint64, b []byte) {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// baseContents are the disks of a new test VM: data in a few places,
// zeros elsewhere.
func baseContents(seed uint64) ([]bootpoint.Delta, [][]byte) {
	var deltas []bootpoint.Delta
	var data [][]byte
	for d, size := range testDiskSizes {
		b := make([]byte, size)
		exts := []aipimage.Extent{{Off: 0, Len: 64 << 10}, {Off: 1<<20 - 4096, Len: 8192 + 512}, {Off: size - 1024, Len: 1024}}
		for i, e := range exts {
			randomData(seed*31+uint64(d*7+i), b[e.Off:e.Off+e.Len])
		}
		deltas = append(deltas, bootpoint.Delta{Disk: d, Size: size, Extents: exts, Source: bytes.NewReader(b)})
		data = append(data, b)
	}
	return deltas, data
}

// nextChanges changes both disks of cur (point k): a few sector runs,
// one across the 2 MiB region boundary; cur is not modified.
func nextChanges(k int, cur [][]byte) ([]bootpoint.Delta, [][]byte) {
	var deltas []bootpoint.Delta
	var next [][]byte
	for d, old := range cur {
		b := bytes.Clone(old)
		size := int64(len(b))
		across := int64(2<<20 - 1024) // a grain-table region boundary
		if across+2048 > size {
			across = 1<<20 - 1024
		}
		exts := []aipimage.Extent{
			{Off: int64(k%7) * 8 * 512, Len: 512 * int64(1+k%5)},
			{Off: across, Len: 2048},
			{Off: size - 512*int64(1+k%3), Len: 512},
		}
		if d == 1 {
			exts = exts[1:]
		}
		for i, e := range exts {
			randomData(uint64(k*1000+d*10+i), b[e.Off:e.Off+e.Len])
		}
		deltas = append(deltas, bootpoint.Delta{Disk: d, Size: size, Extents: exts, Source: bytes.NewReader(b), Base: bytes.NewReader(old)})
		next = append(next, b)
	}
	return deltas, next
}

// createStandby creates a VM with the test disks and returns it with
// their content.
func createStandby(t *testing.T, h *Host, spec bootpoint.VMSpec) (bootpoint.VM, [][]byte) {
	t.Helper()
	deltas, data := baseContents(1)
	vm, err := h.CreateStandby(context.Background(), spec, deltas)
	require.NoError(t, err)
	return vm, data
}

// readDisk reads a snapshot's disk back through the Hypervisor.
func readDisk(t *testing.T, h *Host, vm bootpoint.VM, s bootpoint.Snapshot, d int) []byte {
	t.Helper()
	disk, err := h.OpenDisk(context.Background(), vm, s, d)
	require.NoError(t, err)
	defer disk.Close()
	b := make([]byte, disk.Size())
	_, err = disk.ReadAt(b, 0)
	require.NoError(t, err)
	return b
}

// snapshotLeaf is the local path of the leaf descriptor that snapshot s
// recorded for disk d.
func snapshotLeaf(t *testing.T, h *Host, sim *esxsim.Simulator, vm bootpoint.VM, s bootpoint.Snapshot, d int) string {
	t.Helper()
	st, err := h.load(context.Background(), vm)
	require.NoError(t, err)
	tr, err := findSnapshot(st, s)
	require.NoError(t, err)
	cfg, err := h.snapshotConfig(context.Background(), tr.Snapshot)
	require.NoError(t, err)
	rel, err := relName(st, vmdisks.Flat(vmdisks.Of(cfg)[d]).FileName)
	require.NoError(t, err)
	return filepath.Join(sim.Dir, st.dir, rel)
}

// qemuRead reads a disk chain on the simulator's datastore with qemu-img
// after checking it, the independent oracle.
func qemuRead(t *testing.T, leaf string) []byte {
	t.Helper()
	qemu := oracle.Require(t, "qemu-img")
	raw := filepath.Join(t.TempDir(), "disk.raw")
	oracle.Run(t, qemu, "convert", "-O", "raw", leaf, raw)
	b, err := os.ReadFile(raw)
	require.NoError(t, err)
	return b
}

// requireNoStrayFiles checks that every disk file on the datastore is
// used by some chain.
func requireNoStrayFiles(t *testing.T, sim *esxsim.Simulator) {
	t.Helper()
	unused, err := sim.UnusedDiskFiles()
	require.NoError(t, err)
	require.Empty(t, unused, "disk files no chain uses")
}
