package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Errors. Every error this package returns wraps one of them (or an I/O
// error of the underlying reader) and names the path or inode involved.
var (
	ErrNotXFS      = errors.New("xfs: not an XFS filesystem")
	ErrCorrupt     = errors.New("xfs: corrupt filesystem")
	ErrChecksum    = errors.New("xfs: metadata checksum mismatch")
	ErrUnsupported = errors.New("xfs: unsupported")
	ErrNotFound    = errors.New("xfs: no such file or directory")
	ErrNotDir      = errors.New("xfs: not a directory")
	ErrNotRegular  = errors.New("xfs: not a regular file")
	ErrNotSymlink  = errors.New("xfs: not a symbolic link")
	ErrLoop        = errors.New("xfs: too many levels of symbolic links")
	ErrTooLarge    = errors.New("xfs: file too large to read into memory")
)

// MaxReadSize bounds ReadFile: larger files are refused (use FileRanges).
const MaxReadSize = 16 << 20

const maxSymlinkHops = 40

// maxLookups bounds the directory lookups of one path resolution: links
// whose targets are long runs of "x/.." would otherwise make a few
// dozen hops cost hundreds of thousands of directory walks.
const maxLookups = 4096

var be = binary.BigEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cksumOK verifies an XFS crc32c stored little-endian at off in buf,
// computed over buf with that field taken as zero.
func cksumOK(buf []byte, off int) bool {
	if off < 0 || off+4 > len(buf) {
		return false
	}
	var zero [4]byte
	c := crc32.Update(0, castagnoli, buf[:off])
	c = crc32.Update(c, castagnoli, zero[:])
	c = crc32.Update(c, castagnoli, buf[off+4:])
	return binary.LittleEndian.Uint32(buf[off:]) == c
}

// Superblock feature bits.
const (
	versionNumMask  = 0x000f
	versionMoreBits = 0x8000
	versionDirV2    = 0x2000
	features2Ftype  = 0x0200

	incompatFtype       = 1 << 0
	incompatSpinodes    = 1 << 1
	incompatMetaUUID    = 1 << 2
	incompatBigtime     = 1 << 3
	incompatNeedsRepair = 1 << 4
	incompatNrext64     = 1 << 5
	incompatExchrange   = 1 << 6
	incompatParent      = 1 << 7

	incompatKnown = incompatFtype | incompatSpinodes | incompatMetaUUID | incompatBigtime |
		incompatNrext64 | incompatExchrange | incompatParent
)

// FS is an XFS filesystem opened read-only. It is safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	sb   []byte

	version    int // 4 or 5
	blockSize  int64
	sectSize   int
	inodeSize  int
	agBlocks   uint64
	agCount    uint64
	agBlkLog   uint
	inopbLog   uint
	dblocks    uint64
	rootIno    uint64
	dirBlkLog  uint
	ftype      bool
	nrext64    bool
	metaUUID   [16]byte // uuid stamped in v5 metadata headers
	dirBlkSize int64
}

// Open reads and checks the superblock of the XFS filesystem in r, which
// is size bytes long.
func Open(r io.ReaderAt, size int64) (*FS, error) {
	if size < 512 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotXFS, size)
	}
	sb := make([]byte, 512)
	if _, err := r.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading superblock: %w", err)
	}
	if string(sb[0:4]) != "XFSB" {
		return nil, fmt.Errorf("%w: bad superblock magic %q", ErrNotXFS, sb[0:4])
	}
	fs := &FS{r: r, size: size}
	ver := be.Uint16(sb[100:]) & versionNumMask
	switch ver {
	case 4, 5:
		fs.version = int(ver)
	default:
		return nil, fmt.Errorf("%w: superblock version %d", ErrUnsupported, ver)
	}
	fs.sectSize = int(be.Uint16(sb[102:]))
	if fs.sectSize < 512 || fs.sectSize > 32768 || fs.sectSize&(fs.sectSize-1) != 0 {
		return nil, fmt.Errorf("%w: sector size %d", ErrCorrupt, fs.sectSize)
	}
	if int64(fs.sectSize) > size {
		return nil, fmt.Errorf("%w: sector size %d beyond %d-byte filesystem", ErrCorrupt, fs.sectSize, size)
	}
	if fs.sectSize > 512 {
		sb = make([]byte, fs.sectSize)
		if _, err := r.ReadAt(sb, 0); err != nil {
			return nil, fmt.Errorf("xfs: reading superblock: %w", err)
		}
	}
	fs.sb = sb
	if fs.version == 5 && !cksumOK(sb, 224) {
		return nil, fmt.Errorf("%w: superblock", ErrChecksum)
	}
	bs := be.Uint32(sb[4:])
	blockLog := uint(sb[120])
	if blockLog < 9 || blockLog > 16 || bs != 1<<blockLog {
		return nil, fmt.Errorf("%w: block size %d (log %d)", ErrCorrupt, bs, blockLog)
	}
	fs.blockSize = int64(bs)
	fs.inodeSize = int(be.Uint16(sb[104:]))
	inodeLog := uint(sb[122])
	if inodeLog < 8 || inodeLog > 11 || fs.inodeSize != 1<<inodeLog || int64(fs.inodeSize) > fs.blockSize {
		return nil, fmt.Errorf("%w: inode size %d (log %d)", ErrCorrupt, fs.inodeSize, inodeLog)
	}
	fs.inopbLog = uint(sb[123])
	if fs.inopbLog != blockLog-inodeLog || int(be.Uint16(sb[106:])) != 1<<fs.inopbLog {
		return nil, fmt.Errorf("%w: %d inodes per block (log %d)", ErrCorrupt, be.Uint16(sb[106:]), fs.inopbLog)
	}
	fs.dblocks = be.Uint64(sb[8:])
	fs.agBlocks = uint64(be.Uint32(sb[84:]))
	fs.agCount = uint64(be.Uint32(sb[88:]))
	fs.agBlkLog = uint(sb[124])
	if fs.agBlocks == 0 || fs.agCount == 0 || fs.agBlkLog > 31 || fs.agBlocks > 1<<fs.agBlkLog ||
		(fs.agBlkLog > 0 && fs.agBlocks <= 1<<(fs.agBlkLog-1)) {
		return nil, fmt.Errorf("%w: %d allocation groups of %d blocks (log %d)", ErrCorrupt, fs.agCount, fs.agBlocks, fs.agBlkLog)
	}
	if fs.dblocks == 0 || fs.dblocks > fs.agBlocks*fs.agCount || fs.dblocks <= fs.agBlocks*(fs.agCount-1) {
		return nil, fmt.Errorf("%w: %d data blocks in %d groups of %d", ErrCorrupt, fs.dblocks, fs.agCount, fs.agBlocks)
	}
	if fs.agBlkLog+fs.inopbLog > 56 {
		return nil, fmt.Errorf("%w: inode number geometry", ErrCorrupt)
	}
	fs.dirBlkLog = uint(sb[192])
	if fs.dirBlkLog > 8 || blockLog+fs.dirBlkLog > 16 {
		return nil, fmt.Errorf("%w: directory block log %d", ErrCorrupt, fs.dirBlkLog)
	}
	fs.dirBlkSize = fs.blockSize << fs.dirBlkLog
	fs.rootIno = be.Uint64(sb[56:])
	if sb[126] != 0 {
		return nil, fmt.Errorf("%w: mkfs did not finish (sb_inprogress)", ErrCorrupt)
	}
	vn := be.Uint16(sb[100:])
	if fs.version == 4 {
		if vn&versionDirV2 == 0 {
			return nil, fmt.Errorf("%w: version 1 directories", ErrUnsupported)
		}
		if vn&versionMoreBits != 0 {
			fs.ftype = be.Uint32(sb[200:])&features2Ftype != 0
		}
		copy(fs.metaUUID[:], sb[32:48])
	} else {
		incompat := be.Uint32(sb[216:])
		if incompat&incompatNeedsRepair != 0 {
			return nil, fmt.Errorf("%w: filesystem needs repair (xfs_repair)", ErrUnsupported)
		}
		if unk := incompat &^ incompatKnown; unk != 0 {
			return nil, fmt.Errorf("%w: incompatible features %#x", ErrUnsupported, unk)
		}
		fs.ftype = incompat&incompatFtype != 0
		fs.nrext64 = incompat&incompatNrext64 != 0
		if incompat&incompatMetaUUID != 0 {
			copy(fs.metaUUID[:], sb[248:264])
		} else {
			copy(fs.metaUUID[:], sb[32:48])
		}
		if fs.inodeSize < 512 && fs.inodeSize < coreSizeV3+16 {
			return nil, fmt.Errorf("%w: inode size %d", ErrCorrupt, fs.inodeSize)
		}
	}
	return fs, nil
}

// UUID returns the filesystem UUID (sb_uuid) as blkid and /etc/fstab show it.
func (fs *FS) UUID() string {
	u := fs.sb[32:48]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Label returns the volume label.
func (fs *FS) Label() string {
	l := fs.sb[108:120]
	for i, c := range l {
		if c == 0 {
			return string(l[:i])
		}
	}
	return string(l)
}

// Version returns the superblock version: 4, or 5 for CRC-enabled filesystems.
func (fs *FS) Version() int { return fs.version }

// BlockSize returns the filesystem block size in bytes.
func (fs *FS) BlockSize() int { return int(fs.blockSize) }

// readAt reads n bytes at off, which must lie within the filesystem.
func (fs *FS) readAt(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > fs.size || n > fs.size-off {
		return nil, fmt.Errorf("%w: read of %d bytes at %d beyond the %d-byte filesystem", ErrCorrupt, n, off, fs.size)
	}
	buf := make([]byte, n)
	if _, err := fs.r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, fmt.Errorf("xfs: reading %d bytes at %d: %w", n, off, err)
	}
	return buf, nil
}

// fsbOffset converts a filesystem block number (agno<<agblklog | agbno)
// of a run of n blocks to a byte offset, checking that the run lies in
// one allocation group and within the filesystem.
func (fs *FS) fsbOffset(fsb, n uint64) (int64, bool) {
	agno := fsb >> fs.agBlkLog
	agbno := fsb & (1<<fs.agBlkLog - 1)
	if agno >= fs.agCount || agbno >= fs.agBlocks || n > fs.agBlocks-agbno {
		return 0, false
	}
	lin := agno*fs.agBlocks + agbno
	if lin+n > fs.dblocks {
		return 0, false
	}
	off := int64(lin) * fs.blockSize
	if off < 0 || off+int64(n)*fs.blockSize > fs.size {
		return 0, false
	}
	return off, true
}
