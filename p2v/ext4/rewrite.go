package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// Patch is a same-size, in-place edit of the filesystem: Data replaces
// the bytes at Offset, an offset within the filesystem (add the
// partition's start for a disk offset).
type Patch struct {
	Offset int64
	Data   []byte
}

// End returns the first offset past the patch.
func (p Patch) End() int64 { return p.Offset + int64(len(p.Data)) }

// RewriteFile returns the patches that replace the content of the
// regular file path (symbolic links followed) with content, in the
// file's own blocks: nothing is allocated or freed. content must fit in
// the file's initialized blocks (else ErrNoRoom); the rest of its last
// block, and any block that held the old content but not the new, are
// zeroed. The inode's i_size and, with metadata_csum, its checksum are
// updated; times, block counts and everything else are left alone.
//
// Because a file may not keep initialized blocks past its end, content
// must reach into the file's last initialized block. RewriteFile refuses
// (ErrUnsupported) inline-data, encrypted and verity files, filesystems
// whose journal needs recovery (replaying it could undo the inode
// patch) and filesystems whose blocks may be shared between files.
func (fs *FS) RewriteFile(path string, content []byte) ([]Patch, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	patches, err := fs.rewrite(in, content)
	if err != nil {
		return nil, fmt.Errorf("rewriting %q: %w", path, err)
	}
	return patches, nil
}

func (fs *FS) rewrite(in *Inode, content []byte) ([]Patch, error) {
	switch {
	case !in.IsRegular():
		return nil, fmt.Errorf("%w (inode %d, mode %#o)", ErrNotRegular, in.Num, in.Mode)
	case fs.NeedsRecovery():
		return nil, fmt.Errorf("%w: the journal needs recovery, and replaying it could undo the patches", ErrUnsupported)
	case fs.roCompat&(roCompatHasSnapshot|roCompatSharedBlocks) != 0:
		return nil, fmt.Errorf("%w: the filesystem may share blocks between files (snapshots or shared_blocks)", ErrUnsupported)
	case fs.roCompat&^roCompatRewritable != 0:
		return nil, fmt.Errorf("%w: unknown read-only-compatible features %#x", ErrUnsupported, fs.roCompat&^roCompatRewritable)
	case in.Flags&flagInlineData != 0:
		return nil, fmt.Errorf("%w: inode %d keeps its data inline", ErrUnsupported, in.Num)
	case in.Flags&flagEncrypt != 0:
		return nil, fmt.Errorf("%w: inode %d is encrypted", ErrUnsupported, in.Num)
	case in.Flags&flagVerity != 0:
		return nil, fmt.Errorf("%w: inode %d is protected by fs-verity", ErrUnsupported, in.Num)
	case len(content) > math.MaxInt32 && fs.roCompat&roCompatLargeFile == 0:
		return nil, fmt.Errorf("%w: %d bytes need the large_file feature", ErrNoRoom, len(content))
	}
	m, err := fs.mapFile(in, noLimit)
	if err != nil {
		return nil, err
	}
	bs := fs.blockSize
	newN := fs.blocksFor(int64(len(content)))
	oldN := fs.blocksFor(in.Size)
	var covered uint64 // initialized blocks among [0, newN)
	lastInit := int64(-1)
	for _, e := range m.extents {
		if e.uninit {
			continue
		}
		lastInit = int64(e.logical + e.length - 1)
		if e.logical < newN {
			covered += min(e.length, newN-e.logical)
		}
	}
	if covered < newN {
		return nil, fmt.Errorf("%w: %d bytes need %d blocks, inode %d has %d initialized blocks from its start",
			ErrNoRoom, len(content), newN, in.Num, covered)
	}
	if lastInit >= 0 && int64(len(content)) < lastInit*bs {
		return nil, fmt.Errorf("%w: %d bytes would leave inode %d's initialized block %d past the end of the file",
			ErrUnsupported, len(content), in.Num, lastInit)
	}

	// The blocks to write: those of the new content, and those that held
	// old content past the new end.
	end := max(newN, oldN)
	var pieces []extent
	for _, e := range m.extents {
		if e.uninit || e.logical >= end {
			continue
		}
		e.length = min(e.length, end-e.logical)
		pieces = append(pieces, e)
	}
	if err := fs.checkDataBlocks(in, pieces, m.meta); err != nil {
		return nil, err
	}
	var patches []Patch
	for _, e := range pieces {
		data := make([]byte, int64(e.length)*bs)
		if start := int64(e.logical) * bs; start < int64(len(content)) {
			copy(data, content[start:])
		}
		patches = append(patches, Patch{Offset: int64(e.physical) * bs, Data: data})
	}

	raw := append([]byte(nil), in.raw...)
	binary.LittleEndian.PutUint32(raw[0x4:], uint32(len(content)))
	binary.LittleEndian.PutUint32(raw[0x6C:], uint32(uint64(len(content))>>32))
	if fs.metaCsum {
		fs.setInodeCsum(in.Num, raw)
	}
	if !bytes.Equal(raw, in.raw) {
		patches = append(patches, Patch{Offset: in.off, Data: raw})
	}
	sort.Slice(patches, func(i, j int) bool { return patches[i].Offset < patches[j].Offset })
	for i := 1; i < len(patches); i++ {
		if patches[i].Offset < patches[i-1].End() {
			return nil, fmt.Errorf("%w: inode %d's blocks overlap its own inode", ErrCorrupt, in.Num)
		}
	}
	return patches, nil
}

// checkDataBlocks makes sure the blocks about to be written hold only
// the file's data: they are marked in use, and are neither the file's
// own mapping blocks nor the metadata of their block group or its
// flex group. A corrupt filesystem must not turn a file rewrite into an
// overwrite of something else.
func (fs *FS) checkDataBlocks(in *Inode, pieces []extent, meta []uint64) error {
	for _, e := range pieces {
		for _, b := range meta {
			if b >= e.physical && b < e.physical+e.length {
				return fmt.Errorf("%w: inode %d maps its own tree block %d as data", ErrCorrupt, in.Num, b)
			}
		}
		first := (e.physical - fs.firstDataBlock) / fs.blocksPerGroup
		last := (e.physical + e.length - 1 - fs.firstDataBlock) / fs.blocksPerGroup
		for g := first; g <= last; g++ {
			lo := max(e.physical, fs.groupFirstBlock(g))
			hi := min(e.physical+e.length, fs.groupFirstBlock(g)+fs.blocksPerGroup)
			if err := fs.checkInUse(g, lo, hi); err != nil {
				return fmt.Errorf("inode %d: %w", in.Num, err)
			}
			if err := fs.checkNotMetadata(g, lo, hi); err != nil {
				return fmt.Errorf("inode %d: %w", in.Num, err)
			}
		}
	}
	return nil
}

// checkInUse checks that the block bitmap of group g marks blocks
// [lo, hi) in use.
func (fs *FS) checkInUse(g, lo, hi uint64) error {
	d, err := fs.groupDesc(g)
	if err != nil {
		return err
	}
	if (fs.metaCsum || fs.gdtCsum) && d.flags&bgBlockUninit != 0 {
		return fmt.Errorf("%w: data blocks %d-%d lie in group %d, whose blocks are all free", ErrCorrupt, lo, hi-1, g)
	}
	if !fs.validRange(d.blockBitmap, 1) {
		return fmt.Errorf("%w: group %d: block bitmap at block %d", ErrCorrupt, g, d.blockBitmap)
	}
	bm, err := fs.readBlock(d.blockBitmap)
	if err != nil {
		return err
	}
	if fs.metaCsum {
		n := fs.clustersPerGroup / 8
		got := crc32c(fs.csumSeed, bm[:n])
		if !d.hasCsumHi {
			got &= 0xFFFF
		}
		if got != d.blockBitmapCsum {
			return fmt.Errorf("%w: block bitmap of group %d (computed %#08x, stored %#08x)", ErrChecksum, g, got, d.blockBitmapCsum)
		}
	}
	base := fs.groupFirstBlock(g)
	for b := lo; b < hi; b++ {
		c := (b - base) >> fs.clusterBits
		if bm[c/8]&(1<<(c%8)) == 0 {
			return fmt.Errorf("%w: data block %d is marked free in group %d's bitmap", ErrCorrupt, b, g)
		}
	}
	return nil
}

// checkNotMetadata checks that blocks [lo, hi) of group g are none of
// the superblock, descriptor, bitmap and inode table blocks of g and of
// the groups of its flex group.
func (fs *FS) checkNotMetadata(g, lo, hi uint64) error {
	groups := []uint64{g}
	if fs.incompat&incompatFlexBG != 0 && fs.logGroupsPerFlex < 32 {
		flex := uint64(1) << fs.logGroupsPerFlex
		start := g / flex * flex
		for c := start; c < start+min(flex, 64) && c < fs.groups; c++ {
			if c != g {
				groups = append(groups, c)
			}
		}
	}
	itBlocks := (uint64(fs.inodesPerGroup)*uint64(fs.inodeSize) + uint64(fs.blockSize) - 1) / uint64(fs.blockSize)
	overlaps := func(start, n uint64) bool { return start < hi && lo < start+n }
	for _, c := range groups {
		d, err := fs.groupDesc(c)
		if err != nil {
			return err
		}
		if fs.hasSuper(c) {
			n := uint64(1)
			if fs.incompat&incompatMetaBG == 0 {
				n += fs.gdtBlocks + fs.reservedGDT
			}
			if overlaps(fs.groupFirstBlock(c), n) {
				return fmt.Errorf("%w: data blocks %d-%d overlap group %d's superblock or descriptors", ErrCorrupt, lo, hi-1, c)
			}
		}
		if overlaps(d.blockBitmap, 1) || overlaps(d.inodeBitmap, 1) || overlaps(d.inodeTable, itBlocks) {
			return fmt.Errorf("%w: data blocks %d-%d overlap group %d's bitmaps or inode table", ErrCorrupt, lo, hi-1, c)
		}
	}
	return nil
}
