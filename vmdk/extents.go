package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
)

// extentReader reads one extent. readAt fills a prefix of p from off and
// returns its length n (at least 1 when p is not empty) and whether the
// extent holds those bytes; when it does not, the caller reads them from
// the parent link.
type extentReader interface {
	readAt(p []byte, off int64) (n int, present bool, err error)
	size() int64
}

// flatExtent is a FLAT or VMFS extent: raw bytes at an offset of a file.
// Bytes past the end of a shorter (thin) file read as zero.
type flatExtent struct {
	r     io.ReaderAt
	start int64
	n     int64
}

func (f *flatExtent) size() int64 { return f.n }

func (f *flatExtent) readAt(p []byte, off int64) (int, bool, error) {
	k, err := f.r.ReadAt(p, f.start+off)
	if err != nil && err != io.EOF {
		return 0, false, err
	}
	clear(p[k:])
	return len(p), true, nil
}

// zeroExtent is a ZERO extent.
type zeroExtent struct{ n int64 }

func (z zeroExtent) size() int64 { return z.n }
func (z zeroExtent) readAt(p []byte, _ int64) (int, bool, error) {
	clear(p)
	return len(p), true, nil
}

// tableExtent is the common reader of the grain-directory formats: hosted
// sparse (KDMV, incl. streamOptimized) and COWD. Grain tables are cached;
// one decompressed grain is kept for sequential reads.
type tableExtent struct {
	r          io.ReaderAt
	fileSize   int64
	capacity   int64 // bytes
	grain      int64 // bytes
	gteCount   int64 // entries per grain table
	gd         []uint32
	compressed bool
	markers    bool
	zeroGrain  bool // GTE 1 means a zero grain (hosted sparse v2)
	cowd       bool

	mu       sync.Mutex
	tables   map[uint32][]uint32
	grainIdx int64
	grainBuf []byte
}

func (t *tableExtent) size() int64 { return t.capacity }

const maxCachedTables = 256

func (t *tableExtent) table(gde uint32) ([]uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gt, ok := t.tables[gde]; ok {
		return gt, nil
	}
	gt, err := t.loadTable(gde)
	if err != nil {
		return nil, err
	}
	if len(t.tables) >= maxCachedTables {
		clear(t.tables)
	}
	t.tables[gde] = gt
	return gt, nil
}

// loadTable reads the grain table at sector gde, uncached.
func (t *tableExtent) loadTable(gde uint32) ([]uint32, error) {
	b := make([]byte, t.gteCount*4)
	off := int64(gde) * SectorSize
	if off+int64(len(b)) > t.fileSize {
		return nil, corruptf("grain table at sector %d beyond the end of the file", gde)
	}
	if _, err := t.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("vmdk: reading a grain table: %w", err)
	}
	gt := make([]uint32, t.gteCount)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	return gt, nil
}

func (t *tableExtent) readAt(p []byte, off int64) (int, bool, error) {
	if off < 0 || off >= t.capacity {
		return 0, false, corruptf("read at %d outside a %d-byte extent", off, t.capacity)
	}
	g := off / t.grain
	within := off % t.grain
	gdi := g / t.gteCount
	// A run may span grains up to the end of the grain table's coverage.
	tableEnd := min((gdi+1)*t.gteCount*t.grain, t.capacity)
	n := int(min(int64(len(p)), tableEnd-off))
	if gdi >= int64(len(t.gd)) || t.gd[gdi] == 0 {
		return n, false, nil
	}
	gt, err := t.table(t.gd[gdi])
	if err != nil {
		return 0, false, err
	}
	i := g % t.gteCount
	gte := gt[i]
	// Extend the first grain to the following grains of the same kind:
	// absent, zero, or (uncompressed) stored right after it.
	first := t.grain - within
	if int64(n) > first {
		run := first
		for j := i + 1; j < int64(len(gt)) && run < int64(n); j++ {
			next := gt[j]
			same := next == 0 && gte == 0 ||
				next == 1 && gte == 1 && (t.zeroGrain || t.cowd) ||
				!t.compressed && gte > 1 && next == gte+uint32((j-i)*t.grain/SectorSize)
			if !same {
				break
			}
			run += t.grain
		}
		n = int(min(int64(n), run))
	}
	p = p[:n]
	switch {
	case gte == 0:
		return n, false, nil
	case gte == 1 && t.zeroGrain:
		clear(p)
		return n, true, nil
	case gte == 1 && t.cowd:
		return 0, false, fmt.Errorf("%w: COWD grain entry 1 (an emptied grain)", ErrUnsupported)
	}
	if !t.compressed {
		at := int64(gte)*SectorSize + within
		if at+int64(n) > t.fileSize {
			return 0, false, corruptf("grain at sector %d beyond the end of the file", gte)
		}
		if _, err := t.r.ReadAt(p, at); err != nil {
			return 0, false, err
		}
		return n, true, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.grainIdx != g || t.grainBuf == nil {
		if err := t.inflate(gte, g); err != nil {
			t.grainIdx = -1
			return 0, false, err
		}
		t.grainIdx = g
	}
	copy(p, t.grainBuf[within:])
	return n, true, nil
}

// inflate decompresses grain g stored at sector gte into grainBuf.
func (t *tableExtent) inflate(gte uint32, g int64) error {
	at := int64(gte) * SectorSize
	if at >= t.fileSize {
		return corruptf("grain at sector %d beyond the end of the file", gte)
	}
	var data []byte
	if t.markers {
		var hdr [12]byte
		if _, err := t.r.ReadAt(hdr[:], at); err != nil {
			return corruptf("grain marker at sector %d: %v", gte, err)
		}
		lba := binary.LittleEndian.Uint64(hdr[:])
		size := int64(binary.LittleEndian.Uint32(hdr[8:]))
		if lba != uint64(g*t.grain/SectorSize) {
			return corruptf("grain at sector %d says LBA %d, expected %d", gte, lba, g*t.grain/SectorSize)
		}
		if size == 0 || size > 2*t.grain+4096 || at+12+size > t.fileSize {
			return corruptf("grain at sector %d has %d compressed bytes", gte, size)
		}
		data = make([]byte, size)
		if _, err := t.r.ReadAt(data, at+12); err != nil {
			return err
		}
	} else {
		size := min(2*t.grain+4096, t.fileSize-at)
		data = make([]byte, size)
		if _, err := t.r.ReadAt(data, at); err != nil && err != io.EOF {
			return err
		}
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return corruptf("grain at sector %d: %v", gte, err)
	}
	if t.grainBuf == nil {
		t.grainBuf = make([]byte, t.grain)
	}
	k, err := io.ReadFull(zr, t.grainBuf)
	want := min(t.grain, t.capacity-g*t.grain)
	switch {
	case err == nil:
		var one [1]byte
		if m, _ := zr.Read(one[:]); m > 0 {
			return corruptf("grain at sector %d inflates beyond %d bytes", gte, t.grain)
		}
	case (err == io.ErrUnexpectedEOF || err == io.EOF) && int64(k) >= want:
		clear(t.grainBuf[k:])
	default:
		return corruptf("grain at sector %d: %d of %d bytes inflated: %v", gte, k, want, err)
	}
	return nil
}

// openSparse reads the header, footer (for a streamOptimized file whose
// directory is at the end) and grain directory of a KDMV extent.
func openSparse(r io.ReaderAt, fileSize int64) (*tableExtent, sparseHeader, error) {
	head := make([]byte, SectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, sparseHeader{}, corruptf("sparse header: %v", err)
	}
	h, ok := decodeSparseHeader(head)
	if !ok {
		return nil, h, corruptf("no KDMV magic")
	}
	if h.GDOffset == gdAtEnd {
		if fileSize < 3*SectorSize {
			return nil, h, corruptf("streamOptimized file too short for a footer")
		}
		foot := make([]byte, SectorSize)
		if _, err := r.ReadAt(foot, fileSize-2*SectorSize); err != nil {
			return nil, h, corruptf("footer: %v", err)
		}
		f, ok := decodeSparseHeader(foot)
		if !ok || f.GDOffset == gdAtEnd {
			return nil, h, corruptf("streamOptimized footer missing (file incomplete?)")
		}
		h.GDOffset = f.GDOffset
	}
	if h.Version < 1 || h.Version > 3 {
		return nil, h, fmt.Errorf("%w: sparse version %d", ErrUnsupported, h.Version)
	}
	if unknown := h.Flags &^ 0xffff &^ knownIncompatible; unknown != 0 {
		return nil, h, fmt.Errorf("%w: sparse flags %#x", ErrUnsupported, h.Flags)
	}
	compressed := h.Flags&flagCompressed != 0
	if compressed && h.CompressAlgorithm != 1 {
		return nil, h, fmt.Errorf("%w: compression algorithm %d", ErrUnsupported, h.CompressAlgorithm)
	}
	if h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > 2048 {
		return nil, h, corruptf("grain size %d sectors", h.GrainSize)
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > 8192 {
		return nil, h, corruptf("%d entries per grain table", h.NumGTEsPerGT)
	}
	if h.Capacity == 0 || h.Capacity > 1<<40 {
		return nil, h, corruptf("capacity %d sectors", h.Capacity)
	}
	t := &tableExtent{
		r:          r,
		fileSize:   fileSize,
		capacity:   int64(h.Capacity) * SectorSize,
		grain:      int64(h.GrainSize) * SectorSize,
		gteCount:   int64(h.NumGTEsPerGT),
		compressed: compressed,
		markers:    h.Flags&flagMarkers != 0,
		zeroGrain:  h.Flags&flagZeroedGrain != 0,
		tables:     map[uint32][]uint32{},
		grainIdx:   -1,
	}
	numGTs := ceilDiv(ceilDiv(t.capacity, t.grain), t.gteCount)
	gd, err := readTable(r, fileSize, int64(h.GDOffset), numGTs)
	if err != nil {
		return nil, h, fmt.Errorf("grain directory: %w", err)
	}
	t.gd = gd
	return t, h, nil
}

// openCOWD reads the header and grain directory of a vmfsSparse extent.
func openCOWD(r io.ReaderAt, fileSize int64) (*tableExtent, error) {
	head := make([]byte, cowdHeaderSectors*SectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, corruptf("COWD header: %v", err)
	}
	h, ok := decodeCOWDHeader(head)
	if !ok {
		return nil, corruptf("no COWD magic")
	}
	if h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > 2048 {
		return nil, corruptf("COWD grain size %d sectors", h.GrainSize)
	}
	if h.NumSectors == 0 {
		return nil, corruptf("COWD capacity 0")
	}
	want := ceilDiv(int64(h.NumSectors), cowdGTEntries*int64(h.GrainSize))
	if int64(h.NumGDEntries) != want {
		return nil, corruptf("COWD has %d directory entries, its capacity needs %d", h.NumGDEntries, want)
	}
	gd, err := readTable(r, fileSize, int64(h.GDOffset), want)
	if err != nil {
		return nil, fmt.Errorf("COWD grain directory: %w", err)
	}
	return &tableExtent{
		r:        r,
		fileSize: fileSize,
		capacity: int64(h.NumSectors) * SectorSize,
		grain:    int64(h.GrainSize) * SectorSize,
		gteCount: cowdGTEntries,
		gd:       gd,
		cowd:     true,
		tables:   map[uint32][]uint32{},
		grainIdx: -1,
	}, nil
}

// readTable reads n little-endian uint32 entries at sector off.
func readTable(r io.ReaderAt, fileSize, off, n int64) ([]uint32, error) {
	if off <= 0 || n <= 0 || off > fileSize/SectorSize || off*SectorSize+n*4 > fileSize {
		return nil, corruptf("table of %d entries at sector %d outside a %d-byte file", n, off, fileSize)
	}
	b := make([]byte, n*4)
	if _, err := r.ReadAt(b, off*SectorSize); err != nil {
		return nil, err
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	return v, nil
}

// sortTables sorts the starting sectors of grain tables of tableSectors
// sectors each and checks that no two overlap: overlapping tables would
// let a small file describe far more grains than it holds.
func sortTables(starts []uint32, tableSectors int64) error {
	slices.Sort(starts)
	for i := 1; i < len(starts); i++ {
		if int64(starts[i])-int64(starts[i-1]) < tableSectors {
			return corruptf("grain tables at sectors %d and %d overlap", starts[i-1], starts[i])
		}
	}
	return nil
}
