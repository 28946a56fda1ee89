package ext4

import (
	"encoding/binary"
	"fmt"
	"math"
)

// extent maps logical blocks [logical, logical+length) of a file to
// physical blocks [physical, physical+length).
type extent struct {
	logical, length, physical uint64
	uninit                    bool // unwritten: reads as zeros
}

// fileMap is the block mapping of a file.
type fileMap struct {
	extents []extent // sorted by logical block, disjoint
	meta    []uint64 // extent tree and indirect blocks read to build it
}

// budget bounds the blocks one mapping may name: a valid file maps no
// more blocks than the filesystem has, so a corrupt tree cannot make a
// walk run for long.
type budget struct{ left uint64 }

func (b *budget) take(n uint64) bool {
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// mapFile maps the logical blocks [0, limit) of in.
func (fs *FS) mapFile(in *Inode, limit uint64) (*fileMap, error) {
	m := &fileMap{}
	bud := &budget{left: fs.blocksCount}
	var err error
	if in.Flags&flagExtents != 0 {
		err = fs.walkExtents(in, in.iblock(), -1, limit, m, bud)
	} else {
		err = fs.walkBlockMap(in, limit, m, bud)
	}
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", in.Num, err)
	}
	return m, nil
}

// validRange reports whether physical blocks [start, start+n) can hold
// file data or tree blocks.
func (fs *FS) validRange(start, n uint64) bool {
	return start > fs.firstDataBlock && n <= fs.blocksCount && start <= fs.blocksCount-n
}

// add appends an extent, merging it with the previous one when both are
// contiguous logically and physically.
func (m *fileMap) add(e extent) {
	if k := len(m.extents); k > 0 {
		p := &m.extents[k-1]
		if p.uninit == e.uninit && p.logical+p.length == e.logical && p.physical+p.length == e.physical {
			p.length += e.length
			return
		}
	}
	m.extents = append(m.extents, e)
}

const (
	extentMagic    = 0xF30A
	maxExtentDepth = 5
	initMaxLen     = 32768
)

// walkExtents walks the extent tree node (the inode's i_block when depth
// is -1, else a tree block whose header must say depth).
func (fs *FS) walkExtents(in *Inode, node []byte, depth int, limit uint64, m *fileMap, bud *budget) error {
	le := binary.LittleEndian
	if le.Uint16(node[0:]) != extentMagic {
		return fmt.Errorf("%w: bad extent header magic %#04x", ErrCorrupt, le.Uint16(node[0:]))
	}
	entries, maxEntries, d := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
	if depth < 0 {
		if maxEntries > (len(node)-12)/12 || d > maxExtentDepth {
			return fmt.Errorf("%w: extent root with %d entries of depth %d", ErrCorrupt, maxEntries, d)
		}
	} else if d != depth || maxEntries > (len(node)-12)/12 {
		return fmt.Errorf("%w: extent node of depth %d (want %d) with room for %d entries", ErrCorrupt, d, depth, maxEntries)
	}
	if entries > maxEntries {
		return fmt.Errorf("%w: extent node with %d of %d entries", ErrCorrupt, entries, maxEntries)
	}
	var next uint64 // the first logical block the next entry may map
	for i := range entries {
		e := node[12+12*i : 24+12*i]
		lblk := uint64(le.Uint32(e[0:]))
		if lblk < next {
			return fmt.Errorf("%w: extent entries out of order at logical block %d", ErrCorrupt, lblk)
		}
		if lblk >= limit {
			break
		}
		if d == 0 {
			n := uint64(le.Uint16(e[4:]))
			uninit := false
			if n > initMaxLen {
				n -= initMaxLen
				uninit = true
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if n == 0 || !fs.validRange(phys, n) || lblk+n > 1<<32 {
				return fmt.Errorf("%w: extent of %d blocks at block %d (logical %d)", ErrCorrupt, n, phys, lblk)
			}
			if !bud.take(n) {
				return fmt.Errorf("%w: extents map more blocks than the filesystem has", ErrCorrupt)
			}
			m.add(extent{logical: lblk, length: n, physical: phys, uninit: uninit})
			next = lblk + n
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		if !fs.validRange(child, 1) || !bud.take(1) {
			return fmt.Errorf("%w: extent index to block %d", ErrCorrupt, child)
		}
		blk, err := fs.readBlock(child)
		if err != nil {
			return err
		}
		if err := fs.verifyExtentBlock(in, child, blk); err != nil {
			return err
		}
		m.meta = append(m.meta, child)
		before := len(m.extents)
		if err := fs.walkExtents(in, blk, d-1, limit, m, bud); err != nil {
			return err
		}
		if k := len(m.extents); k > before {
			if m.extents[before].logical < lblk {
				return fmt.Errorf("%w: extent block %d maps logical block %d before its index's %d",
					ErrCorrupt, child, m.extents[before].logical, lblk)
			}
			last := m.extents[k-1]
			next = last.logical + last.length
		}
		next = max(next, lblk+1)
	}
	// Entries of one node must also not overlap what an earlier sibling
	// subtree mapped: m.add keeps extents sorted only if they are.
	if k := len(m.extents); k > 1 {
		a, b := m.extents[k-2], m.extents[k-1]
		if b.logical < a.logical+a.length {
			return fmt.Errorf("%w: overlapping extents at logical block %d", ErrCorrupt, b.logical)
		}
	}
	return nil
}

// verifyExtentBlock checks the checksum in an extent tree block's tail.
func (fs *FS) verifyExtentBlock(in *Inode, n uint64, blk []byte) error {
	if !fs.metaCsum {
		return nil
	}
	maxEntries := int(binary.LittleEndian.Uint16(blk[4:]))
	tail := 12 + 12*maxEntries
	if tail+4 > len(blk) {
		return fmt.Errorf("%w: extent block %d has no room for its checksum", ErrCorrupt, n)
	}
	got := crc32c(fs.inodeSeed(in.Num, in.Generation), blk[:tail])
	if stored := binary.LittleEndian.Uint32(blk[tail:]); got != stored {
		return fmt.Errorf("%w: extent block %d of inode %d (computed %#08x, stored %#08x)", ErrChecksum, n, in.Num, got, stored)
	}
	return nil
}

// walkBlockMap maps a file with the classic ext2/3 block map: 12 direct
// blocks, then single, double and triple indirect blocks.
func (fs *FS) walkBlockMap(in *Inode, limit uint64, m *fileMap, bud *budget) error {
	le := binary.LittleEndian
	ib := in.iblock()
	for i := range uint64(12) {
		if i >= limit {
			return nil
		}
		if p := uint64(le.Uint32(ib[4*i:])); p != 0 {
			if err := fs.mapBlock(m, bud, i, p); err != nil {
				return err
			}
		}
	}
	per := uint64(fs.blockSize / 4)
	base, span := uint64(12), per
	for level := 1; level <= 3; level++ {
		if base >= limit {
			return nil
		}
		if p := uint64(le.Uint32(ib[4*(11+level):])); p != 0 {
			if err := fs.walkIndirect(m, bud, p, level, base, limit); err != nil {
				return err
			}
		}
		base += span
		span *= per
	}
	return nil
}

func (fs *FS) mapBlock(m *fileMap, bud *budget, logical, p uint64) error {
	if !fs.validRange(p, 1) || !bud.take(1) {
		return fmt.Errorf("%w: block map names block %d for logical block %d", ErrCorrupt, p, logical)
	}
	m.add(extent{logical: logical, length: 1, physical: p})
	return nil
}

// walkIndirect maps the blocks an indirect block of the given level
// (1: single) names, the first of them logical block base.
func (fs *FS) walkIndirect(m *fileMap, bud *budget, p uint64, level int, base, limit uint64) error {
	if !fs.validRange(p, 1) || !bud.take(1) {
		return fmt.Errorf("%w: indirect block %d", ErrCorrupt, p)
	}
	blk, err := fs.readBlock(p)
	if err != nil {
		return err
	}
	m.meta = append(m.meta, p)
	per := uint64(fs.blockSize / 4)
	span := uint64(1)
	for range level - 1 {
		span *= per
	}
	for j := range per {
		lb := base + j*span
		if lb >= limit {
			break
		}
		c := uint64(binary.LittleEndian.Uint32(blk[4*j:]))
		if c == 0 {
			continue
		}
		if level == 1 {
			err = fs.mapBlock(m, bud, lb, c)
		} else {
			err = fs.walkIndirect(m, bud, c, level-1, lb, limit)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// blocksFor returns how many blocks hold size bytes.
func (fs *FS) blocksFor(size int64) uint64 {
	if size <= 0 {
		return 0
	}
	return uint64((size-1)/fs.blockSize) + 1
}

// noLimit maps every block of a file.
const noLimit = math.MaxUint64
