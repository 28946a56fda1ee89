package vmdk

import (
	"fmt"
)

// Allocated returns the byte ranges that link depth of the chain (0 = the
// leaf) holds data for, sorted and merged: the grains present in sparse,
// streamOptimized and vmfsSparse extents (a grain marked zero in a hosted
// sparse extent counts: it hides the parent), the whole of FLAT and VMFS
// extents, nothing of ZERO extents. Where the link holds nothing, the
// chain reads its parent. The work follows the grain directories and the
// tables they point to, not the capacity: a huge sparse disk with a few
// grains answers at once.
func (c *Chain) Allocated(depth int) ([]Range, error) {
	if depth < 0 || depth >= len(c.links) {
		return nil, fmt.Errorf("%w: link %d of a chain of %d", ErrInvalidInput, depth, len(c.links))
	}
	l := c.links[depth]
	var out rangeList
	for i, x := range l.extents {
		start := l.starts[i]
		switch x := x.(type) {
		case *flatExtent:
			out.add(start, x.n)
		case zeroExtent:
		case *tableExtent:
			if err := x.allocated(start, &out); err != nil {
				return nil, &FileError{l.Name, err}
			}
		default:
			return nil, fmt.Errorf("vmdk: internal error: extent %T", x)
		}
	}
	return out.rs, nil
}

// allocated adds the grains present in the extent, shifted by start, to
// out. Grain tables are read uncached and bounds-checked like the
// reader's; a grain that does not start inside the file is corrupt, and
// so are grain tables that overlap (which would let a small file make
// this walk far more entries than it holds).
func (t *tableExtent) allocated(start int64, out *rangeList) error {
	grains := ceilDiv(t.capacity, t.grain)
	used := min(int64(len(t.gd)), ceilDiv(grains, t.gteCount))
	var tables []uint32
	for _, gde := range t.gd[:used] {
		if gde != 0 {
			tables = append(tables, gde)
		}
	}
	if err := sortTables(tables, ceilDiv(t.gteCount*4, SectorSize)); err != nil {
		return err
	}
	for gdi, gde := range t.gd[:used] {
		first := int64(gdi) * t.gteCount
		if gde == 0 {
			continue
		}
		gt, err := t.loadTable(gde)
		if err != nil {
			return err
		}
		for i, e := range gt {
			g := first + int64(i)
			if g >= grains {
				break
			}
			if e == 0 {
				continue
			}
			n := min(t.grain, t.capacity-g*t.grain)
			switch {
			case e == 1 && t.cowd:
				return fmt.Errorf("%w: COWD grain entry 1 (an emptied grain)", ErrUnsupported)
			case e == 1 && t.zeroGrain:
			case t.compressed && int64(e)*SectorSize >= t.fileSize,
				!t.compressed && int64(e)*SectorSize+n > t.fileSize:
				return corruptf("grain at sector %d beyond the end of the file", e)
			}
			out.add(start+g*t.grain, n)
		}
	}
	return nil
}
