package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// sparseModel is what a hosted sparse extent over a parent must read as:
// the parent's content, the extent's own data (zeros where it has no
// grain) and the grains it holds, as byte ranges.
type sparseModel struct {
	parent, own []byte
	held        []Range
}

func newSparseModel(parent []byte) *sparseModel {
	return &sparseModel{parent: parent, own: make([]byte, len(parent))}
}

// disk is the content through the chain: the extent's grains, elsewhere
// the parent.
func (m *sparseModel) disk() []byte {
	d := bytes.Clone(m.parent)
	for _, h := range m.held {
		copy(d[h.Off:h.End()], m.own[h.Off:h.End()])
	}
	return d
}

// grains widens [off, off+n) to whole grains, the last clipped to the
// capacity.
func (m *sparseModel) grains(off, n int64) Range {
	lo := off / streamGrainSize * streamGrainSize
	hi := min(ceilDiv(off+n, streamGrainSize)*streamGrainSize, int64(len(m.own)))
	return Range{Off: lo, Len: hi - lo}
}

func (m *sparseModel) write(s *SparseFile, t testing.TB, r *rand.Rand, off, n int64) {
	t.Helper()
	p := make([]byte, n)
	for i := int64(0); i < n; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
	k, err := s.WriteAt(p, off)
	require.NoError(t, err)
	require.Equal(t, int(n), k)
	m.wrote(p, off)
}

// wrote records p written at off: a grain that was not held takes the
// parent's content first.
func (m *sparseModel) wrote(p []byte, off int64) {
	g := m.grains(off, int64(len(p)))
	for lo := g.Off; lo < g.End(); lo += streamGrainSize {
		hi := min(lo+streamGrainSize, g.End())
		if !contains(m.held, lo) {
			copy(m.own[lo:hi], m.parent[lo:hi])
		}
	}
	copy(m.own[off:], p)
	m.held = normalize(append(m.held, g))
}

// randomWrites writes sector-aligned ranges: single sectors and short
// runs inside grains, whole grains, runs across grain and grain table
// (32 MiB) edges, overwrites, a run over a whole table's span and the last
// sector.
func (m *sparseModel) randomWrites(s *SparseFile, t testing.TB, r *rand.Rand) {
	size := int64(len(m.own))
	sectors := size / SectorSize
	for range 30 {
		m.write(s, t, r, r.Int64N(sectors)*SectorSize, SectorSize)
	}
	for range 8 {
		off := r.Int64N(sectors) * SectorSize
		m.write(s, t, r, off, min(size-off, (r.Int64N(300)+1)*SectorSize))
	}
	for range 4 {
		off := r.Int64N(ceilDiv(size, streamGrainSize)) * streamGrainSize
		m.write(s, t, r, off, min(size-off, (r.Int64N(3)+1)*streamGrainSize))
	}
	for range 3 {
		edge := (r.Int64N(ceilDiv(size, sparseRegion)) + 1) * sparseRegion
		if edge >= size {
			edge = size / 2 / SectorSize * SectorSize
		}
		off := max(0, edge-int64(r.IntN(300)+1)*SectorSize)
		m.write(s, t, r, off, min(size-off, int64(r.IntN(400)+1)*SectorSize))
	}
	for range 6 {
		if len(m.held) > 0 {
			h := m.held[r.IntN(len(m.held))]
			at := h.Off + r.Int64N(h.Len/SectorSize)*SectorSize
			m.write(s, t, r, at, min(h.End()-at, int64(r.IntN(200)+1)*SectorSize))
		}
	}
	if size > sparseRegion+streamGrainSize {
		off := r.Int64N(size-sparseRegion-streamGrainSize) / SectorSize * SectorSize
		m.write(s, t, r, off, sparseRegion+streamGrainSize)
	}
	m.write(s, t, r, size-SectorSize, SectorSize)
}

// check compares the open extent with the model.
func (m *sparseModel) check(t testing.TB, s *SparseFile) {
	t.Helper()
	got := make([]byte, len(m.own))
	n, err := s.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, len(got), n)
	if !bytes.Equal(m.own, got) {
		t.Fatalf("own data differs: %s", firstDiff(m.own, got))
	}
	require.Equal(t, m.held, s.Allocated())
}

// createSparseFile makes dir/name with CreateSparse.
func createSparseFile(t testing.TB, dir, name string, capacity int64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	require.NoError(t, err)
	_, err = CreateSparse(f, capacity)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// openSparseFile opens dir/name with OpenSparse; close the file after.
func openSparseFile(t testing.TB, dir, name string) (*SparseFile, *os.File) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	s, err := OpenSparse(f, st.Size())
	require.NoError(t, err)
	require.Equal(t, st.Size(), s.Size())
	return s, f
}

func TestSparseFileCreate(t *testing.T) {
	for _, capacity := range []int64{512, 64 << 10, 64<<20 + 7*SectorSize, 3 << 40, 64 << 40} {
		m := &memFile{}
		s, err := CreateSparse(m, capacity)
		require.NoError(t, err)
		require.Equal(t, capacity, s.Capacity())
		require.Equal(t, int64(len(m.b)), s.Size())
		require.Zero(t, len(m.b)%streamGrainSize)
		require.Empty(t, s.Allocated())
		h, ok := decodeSparseHeader(m.b)
		require.True(t, ok)
		numGTs := ceilDiv(ceilDiv(capacity, streamGrainSize), gtesPerGT)
		dir := uint64(ceilDiv(numGTs*4, SectorSize))
		require.Equal(t, sparseHeader{Version: 1, Flags: 3, Capacity: uint64(capacity / SectorSize),
			GrainSize: 128, NumGTEsPerGT: 512, RGDOffset: 1, GDOffset: 1 + dir,
			OverHead: uint64(len(m.b) / SectorSize)}, h)
		require.True(t, isZero(m.b[SectorSize:]))
		again, err := OpenSparse(m, int64(len(m.b)))
		require.NoError(t, err)
		require.Equal(t, capacity, again.Capacity())
		// The last sector: a table pair and a grain appended.
		_, err = again.WriteAt(bytes.Repeat([]byte{9}, SectorSize), capacity-SectorSize)
		require.NoError(t, err)
		require.Equal(t, int64(len(m.b)), again.Size())
		lo := (capacity - 1) / streamGrainSize * streamGrainSize
		want := []Range{{Off: lo, Len: capacity - lo}}
		require.Equal(t, want, again.Allocated())
		again, err = OpenSparse(m, int64(len(m.b)))
		require.NoError(t, err)
		require.Equal(t, want, again.Allocated())
		require.Equal(t, int64(h.OverHead)*SectorSize+2*gtesPerGT*4+streamGrainSize, again.Size())
	}
	_, err := CreateSparse(&memFile{}, 1<<49+512)
	require.ErrorIs(t, err, ErrTooLarge)
	for _, bad := range []int64{0, -512, 1000} {
		_, err := CreateSparse(&memFile{}, bad)
		require.ErrorIs(t, err, ErrInvalidInput)
	}
	_, err = CreateSparse(&memFile{failAt: 1}, 1<<20)
	require.ErrorIs(t, err, errCrash)
}

// TestSparseFileInMemory writes into extents of a few shapes and reopens
// them, against the model.
func TestSparseFileInMemory(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, capacity := range []int64{3 * SectorSize, 100<<10 + 5*SectorSize, 70<<20 + 3*SectorSize} {
		parent := mixedDisk(r, capacity)
		m := newSparseModel(parent)
		file := &memFile{}
		s, err := CreateSparse(file, capacity)
		require.NoError(t, err)
		for range 3 {
			s.SetBacking(bytes.NewReader(parent))
			m.randomWrites(s, t, r)
			m.check(t, s)
			require.Equal(t, int64(len(file.b)), s.Size())
			s, err = OpenSparse(file, int64(len(file.b)))
			require.NoError(t, err)
			m.check(t, s)
			requireRedundantEqual(t, file.b)
		}
	}
}

// requireRedundantEqual checks that every redundant grain table holds what
// its primary does.
func requireRedundantEqual(t testing.TB, b []byte) {
	t.Helper()
	s, err := OpenSparse(&memFile{b: b}, int64(len(b)))
	require.NoError(t, err)
	require.Empty(t, s.stale)
	for region, e := range s.gd {
		if e != 0 {
			require.Equal(t, b[int64(e)*SectorSize:][:gtesPerGT*4], b[int64(s.rgd[region])*SectorSize:][:gtesPerGT*4])
		}
	}
}

func TestSparseFileWriteLimits(t *testing.T) {
	capacity := int64(3<<20 + 1024)
	s, err := CreateSparse(&memFile{}, capacity)
	require.NoError(t, err)
	sector := make([]byte, SectorSize)
	for _, w := range []struct {
		off int64
		n   int
	}{{1, 512}, {512, 100}, {-512, 512}, {capacity, 512}, {capacity - 512, 1024}, {4 << 20, 0}} {
		_, err := s.WriteAt(make([]byte, w.n), w.off)
		require.ErrorIs(t, err, ErrInvalidInput, "write of %d at %d", w.n, w.off)
	}
	n, err := s.WriteAt(nil, capacity)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.ReadAt(sector, -1)
	require.ErrorIs(t, err, ErrInvalidInput)
	n, err = s.ReadAt(sector, capacity-100)
	require.Equal(t, 100, n)
	require.ErrorIs(t, err, io.EOF)

	// Unaligned reads of the own data; absent grains read as zeros.
	p := bytes.Repeat([]byte{0xab}, 2048)
	_, err = s.WriteAt(p, 2<<20-1024)
	require.NoError(t, err)
	got := make([]byte, 3000)
	_, err = s.ReadAt(got, 2<<20-1024-700)
	require.NoError(t, err)
	want := append(append(make([]byte, 700), p...), make([]byte, 3000-700-2048)...)
	require.Equal(t, want, got)

	// A failing backing leaves the extent as it was.
	s.SetBacking(failingReader{})
	before := s.Allocated()
	_, err = s.WriteAt(sector, 0)
	require.ErrorIs(t, err, errCrash)
	require.Equal(t, before, s.Allocated())
	_, err = s.WriteAt(make([]byte, streamGrainSize), 0)
	require.NoError(t, err, "a whole grain needs no backing, and the extent still takes writes")

	// A file about to pass 2 TiB refuses new grains, but not overwrites.
	s.size = (sparseMaxFileSectors - 100) * SectorSize
	_, err = s.WriteAt(sector, 1<<20)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = s.WriteAt(sector, 2<<20-1024)
	require.NoError(t, err, "an overwrite needs no space")
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errCrash }

// TestSparseFileCrash stops the host at every write of a WriteAt that
// overwrites grains, fills partial grains from the parent, appends grains
// and a new grain table pair: the file left behind must open, read in
// every sector (through the parent) either the old or the new content,
// point at no unwritten grain, and take writes.
func TestSparseFileCrash(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	capacity := int64(40 << 20)
	parent := mixedDisk(r, capacity)
	start := &memFile{}
	s, err := CreateSparse(start, capacity)
	require.NoError(t, err)
	m := newSparseModel(parent)
	s.SetBacking(bytes.NewReader(parent))
	m.write(s, t, r, 31<<20+3*SectorSize, 200<<10) // region 0 has a table
	old := m.disk()
	p := bytes.Repeat([]byte{0x77}, 2<<20+5*SectorSize)
	off := int64(31<<20 + 100<<10 + SectorSize)
	next := newSparseModel(parent)
	next.own, next.held = bytes.Clone(m.own), slices.Clone(m.held)
	next.wrote(p, off)
	want := next.disk()
	total := 0
	for fail := 1; ; fail++ {
		f := &memFile{b: bytes.Clone(start.b), failAt: fail}
		s, err := OpenSparse(f, int64(len(f.b)))
		require.NoError(t, err)
		s.SetBacking(bytes.NewReader(parent))
		_, err = s.WriteAt(p, off)
		if err == nil {
			total = f.writes
			break
		}
		require.ErrorIs(t, err, errCrash)
		writes := f.writes
		_, err = s.WriteAt(p[:SectorSize], 0)
		require.Error(t, err)
		require.Equal(t, writes, f.writes, "a SparseFile must refuse writes after a failed one")

		f.failAt = 0
		after, err := OpenSparse(f, int64(len(f.b)))
		require.NoError(t, err, "crash at write %d", fail)
		seen := newSparseModel(parent)
		_, err = after.ReadAt(seen.own, 0)
		require.NoError(t, err)
		seen.held = after.Allocated()
		got := seen.disk()
		for g := int64(0); g < capacity; g += streamGrainSize {
			a, b, c := got[g:g+streamGrainSize], old[g:g+streamGrainSize], want[g:g+streamGrainSize]
			require.True(t, bytes.Equal(a, b) || bytes.Equal(a, c), "crash at write %d: grain at %d is neither old nor new", fail, g)
		}
		// The recovered file takes the write, repairs its redundant tables
		// and reads the new content.
		after.SetBacking(bytes.NewReader(parent))
		_, err = after.WriteAt(p, off)
		require.NoError(t, err)
		requireRedundantEqual(t, f.b)
		again, err := OpenSparse(f, int64(len(f.b)))
		require.NoError(t, err)
		seen = newSparseModel(parent)
		_, err = again.ReadAt(seen.own, 0)
		require.NoError(t, err)
		seen.held = again.Allocated()
		require.True(t, bytes.Equal(want, seen.disk()), "crash at write %d", fail)
	}
	require.Greater(t, total, 8, "the write should take several steps")
}

// TestSparseFileConcurrent writes disjoint ranges from several goroutines
// while others read (run with -race).
func TestSparseFileConcurrent(t *testing.T) {
	m := &memFile{}
	capacity := int64(80 << 20)
	s, err := CreateSparse(m, capacity)
	require.NoError(t, err)
	checkConcurrentWrites(t, s, capacity, 48*8, func() (writableExtent, error) { return OpenSparse(m, int64(len(m.b))) })
}

// sparseSample returns a small valid extent made by CreateSparse: 1 MiB
// and 3 sectors of capacity (two grain tables, the last grain partial),
// grains in both tables.
func sparseSample(t testing.TB) []byte {
	m := &memFile{}
	s, err := CreateSparse(m, 33<<20+3*SectorSize)
	require.NoError(t, err)
	_, err = s.WriteAt(bytes.Repeat([]byte{1}, 4096), 4096)
	require.NoError(t, err)
	_, err = s.WriteAt(bytes.Repeat([]byte{2}, 1024), 33<<20)
	require.NoError(t, err)
	return m.b
}

func TestSparseFileCorrupt(t *testing.T) {
	good := sparseSample(t)
	le := binary.LittleEndian
	put := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
	}
	put64 := func(off int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	h, _ := decodeSparseHeader(good)
	gd, rgd := int(h.GDOffset)*SectorSize, int(h.RGDOffset)*SectorSize
	gt0 := int(le.Uint32(good[gd:])) * SectorSize
	gt1 := int(le.Uint32(good[gd+4:])) * SectorSize
	rgt0 := int(le.Uint32(good[rgd:])) * SectorSize
	grain := le.Uint32(good[gt0:])          // sector of grain 0
	last := int(le.Uint32(good[gt1+16*4:])) // sector of grain 528, the last
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"empty", cut(0), ErrCorrupt},
		{"half-header", cut(300), ErrCorrupt},
		{"header-only", cut(512), ErrCorrupt},
		{"gd-cut", cut(gd + 4), ErrCorrupt},
		{"table-cut", cut(gt1 + 100), ErrCorrupt},
		{"grain-cut", cut(last*SectorSize + 512), ErrCorrupt},
		{"magic", put(0, 0x12345678), ErrCorrupt},
		{"version-0", put(4, 0), ErrUnsupported},
		{"version-4", put(4, 4), ErrUnsupported},
		{"compressed", put(8, 3|flagCompressed), ErrUnsupported},
		{"markers", put(8, 3|flagMarkers), ErrUnsupported},
		{"stream", put64(56, gdAtEnd), ErrUnsupported},
		{"newline", func(b []byte) []byte { b[74] = '\n'; return b }, ErrCorrupt},
		{"no-capacity", put64(12, 0), ErrCorrupt},
		{"huge-capacity", put64(12, 1<<41), ErrCorrupt},
		{"capacity-needs-more-tables", put64(12, 1<<30), ErrCorrupt},
		{"grain-0", put64(20, 0), ErrCorrupt},
		{"grain-3", put64(20, 3), ErrCorrupt},
		{"grain-8", put64(20, 8), ErrUnsupported},
		{"gtes-0", put(44, 0), ErrCorrupt},
		{"gtes-256", put(44, 256), ErrUnsupported},
		{"descriptor-beyond", put64(28, 1<<20), ErrCorrupt},
		{"descriptor-size-beyond", func(b []byte) []byte { le.PutUint64(b[28:], 1); le.PutUint64(b[36:], 1<<62); return b }, ErrCorrupt},
		{"descriptor-over-gd", func(b []byte) []byte { le.PutUint64(b[28:], 1); le.PutUint64(b[36:], 4); return b }, ErrCorrupt},
		{"gd-0", put64(56, 0), ErrCorrupt},
		{"gd-beyond", put64(56, 1<<40), ErrCorrupt},
		{"gd-on-rgd", put64(56, 1), ErrCorrupt},
		{"rgd-0", put64(48, 0), ErrCorrupt},
		{"rgd-beyond", put64(48, 1<<33), ErrCorrupt},
		{"no-redundant-table", put(rgd, 0), ErrCorrupt},
		{"table-on-gd", put(gd, uint32(h.GDOffset)), ErrCorrupt},
		{"table-beyond", put(gd, 1<<24), ErrCorrupt},
		{"tables-overlap", put(gd+4, uint32(gt0/SectorSize+2)), ErrCorrupt},
		{"redundant-on-primary", put(rgd, uint32(gt0/SectorSize)), ErrCorrupt},
		{"grain-one", put(gt0+4, 1), ErrCorrupt},
		{"grain-in-gd", put(gt0+4, uint32(h.GDOffset)), ErrCorrupt},
		{"grain-on-table", put(gt0+4, uint32(rgt0/SectorSize-3)), ErrCorrupt},
		{"grain-beyond", put(gt0+4, 1<<24), ErrCorrupt},
		{"grain-past-capacity", put(gt1+17*4, grain), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(good))
			_, err := OpenSparse(&memFile{b: b}, int64(len(b)))
			require.ErrorIs(t, err, tc.want)
		})
	}
	// A file shorter than the length it is opened with.
	_, err := OpenSparse(&memFile{b: good[:4096]}, int64(len(good)))
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = OpenSparse(&memFile{b: good}, -1)
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = OpenSparse(nil, 0)
	require.ErrorIs(t, err, ErrInvalidInput)
	s, err := OpenSparse(&memFile{b: good}, int64(len(good)))
	require.NoError(t, err)
	require.Equal(t, []Range{{Off: 0, Len: 64 << 10}, {Off: 33 << 20, Len: 3 * SectorSize}}, s.Allocated())
	// A redundant table that differs from its primary (a crash between
	// the two writes) is rewritten at the next write.
	b := bytes.Clone(good)
	le.PutUint32(b[rgt0:], 0)
	s, err = OpenSparse(&memFile{b: b}, int64(len(b)))
	require.NoError(t, err)
	require.Len(t, s.stale, 1)
	_, err = s.WriteAt(make([]byte, SectorSize), 20<<20)
	require.NoError(t, err)
	requireRedundantEqual(t, b)
	// A redundant table without its primary (a crash between the two
	// directory writes) is unused, and replaced when the region gets a
	// table.
	b = bytes.Clone(good)
	le.PutUint32(b[gd:], 0)
	s, err = OpenSparse(&memFile{b: b}, int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, []Range{{Off: 33 << 20, Len: 3 * SectorSize}}, s.Allocated())
	m := &memFile{b: b}
	s, err = OpenSparse(m, int64(len(b)))
	require.NoError(t, err)
	_, err = s.WriteAt(make([]byte, SectorSize), 20<<20)
	require.NoError(t, err)
	require.NotEqual(t, uint32(rgt0/SectorSize), le.Uint32(m.b[rgd:]))
	requireRedundantEqual(t, m.b)
}

// firstDiff describes where a and b (of one length) first differ.
func firstDiff(a, b []byte) string {
	for i := range a {
		if a[i] != b[i] {
			j := i
			for j < len(a) && a[j] != b[j] {
				j++
			}
			return fmt.Sprintf("bytes [%d,%d) differ", i, j)
		}
	}
	return "none differ"
}
