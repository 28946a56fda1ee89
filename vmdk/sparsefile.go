package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
)

const (
	// sparseRegion is the disk span of one hosted sparse grain table: 512
	// grains of 64 KiB.
	sparseRegion = gtesPerGT * streamGrainSize
	// maxSparseSectors is the largest capacity handled (512 TiB), the
	// reader's limit.
	maxSparseSectors = 1 << 40
	// sparseMaxFileSectors bounds the file: grain and table entries are
	// 32-bit sector numbers.
	sparseMaxFileSectors = 1 << 32
)

// SparseFile is an open hosted sparse extent (KDMV, version 1, the extent
// of monolithicSparse and twoGbMaxExtentSparse disks) that grows as it is
// written: a grain already present is overwritten in place, a new 64 KiB
// grain is appended at the end of the file, and a 32 MiB region without a
// grain table gets one appended first (with its redundant copy when the
// extent keeps a redundant grain directory). Only uncompressed extents of
// 64 KiB grains and 512-entry grain tables (what VMware and qemu-img
// write) are handled.
//
// A grain is 128 sectors, so a write that covers only part of a new grain
// must fill the rest of it: in a child link, with the parent's content
// (the grain hides the parent once it exists). SetBacking gives that
// content; without it the rest is zeros, which is right only for a base
// disk. A grain marked zero (grain table entry 1, in extents flagged for
// it) is filled with zeros.
//
// Writes reach the file in an order that a crash cannot turn into a
// pointer to unwritten data: grains first, then the redundant and the
// primary grain table entries, then the redundant and the primary grain
// directory entries. What a crash leaves behind is at worst unreferenced
// space at the end of the file, or a redundant table that differs from
// its primary: OpenSparse notes the latter and the next WriteAt rewrites
// it from the primary. A SparseFile is safe for concurrent use; after a
// failed write to the file it refuses further writes (reopen the file).
type SparseFile struct {
	mu        sync.Mutex
	f         ReadWriterAt
	backing   io.ReaderAt
	size      int64 // file length
	capacity  int64 // bytes
	zeroGrain bool  // grain table entry 1 is a zero grain
	gdOffset  int64 // sectors
	rgdOffset int64 // 0 without a redundant directory
	gd, rgd   []uint32
	meta      []span   // header, embedded descriptor, directories
	tableAt   []uint32 // sectors of all grain tables, ascending
	tables    map[int64][]uint32
	alloc     map[int64]*grainBits // grains present, by region
	stale     map[int64]bool       // regions whose redundant table needs rewriting
	err       error                // a failed write: the file's state is unsure
}

// span is the sectors [lo, hi) of a file.
type span struct{ lo, hi int64 }

// CreateSparse writes an empty hosted sparse extent of capacity bytes onto
// f (which should be empty) and opens it. Its header has the version,
// flags and geometry qemu-img writes for a monolithicSparse disk (and its
// child): version 1, flags "valid newline test" and "redundant grain
// directory", 64 KiB grains, 512-entry grain tables. No descriptor is
// embedded (descriptorOffset 0, as in VMware's twoGbMaxExtentSparse
// extents): the caller writes one naming the file (NewSparseChild). The
// redundant directory is at sector 1, the primary one right after it, and
// the file is padded to a whole grain.
//
// Grain tables are allocated on demand: a directory entry of 0 is a
// region without grains, as in streamOptimized files and as qemu and
// OpenChain read it. An empty extent of 3 TiB is under 1 MiB, where
// preallocated tables (and their redundant copies) would take 384 MiB.
// VMware's hosted products preallocate the tables; whether they accept
// an extent that does not is not known here. qemu (7.2) reads it and
// writes into the regions that have a table, but a write of its own into
// a region without one lands on the header: let only a SparseFile write
// into such an extent.
//
// Capacity must be a positive multiple of 512 up to 512 TiB (ErrTooLarge
// beyond).
func CreateSparse(f ReadWriterAt, capacity int64) (*SparseFile, error) {
	if f == nil || capacity <= 0 || capacity%SectorSize != 0 {
		return nil, fmt.Errorf("%w: sparse capacity %d is not a positive multiple of 512", ErrInvalidInput, capacity)
	}
	if capacity/SectorSize > maxSparseSectors {
		return nil, fmt.Errorf("%w: a hosted sparse extent of %d bytes (512 TiB at most)", ErrTooLarge, capacity)
	}
	numGTs := ceilDiv(ceilDiv(capacity, streamGrainSize), gtesPerGT)
	dirSectors := ceilDiv(numGTs*4, SectorSize)
	h := sparseHeader{
		Version:      1,
		Flags:        flagNewlineTest | flagRedundantGD,
		Capacity:     uint64(capacity / SectorSize),
		GrainSize:    streamGrainSectors,
		NumGTEsPerGT: gtesPerGT,
		RGDOffset:    1,
		GDOffset:     uint64(1 + dirSectors),
		OverHead:     uint64(ceilDiv(1+2*dirSectors, streamGrainSectors) * streamGrainSectors),
	}
	size := int64(h.OverHead) * SectorSize
	// The directories first, the header last: a creation cut short leaves
	// no magic.
	zeros := make([]byte, min(size-SectorSize, 1<<20))
	for off := int64(SectorSize); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return nil, err
		}
	}
	head := make([]byte, SectorSize)
	h.encode(head)
	if _, err := f.WriteAt(head, 0); err != nil {
		return nil, err
	}
	s := &SparseFile{
		f:         f,
		size:      size,
		capacity:  capacity,
		gdOffset:  int64(h.GDOffset),
		rgdOffset: 1,
		gd:        make([]uint32, numGTs),
		rgd:       make([]uint32, numGTs),
		tables:    map[int64][]uint32{},
		alloc:     map[int64]*grainBits{},
		stale:     map[int64]bool{},
	}
	s.meta = []span{{0, 1}, {1, 1 + dirSectors}, {s.gdOffset, s.gdOffset + dirSectors}}
	return s, nil
}

// OpenSparse opens the hosted sparse extent f of size bytes (its current
// length) for reading and writing: a twoGbMaxExtentSparse extent, or a
// monolithicSparse file (its embedded descriptor is left alone), such as
// qemu-img and VMware Workstation write and CreateSparse makes. Everything
// read is checked: a header, directory, grain table or grain that does not
// fit the file, overlaps other metadata or lies past the capacity is
// ErrCorrupt; compressed and streamOptimized extents, grains other than
// 128 sectors and tables other than 512 entries are ErrUnsupported. All
// grain tables (and their redundant copies) are read once to check them;
// only a bounded number are kept.
func OpenSparse(f ReadWriterAt, size int64) (*SparseFile, error) {
	if f == nil || size < 0 {
		return nil, fmt.Errorf("%w: OpenSparse needs a file and its length", ErrInvalidInput)
	}
	if size < SectorSize {
		return nil, corruptf("sparse file of %d bytes, shorter than its header", size)
	}
	s := &SparseFile{f: f, size: size, tables: map[int64][]uint32{}, alloc: map[int64]*grainBits{}, stale: map[int64]bool{}}
	head := make([]byte, SectorSize)
	if err := s.read(head, 0); err != nil {
		return nil, err
	}
	h, ok := decodeSparseHeader(head)
	if !ok {
		return nil, corruptf("no KDMV magic")
	}
	if err := checkWritableHeader(h, head); err != nil {
		return nil, err
	}
	s.capacity = int64(h.Capacity) * SectorSize
	s.zeroGrain = h.Flags&flagZeroedGrain != 0
	numGTs := ceilDiv(ceilDiv(s.capacity, streamGrainSize), gtesPerGT)
	dirSectors := ceilDiv(numGTs*4, SectorSize)
	fileSectors := uint64(size / SectorSize)
	// place checks that a directory at sector off lies inside the file.
	place := func(what string, off uint64) (span, error) {
		if off == 0 || off > fileSectors || int64(off)*SectorSize+numGTs*4 > size {
			return span{}, corruptf("%s at sector %d (%d entries) outside a %d-byte file", what, off, numGTs, size)
		}
		return span{int64(off), int64(off) + dirSectors}, nil
	}
	s.meta = []span{{0, 1}}
	if h.DescriptorOffset != 0 || h.DescriptorSize != 0 {
		if h.DescriptorOffset == 0 || h.DescriptorSize > fileSectors || h.DescriptorOffset > fileSectors-h.DescriptorSize {
			return nil, corruptf("embedded descriptor at sector %d (%d sectors) outside a %d-byte file", h.DescriptorOffset, h.DescriptorSize, size)
		}
		s.meta = append(s.meta, span{int64(h.DescriptorOffset), int64(h.DescriptorOffset + h.DescriptorSize)})
	}
	gdSpan, err := place("grain directory", h.GDOffset)
	if err != nil {
		return nil, err
	}
	s.gdOffset = gdSpan.lo
	s.meta = append(s.meta, gdSpan)
	if h.Flags&flagRedundantGD != 0 {
		rgdSpan, err := place("redundant grain directory", h.RGDOffset)
		if err != nil {
			return nil, err
		}
		s.rgdOffset = rgdSpan.lo
		s.meta = append(s.meta, rgdSpan)
	}
	for i, a := range s.meta {
		for _, b := range s.meta[:i] {
			if a.lo < b.hi && b.lo < a.hi {
				return nil, corruptf("header, descriptor and grain directories overlap (sectors %d and %d)", a.lo, b.lo)
			}
		}
	}
	if s.gd, err = s.readDir(s.gdOffset, numGTs); err != nil {
		return nil, err
	}
	if s.rgdOffset != 0 {
		if s.rgd, err = s.readDir(s.rgdOffset, numGTs); err != nil {
			return nil, err
		}
	}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkWritableHeader refuses the headers this type cannot write into.
func checkWritableHeader(h sparseHeader, head []byte) error {
	switch {
	case h.Version < 1 || h.Version > 3:
		return fmt.Errorf("%w: sparse version %d", ErrUnsupported, h.Version)
	case h.Flags&^0xffff != 0, h.GDOffset == gdAtEnd:
		return fmt.Errorf("%w: writing a compressed or streamOptimized extent (flags %#x)", ErrUnsupported, h.Flags)
	case h.Flags&flagNewlineTest != 0 && !bytes.Equal(head[73:77], []byte("\n \r\n")):
		return corruptf("the newline test bytes are %q: the file was transferred as text", head[73:77])
	case h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > 2048:
		return corruptf("grain size %d sectors", h.GrainSize)
	case h.GrainSize != streamGrainSectors:
		return fmt.Errorf("%w: writing grains of %d sectors (only 128 are handled)", ErrUnsupported, h.GrainSize)
	case h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > 8192:
		return corruptf("%d entries per grain table", h.NumGTEsPerGT)
	case h.NumGTEsPerGT != gtesPerGT:
		return fmt.Errorf("%w: writing grain tables of %d entries (only 512 are handled)", ErrUnsupported, h.NumGTEsPerGT)
	case h.Capacity == 0 || h.Capacity > maxSparseSectors:
		return corruptf("capacity %d sectors", h.Capacity)
	}
	return nil
}

// read fills p from off; a file shorter than its stated length is corrupt.
func (s *SparseFile) read(p []byte, off int64) error { return readFull(s.f, p, off, "sparse") }

// readDir reads n uint32 entries at sector off.
func (s *SparseFile) readDir(off, n int64) ([]uint32, error) {
	b := make([]byte, n*4)
	if err := s.read(b, off*SectorSize); err != nil {
		return nil, err
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	return v, nil
}

// scan checks where the grain tables lie, then every table's grains, and
// notes the redundant tables that differ from their primary.
func (s *SparseFile) scan() error {
	for region, e := range s.gd {
		if e == 0 {
			// A redundant table without a primary is what a crash between
			// the two directory writes leaves: unused, replaced when the
			// region gets its table.
			continue
		}
		if s.rgd != nil && s.rgd[region] == 0 {
			return corruptf("region %d has a grain table but no redundant one", region)
		}
		for _, at := range []uint32{e, s.redundant(int64(region))} {
			if at == 0 {
				continue
			}
			if err := s.checkSpan(int64(at), gtSectors, false); err != nil {
				return corruptf("grain table of region %d: %v", region, err)
			}
			s.tableAt = append(s.tableAt, at)
		}
	}
	if err := sortTables(s.tableAt, gtSectors); err != nil {
		return err
	}
	buf := make([]byte, gtesPerGT*4)
	gt, rgt := make([]uint32, gtesPerGT), make([]uint32, gtesPerGT)
	for region, e := range s.gd {
		if e == 0 {
			continue
		}
		if err := s.readTable(e, buf, gt); err != nil {
			return err
		}
		if err := s.checkTable(int64(region), gt); err != nil {
			return err
		}
		s.mark(int64(region), gt)
		if at := s.redundant(int64(region)); at != 0 {
			if err := s.readTable(at, buf, rgt); err != nil {
				return err
			}
			if !slices.Equal(gt, rgt) {
				s.stale[int64(region)] = true
			}
		}
	}
	return nil
}

// redundant returns the sector of region's redundant table, 0 if none.
func (s *SparseFile) redundant(region int64) uint32 {
	if s.rgd == nil {
		return 0
	}
	return s.rgd[region]
}

// checkSpan checks that n sectors at sector at lie inside the file, clear
// of the header, descriptor and directories and, for a grain, of the
// grain tables.
func (s *SparseFile) checkSpan(at, n int64, grain bool) error {
	if at*SectorSize+n*SectorSize > s.size {
		return fmt.Errorf("sectors [%d,%d) beyond the end of a %d-byte file", at, at+n, s.size)
	}
	for _, m := range s.meta {
		if at < m.hi && m.lo < at+n {
			return fmt.Errorf("sectors [%d,%d) overlap the header, descriptor or a grain directory", at, at+n)
		}
	}
	if grain {
		// The first table that ends after at; tables do not overlap, so
		// their ends ascend with their starts.
		i := sort.Search(len(s.tableAt), func(i int) bool { return int64(s.tableAt[i])+gtSectors > at })
		if i < len(s.tableAt) && int64(s.tableAt[i]) < at+n {
			return fmt.Errorf("sectors [%d,%d) overlap a grain table", at, at+n)
		}
	}
	return nil
}

// readTable reads the grain table at sector at into gt, through buf.
func (s *SparseFile) readTable(at uint32, buf []byte, gt []uint32) error {
	if err := s.read(buf, int64(at)*SectorSize); err != nil {
		return err
	}
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(buf[i*4:])
	}
	return nil
}

// checkTable checks the grains of region's table gt.
func (s *SparseFile) checkTable(region int64, gt []uint32) error {
	grains := ceilDiv(s.capacity, streamGrainSize)
	for i, e := range gt {
		g := region*gtesPerGT + int64(i)
		switch {
		case e == 0:
			continue
		case g >= grains:
			return corruptf("region %d has a grain for grain %d beyond the capacity", region, g)
		case e == 1 && s.zeroGrain:
			continue
		}
		n := ceilDiv(min(streamGrainSize, s.capacity-g*streamGrainSize), SectorSize)
		if err := s.checkSpan(int64(e), n, true); err != nil {
			return corruptf("grain %d: %v", g, err)
		}
	}
	return nil
}

// loadTable reads and checks region's grain table and caches it.
func (s *SparseFile) loadTable(region int64) ([]uint32, error) {
	gt := make([]uint32, gtesPerGT)
	if err := s.readTable(s.gd[region], make([]byte, gtesPerGT*4), gt); err != nil {
		return nil, err
	}
	if err := s.checkTable(region, gt); err != nil {
		return nil, err
	}
	s.cache(region, gt)
	return gt, nil
}

func (s *SparseFile) cache(region int64, gt []uint32) {
	if _, ok := s.tables[region]; !ok && len(s.tables) >= maxCachedTables {
		clear(s.tables)
	}
	s.tables[region] = gt
}

// table returns region's grain table, nil when the region has none.
func (s *SparseFile) table(region int64) ([]uint32, error) {
	if s.gd[region] == 0 {
		return nil, nil
	}
	if gt, ok := s.tables[region]; ok {
		return gt, nil
	}
	return s.loadTable(region)
}

// Capacity returns the disk size in bytes the extent covers.
func (s *SparseFile) Capacity() int64 { return s.capacity }

// Size returns the file's length now.
func (s *SparseFile) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// SetBacking sets what a new grain is filled with where a write does not
// cover it: the content of the disk below this extent (the parent link
// read through its chain, e.g. an OpenChain of the parent), read at the
// same offsets. nil, the default, fills with zeros: right for a base disk
// only, since in a child an absent grain reads as the parent and a grain
// once allocated hides it. The backing must not read through this
// SparseFile (it is called with the SparseFile locked).
func (s *SparseFile) SetBacking(parent io.ReaderAt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backing = parent
}

// Allocated returns the byte ranges that have a grain (a zero grain
// included: it hides the parent), sorted and merged.
func (s *SparseFile) Allocated() []Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out rangeList
	for _, region := range slices.Sorted(maps.Keys(s.alloc)) {
		bits := s.alloc[region]
		for i := int64(0); i < gtesPerGT; i++ {
			if bits[i/64]&(1<<(i%64)) != 0 {
				g := region*gtesPerGT + i
				out.add(g*streamGrainSize, min(streamGrainSize, s.capacity-g*streamGrainSize))
			}
		}
	}
	return out.rs
}

// grainBits marks the grains of a region that have an entry.
type grainBits [gtesPerGT / 64]uint64

// mark records the grains of region that gt has an entry for.
func (s *SparseFile) mark(region int64, gt []uint32) {
	var bits grainBits
	some := false
	for i, e := range gt {
		if e != 0 {
			bits[i/64] |= 1 << (i % 64)
			some = true
		}
	}
	if some {
		s.alloc[region] = &bits
	}
}
