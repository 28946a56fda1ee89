package vmdk

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// chainAllocated opens dir/name and returns what link depth holds.
func chainAllocated(t *testing.T, fsys fstest.MapFS, dir, name string, depth int) ([]Range, error) {
	t.Helper()
	var c *Chain
	var err error
	if fsys != nil {
		c, err = OpenChain(fsys, name)
	} else {
		c, err = OpenChain(os.DirFS(dir), name)
	}
	require.NoError(t, err)
	defer c.Close()
	return c.Allocated(depth)
}

// storedGrains returns the stream grains of data that hold a non-zero
// byte: what WriteStreamOptimized stores.
func storedGrains(disk []byte, data []Range) []Range {
	var out rangeList
	for _, run := range grainRuns(data) {
		for g := run.Off; g < run.End(); g++ {
			lo, hi := g*streamGrainSize, min((g+1)*streamGrainSize, int64(len(disk)))
			if !isZero(disk[lo:hi]) {
				out.add(lo, hi-lo)
			}
		}
	}
	return out.rs
}

// TestAllocatedStreamOptimized: the grains a streamOptimized file holds,
// as qemu-img map sees them and as computed from the data written.
func TestAllocatedStreamOptimized(t *testing.T) {
	oracle.Require(t, "qemu-img")
	r := rand.New(rand.NewPCG(21, 22))
	dir := t.TempDir()
	size := int64(70<<20 + 5*SectorSize)
	disk := mixedDisk(r, size)
	data := randomChanges(r, size)
	writeStream(t, dir, "s.vmdk", disk, StreamOptions{Data: data})
	want := storedGrains(disk, data)
	require.NotEmpty(t, want)
	got, err := chainAllocated(t, nil, dir, "s.vmdk", 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, want, qemuMapDepth0(t, filepath.Join(dir, "s.vmdk")))
}

// TestAllocatedDeltaChain: each link of a base and two deltas holds what
// it was written with, as qemu-img map sees the top link.
func TestAllocatedDeltaChain(t *testing.T) {
	oracle.Require(t, "qemu-img")
	r := rand.New(rand.NewPCG(23, 24))
	dir := t.TempDir()
	size := int64(10<<20 + 4096)
	disk := mixedDisk(r, size)
	parent, name := writeFlatBase(t, dir, "sb.vmdk", disk), "sb.vmdk"
	held := [][]Range{{{Off: 0, Len: size}}}
	for range 2 {
		changes := randomChanges(r, size)
		d := writeDelta(t, dir, name, parent, disk, changes)
		require.Equal(t, changes, qemuMapDepth0(t, filepath.Join(dir, d.DescriptorName)))
		held = append([][]Range{changes}, held...)
		parent, name = d.Descriptor, d.DescriptorName
	}
	for depth, want := range held {
		got, err := chainAllocated(t, nil, dir, name, depth)
		require.NoError(t, err)
		require.Equal(t, want, got, "depth %d", depth)
	}
	_, err := chainAllocated(t, nil, dir, name, 3)
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = chainAllocated(t, nil, dir, name, -1)
	require.ErrorIs(t, err, ErrInvalidInput)
}

// TestAllocatedQemuMade: files qemu-img wrote (preallocated grain tables,
// several extents, zeroed grains, a qemu child) against qemu-img map.
func TestAllocatedQemuMade(t *testing.T) {
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	oracle.Run(t, "qemu-img", "create", "-q", "-f", "raw", raw, "5G")
	writes := func(file, format string, ws ...string) {
		var args []string
		for _, w := range ws {
			args = append(args, "-c", w)
		}
		oracle.Run(t, "qemu-io", append(args, "-f", format, file)...)
	}
	writes(raw, "raw", "write -P 0x11 65536 4096", "write -P 0x22 2047M 2M", "write -P 0x33 4G 512", "write -P 0x44 5119M 1M")
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "twoGbMaxExtentSparse", "monolithicFlat"} {
		t.Run(sub, func(t *testing.T) {
			name := sub + ".vmdk"
			oracle.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, raw, filepath.Join(dir, name))
			got, err := chainAllocated(t, nil, dir, name, 0)
			require.NoError(t, err)
			require.Equal(t, qemuMapDepth0(t, filepath.Join(dir, name)), got)
			if sub == "monolithicFlat" {
				require.Equal(t, []Range{{Off: 0, Len: 5 << 30}}, got)
			} else {
				require.Len(t, got, 4)
			}
		})
	}
	t.Run("zeroed-grains-and-child", func(t *testing.T) {
		base := filepath.Join(dir, "z.vmdk")
		oracle.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", base, "64M")
		writes(base, "vmdk", "write -P 0x33 0 128k", "write -z 1M 192k", "write -P 0x34 63M 1M")
		child := filepath.Join(dir, "child.vmdk")
		oracle.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "z.vmdk", "-F", "vmdk", child)
		writes(child, "vmdk", "write -P 0x35 64k 70000", "write -z 32M 64k")
		for depth, file := range []string{child, base} {
			got, err := chainAllocated(t, nil, dir, "child.vmdk", depth)
			require.NoError(t, err)
			require.Equal(t, qemuMapDepth0(t, file), got, "depth %d", depth)
		}
	})
}

// patternDisk reads as a non-zero pattern everywhere, without memory.
type patternDisk struct{}

func (patternDisk) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = byte((off+int64(i))%251) | 1
	}
	return len(p), nil
}

// TestAllocatedHugeSparse: a 3 TiB streamOptimized disk holding a few
// grains, and a 2 TiB - 512 COWD delta, answer from their directories.
func TestAllocatedHugeSparse(t *testing.T) {
	dir := t.TempDir()
	size := int64(3 << 40)
	data := []Range{{Off: 0, Len: 512}, {Off: 1<<40 + 100<<10, Len: 200 << 10}, {Off: size - 512, Len: 512}}
	f, err := os.Create(filepath.Join(dir, "huge.vmdk"))
	require.NoError(t, err)
	_, err = WriteStreamOptimized(t.Context(), f, patternDisk{}, size, StreamOptions{Data: data, ExtentName: "huge.vmdk"})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	want := []Range{{Off: 0, Len: 64 << 10}, {Off: 1<<40 + 64<<10, Len: 256 << 10}, {Off: size - 64<<10, Len: 64 << 10}}
	got, err := chainAllocated(t, nil, dir, "huge.vmdk", 0)
	require.NoError(t, err)
	require.Equal(t, want, got)

	limit := int64(cowdMaxSectors) * SectorSize
	base := BaseDescriptor(CreateVMFS, ExtentVMFS, "big-flat.vmdk", limit, "")
	text, err := base.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "big.vmdk", text)
	d, err := NewDelta("big.vmdk", base, nil)
	require.NoError(t, err)
	writeFile(t, dir, d.DescriptorName, d.DescriptorText())
	ext, err := os.Create(filepath.Join(dir, d.ExtentName))
	require.NoError(t, err)
	defer ext.Close()
	c, err := CreateCOWD(ext, limit)
	require.NoError(t, err)
	for _, off := range []int64{1 << 40, limit - 4096} {
		_, err = c.WriteAt(bytes.Repeat([]byte{9}, 4096), off)
		require.NoError(t, err)
	}
	// The flat base is a sparse file: truncate makes it without writing.
	flat, err := os.Create(filepath.Join(dir, "big-flat.vmdk"))
	require.NoError(t, err)
	require.NoError(t, flat.Truncate(limit))
	require.NoError(t, flat.Close())
	want = []Range{{Off: 1 << 40, Len: 4096}, {Off: limit - 4096, Len: 4096}}
	require.Equal(t, want, c.Allocated())
	got, err = chainAllocated(t, nil, dir, d.DescriptorName, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestAllocatedExtents: a link of FLAT and ZERO extents.
func TestAllocatedExtents(t *testing.T) {
	desc := "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n" +
		"RW 2048 FLAT \"a-flat.vmdk\" 0\nRW 4096 ZERO\nRW 1024 FLAT \"a-flat.vmdk\" 2048\nRW 8 ZERO\n"
	fsys := fstest.MapFS{
		"a.vmdk":      {Data: []byte(desc)},
		"a-flat.vmdk": {Data: make([]byte, 3072*SectorSize)},
	}
	got, err := chainAllocated(t, fsys, "", "a.vmdk", 0)
	require.NoError(t, err)
	require.Equal(t, []Range{{Off: 0, Len: 1 << 20}, {Off: 3 << 20, Len: 512 << 10}}, got)
}

// TestAllocatedCorrupt: grain entries that the reader would refuse make
// Allocated fail too, with typed errors.
func TestAllocatedCorrupt(t *testing.T) {
	disk := make([]byte, 1<<20)
	copy(disk[70000:], "data")
	var stream bytes.Buffer
	_, err := WriteStreamOptimized(t.Context(), &stream, bytes.NewReader(disk), int64(len(disk)), StreamOptions{})
	require.NoError(t, err)
	b := stream.Bytes()
	foot, ok := decodeSparseHeader(b[len(b)-2*SectorSize:])
	require.True(t, ok)
	gt := int64(binary.LittleEndian.Uint32(b[foot.GDOffset*SectorSize:])) * SectorSize
	for _, tc := range []struct {
		name string
		at   int64
		v    uint32
	}{{"grain-beyond", gt + 4, 1 << 20}, {"table-beyond", int64(foot.GDOffset) * SectorSize, 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(b)
			binary.LittleEndian.PutUint32(bad[tc.at:], tc.v)
			_, err := chainAllocated(t, fstest.MapFS{"s.vmdk": {Data: bad}}, "", "s.vmdk", 0)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}

	cowd := cowdSample(t) // capacity 10241 sectors
	gt0 := int64(binary.LittleEndian.Uint32(cowd[4*SectorSize:])) * SectorSize
	binary.LittleEndian.PutUint32(cowd[gt0+8*4:], 1)
	fsys := fstest.MapFS{
		"sb.vmdk":              {Data: []byte("version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 10241 VMFS \"sb-flat.vmdk\"\n")},
		"sb-flat.vmdk":         {Data: nil},
		"sb-000001.vmdk":       {Data: []byte("version=1\nCID=00000002\nparentCID=00000001\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"sb.vmdk\"\nRW 10241 VMFSSPARSE \"sb-000001-delta.vmdk\"\n")},
		"sb-000001-delta.vmdk": {Data: cowd},
	}
	_, err = chainAllocated(t, fsys, "", "sb-000001.vmdk", 0)
	require.ErrorIs(t, err, ErrUnsupported)
}
