package vmdk

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// memFile is an in-memory ReadWriterAt that grows with zeros. From the
// failAt-th write on (counting from 1; 0 never), writes fail without
// effect, as if the host had crashed.
type memFile struct {
	mu     sync.Mutex
	b      []byte
	writes int
	failAt int
}

var errCrash = errors.New("simulated crash")

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.failAt > 0 && m.writes >= m.failAt {
		return 0, errCrash
	}
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// cowdModel is what a COWD extent over a parent must read as: the disk
// through the chain, the extent's own data, and the sectors it holds.
type cowdModel struct {
	disk, own []byte
	held      []Range
}

func (m *cowdModel) write(c *COWDFile, t *testing.T, r *rand.Rand, off, n int64) {
	t.Helper()
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	k, err := c.WriteAt(p, off)
	require.NoError(t, err)
	require.Equal(t, int(n), k)
	copy(m.disk[off:], p)
	copy(m.own[off:], p)
	m.held = normalize(append(m.held, Range{Off: off, Len: n}))
}

// randomWrites writes sector-aligned ranges: scattered sectors, longer
// runs, runs across 2 MiB region edges, overwrites of what was written
// before, a whole region and the last sector.
func (m *cowdModel) randomWrites(c *COWDFile, t *testing.T, r *rand.Rand) {
	size := int64(len(m.disk))
	sectors := size / SectorSize
	for range 40 {
		m.write(c, t, r, r.Int64N(sectors)*SectorSize, SectorSize)
	}
	for range 8 {
		off := r.Int64N(sectors) * SectorSize
		m.write(c, t, r, off, min(size-off, (r.Int64N(600)+1)*SectorSize))
	}
	for range 4 {
		edge := (r.Int64N(size/cowdRegion) + 1) * cowdRegion
		m.write(c, t, r, edge-int64(r.IntN(64)+1)*SectorSize, int64(r.IntN(128)+65)*SectorSize)
	}
	for range 6 {
		if len(m.held) > 0 {
			h := m.held[r.IntN(len(m.held))]
			m.write(c, t, r, h.Off, min(h.Len, 8*SectorSize))
		}
	}
	region := r.Int64N(size/cowdRegion) * cowdRegion
	m.write(c, t, r, region, cowdRegion+SectorSize)
	m.write(c, t, r, size-SectorSize, SectorSize)
}

// checkCOWDFile checks the open extent and its file against the model.
func checkCOWDFile(t *testing.T, c *COWDFile, m *cowdModel, file []byte) {
	t.Helper()
	got := make([]byte, len(m.own))
	n, err := c.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, len(got), n)
	require.True(t, bytes.Equal(m.own, got), "own data differs")
	require.Equal(t, m.held, c.Allocated())
	require.Equal(t, int64(len(file)), c.Size())
	require.Zero(t, len(file)%extentPad, "file length %d not in 64 KiB steps", len(file))
	free := int64(binary.LittleEndian.Uint32(file[cowdFreeSectorField:]))
	require.Less(t, free*SectorSize, int64(len(file)), "freeSector must lie below the file's length")
	require.Equal(t, c.free, free, "header freeSector")
}

// qemuMapDepth0 returns the ranges qemu-img map finds in the top link.
func qemuMapDepth0(t *testing.T, file string) []Range {
	t.Helper()
	out := oracle.Run(t, "qemu-img", "map", "--output=json", file)
	var m []struct {
		Start, Length int64
		Depth         int
		Present       bool
	}
	require.NoError(t, json.Unmarshal(out, &m))
	var rs []Range
	for _, e := range m {
		if e.Depth == 0 && e.Present {
			rs = append(rs, Range{Off: e.Start, Len: e.Length})
		}
	}
	return normalize(rs)
}

// TestCOWDFileAgainstQemu writes into deltas in place over three sessions
// and has qemu-img read the chain: its content (compare), which sectors the
// delta holds (map) and its consistency (check).
func TestCOWDFileAgainstQemu(t *testing.T) {
	oracle.Require(t, "qemu-img")
	r := rand.New(rand.NewPCG(11, 12))
	for _, kind := range []string{"empty-delta", "delta-with-data", "created"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			size := int64(9<<20 + 7*SectorSize) // the last region is partial
			disk := mixedDisk(r, size)
			base := writeFlatBase(t, dir, "sb.vmdk", disk)
			m := &cowdModel{disk: disk, own: make([]byte, size)}
			var changes []Range
			if kind == "delta-with-data" {
				changes = randomChanges(r, size)
				next := mixedDisk(r, size)
				for _, c := range changes {
					copy(disk[c.Off:c.End()], next[c.Off:c.End()])
					copy(m.own[c.Off:c.End()], next[c.Off:c.End()])
				}
				m.held = normalize(append([]Range(nil), changes...))
			}
			d := writeDelta(t, dir, "sb.vmdk", base, disk, changes)
			extent := filepath.Join(dir, d.ExtentName)
			if kind == "created" {
				f, err := os.Create(extent)
				require.NoError(t, err)
				_, err = CreateCOWD(f, size)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			leaf := filepath.Join(dir, d.DescriptorName)
			for session := range 3 {
				f, err := os.OpenFile(extent, os.O_RDWR, 0)
				require.NoError(t, err)
				st, err := f.Stat()
				require.NoError(t, err)
				c, err := OpenCOWD(f, st.Size())
				require.NoError(t, err)
				require.Equal(t, size, c.Capacity())
				require.Equal(t, m.held, c.Allocated(), "session %d: reopened", session)
				m.randomWrites(c, t, r)
				file, err := os.ReadFile(extent)
				require.NoError(t, err)
				checkCOWDFile(t, c, m, file)
				require.NoError(t, f.Close())

				if session == 2 { // qemu reads COWD a sector at a time: slow
					qemuCompare(t, writeFile(t, dir, "want.raw", m.disk), leaf)
				}
				require.True(t, bytes.Equal(m.disk, readChain(t, dir, d.DescriptorName)))
				require.Equal(t, m.held, qemuMapDepth0(t, leaf))
				chain, err := OpenChain(os.DirFS(dir), d.DescriptorName)
				require.NoError(t, err)
				held, err := chain.Allocated(0)
				require.NoError(t, err)
				require.Equal(t, m.held, held)
				whole, err := chain.Allocated(1)
				require.NoError(t, err)
				require.Equal(t, []Range{{Off: 0, Len: size}}, whole)
				require.NoError(t, chain.Close())
			}
			// qemu-img check follows every grain of the COWD extent and
			// reports one that points past the end of the file.
			out := oracle.Run(t, "qemu-img", "check", leaf)
			require.Contains(t, string(out), "No errors were found")
		})
	}
}

// TestCOWDFileCreateIsAnEmptyDelta: CreateCOWD writes the bytes NewDelta
// and WriteExtent write for an empty delta.
func TestCOWDFileCreateIsAnEmptyDelta(t *testing.T) {
	for _, capacity := range []int64{512, 1 << 20, 6<<20 + 4096, 2<<40 - 512} {
		parent := BaseDescriptor(CreateVMFS, ExtentVMFS, "x-flat.vmdk", capacity, "")
		d, err := NewDelta("x.vmdk", parent, nil)
		require.NoError(t, err)
		var want bytes.Buffer
		_, err = d.WriteExtent(context.Background(), &want, bytes.NewReader(nil), nil)
		require.NoError(t, err)
		m := &memFile{}
		c, err := CreateCOWD(m, capacity)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want.Bytes(), m.b), "capacity %d", capacity)
		require.Equal(t, int64(len(m.b)), c.Size())
		require.Empty(t, c.Allocated())
		again, err := OpenCOWD(m, int64(len(m.b)))
		require.NoError(t, err)
		require.Equal(t, capacity, again.Capacity())
		require.Equal(t, c.free, again.free)
	}
	_, err := CreateCOWD(&memFile{}, 2<<40)
	require.ErrorIs(t, err, ErrTooLarge)
	for _, bad := range []int64{0, -512, 1000} {
		_, err := CreateCOWD(&memFile{}, bad)
		require.ErrorIs(t, err, ErrInvalidInput)
	}
}

func TestCOWDFileWriteLimits(t *testing.T) {
	m := &memFile{}
	c, err := CreateCOWD(m, 3<<20)
	require.NoError(t, err)
	sector := make([]byte, SectorSize)
	for _, w := range []struct {
		off int64
		n   int
	}{{1, 512}, {512, 100}, {-512, 512}, {3 << 20, 512}, {3<<20 - 512, 1024}, {4 << 20, 0}} {
		_, err := c.WriteAt(make([]byte, w.n), w.off)
		require.ErrorIs(t, err, ErrInvalidInput, "write of %d at %d", w.n, w.off)
	}
	n, err := c.WriteAt(nil, 3<<20)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = c.ReadAt(sector, -1)
	require.ErrorIs(t, err, ErrInvalidInput)
	n, err = c.ReadAt(sector, 3<<20-100)
	require.Equal(t, 100, n)
	require.ErrorIs(t, err, io.EOF)

	// Unaligned reads of the own data; unallocated sectors are zeros.
	p := bytes.Repeat([]byte{0xab}, 2048)
	_, err = c.WriteAt(p, 2<<20-1024)
	require.NoError(t, err)
	got := make([]byte, 3000)
	_, err = c.ReadAt(got, 2<<20-1024-700)
	require.NoError(t, err)
	want := append(append(make([]byte, 700), p...), make([]byte, 3000-700-2048)...)
	require.Equal(t, want, got)

	// A file about to pass 2 TiB refuses new grains, but not overwrites.
	c.free = cowdMaxSectors
	_, err = c.WriteAt(sector, 0)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = c.WriteAt(sector, 2<<20-1024)
	require.NoError(t, err, "an overwrite needs no space")
}

// TestCOWDFileCrash stops the host at every write of a multi-region
// WriteAt: the file left behind must open, hold either the old or the new
// content in every sector, point at no unwritten grain, and take writes.
func TestCOWDFileCrash(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	capacity := int64(8 << 20)
	start := &memFile{}
	c, err := CreateCOWD(start, capacity)
	require.NoError(t, err)
	old := make([]byte, 3<<19)
	for i := range old {
		old[i] = byte(r.Uint32()) | 1
	}
	_, err = c.WriteAt(old, 1<<20) // regions 0 and 1 have a table
	require.NoError(t, err)
	p := bytes.Repeat([]byte{0x77}, 3<<20) // overwrites, appends, new tables
	off := int64(1<<20 + 512<<10)
	total := 0
	for fail := 1; ; fail++ {
		m := &memFile{b: bytes.Clone(start.b), failAt: fail}
		c, err := OpenCOWD(m, int64(len(m.b)))
		require.NoError(t, err)
		_, err = c.WriteAt(p, off)
		if err == nil {
			total = m.writes
			break
		}
		require.ErrorIs(t, err, errCrash)
		writes := m.writes
		_, err = c.WriteAt(p[:SectorSize], 0)
		require.Error(t, err)
		require.Equal(t, writes, m.writes, "a COWDFile must refuse writes after a failed one")

		m.failAt = 0
		after, err := OpenCOWD(m, int64(len(m.b)))
		require.NoError(t, err, "crash at write %d", fail)
		got := make([]byte, capacity)
		_, err = after.ReadAt(got, 0)
		require.NoError(t, err)
		held := after.Allocated()
		for s := int64(0); s < capacity; s += SectorSize {
			g := got[s : s+SectorSize]
			inNew := s >= off && s < off+int64(len(p))
			inOld := s >= 1<<20 && s < 1<<20+int64(len(old))
			switch {
			case inNew && bytes.Equal(g, p[:SectorSize]):
				require.True(t, contains(held, s), "sector %d reads new data but is not allocated", s)
			case inOld:
				require.Equal(t, old[s-1<<20:s-1<<20+SectorSize], g, "crash at write %d: sector %d", fail, s)
			default:
				require.True(t, isZero(g), "crash at write %d: sector %d holds garbage", fail, s)
				require.False(t, contains(held, s), "crash at write %d: sector %d allocated to unwritten data", fail, s)
			}
		}
		// The recovered file takes the write and reads it back.
		_, err = after.WriteAt(p, off)
		require.NoError(t, err)
		again, err := OpenCOWD(m, int64(len(m.b)))
		require.NoError(t, err)
		_, err = again.ReadAt(got[:len(p)], off)
		require.NoError(t, err)
		require.True(t, bytes.Equal(p, got[:len(p)]))
		_, err = again.ReadAt(got[:512<<10], 1<<20)
		require.NoError(t, err)
		require.True(t, bytes.Equal(old[:512<<10], got[:512<<10]))
	}
	require.Greater(t, total, 6, "the write should take several steps")
}

func contains(rs []Range, off int64) bool {
	for _, r := range rs {
		if off >= r.Off && off < r.End() {
			return true
		}
	}
	return false
}

// cowdSample returns a small valid COWD file: 5 MiB + 512 bytes of
// capacity (three regions, the last one partial), two regions with grains.
func cowdSample(t testing.TB) []byte {
	m := &memFile{}
	c, err := CreateCOWD(m, 5<<20+SectorSize)
	require.NoError(t, err)
	_, err = c.WriteAt(bytes.Repeat([]byte{1}, 4096), 4096)
	require.NoError(t, err)
	_, err = c.WriteAt(bytes.Repeat([]byte{2}, 1024), 4<<20)
	require.NoError(t, err)
	return m.b
}

func TestCOWDFileCorrupt(t *testing.T) {
	good := cowdSample(t)
	put := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	gt0 := int(binary.LittleEndian.Uint32(good[4*SectorSize:])) * SectorSize
	gt2 := int(binary.LittleEndian.Uint32(good[4*SectorSize+8:])) * SectorSize
	grain := int(binary.LittleEndian.Uint32(good[gt0+8*4:])) * SectorSize
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"empty", cut(0), ErrCorrupt},
		{"half-header", cut(1000), ErrCorrupt},
		{"header-only", cut(2048), ErrCorrupt},
		{"gd-cut", cut(2048 + 8), ErrCorrupt},
		{"table-cut", cut(gt2 + 100), ErrCorrupt},
		{"grain-cut", cut(grain), ErrCorrupt},
		{"magic", put(0, 0x12345678), ErrCorrupt},
		{"version", put(4, 2), ErrUnsupported},
		{"no-capacity", put(12, 0), ErrCorrupt},
		{"grain-0", put(16, 0), ErrCorrupt},
		{"grain-3", put(16, 3), ErrCorrupt},
		{"grain-8", put(16, 8), ErrUnsupported},
		{"gd-in-header", put(20, 2), ErrCorrupt},
		{"gd-beyond", put(20, 1<<30), ErrCorrupt},
		{"gd-entries", put(24, 7), ErrCorrupt},
		{"free-beyond", put(28, 1<<20), ErrCorrupt},
		{"free-in-gd", put(28, 4), ErrCorrupt},
		{"table-in-header", put(4*SectorSize, 2), ErrCorrupt},
		{"table-on-gd", put(4*SectorSize, 4), ErrCorrupt},
		{"table-beyond", put(4*SectorSize, 1<<20), ErrCorrupt},
		{"tables-overlap", put(4*SectorSize+8, binary.LittleEndian.Uint32(good[4*SectorSize:])+3), ErrCorrupt},
		{"grain-one", put(gt0+8*4, 1), ErrUnsupported},
		{"grain-in-header", put(gt0+8*4, 3), ErrCorrupt},
		{"grain-in-gd", put(gt0+8*4, 4), ErrCorrupt},
		{"grain-in-table", put(gt0+8*4, uint32(gt2/SectorSize+5)), ErrCorrupt},
		{"grain-beyond", put(gt0+8*4, 1<<24), ErrCorrupt},
		{"grain-past-capacity", put(gt2+3000*4, uint32(grain/SectorSize)), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(good))
			_, err := OpenCOWD(&memFile{b: b}, int64(len(b)))
			require.ErrorIs(t, err, tc.want)
		})
	}
	// A file shorter than the length it is opened with.
	_, err := OpenCOWD(&memFile{b: good[:4096]}, int64(len(good)))
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = OpenCOWD(&memFile{b: good}, -1)
	require.ErrorIs(t, err, ErrInvalidInput)
	c, err := OpenCOWD(&memFile{b: good}, int64(len(good)))
	require.NoError(t, err)
	require.Equal(t, []Range{{Off: 4096, Len: 4096}, {Off: 4 << 20, Len: 1024}}, c.Allocated())
}

// TestCOWDFileConcurrent writes disjoint ranges from several goroutines
// while others read (run with -race).
func TestCOWDFileConcurrent(t *testing.T) {
	m := &memFile{}
	capacity := int64(16 << 20)
	c, err := CreateCOWD(m, capacity)
	require.NoError(t, err)
	checkConcurrentWrites(t, c, capacity, 24, func() (writableExtent, error) { return OpenCOWD(m, int64(len(m.b))) })
}

// writableExtent is what COWDFile and SparseFile have in common.
type writableExtent interface {
	io.ReaderAt
	io.WriterAt
	Allocated() []Range
}

// checkConcurrentWrites writes, from eight goroutines, 8 sectors every
// stride sectors of each one's eighth of the extent while eight others
// read, then checks the extent reopened: same allocation, every sector
// as written.
func checkConcurrentWrites(t *testing.T, x writableExtent, capacity, stride int64, reopen func() (writableExtent, error)) {
	t.Helper()
	var wg sync.WaitGroup
	const writers = 8
	chunk := capacity / writers
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(w + 1)}, 8*SectorSize)
			for off := int64(w) * chunk; off < int64(w+1)*chunk; off += stride * SectorSize {
				if _, err := x.WriteAt(p, off); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for range 50 {
				if _, err := x.ReadAt(buf, int64(w)*chunk); err != nil {
					t.Error(err)
					return
				}
				_ = x.Allocated()
			}
		}()
	}
	wg.Wait()
	again, err := reopen()
	require.NoError(t, err)
	require.Equal(t, x.Allocated(), again.Allocated())
	got := make([]byte, capacity)
	_, err = again.ReadAt(got, 0)
	require.NoError(t, err)
	for off := int64(0); off < capacity; off += SectorSize {
		w := off / chunk
		want := byte(0)
		if (off-w*chunk)%(stride*SectorSize) < 8*SectorSize {
			want = byte(w + 1)
		}
		require.Equal(t, want, got[off], "offset %d", off)
	}
}
