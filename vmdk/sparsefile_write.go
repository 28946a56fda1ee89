package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
)

// ReadAt reads the extent's own data: grains that are absent (or marked
// zero) read as zeros, not as the parent. Reads past the capacity return
// io.EOF.
func (s *SparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrInvalidInput)
	}
	if off >= s.capacity {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(want), s.capacity-off)]
	s.mu.Lock()
	defer s.mu.Unlock()
	for pos, end := off, off+int64(len(p)); pos < end; {
		region := pos / sparseRegion
		base := region * sparseRegion
		stop := min(end, base+sparseRegion)
		gt, err := s.table(region)
		if err != nil {
			return int(pos - off), err
		}
		for pos < stop {
			i := (pos - base) / streamGrainSize
			e := uint32(0)
			if gt != nil {
				e = gt[i]
			}
			// Extend to the following grains of the same kind: absent, zero,
			// or stored right after this one.
			j := i + 1
			for gt != nil && base+j*streamGrainSize < stop && s.follows(e, gt[j], j-i) {
				j++
			}
			next := min(stop, base+j*streamGrainSize)
			seg := p[pos-off : next-off]
			if s.isNew(e) {
				clear(seg)
			} else if err := s.read(seg, int64(e)*SectorSize+pos-base-i*streamGrainSize); err != nil {
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

// isNew reports whether a grain table entry has no grain of data: a write
// there allocates one.
func (s *SparseFile) isNew(e uint32) bool { return e == 0 || e == 1 && s.zeroGrain }

// follows reports whether entry next, k grains after entry e, is of the
// same kind: both without data, or stored right after it.
func (s *SparseFile) follows(e, next uint32, k int64) bool {
	if s.isNew(e) {
		return next == e
	}
	return int64(next) == int64(e)+k*streamGrainSectors
}

// WriteAt writes p at off; both must be multiples of 512 and the write
// must lie inside the capacity (ErrInvalidInput otherwise). The parts of
// new grains that p does not cover are filled from the backing (see
// SetBacking). It returns ErrTooLarge, having written the 32 MiB regions
// before, when the file would pass 2 TiB (grain entries are 32-bit sector
// numbers): one hosted sparse extent holds at most 2 TiB of grains, even
// when its capacity is larger.
func (s *SparseFile) WriteAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if off < 0 || off%SectorSize != 0 || n%SectorSize != 0 || off > s.capacity || n > s.capacity-off {
		return 0, fmt.Errorf("%w: write of %d bytes at %d: not sector-aligned or outside the %d-byte extent", ErrInvalidInput, n, off, s.capacity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, fmt.Errorf("vmdk: an earlier write to the sparse extent failed (reopen it): %w", s.err)
	}
	if err := s.repair(); err != nil {
		return 0, err
	}
	done := int64(0)
	for done < n {
		pos := off + done
		region := pos / sparseRegion
		k := min(n-done, (region+1)*sparseRegion-pos)
		if err := s.writeRegion(region, p[done:done+k], pos); err != nil {
			return int(done), err
		}
		done += k
	}
	return int(done), nil
}

// write writes to the file; a failure makes the SparseFile refuse further
// writes, since what reached the file is unknown.
func (s *SparseFile) write(p []byte, off int64) error {
	if _, err := s.f.WriteAt(p, off); err != nil {
		s.err = err
		return err
	}
	return nil
}

// repair rewrites the redundant tables OpenSparse found different from
// their primary (a crash between the two writes).
func (s *SparseFile) repair() error {
	for _, region := range slices.Sorted(maps.Keys(s.stale)) {
		gt, err := s.table(region)
		if err != nil {
			return err
		}
		if err := s.write(encodeEntries(gt), int64(s.rgd[region])*SectorSize); err != nil {
			return err
		}
		delete(s.stale, region)
	}
	return nil
}

// writeRegion writes p at pos, all inside one 32 MiB region.
func (s *SparseFile) writeRegion(region int64, p []byte, pos int64) error {
	gt, err := s.table(region)
	if err != nil {
		return err
	}
	const grain = streamGrainSize
	base := region * sparseRegion
	end := pos + int64(len(p))
	first := (pos - base) / grain
	last := ceilDiv(end-base, grain)
	newTable := gt == nil
	fresh := int64(0)
	for i := first; i < last; i++ {
		if newTable || s.isNew(gt[i]) {
			fresh++
		}
	}
	at := ceilDiv(s.size, SectorSize) // where new tables and grains go
	need := fresh * streamGrainSectors
	if newTable {
		need += gtSectors
		if s.rgd != nil {
			need += gtSectors
		}
	}
	if at+need > sparseMaxFileSectors {
		return fmt.Errorf("%w: the sparse extent file would pass 2 TiB", ErrTooLarge)
	}
	ngt := gt
	if newTable {
		ngt = make([]uint32, gtesPerGT)
	} else if fresh > 0 {
		ngt = slices.Clone(gt)
	}
	// A new grain that p covers only in part (the first or the last one)
	// is filled before anything is written, so that a failing backing
	// leaves the file untouched.
	var head, tail []byte
	covered := func(i int64) bool { return pos <= base+i*grain && base+(i+1)*grain <= end }
	if s.isNew(ngt[first]) && !covered(first) {
		if head, err = s.fill(base+first*grain, ngt[first], p, pos); err != nil {
			return err
		}
	}
	if last-1 != first && s.isNew(ngt[last-1]) && !covered(last-1) {
		if tail, err = s.fill(base+(last-1)*grain, ngt[last-1], p, pos); err != nil {
			return err
		}
	}
	var rgtAt, gtAt int64
	if newTable {
		if s.rgd != nil {
			rgtAt, at = at, at+gtSectors
		}
		gtAt, at = at, at+gtSectors
	}
	// Data first: overwrite grains in place, append new ones.
	lo, hi := int64(gtesPerGT), int64(0) // table entries that change
	for i := first; i < last; {
		e := ngt[i]
		j := i + 1
		if !s.isNew(e) {
			for j < last && s.follows(e, ngt[j], j-i) {
				j++
			}
			a, b := max(pos, base+i*grain), min(end, base+j*grain)
			if err := s.write(p[a-pos:b-pos], int64(e)*SectorSize+a-base-i*grain); err != nil {
				return err
			}
			i = j
			continue
		}
		for j < last && s.isNew(ngt[j]) {
			j++
		}
		for k := i; k < j; k++ {
			ngt[k] = uint32(at + (k-i)*streamGrainSectors)
		}
		k, m := i, j
		if k == first && head != nil {
			if err := s.write(head, at*SectorSize); err != nil {
				return err
			}
			k++
		}
		if m == last && tail != nil {
			m--
		}
		if m > k {
			if err := s.write(p[base+k*grain-pos:base+m*grain-pos], int64(ngt[k])*SectorSize); err != nil {
				return err
			}
		}
		if m < j {
			if err := s.write(tail, int64(ngt[m])*SectorSize); err != nil {
				return err
			}
		}
		at += (j - i) * streamGrainSectors
		lo, hi = min(lo, i), max(hi, j)
		i = j
	}
	if fresh == 0 {
		return nil
	}
	s.size = max(s.size, at*SectorSize)
	// Then the tables: whole new ones, or the entries that changed, the
	// redundant copy before the primary.
	if !newTable {
		b := encodeEntries(ngt[lo:hi])
		if s.rgd != nil {
			if err := s.write(b, int64(s.rgd[region])*SectorSize+lo*4); err != nil {
				return err
			}
		}
		if err := s.write(b, int64(s.gd[region])*SectorSize+lo*4); err != nil {
			return err
		}
		s.commit(region, ngt, first, last)
		return nil
	}
	b := encodeEntries(ngt)
	if s.rgd != nil {
		if err := s.write(b, rgtAt*SectorSize); err != nil {
			return err
		}
	}
	if err := s.write(b, gtAt*SectorSize); err != nil {
		return err
	}
	// Then the directory entries, the primary last: until it is written,
	// the region reads as it did.
	if s.rgd != nil {
		if err := s.write(encodeEntries([]uint32{uint32(rgtAt)}), s.rgdOffset*SectorSize+region*4); err != nil {
			return err
		}
		s.rgd[region] = uint32(rgtAt)
		s.tableAt = append(s.tableAt, uint32(rgtAt)) // past every table: stays sorted
	}
	if err := s.write(encodeEntries([]uint32{uint32(gtAt)}), s.gdOffset*SectorSize+region*4); err != nil {
		return err
	}
	s.gd[region] = uint32(gtAt)
	s.tableAt = append(s.tableAt, uint32(gtAt))
	s.commit(region, ngt, first, last)
	return nil
}

// fill returns the new grain at disk offset gs whose entry is e: the
// backing's content (zeros for a zero grain or without a backing), past
// the capacity zeros, with p, written at pos, laid over it.
func (s *SparseFile) fill(gs int64, e uint32, p []byte, pos int64) ([]byte, error) {
	buf := make([]byte, streamGrainSize)
	n := min(streamGrainSize, s.capacity-gs)
	if e == 0 && s.backing != nil {
		k, err := s.backing.ReadAt(buf[:n], gs)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("vmdk: reading the parent at %d to fill a grain: %w", gs, err)
		}
		clear(buf[k:])
	}
	lo, hi := max(pos, gs), min(pos+int64(len(p)), gs+n)
	copy(buf[lo-gs:hi-gs], p[lo-pos:hi-pos])
	return buf, nil
}

// commit records region's new table and its grains [first, last).
func (s *SparseFile) commit(region int64, gt []uint32, first, last int64) {
	s.cache(region, gt)
	bits := s.alloc[region]
	if bits == nil {
		bits = &grainBits{}
		s.alloc[region] = bits
	}
	for i := first; i < last; i++ {
		bits[i/64] |= 1 << (i % 64)
	}
}

func encodeEntries(v []uint32) []byte {
	b := make([]byte, len(v)*4)
	for i, e := range v {
		binary.LittleEndian.PutUint32(b[i*4:], e)
	}
	return b
}
