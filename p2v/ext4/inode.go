package ext4

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
)

// Inode flags this package looks at.
const (
	flagEncrypt    = 0x800
	flagIndex      = 0x1000
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagVerity     = 0x100000
	flagEAInode    = 0x200000
	flagInlineData = 0x10000000
)

// File type bits of i_mode.
const (
	modeTypeMask = 0xF000
	modeFIFO     = 0x1000
	modeChar     = 0x2000
	modeDir      = 0x4000
	modeBlock    = 0x6000
	modeRegular  = 0x8000
	modeSymlink  = 0xA000
	modeSocket   = 0xC000
)

// Inode is the metadata of one file, as read from its inode.
type Inode struct {
	Num        uint32 // inode number
	Mode       uint16 // file type and permission bits, as st_mode
	UID, GID   uint32
	Size       int64
	Links      uint16
	Flags      uint32 // i_flags
	Generation uint32

	off int64  // byte offset of the inode in the filesystem
	raw []byte // the on-disk inode, inode-size bytes
}

// IsDir reports whether the inode is a directory.
func (in Inode) IsDir() bool { return in.Mode&modeTypeMask == modeDir }

// IsRegular reports whether the inode is a regular file.
func (in Inode) IsRegular() bool { return in.Mode&modeTypeMask == modeRegular }

// IsSymlink reports whether the inode is a symbolic link.
func (in Inode) IsSymlink() bool { return in.Mode&modeTypeMask == modeSymlink }

// FileMode returns the inode's type and permissions as an io/fs.FileMode.
func (in Inode) FileMode() fs.FileMode {
	m := fs.FileMode(in.Mode & 0o777)
	if in.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if in.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if in.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch in.Mode & modeTypeMask {
	case modeDir:
		m |= fs.ModeDir
	case modeSymlink:
		m |= fs.ModeSymlink
	case modeFIFO:
		m |= fs.ModeNamedPipe
	case modeSocket:
		m |= fs.ModeSocket
	case modeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case modeBlock:
		m |= fs.ModeDevice
	case modeRegular:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// iblock returns the 60-byte i_block area: block map, extent tree root,
// fast symlink target or inline data.
func (in *Inode) iblock() []byte { return in.raw[0x28:0x64] }

// extraEnd returns the end of the inode's fixed fields (128 plus
// i_extra_isize).
func (in *Inode) extraEnd() int {
	if len(in.raw) <= 128 {
		return 128
	}
	return 128 + int(binary.LittleEndian.Uint16(in.raw[0x80:]))
}

// readInode reads and verifies inode ino.
func (fs *FS) readInode(ino uint32) (*Inode, error) {
	if ino < 1 || ino > fs.inodesCount {
		return nil, fmt.Errorf("%w: inode number %d out of range 1..%d", ErrCorrupt, ino, fs.inodesCount)
	}
	g := uint64(ino-1) / uint64(fs.inodesPerGroup)
	idx := uint64(ino-1) % uint64(fs.inodesPerGroup)
	d, err := fs.groupDesc(g)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	if (fs.metaCsum || fs.gdtCsum) && (d.flags&bgInodeUninit != 0 ||
		idx >= uint64(fs.inodesPerGroup)-min(uint64(d.itableUnused), uint64(fs.inodesPerGroup))) {
		return nil, fmt.Errorf("%w: inode %d is in the unused part of group %d's inode table", ErrCorrupt, ino, g)
	}
	byteOff := idx * uint64(fs.inodeSize)
	blk := d.inodeTable + byteOff/uint64(fs.blockSize)
	fs.mu.Lock()
	table := fs.itable[blk]
	fs.mu.Unlock()
	if table == nil {
		if table, err = fs.readBlock(blk); err != nil {
			return nil, fmt.Errorf("inode %d: %w", ino, err)
		}
		fs.mu.Lock()
		if len(fs.itable) >= 256 {
			clear(fs.itable)
		}
		fs.itable[blk] = table
		fs.mu.Unlock()
	}
	o := byteOff % uint64(fs.blockSize)
	raw := append([]byte(nil), table[o:o+uint64(fs.inodeSize)]...)
	le := binary.LittleEndian
	in := &Inode{
		Num:        ino,
		Mode:       le.Uint16(raw[0x0:]),
		UID:        uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		GID:        uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		Links:      le.Uint16(raw[0x1A:]),
		Flags:      le.Uint32(raw[0x20:]),
		Generation: le.Uint32(raw[0x64:]),
		off:        int64(blk)*fs.blockSize + int64(o),
		raw:        raw,
	}
	size := uint64(le.Uint32(raw[0x4:])) | uint64(le.Uint32(raw[0x6C:]))<<32
	if size > math.MaxInt64 {
		return nil, fmt.Errorf("%w: inode %d: size %d", ErrCorrupt, ino, size)
	}
	in.Size = int64(size)
	if fs.inodeSize > 128 {
		if e := in.extraEnd(); e > fs.inodeSize || e%4 != 0 {
			return nil, fmt.Errorf("%w: inode %d: i_extra_isize %d", ErrCorrupt, ino, e-128)
		}
	}
	if fs.metaCsum {
		got, hiToo := fs.inodeCsum(in.Num, in.raw)
		stored := uint32(le.Uint16(raw[0x7C:]))
		if hiToo {
			stored |= uint32(le.Uint16(raw[0x82:])) << 16
		} else {
			got &= 0xFFFF
		}
		if got != stored {
			return nil, fmt.Errorf("%w: inode %d (computed %#08x, stored %#08x)", ErrChecksum, ino, got, stored)
		}
	}
	if in.Mode == 0 || in.Links == 0 {
		return nil, fmt.Errorf("%w: inode %d is not in use", ErrCorrupt, ino)
	}
	return in, nil
}

// inodeSeed returns the crc32c seed of an inode's checksums (inode,
// extent blocks, directory blocks): the kernel's ei->i_csum_seed.
func (fs *FS) inodeSeed(ino, gen uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], ino)
	c := crc32c(fs.csumSeed, b[:])
	binary.LittleEndian.PutUint32(b[:], gen)
	return crc32c(c, b[:])
}

// inodeCsum computes the checksum of inode raw as the kernel's
// ext4_inode_csum does, and whether its high 16 bits are stored too.
func (fs *FS) inodeCsum(ino uint32, raw []byte) (csum uint32, hi bool) {
	gen := binary.LittleEndian.Uint32(raw[0x64:])
	c := crc32c(fs.inodeSeed(ino, gen), raw[:0x7C])
	c = crc32c(c, []byte{0, 0})
	c = crc32c(c, raw[0x7E:128])
	if len(raw) > 128 {
		c = crc32c(c, raw[128:0x82])
		extra := int(binary.LittleEndian.Uint16(raw[0x80:]))
		off := 0x82
		if 128+extra >= 0x84 {
			c = crc32c(c, []byte{0, 0})
			off = 0x84
			hi = true
		}
		c = crc32c(c, raw[off:])
	}
	return c, hi
}

// setInodeCsum stores the checksum of inode raw in place.
func (fs *FS) setInodeCsum(ino uint32, raw []byte) {
	c, hi := fs.inodeCsum(ino, raw)
	binary.LittleEndian.PutUint16(raw[0x7C:], uint16(c))
	if hi {
		binary.LittleEndian.PutUint16(raw[0x82:], uint16(c>>16))
	}
}
