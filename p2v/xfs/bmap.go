package xfs

import (
	"fmt"
	"sort"
)

// extent maps count file blocks from logical block lblk to filesystem
// block fsb; unwritten extents read as zeros.
type extent struct {
	lblk, fsb, count uint64
	unwritten        bool
}

const maxBtreeDepth = 9

// decodeExtent unpacks a 128-bit big-endian extent record.
func decodeExtent(rec []byte) extent {
	l0, l1 := be.Uint64(rec), be.Uint64(rec[8:])
	return extent{
		unwritten: l0>>63 != 0,
		lblk:      (l0 >> 9) & (1<<54 - 1),
		fsb:       (l0&0x1ff)<<43 | l1>>21,
		count:     l1 & (1<<21 - 1),
	}
}

// extents returns the data fork mapping of in, sorted by logical block and
// checked for overlaps and for blocks outside the filesystem.
func (fs *FS) extents(in *Inode) ([]extent, error) {
	var ext []extent
	switch in.Format {
	case fmtExtents:
		n := in.nextents
		if n > uint64(len(in.fork)/16) {
			return nil, fmt.Errorf("%w: inode %d: %d extents in a %d-byte fork", ErrCorrupt, in.Num, n, len(in.fork))
		}
		for i := uint64(0); i < n; i++ {
			ext = append(ext, decodeExtent(in.fork[i*16:]))
		}
	case fmtBtree:
		f := in.fork
		if len(f) < 4 {
			return nil, fmt.Errorf("%w: inode %d: bmap btree root in a %d-byte fork", ErrCorrupt, in.Num, len(f))
		}
		level, nrecs := int(be.Uint16(f)), int(be.Uint16(f[2:]))
		maxr := (len(f) - 4) / 16
		if level == 0 || level > maxBtreeDepth || nrecs == 0 || nrecs > maxr {
			return nil, fmt.Errorf("%w: inode %d: bmap btree root of level %d with %d records", ErrCorrupt, in.Num, level, nrecs)
		}
		w := &bmbtWalk{in: in, visited: map[uint64]bool{}}
		for i := 0; i < nrecs; i++ {
			ptr := be.Uint64(f[4+maxr*8+i*8:])
			if err := fs.walkBmbt(w, ptr, level-1); err != nil {
				return nil, err
			}
		}
		ext = w.ext
	default:
		return nil, fmt.Errorf("%w: inode %d: data fork format %d has no extents", ErrCorrupt, in.Num, in.Format)
	}
	sort.SliceStable(ext, func(i, j int) bool { return ext[i].lblk < ext[j].lblk })
	var end uint64
	for i, e := range ext {
		if e.count == 0 {
			return nil, fmt.Errorf("%w: inode %d: empty extent", ErrCorrupt, in.Num)
		}
		if _, ok := fs.fsbOffset(e.fsb, e.count); !ok {
			return nil, fmt.Errorf("%w: inode %d: extent of %d blocks at block %#x", ErrCorrupt, in.Num, e.count, e.fsb)
		}
		if i > 0 && e.lblk < end {
			return nil, fmt.Errorf("%w: inode %d: overlapping extents at logical block %d", ErrCorrupt, in.Num, e.lblk)
		}
		end = e.lblk + e.count
		if end > 1<<54 {
			return nil, fmt.Errorf("%w: inode %d: extent beyond the largest file offset", ErrCorrupt, in.Num)
		}
	}
	return ext, nil
}

// bmbtWalk is the state of one bmap btree walk.
type bmbtWalk struct {
	in      *Inode
	ext     []extent
	visited map[uint64]bool // btree blocks read: a block named twice is a cycle or a shared subtree
}

// walkBmbt appends the extents under bmap btree block fsb of the given
// level. Each block is read once, and the records may not outnumber the
// inode's extent count, so the walk is bounded by the blocks it reads.
func (fs *FS) walkBmbt(w *bmbtWalk, fsb uint64, level int) error {
	in := w.in
	off, ok := fs.fsbOffset(fsb, 1)
	if !ok {
		return fmt.Errorf("%w: inode %d: bmap btree block %#x", ErrCorrupt, in.Num, fsb)
	}
	if w.visited[fsb] {
		return fmt.Errorf("%w: inode %d: bmap btree block %#x (at byte %d) named twice", ErrCorrupt, in.Num, fsb, off)
	}
	w.visited[fsb] = true
	blk, err := fs.readAt(off, fs.blockSize)
	if err != nil {
		return err
	}
	hdr := 24
	if fs.version == 5 {
		hdr = 72
		if string(blk[0:4]) != "BMA3" {
			return fmt.Errorf("%w: inode %d: bmap btree block %#x: bad magic %q", ErrCorrupt, in.Num, fsb, blk[0:4])
		}
		if !cksumOK(blk, 64) {
			return fmt.Errorf("%w: inode %d: bmap btree block %#x", ErrChecksum, in.Num, fsb)
		}
		if be.Uint64(blk[56:]) != in.Num {
			return fmt.Errorf("%w: inode %d: bmap btree block %#x owned by inode %d", ErrCorrupt, in.Num, fsb, be.Uint64(blk[56:]))
		}
	} else if string(blk[0:4]) != "BMAP" {
		return fmt.Errorf("%w: inode %d: bmap btree block %#x: bad magic %q", ErrCorrupt, in.Num, fsb, blk[0:4])
	}
	lv, nrecs := int(be.Uint16(blk[4:])), int(be.Uint16(blk[6:]))
	maxr := (len(blk) - hdr) / 16
	if lv != level || nrecs == 0 || nrecs > maxr {
		return fmt.Errorf("%w: inode %d: bmap btree block %#x of level %d (want %d) with %d records",
			ErrCorrupt, in.Num, fsb, lv, level, nrecs)
	}
	if level == 0 {
		if uint64(len(w.ext)+nrecs) > in.nextents {
			return fmt.Errorf("%w: inode %d: bmap btree block %#x (at byte %d) holds more than the inode's %d extents",
				ErrCorrupt, in.Num, fsb, off, in.nextents)
		}
		for i := 0; i < nrecs; i++ {
			w.ext = append(w.ext, decodeExtent(blk[hdr+i*16:]))
		}
		return nil
	}
	for i := 0; i < nrecs; i++ {
		ptr := be.Uint64(blk[hdr+maxr*8+i*8:])
		if err := fs.walkBmbt(w, ptr, level-1); err != nil {
			return err
		}
	}
	return nil
}
