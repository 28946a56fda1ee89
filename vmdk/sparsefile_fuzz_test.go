package vmdk

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// compactSparse lays out a small hosted sparse extent by hand, metadata
// packed without padding, so that fuzzing spends its time on metadata:
// header, optional embedded descriptor, redundant directory (when
// redundant), directory, then per region with grains its redundant table
// and table, then the grains (only as long as the capacity needs).
// grains maps grain numbers to a fill byte; fill 0 makes a zero grain
// (entry 1, version 2, zeroed-grain flag).
func compactSparse(capacitySectors int64, redundant bool, desc string, grains map[int64]byte) []byte {
	numGTs := ceilDiv(ceilDiv(capacitySectors, streamGrainSectors), gtesPerGT)
	dirSectors := ceilDiv(numGTs*4, SectorSize)
	h := sparseHeader{Version: 1, Flags: flagNewlineTest, Capacity: uint64(capacitySectors), GrainSize: streamGrainSectors, NumGTEsPerGT: gtesPerGT}
	next := int64(1)
	if desc != "" {
		h.DescriptorOffset, h.DescriptorSize = 1, uint64(ceilDiv(int64(len(desc)), SectorSize))
		next += int64(h.DescriptorSize)
	}
	if redundant {
		h.Flags |= flagRedundantGD
		h.RGDOffset = uint64(next)
		next += dirSectors
	}
	h.GDOffset = uint64(next)
	next += dirSectors
	gd, rgd := make([]uint32, numGTs), make([]uint32, numGTs)
	for _, g := range slices.Sorted(maps.Keys(grains)) {
		if region := g / gtesPerGT; gd[region] == 0 {
			if redundant {
				rgd[region] = uint32(next)
				next += gtSectors
			}
			gd[region] = uint32(next)
			next += gtSectors
		}
	}
	h.OverHead = uint64(next)
	gts := make([][]uint32, numGTs)
	var data []byte
	for _, g := range slices.Sorted(maps.Keys(grains)) {
		region := g / gtesPerGT
		if gts[region] == nil {
			gts[region] = make([]uint32, gtesPerGT)
		}
		if grains[g] == 0 {
			h.Version, h.Flags = 2, h.Flags|flagZeroedGrain
			gts[region][g%gtesPerGT] = 1
			continue
		}
		gts[region][g%gtesPerGT] = uint32(next)
		n := min(streamGrainSectors, capacitySectors-g*streamGrainSectors)
		data = append(data, bytes.Repeat([]byte{grains[g]}, int(n*SectorSize))...)
		next += n
	}
	b := make([]byte, int64(h.OverHead)*SectorSize)
	h.encode(b)
	copy(b[SectorSize:], desc)
	put := func(at int64, v []uint32) { copy(b[at*SectorSize:], encodeEntries(v)) }
	put(int64(h.GDOffset), gd)
	if redundant {
		put(int64(h.RGDOffset), rgd)
	}
	for region, gt := range gts {
		if gt != nil {
			put(int64(gd[region]), gt)
			if redundant {
				put(int64(rgd[region]), gt)
			}
		}
	}
	return append(b, data...)
}

const sparseSeedDesc = "version=1\nCID=00000003\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 300 SPARSE \"disk.vmdk\"\n"
const sparseSeedChild = "version=1\nCID=00000002\nparentCID=00000001\ncreateType=\"twoGbMaxExtentSparse\"\nparentFileNameHint=\"sb.vmdk\"\nRW 300 SPARSE \"sb-000001-sparse.vmdk\"\n"
const sparseSeedBase = "version=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 300 VMFS \"sb-flat.vmdk\"\n"

// sparseSeedFlat is the base under FuzzSparseFile's child, made once: it
// is read-only.
var sparseSeedFlat = bytes.Repeat([]byte{7}, 300*SectorSize)

// FuzzSparseFile reads a hosted sparse extent (a packed input, see
// unpackFile) through a chain (as a child's SPARSE extent, and as a
// monolithic file), and opens it with OpenSparse, writes into it and opens
// the result again.
func FuzzSparseFile(f *testing.F) {
	f.Add(packFile(compactSparse(300, true, "", map[int64]byte{0: 1, 2: 2})))
	f.Add(packFile(compactSparse(300, false, sparseSeedDesc, map[int64]byte{1: 3})))
	f.Add(packFile(compactSparse(300, true, sparseSeedDesc, map[int64]byte{0: 0, 2: 4})))
	f.Add(packFile(compactSparse(300, true, "", nil)))
	f.Add(packFile(compactSparse(gtesPerGT*streamGrainSectors+16, true, "", map[int64]byte{3: 5, gtesPerGT: 6})))
	f.Fuzz(func(t *testing.T, in []byte) {
		b := unpackFile(in)
		fsys := fstest.MapFS{
			"sb.vmdk":               {Data: []byte(sparseSeedBase)},
			"sb-flat.vmdk":          {Data: sparseSeedFlat},
			"sb-000001.vmdk":        {Data: []byte(sparseSeedChild)},
			"sb-000001-sparse.vmdk": {Data: b},
		}
		readOrError(t, fsys, "sb-000001.vmdk")
		readOrError(t, fstest.MapFS{"disk.vmdk": {Data: b}}, "disk.vmdk")
		writeSparseOrError(t, b)
	})
}

// patternReader reads as a disk of one byte value: a parent.
type patternReader byte

func (p patternReader) ReadAt(b []byte, _ int64) (int, error) {
	for i := range b {
		b[i] = byte(p)
	}
	return len(b), nil
}

// writeSparseOrError opens b with OpenSparse; when it opens, the first and
// last sectors are written over a backing and the file must open again
// holding them, with the rest of a new grain from the backing.
func writeSparseOrError(t *testing.T, b []byte) {
	m := &memFile{b: bytes.Clone(b)}
	s, err := OpenSparse(m, int64(len(b)))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("untyped OpenSparse error: %v", err)
		}
		return
	}
	held := s.Allocated()
	buf := make([]byte, 4096)
	if _, err := s.ReadAt(buf, 0); err != nil && err != io.EOF {
		t.Fatalf("reading a checked extent: %v", err)
	}
	s.SetBacking(patternReader(0x33))
	sector := bytes.Repeat([]byte{0x5a}, SectorSize)
	last := s.Capacity() - SectorSize
	for _, off := range []int64{0, last} {
		if _, err := s.WriteAt(sector, off); err != nil {
			if errors.Is(err, ErrTooLarge) {
				return // a file near 2 TiB cannot take a grain
			}
			t.Fatalf("writing at %d: %v", off, err)
		}
	}
	if s.Size() != int64(len(m.b)) {
		t.Fatalf("Size %d, file %d bytes", s.Size(), len(m.b))
	}
	again, err := OpenSparse(m, int64(len(m.b)))
	if err != nil {
		t.Fatalf("our own writes left a file that does not open: %v", err)
	}
	if len(again.stale) != 0 {
		t.Fatalf("redundant tables differ after our writes: %v", again.stale)
	}
	for _, off := range []int64{0, last} {
		if _, err := again.ReadAt(buf[:SectorSize], off); err != nil || !bytes.Equal(buf[:SectorSize], sector) {
			t.Fatalf("sector at %d not written back (%v)", off, err)
		}
	}
	// Sector 1 of the new grain 0 comes from the backing, unless it is the
	// last sector, written above (a disk of two sectors).
	if !contains(held, 0) && last > SectorSize {
		n := int64(2 * SectorSize)
		if _, err := again.ReadAt(buf[:n], 0); err != nil || !bytes.Equal(buf[SectorSize:n], bytes.Repeat([]byte{0x33}, int(n-SectorSize))) {
			t.Fatalf("a new grain is not filled from the backing (%v)", err)
		}
	}
	grain := func(off int64) Range {
		lo := off / streamGrainSize * streamGrainSize
		return Range{Off: lo, Len: min(lo+streamGrainSize, s.Capacity()) - lo}
	}
	want := normalize(append(held, grain(0), grain(last)))
	if got := again.Allocated(); !slices.Equal(got, want) {
		t.Fatalf("allocated %v after writes, want %v", got, want)
	}
	require.Equal(t, s.Allocated(), want)
}

// TestCompactSparseSeeds: the hand-laid fuzz seeds are valid extents that
// OpenSparse and OpenChain read as laid out.
func TestCompactSparseSeeds(t *testing.T) {
	child := compactSparse(300, true, "", map[int64]byte{0: 1, 2: 2})
	s, err := OpenSparse(&memFile{b: child}, int64(len(child)))
	require.NoError(t, err)
	require.Equal(t, []Range{{Off: 0, Len: 64 << 10}, {Off: 128 << 10, Len: 300*SectorSize - 128<<10}}, s.Allocated())
	want := bytes.Repeat([]byte{7}, 300*SectorSize)
	copy(want, bytes.Repeat([]byte{1}, 64<<10))
	copy(want[128<<10:], bytes.Repeat([]byte{2}, 300*SectorSize-128<<10))
	fsys := fstest.MapFS{
		"sb.vmdk":               {Data: []byte(sparseSeedBase)},
		"sb-flat.vmdk":          {Data: bytes.Repeat([]byte{7}, 300*SectorSize)},
		"sb-000001.vmdk":        {Data: []byte(sparseSeedChild)},
		"sb-000001-sparse.vmdk": {Data: child},
	}
	c, err := OpenChain(fsys, "sb-000001.vmdk")
	require.NoError(t, err)
	got := make([]byte, c.Size())
	_, err = c.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)

	mono := compactSparse(300, true, sparseSeedDesc, map[int64]byte{0: 0, 2: 4})
	s, err = OpenSparse(&memFile{b: mono}, int64(len(mono)))
	require.NoError(t, err)
	require.True(t, s.zeroGrain)
	require.Equal(t, []Range{{Off: 0, Len: 64 << 10}, {Off: 128 << 10, Len: 300*SectorSize - 128<<10}}, s.Allocated())
	c, err = OpenChain(fstest.MapFS{"disk.vmdk": {Data: mono}}, "disk.vmdk")
	require.NoError(t, err)
	_, err = c.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{4}, 300*SectorSize-128<<10), got[128<<10:])
	require.True(t, isZero(got[:128<<10]))
}
