package vmdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
)

// ReadWriterAt is a file that can be read and written at offsets (an
// *os.File).
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// COWDFile is an open vmfsSparse (COWD) extent that grows as it is
// written, the way ESXi writes the leaf of a running VM's disk: a sector
// that has a grain is overwritten in place, a new sector gets a grain
// appended at the free sector, and a 2 MiB region without a grain table
// gets one appended first. Only 512-byte grains (what ESXi and NewDelta
// write) are handled.
//
// Writes reach the file in an order that a crash cannot turn into a
// pointer to unwritten data: grains first, then the grain table entries,
// then the grain directory entry, then the header's freeSector. A
// freeSector left behind by a crash is recovered by OpenCOWD from the
// tables. A COWDFile is safe for concurrent use; after a failed write it
// refuses further writes (reopen the file).
type COWDFile struct {
	mu        sync.Mutex
	f         ReadWriterAt
	size      int64 // file length
	capacity  int64 // bytes
	gdOffset  int64 // sector of the grain directory
	dataStart int64 // first sector after the grain directory
	gd        []uint32
	gts       []uint32 // sectors of the grain tables, ascending
	free      int64    // first free sector
	alloc     map[int64][]sectorRun
	tables    map[int64][]uint32 // cached grain tables by region
	err       error              // a failed write: the file's state is unsure
}

// sectorRun is the allocated sectors [lo, hi) of a 2 MiB region.
type sectorRun struct{ lo, hi uint16 }

const cowdFreeSectorField = 28 // byte offset of freeSector in the header

// OpenCOWD opens the vmfsSparse extent f of size bytes (its current
// length) for reading and writing. Everything read from the file is
// checked: a header, grain directory or grain table that does not fit the
// file is ErrCorrupt; a grain size other than one sector, a header version
// other than 1 and grain entry 1 (an "emptied" grain in some readers) are
// ErrUnsupported. All grain tables are read once, to check them and to
// learn what the extent holds.
func OpenCOWD(f ReadWriterAt, size int64) (*COWDFile, error) {
	if f == nil || size < 0 {
		return nil, fmt.Errorf("%w: OpenCOWD needs a file and its length", ErrInvalidInput)
	}
	const headBytes = cowdHeaderSectors * SectorSize
	if size < headBytes {
		return nil, corruptf("COWD file of %d bytes, shorter than its header", size)
	}
	c := &COWDFile{f: f, size: size}
	head := make([]byte, headBytes)
	if err := c.read(head, 0); err != nil {
		return nil, err
	}
	h, ok := decodeCOWDHeader(head)
	if !ok {
		return nil, corruptf("no COWD magic")
	}
	if v := binary.LittleEndian.Uint32(head[4:]); v != 1 {
		return nil, fmt.Errorf("%w: COWD version %d", ErrUnsupported, v)
	}
	if h.GrainSize == 0 || h.GrainSize&(h.GrainSize-1) != 0 || h.GrainSize > 2048 {
		return nil, corruptf("COWD grain size %d sectors", h.GrainSize)
	}
	if h.GrainSize != 1 {
		return nil, fmt.Errorf("%w: writing COWD grains of %d sectors (only 1 is handled)", ErrUnsupported, h.GrainSize)
	}
	if h.NumSectors == 0 {
		return nil, corruptf("COWD capacity 0")
	}
	numGD := ceilDiv(int64(h.NumSectors), cowdGTEntries)
	if int64(h.NumGDEntries) != numGD {
		return nil, corruptf("COWD has %d directory entries, its capacity needs %d", h.NumGDEntries, numGD)
	}
	c.capacity = int64(h.NumSectors) * SectorSize
	c.gdOffset = int64(h.GDOffset)
	c.dataStart = c.gdOffset + ceilDiv(numGD*4, SectorSize)
	if c.gdOffset < cowdHeaderSectors || c.dataStart*SectorSize > size {
		return nil, corruptf("COWD grain directory at sector %d (%d entries) outside a %d-byte file", h.GDOffset, numGD, size)
	}
	if free := int64(h.FreeSector); free < c.dataStart || free*SectorSize > size {
		return nil, corruptf("COWD freeSector %d outside [%d, %d]", free, c.dataStart, size/SectorSize)
	}
	gd := make([]byte, numGD*4)
	if err := c.read(gd, c.gdOffset*SectorSize); err != nil {
		return nil, err
	}
	c.gd = make([]uint32, numGD)
	for i := range c.gd {
		c.gd[i] = binary.LittleEndian.Uint32(gd[i*4:])
	}
	c.alloc = map[int64][]sectorRun{}
	c.tables = map[int64][]uint32{}
	if err := c.scan(int64(h.FreeSector)); err != nil {
		return nil, err
	}
	return c, nil
}

// CreateCOWD writes an empty vmfsSparse extent of capacity bytes onto f
// (which should be empty) and opens it: the same bytes NewDelta and
// WriteExtent produce for an empty delta. Its descriptor is the caller's
// to write. Capacity must be a positive multiple of 512 below 2 TiB
// (ErrTooLarge otherwise).
func CreateCOWD(f ReadWriterAt, capacity int64) (*COWDFile, error) {
	if f == nil || capacity <= 0 || capacity%SectorSize != 0 {
		return nil, fmt.Errorf("%w: COWD capacity %d is not a positive multiple of 512", ErrInvalidInput, capacity)
	}
	if capacity/SectorSize > cowdMaxSectors {
		return nil, fmt.Errorf("%w: a vmfsSparse extent holds at most 2 TiB - 512 bytes, not %d", ErrTooLarge, capacity)
	}
	numGD := ceilDiv(capacity/SectorSize, cowdGTEntries)
	gdOffset := int64(cowdHeaderSectors)
	dataStart := gdOffset + ceilDiv(numGD*4, SectorSize)
	c := &COWDFile{
		f:         f,
		size:      (dataStart*SectorSize/extentPad + 1) * extentPad,
		capacity:  capacity,
		gdOffset:  gdOffset,
		dataStart: dataStart,
		gd:        make([]uint32, numGD),
		free:      dataStart,
		alloc:     map[int64][]sectorRun{},
		tables:    map[int64][]uint32{},
	}
	head := make([]byte, cowdHeaderSectors*SectorSize)
	h := cowdHeader{
		NumSectors:   uint32(capacity / SectorSize),
		GrainSize:    1,
		GDOffset:     uint32(gdOffset),
		NumGDEntries: uint32(numGD),
		FreeSector:   uint32(dataStart),
	}
	h.encode(head)
	if _, err := f.WriteAt(head, 0); err != nil {
		return nil, err
	}
	zeros := make([]byte, min(c.size-int64(len(head)), 1<<20))
	for off := int64(len(head)); off < c.size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), c.size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// read fills p from off; a file shorter than its stated length is corrupt.
func (c *COWDFile) read(p []byte, off int64) error { return readFull(c.f, p, off, "COWD") }

// readFull fills p from r at off: a file (of the kind what names) that
// ends before is corrupt, other failures are I/O errors.
func readFull(r io.ReaderAt, p []byte, off int64, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("%s file ends before byte %d", what, off+int64(len(p)))
	}
	return fmt.Errorf("vmdk: reading the %s extent at %d: %w", what, off, err)
}

// scan checks the grain tables and learns the allocated sectors and the
// first sector no table or grain uses (past a freeSector a crash left
// stale).
func (c *COWDFile) scan(hdrFree int64) error {
	for region, e := range c.gd {
		if e == 0 {
			continue
		}
		if err := c.checkSpan(int64(e), cowdGTSectors); err != nil {
			return corruptf("grain table of region %d: %v", region, err)
		}
		c.gts = append(c.gts, e)
	}
	if err := sortTables(c.gts, cowdGTSectors); err != nil {
		return err
	}
	c.free = hdrFree
	if n := len(c.gts); n > 0 {
		c.free = max(c.free, int64(c.gts[n-1])+cowdGTSectors)
	}
	for region, e := range c.gd {
		if e == 0 {
			continue
		}
		gt, end, err := c.loadTable(int64(region))
		if err != nil {
			return err
		}
		c.free = max(c.free, end)
		var runs []sectorRun
		for i := 0; i < len(gt); i++ {
			if gt[i] == 0 {
				continue
			}
			j := i + 1
			for j < len(gt) && gt[j] != 0 {
				j++
			}
			runs = append(runs, sectorRun{uint16(i), uint16(j)})
			i = j
		}
		if runs != nil {
			c.alloc[int64(region)] = runs
		}
	}
	return nil
}

// checkSpan checks that n sectors at sector s lie inside the file and
// clear of the header and the grain directory.
func (c *COWDFile) checkSpan(s, n int64) error {
	switch {
	case s < cowdHeaderSectors:
		return fmt.Errorf("sector %d is in the header", s)
	case s < c.dataStart && s+n > c.gdOffset:
		return fmt.Errorf("sectors [%d,%d) overlap the grain directory", s, s+n)
	case (s+n)*SectorSize > c.size:
		return fmt.Errorf("sectors [%d,%d) beyond the end of a %d-byte file", s, s+n, c.size)
	}
	return nil
}

// inTable reports whether sectors [s, s+n) overlap a grain table.
func (c *COWDFile) inTable(s, n int64) bool {
	// The first table that ends after s; tables do not overlap, so their
	// ends ascend with their starts.
	i := sort.Search(len(c.gts), func(i int) bool { return int64(c.gts[i])+cowdGTSectors > s })
	return i < len(c.gts) && int64(c.gts[i]) < s+n
}

// loadTable reads and checks the grain table of region, and returns it
// with the first sector after its last grain.
func (c *COWDFile) loadTable(region int64) ([]uint32, int64, error) {
	b := make([]byte, cowdGTEntries*4)
	if err := c.read(b, int64(c.gd[region])*SectorSize); err != nil {
		return nil, 0, err
	}
	gt := make([]uint32, cowdGTEntries)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	sectors := min(cowdGTEntries, (c.capacity-region*cowdRegion)/SectorSize)
	var end int64
	for i := 0; i < len(gt); {
		e := int64(gt[i])
		if e == 0 {
			i++
			continue
		}
		if int64(i) >= sectors {
			return nil, 0, corruptf("region %d has a grain for sector %d beyond the capacity", region, i)
		}
		if e == 1 {
			return nil, 0, fmt.Errorf("%w: COWD grain entry 1 (an emptied grain) in region %d", ErrUnsupported, region)
		}
		// A run of grains stored one after the other is checked at once.
		j := i + 1
		for j < len(gt) && int64(j) < sectors && int64(gt[j]) == e+int64(j-i) {
			j++
		}
		n := int64(j - i)
		if err := c.checkSpan(e, n); err != nil {
			return nil, 0, corruptf("grain of region %d: %v", region, err)
		}
		if c.inTable(e, n) {
			return nil, 0, corruptf("grain of region %d at sector %d is inside a grain table", region, e)
		}
		end = max(end, e+n)
		i = j
	}
	if len(c.tables) >= maxCachedTables {
		clear(c.tables)
	}
	c.tables[region] = gt
	return gt, end, nil
}

// table returns region's grain table, nil when the region has none.
func (c *COWDFile) table(region int64) ([]uint32, error) {
	if c.gd[region] == 0 {
		return nil, nil
	}
	if gt, ok := c.tables[region]; ok {
		return gt, nil
	}
	gt, _, err := c.loadTable(region)
	return gt, err
}

// Capacity returns the disk size in bytes the extent covers.
func (c *COWDFile) Capacity() int64 { return c.capacity }

// Size returns the file's length now.
func (c *COWDFile) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Allocated returns the byte ranges that have a grain, sorted and merged.
func (c *COWDFile) Allocated() []Range {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out rangeList
	for _, region := range slices.Sorted(maps.Keys(c.alloc)) {
		base := region * cowdRegion
		for _, r := range c.alloc[region] {
			out.add(base+int64(r.lo)*SectorSize, int64(r.hi-r.lo)*SectorSize)
		}
	}
	return out.rs
}

// ReadAt reads the extent's own data: sectors without a grain read as
// zeros (not as the parent). Reads past the capacity return io.EOF.
func (c *COWDFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrInvalidInput)
	}
	if off >= c.capacity {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(want), c.capacity-off)]
	c.mu.Lock()
	defer c.mu.Unlock()
	for pos, end := off, off+int64(len(p)); pos < end; {
		region := pos / cowdRegion
		base := region * cowdRegion
		stop := min(end, base+cowdRegion)
		gt, err := c.table(region)
		if err != nil {
			return int(pos - off), err
		}
		for pos < stop {
			i := (pos - base) / SectorSize
			e := uint32(0)
			if gt != nil {
				e = gt[i]
			}
			// Extend to the following sectors of the same kind: absent, or
			// stored right after this one.
			j := i + 1
			for gt != nil && base+j*SectorSize < stop && (e == 0 && gt[j] == 0 || e != 0 && gt[j] == e+uint32(j-i)) {
				j++
			}
			next := min(stop, base+j*SectorSize)
			seg := p[pos-off : next-off]
			if e == 0 {
				clear(seg)
			} else if err := c.read(seg, int64(e)*SectorSize+pos%SectorSize); err != nil {
				return int(pos - off), err
			}
			pos = next
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// WriteAt writes p at off; both must be multiples of 512 and the write
// must lie inside the capacity (ErrInvalidInput otherwise). It returns
// ErrTooLarge, having written the regions before, when the file would
// pass 2 TiB.
func (c *COWDFile) WriteAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if off < 0 || off%SectorSize != 0 || n%SectorSize != 0 || off > c.capacity || n > c.capacity-off {
		return 0, fmt.Errorf("%w: write of %d bytes at %d: not sector-aligned or outside the %d-byte extent", ErrInvalidInput, n, off, c.capacity)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, fmt.Errorf("vmdk: an earlier write to the COWD extent failed (reopen it): %w", c.err)
	}
	free := c.free
	done := int64(0)
	var err error
	for done < n {
		pos := off + done
		region := pos / cowdRegion
		k := min(n-done, (region+1)*cowdRegion-pos)
		if err = c.writeRegion(region, p[done:done+k], pos); err != nil {
			break
		}
		done += k
	}
	if err != nil && !errors.Is(err, ErrTooLarge) {
		c.err = err
	}
	if c.free != free {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(c.free))
		if _, herr := c.f.WriteAt(b[:], cowdFreeSectorField); herr != nil && err == nil {
			c.err, err = herr, herr
		}
	}
	return int(done), err
}

// writeRegion writes p at pos, all inside one 2 MiB region.
func (c *COWDFile) writeRegion(region int64, p []byte, pos int64) error {
	gt, err := c.table(region)
	if err != nil {
		return err
	}
	base := region * cowdRegion
	first := (pos - base) / SectorSize
	last := first + int64(len(p))/SectorSize
	fresh := int64(0)
	for i := first; i < last; i++ {
		if gt == nil || gt[i] == 0 {
			fresh++
		}
	}
	newTable := gt == nil
	gtAt := c.free
	next := c.free
	if newTable {
		next += cowdGTSectors
	}
	if next+fresh > cowdMaxSectors {
		return fmt.Errorf("%w: the COWD file would pass 2 TiB", ErrTooLarge)
	}
	ngt := gt
	if fresh > 0 {
		if newTable {
			ngt = make([]uint32, cowdGTEntries)
		} else {
			ngt = slices.Clone(gt)
		}
	}
	// Data first: overwrite grains in place, append new ones.
	lo, hi := int64(cowdGTEntries), int64(0) // table entries that change
	for i := first; i < last; {
		e := ngt[i]
		j := i + 1
		if e != 0 {
			for j < last && ngt[j] == e+uint32(j-i) {
				j++
			}
		} else {
			for j < last && ngt[j] == 0 {
				j++
			}
			e = uint32(next)
			for s := i; s < j; s++ {
				ngt[s] = uint32(next)
				next++
			}
			lo, hi = min(lo, i), max(hi, j)
		}
		seg := p[(i-first)*SectorSize : (j-first)*SectorSize]
		if _, err := c.f.WriteAt(seg, int64(e)*SectorSize); err != nil {
			return err
		}
		i = j
	}
	if fresh == 0 {
		return nil
	}
	size := c.size
	if next*SectorSize >= size {
		// Keep freeSector below the file's length, as the spec wants.
		size = (next*SectorSize/extentPad + 1) * extentPad
		if _, err := c.f.WriteAt(make([]byte, SectorSize), size-SectorSize); err != nil {
			return err
		}
		c.size = size
	}
	// Then the table: a whole new one, or the entries that changed.
	if newTable {
		lo, hi = 0, cowdGTEntries
	} else {
		gtAt = int64(c.gd[region])
	}
	b := make([]byte, (hi-lo)*4)
	for i := lo; i < hi; i++ {
		binary.LittleEndian.PutUint32(b[(i-lo)*4:], ngt[i])
	}
	if _, err := c.f.WriteAt(b, gtAt*SectorSize+lo*4); err != nil {
		return err
	}
	if !newTable {
		c.commit(region, ngt, next, first, last)
		return nil
	}
	// Then the directory entry.
	var e [4]byte
	binary.LittleEndian.PutUint32(e[:], uint32(gtAt))
	if _, err := c.f.WriteAt(e[:], c.gdOffset*SectorSize+region*4); err != nil {
		return err
	}
	c.gd[region] = uint32(gtAt)
	c.gts = append(c.gts, uint32(gtAt)) // past every table: stays sorted
	c.commit(region, ngt, next, first, last)
	return nil
}

// commit records a region's new table and allocated sectors [first, last).
func (c *COWDFile) commit(region int64, gt []uint32, free, first, last int64) {
	if _, ok := c.tables[region]; !ok && len(c.tables) >= maxCachedTables {
		clear(c.tables)
	}
	c.tables[region] = gt
	c.free = free
	c.alloc[region] = addRun(c.alloc[region], sectorRun{uint16(first), uint16(last)})
}

// addRun adds r to sorted, disjoint runs, merging what touches it.
func addRun(runs []sectorRun, r sectorRun) []sectorRun {
	i := sort.Search(len(runs), func(i int) bool { return runs[i].hi >= r.lo })
	j := i
	for j < len(runs) && runs[j].lo <= r.hi {
		r.lo, r.hi = min(r.lo, runs[j].lo), max(r.hi, runs[j].hi)
		j++
	}
	return slices.Replace(runs, i, j, r)
}

// rangeList collects ascending ranges, merging those that touch.
type rangeList struct{ rs []Range }

func (l *rangeList) add(off, n int64) {
	if n <= 0 {
		return
	}
	if k := len(l.rs); k > 0 && l.rs[k-1].End() >= off {
		l.rs[k-1].Len = max(l.rs[k-1].End(), off+n) - l.rs[k-1].Off
		return
	}
	l.rs = append(l.rs, Range{Off: off, Len: n})
}
