package xfs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FileType is the type recorded in a directory entry (with ftype).
type FileType uint8

// Directory entry file types (XFS_DIR3_FT_*).
const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
	TypeSymlink
)

// DirEntry is one entry of a directory ("." and ".." are not listed).
type DirEntry struct {
	Name  string
	Inode uint64
	Type  FileType // TypeUnknown on filesystems without ftype
}

var errStop = errors.New("stop")

// leafOffset is XFS_DIR2_LEAF_OFFSET: directory data blocks lie below it.
const leafOffset = 32 << 30

// walkDir calls fn for every entry of directory dir except "." and "..".
// The blocks it reads are taken from budget (nil: the filesystem's block
// count), which one path resolution shares among its lookups.
func (fs *FS) walkDir(dir *Inode, budget *uint64, fn func(name []byte, ino uint64, t FileType) error) error {
	if !dir.IsDir() {
		return fmt.Errorf("%w: inode %d", ErrNotDir, dir.Num)
	}
	switch dir.Format {
	case fmtLocal:
		return fs.walkShortform(dir, fn)
	case fmtExtents, fmtBtree:
	default:
		return fmt.Errorf("%w: directory inode %d: format %d", ErrCorrupt, dir.Num, dir.Format)
	}
	ext, err := fs.extents(dir)
	if err != nil {
		return err
	}
	dirFSBs := uint64(1) << fs.dirBlkLog
	leafBlk := uint64(leafOffset / fs.blockSize)
	// Read every directory block below the leaf offset whose first block
	// is mapped. ext is sorted and disjoint: a binary search finds the
	// extent of a block.
	phys := func(l uint64) (int64, bool) {
		i := sort.Search(len(ext), func(i int) bool { return ext[i].lblk+ext[i].count > l })
		if i == len(ext) || ext[i].lblk > l || ext[i].unwritten {
			return 0, false
		}
		off, _ := fs.fsbOffset(ext[i].fsb+(l-ext[i].lblk), 1)
		return off, true
	}
	single := true // a lone block at offset 0 may be a block-format dir
	for _, e := range ext {
		if e.lblk >= leafBlk {
			single = false
		}
	}
	// Extents may name the same blocks again; a directory cannot have
	// more data blocks than the filesystem has.
	if budget == nil {
		budget = new(uint64)
		*budget = fs.dblocks
	}
	for _, e := range ext {
		if e.lblk >= leafBlk {
			break
		}
		first := (e.lblk + dirFSBs - 1) &^ (dirFSBs - 1)
		for l := first; l < e.lblk+e.count && l < leafBlk; l += dirFSBs {
			if *budget < dirFSBs {
				return fmt.Errorf("%w: directory inode %d: more directory blocks read than the filesystem's %d",
					ErrCorrupt, dir.Num, fs.dblocks)
			}
			*budget -= dirFSBs
			blk := make([]byte, 0, fs.dirBlkSize)
			for i := uint64(0); i < dirFSBs; i++ {
				off, ok := phys(l + i)
				if !ok {
					return fmt.Errorf("%w: directory inode %d: block %d partly mapped", ErrCorrupt, dir.Num, l)
				}
				b, err := fs.readAt(off, fs.blockSize)
				if err != nil {
					return err
				}
				blk = append(blk, b...)
			}
			if err := fs.walkDataBlock(dir, blk, single && l == 0, fn); err != nil {
				if err == errStop {
					return err
				}
				return fmt.Errorf("directory inode %d, block %d: %w", dir.Num, l, err)
			}
		}
	}
	return nil
}

// walkDataBlock parses one directory data block (block or data format).
func (fs *FS) walkDataBlock(dir *Inode, blk []byte, maybeBlockForm bool, fn func(name []byte, ino uint64, t FileType) error) error {
	magic := string(blk[0:4])
	hdr := 16
	var isBlock bool
	if fs.version == 5 {
		hdr = 64
		switch magic {
		case "XDB3":
			isBlock = true
		case "XDD3":
		default:
			return fmt.Errorf("%w: bad directory data block magic %q", ErrCorrupt, blk[0:4])
		}
		if !cksumOK(blk, 4) {
			return fmt.Errorf("%w: directory data block", ErrChecksum)
		}
		if be.Uint64(blk[40:]) != dir.Num || string(blk[24:40]) != string(fs.metaUUID[:]) {
			return fmt.Errorf("%w: directory data block owned by inode %d", ErrCorrupt, be.Uint64(blk[40:]))
		}
	} else {
		switch magic {
		case "XD2B":
			isBlock = true
		case "XD2D":
		default:
			return fmt.Errorf("%w: bad directory data block magic %q", ErrCorrupt, blk[0:4])
		}
	}
	end := len(blk)
	if isBlock {
		if !maybeBlockForm {
			return fmt.Errorf("%w: block-format directory block in a multi-block directory", ErrCorrupt)
		}
		count := int64(be.Uint32(blk[end-8:]))
		if count > int64(end-8-hdr)/8 {
			return fmt.Errorf("%w: block directory with %d leaf entries", ErrCorrupt, count)
		}
		end -= 8 + int(count)*8
	}
	for off := hdr; off < end; {
		if end-off < 8 {
			return fmt.Errorf("%w: truncated entry at offset %d", ErrCorrupt, off)
		}
		if be.Uint16(blk[off:]) == 0xffff { // unused space
			n := int(be.Uint16(blk[off+2:]))
			if n < 8 || n%8 != 0 || n > end-off {
				return fmt.Errorf("%w: free space of %d bytes at offset %d", ErrCorrupt, n, off)
			}
			off += n
			continue
		}
		ino := be.Uint64(blk[off:])
		nl := int(blk[off+8])
		sz := 8 + 1 + nl + 2
		if fs.ftype {
			sz++
		}
		sz = (sz + 7) &^ 7
		if nl == 0 || sz > end-off {
			return fmt.Errorf("%w: entry of name length %d at offset %d", ErrCorrupt, nl, off)
		}
		if int(be.Uint16(blk[off+sz-2:])) != off {
			return fmt.Errorf("%w: entry at offset %d has tag %d", ErrCorrupt, off, be.Uint16(blk[off+sz-2:]))
		}
		name := blk[off+9 : off+9+nl]
		t := TypeUnknown
		if fs.ftype {
			t = FileType(blk[off+9+nl])
		}
		if !dot(name) {
			if err := fn(name, ino, t); err != nil {
				return err
			}
		}
		off += sz
	}
	return nil
}

func dot(name []byte) bool {
	return string(name) == "." || string(name) == ".."
}

// walkShortform parses a directory stored in its inode.
func (fs *FS) walkShortform(dir *Inode, fn func(name []byte, ino uint64, t FileType) error) error {
	f := dir.fork
	if dir.Size < 2 || dir.Size > int64(len(f)) {
		return fmt.Errorf("%w: shortform directory inode %d of %d bytes", ErrCorrupt, dir.Num, dir.Size)
	}
	f = f[:dir.Size]
	count := int(f[0]) // all entries; i8count > 0 makes every inode number 8 bytes
	isz := 4
	if f[1] != 0 {
		isz = 8
	}
	off := 2 + isz
	for i := 0; i < count; i++ {
		if off+3 > len(f) {
			return fmt.Errorf("%w: shortform directory inode %d: truncated entry %d", ErrCorrupt, dir.Num, i)
		}
		nl := int(f[off])
		n := 3 + nl + isz
		if fs.ftype {
			n++
		}
		if nl == 0 || off+n > len(f) {
			return fmt.Errorf("%w: shortform directory inode %d: entry %d", ErrCorrupt, dir.Num, i)
		}
		name := f[off+3 : off+3+nl]
		p := off + 3 + nl
		t := TypeUnknown
		if fs.ftype {
			t = FileType(f[p])
			p++
		}
		var ino uint64
		if isz == 8 {
			ino = be.Uint64(f[p:])
		} else {
			ino = uint64(be.Uint32(f[p:]))
		}
		if err := fn(name, ino, t); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// parentOf returns the parent inode of a directory.
func (fs *FS) parentOf(dir *Inode) (uint64, error) {
	if dir.Format == fmtLocal {
		f := dir.fork
		if len(f) < 6 {
			return 0, fmt.Errorf("%w: shortform directory inode %d", ErrCorrupt, dir.Num)
		}
		if f[1] != 0 {
			if len(f) < 10 {
				return 0, fmt.Errorf("%w: shortform directory inode %d", ErrCorrupt, dir.Num)
			}
			return be.Uint64(f[2:]), nil
		}
		return uint64(be.Uint32(f[2:])), nil
	}
	return 0, errStop // handled by lookupIn through ".." entries
}

// lookupIn finds name in directory dir.
func (fs *FS) lookupIn(dir *Inode, name string, budget *uint64) (uint64, error) {
	if name == "." {
		return dir.Num, nil
	}
	if name == ".." {
		if dir.Num == fs.rootIno {
			return dir.Num, nil
		}
		if p, err := fs.parentOf(dir); err != errStop {
			return p, err
		}
		return fs.findDotDot(dir)
	}
	var found uint64
	err := fs.walkDir(dir, budget, func(n []byte, ino uint64, _ FileType) error {
		if string(n) == name {
			found = ino
			return errStop
		}
		return nil
	})
	if err == errStop {
		return found, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, ErrNotFound
}

// findDotDot reads the ".." entry of a block-based directory.
func (fs *FS) findDotDot(dir *Inode) (uint64, error) {
	ext, err := fs.extents(dir)
	if err != nil {
		return 0, err
	}
	if len(ext) == 0 || ext[0].lblk != 0 {
		return 0, fmt.Errorf("%w: directory inode %d has no first block", ErrCorrupt, dir.Num)
	}
	off, _ := fs.fsbOffset(ext[0].fsb, 1)
	blk, err := fs.readAt(off, fs.blockSize)
	if err != nil {
		return 0, err
	}
	hdr := 16
	if fs.version == 5 {
		hdr = 64
	}
	// "." then ".." are the first two entries.
	p := hdr
	for i := 0; i < 2; i++ {
		if p+10 > len(blk) {
			break
		}
		nl := int(blk[p+8])
		if p+9+nl > len(blk) {
			break
		}
		if string(blk[p+9:p+9+nl]) == ".." {
			return be.Uint64(blk[p:]), nil
		}
		sz := 8 + 1 + nl + 2
		if fs.ftype {
			sz++
		}
		p += (sz + 7) &^ 7
	}
	return 0, fmt.Errorf("%w: directory inode %d has no \"..\" entry", ErrCorrupt, dir.Num)
}

// resolve walks path from the root.
func (fs *FS) resolve(path string, followLast bool) (*Inode, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%q: %w (paths must be absolute)", path, ErrNotFound)
	}
	root, err := fs.readInode(fs.rootIno)
	if err != nil {
		return nil, fmt.Errorf("%q: root directory: %w", path, err)
	}
	cur := root
	pending := splitPath(path)
	hops, lookups := 0, 0
	// Directory blocks read for the whole path: more than the filesystem
	// holds means directories read over and over.
	budget := fs.dblocks
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		if lookups++; lookups > maxLookups {
			return nil, fmt.Errorf("%q: %w: more than %d lookups", path, ErrLoop, maxLookups)
		}
		if !cur.IsDir() {
			return nil, fmt.Errorf("%q: %w (inode %d)", path, ErrNotDir, cur.Num)
		}
		ino, err := fs.lookupIn(cur, name, &budget)
		if err != nil {
			return nil, fmt.Errorf("%q: looking up %q in directory inode %d: %w", path, name, cur.Num, err)
		}
		child, err := fs.readInode(ino)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", path, err)
		}
		if child.IsSymlink() && (len(pending) > 0 || followLast) {
			hops++
			if hops > maxSymlinkHops {
				return nil, fmt.Errorf("%q: %w", path, ErrLoop)
			}
			target, err := fs.readlink(child)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", path, err)
			}
			rest := splitPath(target)
			if strings.HasPrefix(target, "/") {
				cur = root
			}
			if len(rest)+len(pending) > 4096 {
				return nil, fmt.Errorf("%q: %w", path, ErrLoop)
			}
			pending = append(rest, pending...)
			continue
		}
		cur = child
	}
	return cur, nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Lookup returns the inode at path; a symbolic link in the last component
// is not followed.
func (fs *FS) Lookup(path string) (Inode, error) {
	in, err := fs.resolve(path, false)
	if err != nil {
		return Inode{}, err
	}
	return *in, nil
}

// LookupFollow returns the inode at path, following symbolic links.
func (fs *FS) LookupFollow(path string) (Inode, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return Inode{}, err
	}
	return *in, nil
}

// Readlink returns the target of the symbolic link at path.
func (fs *FS) Readlink(path string) (string, error) {
	in, err := fs.resolve(path, false)
	if err != nil {
		return "", err
	}
	t, err := fs.readlink(in)
	if err != nil {
		return "", fmt.Errorf("%q: %w", path, err)
	}
	return t, nil
}

// ReadDir lists the directory at path (following symbolic links), without
// "." and "..", in on-disk order.
func (fs *FS) ReadDir(path string) ([]DirEntry, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	err = fs.walkDir(in, nil, func(n []byte, ino uint64, t FileType) error {
		out = append(out, DirEntry{Name: string(n), Inode: ino, Type: t})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return out, nil
}
