package xfs

import (
	"fmt"
	"io/fs"
)

const (
	coreSizeV2 = 100
	coreSizeV3 = 176

	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3

	modeTypeMask = 0o170000
	modeDir      = 0o040000
	modeRegular  = 0o100000
	modeSymlink  = 0o120000

	diflag2Nrext64 = 1 << 4
)

// Inode is an on-disk inode.
type Inode struct {
	Num      uint64 // inode number
	Mode     uint16 // file type and permission bits, as st_mode
	UID, GID uint32
	Size     int64
	Links    uint32
	Format   uint8 // di_format: 1 local, 2 extents, 3 btree

	nextents uint64
	fork     []byte // the data fork
	raw      []byte
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
	case 0o010000:
		m |= fs.ModeNamedPipe
	case 0o140000:
		m |= fs.ModeSocket
	case 0o020000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		m |= fs.ModeDevice
	}
	return m
}

// inodeOffset returns the byte offset of inode ino.
func (fs *FS) inodeOffset(ino uint64) (int64, bool) {
	agno := ino >> (fs.agBlkLog + fs.inopbLog)
	agino := ino & (1<<(fs.agBlkLog+fs.inopbLog) - 1)
	agbno := agino >> fs.inopbLog
	idx := agino & (1<<fs.inopbLog - 1)
	off, ok := fs.fsbOffset(agno<<fs.agBlkLog|agbno, 1)
	if !ok {
		return 0, false
	}
	return off + int64(idx)*int64(fs.inodeSize), true
}

// readInode reads and checks inode ino.
func (fs *FS) readInode(ino uint64) (*Inode, error) {
	off, ok := fs.inodeOffset(ino)
	if !ok || ino == 0 {
		return nil, fmt.Errorf("%w: inode number %d out of range", ErrCorrupt, ino)
	}
	raw, err := fs.readAt(off, int64(fs.inodeSize))
	if err != nil {
		return nil, err
	}
	if string(raw[0:2]) != "IN" {
		return nil, fmt.Errorf("%w: inode %d: bad magic %q", ErrCorrupt, ino, raw[0:2])
	}
	in := &Inode{Num: ino, raw: raw}
	ver := raw[4]
	core := coreSizeV2
	switch {
	case fs.version == 5 && ver == 3:
		core = coreSizeV3
		if !cksumOK(raw, 100) {
			return nil, fmt.Errorf("%w: inode %d", ErrChecksum, ino)
		}
		if string(raw[160:176]) != string(fs.metaUUID[:]) {
			return nil, fmt.Errorf("%w: inode %d belongs to another filesystem", ErrCorrupt, ino)
		}
		if be.Uint64(raw[152:]) != ino {
			return nil, fmt.Errorf("%w: inode %d claims to be inode %d", ErrCorrupt, ino, be.Uint64(raw[152:]))
		}
	case fs.version == 4 && (ver == 1 || ver == 2):
	default:
		return nil, fmt.Errorf("%w: inode %d: version %d on a v%d filesystem", ErrCorrupt, ino, ver, fs.version)
	}
	in.Mode = be.Uint16(raw[2:])
	in.Format = raw[5]
	in.UID = be.Uint32(raw[8:])
	in.GID = be.Uint32(raw[12:])
	if ver == 1 {
		in.Links = uint32(be.Uint16(raw[6:]))
		in.UID, in.GID = uint32(be.Uint16(raw[8:])), uint32(be.Uint16(raw[10:]))
	} else {
		in.Links = be.Uint32(raw[16:])
	}
	size := be.Uint64(raw[56:])
	if size > 1<<62 {
		return nil, fmt.Errorf("%w: inode %d: size %d", ErrCorrupt, ino, size)
	}
	in.Size = int64(size)
	if ver == 3 && fs.nrext64 && be.Uint64(raw[120:])&diflag2Nrext64 != 0 {
		in.nextents = be.Uint64(raw[24:])
	} else {
		in.nextents = uint64(be.Uint32(raw[76:]))
	}
	forkEnd := fs.inodeSize
	if fo := int(raw[82]); fo != 0 {
		forkEnd = core + fo*8
		if forkEnd > fs.inodeSize {
			return nil, fmt.Errorf("%w: inode %d: attribute fork offset %d", ErrCorrupt, ino, fo)
		}
	}
	in.fork = raw[core:forkEnd]
	return in, nil
}
