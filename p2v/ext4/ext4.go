package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// Errors. Every error this package returns wraps one of them (or an I/O
// error of the underlying reader) and names the path or inode involved.
var (
	ErrNotExt4     = errors.New("ext4: not an ext2/3/4 filesystem")
	ErrCorrupt     = errors.New("ext4: corrupt filesystem")
	ErrChecksum    = errors.New("ext4: metadata checksum mismatch")
	ErrUnsupported = errors.New("ext4: unsupported")
	ErrNotFound    = errors.New("ext4: no such file or directory")
	ErrNotDir      = errors.New("ext4: not a directory")
	ErrNotRegular  = errors.New("ext4: not a regular file")
	ErrNotSymlink  = errors.New("ext4: not a symbolic link")
	ErrLoop        = errors.New("ext4: too many levels of symbolic links")
	ErrNoRoom      = errors.New("ext4: content does not fit in the file's allocated blocks")
)

// MaxReadSize bounds ReadFile: larger files are refused (use FileRanges).
const MaxReadSize = 16 << 20

// maxSymlinkHops is the kernel's limit on symbolic links followed while
// resolving one path.
const maxSymlinkHops = 40

// maxLookups bounds the directory lookups of one path resolution: links
// whose targets are long runs of "x/.." would otherwise make 40 hops
// cost tens of thousands of directory walks.
const maxLookups = 4096

// Superblock feature bits this package looks at.
const (
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64Bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// incompatKnown are the incompatible features a reader can cope with.
	incompatKnown = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents |
		incompat64Bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed |
		incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatBtreeDir     = 0x4
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatHasSnapshot  = 0x80
	roCompatQuota        = 0x100
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	roCompatReadonly     = 0x1000
	roCompatProject      = 0x2000
	roCompatSharedBlocks = 0x4000
	roCompatVerity       = 0x8000
	roCompatOrphan       = 0x10000

	// roCompatRewritable are the read-only-compatible features under which
	// rewriting a file's data blocks and i_size keeps the filesystem
	// consistent. Snapshots and shared blocks are not among them: a block
	// of the file may belong to another file too.
	roCompatRewritable = roCompatSparseSuper | roCompatLargeFile | roCompatBtreeDir |
		roCompatHugeFile | roCompatGdtCsum | roCompatDirNlink | roCompatExtraIsize |
		roCompatQuota | roCompatBigalloc | roCompatMetadataCsum | roCompatReadonly |
		roCompatProject | roCompatVerity | roCompatOrphan
)

// Block group flags.
const (
	bgInodeUninit = 0x1
	bgBlockUninit = 0x2
)

const rootIno = 2

// FS is an ext2, ext3 or ext4 filesystem read from an io.ReaderAt. It
// never writes. Its methods are safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64

	sb []byte // the 1024-byte superblock

	blockSize        int64
	blocksCount      uint64
	firstDataBlock   uint64
	blocksPerGroup   uint64
	clusterBits      uint
	clustersPerGroup uint64
	inodesCount      uint32
	inodesPerGroup   uint32
	inodeSize        int
	descSize         int
	groups           uint64
	gdtBlocks        uint64 // blocks the group descriptor table takes
	reservedGDT      uint64
	firstMetaBG      uint64
	logGroupsPerFlex uint
	backupBGs        [2]uint32

	compat, incompat, roCompat uint32

	metaCsum bool   // metadata_csum
	gdtCsum  bool   // uninit_bg (crc16 group descriptor checksums)
	csumSeed uint32 // crc32c seed of metadata checksums

	mu     sync.Mutex
	descs  map[uint64]*groupDesc // verified group descriptors
	gdt    map[uint64][]byte     // group descriptor table blocks
	itable map[uint64][]byte     // inode table blocks
}

// groupDesc is one block group descriptor.
type groupDesc struct {
	blockBitmap     uint64
	inodeBitmap     uint64
	inodeTable      uint64
	flags           uint16
	itableUnused    uint32
	blockBitmapCsum uint32
	hasCsumHi       bool
}

// Open reads the superblock of the filesystem r (of size bytes: the
// partition, not the whole disk) and checks that the filesystem is one
// this package can read. size must cover every block the superblock
// counts: a truncated image is ErrCorrupt. With metadata_csum the
// superblock checksum is verified, and group 0's descriptor is read.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < 2048 {
		return nil, fmt.Errorf("%w: %d bytes is too small", ErrNotExt4, size)
	}
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("ext4: reading the superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xEF53 {
		return nil, fmt.Errorf("%w: bad superblock magic %#04x", ErrNotExt4, le.Uint16(sb[0x38:]))
	}
	fs := &FS{
		r: r, size: size, sb: sb,
		descs:  map[uint64]*groupDesc{},
		gdt:    map[uint64][]byte{},
		itable: map[uint64][]byte{},
	}
	fs.compat = le.Uint32(sb[0x5C:])
	fs.incompat = le.Uint32(sb[0x60:])
	fs.roCompat = le.Uint32(sb[0x64:])
	rev := le.Uint32(sb[0x4C:])
	if rev == 0 {
		fs.compat, fs.incompat, fs.roCompat = 0, 0, 0
	}
	fs.metaCsum = fs.roCompat&roCompatMetadataCsum != 0
	fs.gdtCsum = !fs.metaCsum && fs.roCompat&roCompatGdtCsum != 0

	if fs.metaCsum {
		if sb[0x175] != 1 {
			return nil, fmt.Errorf("%w: superblock checksum type %d", ErrUnsupported, sb[0x175])
		}
		if got, want := crc32c(^uint32(0), sb[:0x3FC]), le.Uint32(sb[0x3FC:]); got != want {
			return nil, fmt.Errorf("%w: superblock (computed %#08x, stored %#08x)", ErrChecksum, got, want)
		}
		if fs.incompat&incompatCsumSeed != 0 {
			fs.csumSeed = le.Uint32(sb[0x270:])
		} else {
			fs.csumSeed = crc32c(^uint32(0), sb[0x68:0x78])
		}
	}
	if f := fs.incompat &^ incompatKnown; f != 0 {
		what := "unknown"
		switch {
		case f&incompatCompression != 0:
			what = "compression"
		case f&incompatJournalDev != 0:
			what = "external journal device"
		case f&incompatDirData != 0:
			what = "dirdata"
		}
		return nil, fmt.Errorf("%w: incompatible feature %s (%#x)", ErrUnsupported, what, f)
	}

	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return nil, fmt.Errorf("%w: block size 1024<<%d", ErrCorrupt, logBS)
	}
	fs.blockSize = 1024 << logBS
	fs.blocksCount = uint64(le.Uint32(sb[0x4:]))
	if fs.incompat&incompat64Bit != 0 {
		fs.blocksCount |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	fs.firstDataBlock = uint64(le.Uint32(sb[0x14:]))
	fs.blocksPerGroup = uint64(le.Uint32(sb[0x20:]))
	fs.inodesCount = le.Uint32(sb[0x0:])
	fs.inodesPerGroup = le.Uint32(sb[0x28:])
	fs.inodeSize = 128
	if rev >= 1 {
		fs.inodeSize = int(le.Uint16(sb[0x58:]))
	}
	if fs.roCompat&roCompatBigalloc != 0 {
		logCS := le.Uint32(sb[0x1C:])
		if logCS < logBS || logCS-logBS > 16 {
			return nil, fmt.Errorf("%w: cluster size 1024<<%d", ErrCorrupt, logCS)
		}
		fs.clusterBits = uint(logCS - logBS)
	}
	fs.clustersPerGroup = uint64(le.Uint32(sb[0x24:]))
	if fs.clusterBits == 0 {
		fs.clustersPerGroup = fs.blocksPerGroup
	}
	switch {
	case fs.blocksCount == 0 || fs.firstDataBlock >= fs.blocksCount:
		return nil, fmt.Errorf("%w: %d blocks, first data block %d", ErrCorrupt, fs.blocksCount, fs.firstDataBlock)
	case fs.blocksPerGroup == 0 || fs.clustersPerGroup == 0 || fs.clustersPerGroup > uint64(fs.blockSize)*8 ||
		fs.blocksPerGroup != fs.clustersPerGroup<<fs.clusterBits:
		return nil, fmt.Errorf("%w: %d blocks and %d clusters per group", ErrCorrupt, fs.blocksPerGroup, fs.clustersPerGroup)
	case fs.inodesPerGroup == 0 || uint64(fs.inodesPerGroup) > uint64(fs.blockSize)*8:
		return nil, fmt.Errorf("%w: %d inodes per group", ErrCorrupt, fs.inodesPerGroup)
	case fs.inodeSize < 128 || int64(fs.inodeSize) > fs.blockSize || bits.OnesCount(uint(fs.inodeSize)) != 1:
		return nil, fmt.Errorf("%w: inode size %d", ErrCorrupt, fs.inodeSize)
	}
	if fs.blocksCount > uint64(size)/uint64(fs.blockSize) {
		return nil, fmt.Errorf("%w: the filesystem has %d blocks of %d bytes but the image only %d bytes",
			ErrCorrupt, fs.blocksCount, fs.blockSize, size)
	}
	fs.groups = (fs.blocksCount - fs.firstDataBlock + fs.blocksPerGroup - 1) / fs.blocksPerGroup
	if uint64(fs.inodesCount) > fs.groups*uint64(fs.inodesPerGroup) || fs.inodesCount < rootIno {
		return nil, fmt.Errorf("%w: %d inodes in %d groups of %d", ErrCorrupt, fs.inodesCount, fs.groups, fs.inodesPerGroup)
	}
	fs.descSize = 32
	if fs.incompat&incompat64Bit != 0 {
		fs.descSize = int(le.Uint16(sb[0xFE:]))
		if fs.descSize < 64 || fs.descSize > 1024 || bits.OnesCount(uint(fs.descSize)) != 1 || int64(fs.descSize) > fs.blockSize {
			return nil, fmt.Errorf("%w: group descriptor size %d", ErrCorrupt, fs.descSize)
		}
	}
	perBlock := uint64(fs.blockSize) / uint64(fs.descSize)
	fs.gdtBlocks = (fs.groups + perBlock - 1) / perBlock
	fs.reservedGDT = uint64(le.Uint16(sb[0xCE:]))
	fs.firstMetaBG = uint64(le.Uint32(sb[0x104:]))
	fs.logGroupsPerFlex = uint(sb[0x174])
	fs.backupBGs = [2]uint32{le.Uint32(sb[0x24C:]), le.Uint32(sb[0x250:])}
	if fs.incompat&incompatMetaBG == 0 && fs.gdtBlocks > fs.blocksPerGroup {
		return nil, fmt.Errorf("%w: %d group descriptor blocks do not fit in a group", ErrCorrupt, fs.gdtBlocks)
	}
	// The group descriptors of the inodes every lookup needs.
	if _, err := fs.groupDesc(0); err != nil {
		return nil, err
	}
	return fs, nil
}

// BlockSize returns the filesystem block size in bytes.
func (fs *FS) BlockSize() int { return int(fs.blockSize) }

// UUID returns the filesystem UUID (as in /etc/fstab UUID=...).
func (fs *FS) UUID() string {
	u := fs.sb[0x68:0x78]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Label returns the volume label (as in /etc/fstab LABEL=...).
func (fs *FS) Label() string { return cstring(fs.sb[0x78:0x88]) }

// MetadataChecksums reports whether the filesystem has metadata_csum.
func (fs *FS) MetadataChecksums() bool { return fs.metaCsum }

// NeedsRecovery reports whether the journal holds transactions not yet
// written to their final place: what this package reads may be stale,
// and RewriteFile refuses.
func (fs *FS) NeedsRecovery() bool { return fs.incompat&incompatRecover != 0 }

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// readAt reads exactly len(p) bytes at off, within the filesystem.
func (fs *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > fs.size || int64(len(p)) > fs.size-off {
		return fmt.Errorf("%w: read of %d bytes at %d outside the %d-byte filesystem", ErrCorrupt, len(p), off, fs.size)
	}
	n, err := fs.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("ext4: reading %d bytes at %d: %w", len(p), off, err)
}

// readBlock reads block n, which must be inside the filesystem.
func (fs *FS) readBlock(n uint64) ([]byte, error) {
	if n >= fs.blocksCount {
		return nil, fmt.Errorf("%w: block %d beyond the filesystem's %d", ErrCorrupt, n, fs.blocksCount)
	}
	b := make([]byte, fs.blockSize)
	return b, fs.readAt(b, int64(n)*fs.blockSize)
}

// groupFirstBlock returns the first block of group g.
func (fs *FS) groupFirstBlock(g uint64) uint64 { return fs.firstDataBlock + g*fs.blocksPerGroup }

// hasSuper reports whether group g holds a superblock (and descriptor
// table) backup.
func (fs *FS) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if fs.compat&compatSparseSuper2 != 0 {
		return g == uint64(fs.backupBGs[0]) || g == uint64(fs.backupBGs[1])
	}
	if g <= 1 || fs.roCompat&roCompatSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	for _, b := range []uint64{3, 5, 7} {
		n := b
		for n < g {
			n *= b
		}
		if n == g {
			return true
		}
	}
	return false
}

// gdtBlockLoc returns where block i of the group descriptor table is, as
// the kernel's descriptor_loc computes it.
func (fs *FS) gdtBlockLoc(i uint64) uint64 {
	sbBlock := uint64(0)
	if fs.blockSize == 1024 {
		sbBlock = 1
	}
	if fs.incompat&incompatMetaBG == 0 || i < fs.firstMetaBG {
		return sbBlock + i + 1
	}
	g := i * (uint64(fs.blockSize) / uint64(fs.descSize))
	loc := fs.groupFirstBlock(g)
	if fs.hasSuper(g) {
		loc++
	}
	if fs.blockSize == 1024 && i == 0 && fs.firstDataBlock == 0 {
		loc++
	}
	return loc
}

// groupDesc returns the verified descriptor of group g.
func (fs *FS) groupDesc(g uint64) (*groupDesc, error) {
	if g >= fs.groups {
		return nil, fmt.Errorf("%w: group %d beyond the filesystem's %d", ErrCorrupt, g, fs.groups)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if d := fs.descs[g]; d != nil {
		return d, nil
	}
	perBlock := uint64(fs.blockSize) / uint64(fs.descSize)
	bi := g / perBlock
	blk := fs.gdt[bi]
	if blk == nil {
		var err error
		if blk, err = fs.readBlock(fs.gdtBlockLoc(bi)); err != nil {
			return nil, fmt.Errorf("group descriptors of group %d: %w", g, err)
		}
		fs.gdt[bi] = blk
	}
	off := (g % perBlock) * uint64(fs.descSize)
	raw := blk[off : off+uint64(fs.descSize)]
	if err := fs.verifyGroupDesc(g, raw); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	d := &groupDesc{
		blockBitmap:     uint64(le.Uint32(raw[0x0:])),
		inodeBitmap:     uint64(le.Uint32(raw[0x4:])),
		inodeTable:      uint64(le.Uint32(raw[0x8:])),
		flags:           le.Uint16(raw[0x12:]),
		itableUnused:    uint32(le.Uint16(raw[0x1C:])),
		blockBitmapCsum: uint32(le.Uint16(raw[0x18:])),
	}
	if fs.descSize >= 64 {
		d.blockBitmap |= uint64(le.Uint32(raw[0x20:])) << 32
		d.inodeBitmap |= uint64(le.Uint32(raw[0x24:])) << 32
		d.inodeTable |= uint64(le.Uint32(raw[0x28:])) << 32
		d.itableUnused |= uint32(le.Uint16(raw[0x32:])) << 16
		d.blockBitmapCsum |= uint32(le.Uint16(raw[0x38:])) << 16
		d.hasCsumHi = true
	}
	itBlocks := (uint64(fs.inodesPerGroup)*uint64(fs.inodeSize) + uint64(fs.blockSize) - 1) / uint64(fs.blockSize)
	if d.inodeTable == 0 || d.inodeTable > fs.blocksCount || fs.blocksCount-d.inodeTable < itBlocks {
		return nil, fmt.Errorf("%w: group %d: inode table at block %d", ErrCorrupt, g, d.inodeTable)
	}
	fs.descs[g] = d
	return d, nil
}

// verifyGroupDesc checks the checksum of group g's descriptor raw.
func (fs *FS) verifyGroupDesc(g uint64, raw []byte) error {
	var le32 [4]byte
	binary.LittleEndian.PutUint32(le32[:], uint32(g))
	stored := binary.LittleEndian.Uint16(raw[0x1E:])
	var got uint16
	switch {
	case fs.metaCsum:
		c := crc32c(fs.csumSeed, le32[:])
		c = crc32c(c, raw[:0x1E])
		c = crc32c(c, []byte{0, 0})
		c = crc32c(c, raw[0x20:])
		got = uint16(c)
	case fs.gdtCsum:
		c := crc16(0xFFFF, fs.sb[0x68:0x78])
		c = crc16(c, le32[:])
		c = crc16(c, raw[:0x1E])
		if fs.incompat&incompat64Bit != 0 {
			c = crc16(c, raw[0x20:])
		}
		got = c
	default:
		return nil
	}
	if got != stored {
		return fmt.Errorf("%w: group descriptor %d (computed %#04x, stored %#04x)", ErrChecksum, g, got, stored)
	}
	return nil
}
