package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// FileType is the file type a directory entry records.
type FileType uint8

// File types of directory entries (ext4's EXT4_FT_*).
const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeCharDevice
	TypeBlockDevice
	TypeFIFO
	TypeSocket
	TypeSymlink
)

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name  string
	Inode uint32
	Type  FileType // TypeUnknown on filesystems without the filetype feature
}

// errStop ends a directory walk early.
var errStop = errors.New("stop")

// walkDir calls fn for every live entry of directory dir, "." and ".."
// included, in on-disk order. The blocks it reads are taken from bud
// (nil: a budget of the filesystem's blocks), which one path resolution
// shares among its lookups.
func (fs *FS) walkDir(dir *Inode, bud *budget, fn func(name []byte, ino uint32, t FileType) error) error {
	if !dir.IsDir() {
		return fmt.Errorf("%w: inode %d", ErrNotDir, dir.Num)
	}
	if dir.Flags&flagEncrypt != 0 {
		return fmt.Errorf("%w: encrypted directory (inode %d)", ErrUnsupported, dir.Num)
	}
	if dir.Flags&flagInlineData != 0 {
		return fs.walkInlineDir(dir, fn)
	}
	n := fs.blocksFor(dir.Size)
	m, err := fs.mapFile(dir, n)
	if err != nil {
		return err
	}
	seed := fs.inodeSeed(dir.Num, dir.Generation)
	if bud == nil {
		bud = &budget{left: fs.blocksCount}
	}
	const chunk = 64 // blocks read at once
	for _, e := range m.extents {
		if e.uninit || e.logical >= n {
			continue // a directory hole or an unwritten extent holds no entries
		}
		length := min(e.length, n-e.logical)
		for done := uint64(0); done < length; done += chunk {
			k := min(chunk, length-done)
			if !bud.take(k) {
				return fmt.Errorf("%w: directory inode %d: more directory blocks read than the filesystem's %d",
					ErrCorrupt, dir.Num, fs.blocksCount)
			}
			buf := make([]byte, int64(k)*fs.blockSize)
			if err := fs.readAt(buf, int64(e.physical+done)*fs.blockSize); err != nil {
				return fmt.Errorf("directory inode %d: %w", dir.Num, err)
			}
			for b := range k {
				blk := buf[int64(b)*fs.blockSize : int64(b+1)*fs.blockSize]
				if err := fs.walkDirBlock(blk, seed, true, fn); err != nil {
					if err != errStop {
						err = fmt.Errorf("directory inode %d, block %d: %w", dir.Num, e.logical+done+b, err)
					}
					return err
				}
			}
		}
	}
	return nil
}

// walkDirBlock parses the directory entries in blk; with tail, blk is a
// whole directory block that may end in a checksum tail.
func (fs *FS) walkDirBlock(blk []byte, seed uint32, tail bool, fn func(name []byte, ino uint32, t FileType) error) error {
	le := binary.LittleEndian
	if tail && fs.metaCsum && len(blk) >= 12 {
		t := blk[len(blk)-12:]
		if le.Uint32(t[0:]) == 0 && le.Uint16(t[4:]) == 12 && t[6] == 0 && t[7] == 0xDE {
			if got, stored := crc32c(seed, blk[:len(blk)-12]), le.Uint32(t[8:]); got != stored {
				return fmt.Errorf("%w: directory block (computed %#08x, stored %#08x)", ErrChecksum, got, stored)
			}
		}
		// Blocks without a tail are htree index blocks (their checksum
		// sits in a dx_tail); read linearly they hold no entries.
	}
	for off := 0; off < len(blk); {
		if off+8 > len(blk) {
			return fmt.Errorf("%w: truncated directory entry at offset %d", ErrCorrupt, off)
		}
		d := blk[off:]
		ino := le.Uint32(d[0:])
		recLen := int(le.Uint16(d[4:]))
		if fs.blockSize >= 65536 && tail {
			if recLen == 65535 || recLen == 0 {
				recLen = int(fs.blockSize)
			} else {
				recLen = recLen&65532 | (recLen&3)<<16
			}
		}
		if recLen < 8 || recLen%4 != 0 || recLen > len(blk)-off {
			return fmt.Errorf("%w: directory entry at offset %d with record length %d", ErrCorrupt, off, recLen)
		}
		nameLen, ft := int(d[6]), FileType(d[7])
		if fs.incompat&incompatFiletype == 0 {
			ft = TypeUnknown
		}
		if ino != 0 {
			if nameLen == 0 || 8+nameLen > recLen {
				return fmt.Errorf("%w: directory entry at offset %d with name length %d in a %d-byte record",
					ErrCorrupt, off, nameLen, recLen)
			}
			if ft > TypeSymlink {
				ft = TypeUnknown
			}
			if err := fn(d[8:8+nameLen], ino, ft); err != nil {
				return err
			}
		}
		off += recLen
	}
	return nil
}

// walkInlineDir walks a directory stored in its inode: the parent's
// inode number, then entries in i_block and in the system.data
// extended attribute.
func (fs *FS) walkInlineDir(dir *Inode, fn func(name []byte, ino uint32, t FileType) error) error {
	ib := dir.iblock()
	if err := fn([]byte("."), dir.Num, TypeDir); err != nil {
		return err
	}
	if err := fn([]byte(".."), binary.LittleEndian.Uint32(ib), TypeDir); err != nil {
		return err
	}
	if err := fs.walkDirBlock(ib[4:], 0, false, fn); err != nil {
		return wrapDirErr(dir, err)
	}
	off, n, err := fs.inlineXattr(dir)
	if err != nil {
		return err
	}
	if n > 0 {
		if err := fs.walkDirBlock(dir.raw[off:off+n], 0, false, fn); err != nil {
			return wrapDirErr(dir, err)
		}
	}
	return nil
}

func wrapDirErr(dir *Inode, err error) error {
	if err == errStop {
		return err
	}
	return fmt.Errorf("inline directory inode %d: %w", dir.Num, err)
}

// inlineXattr finds the system.data extended attribute in the inode
// body and returns its value's offset in the inode and length.
func (fs *FS) inlineXattr(in *Inode) (off, n int, err error) {
	le := binary.LittleEndian
	start := in.extraEnd()
	if start+4 > len(in.raw) || le.Uint32(in.raw[start:]) != 0xEA020000 {
		return 0, 0, fmt.Errorf("%w: inode %d has inline data but no in-inode extended attributes", ErrCorrupt, in.Num)
	}
	first := start + 4
	for p := first; p+4 <= len(in.raw) && le.Uint32(in.raw[p:]) != 0; {
		if p+16 > len(in.raw) {
			break
		}
		e := in.raw[p:]
		nameLen, index := int(e[0]), e[1]
		voff, vinum, vsize := int(le.Uint16(e[2:])), le.Uint32(e[4:]), int(le.Uint32(e[8:]))
		if p+16+nameLen > len(in.raw) {
			break
		}
		if index == 7 && string(e[16:16+nameLen]) == "data" {
			if vinum != 0 || vsize < 0 || first+voff > len(in.raw) || vsize > len(in.raw)-first-voff {
				return 0, 0, fmt.Errorf("%w: inode %d: system.data of %d bytes at %d", ErrCorrupt, in.Num, vsize, voff)
			}
			return first + voff, vsize, nil
		}
		p += (16 + nameLen + 3) &^ 3
	}
	return 0, 0, fmt.Errorf("%w: inode %d has inline data but no system.data attribute", ErrCorrupt, in.Num)
}

// inlineData returns the content of an inline-data file of size bytes,
// and where its two parts are in the filesystem.
func (fs *FS) inlineData(in *Inode) ([]byte, []Range, error) {
	if in.Size < 0 || in.Size > 60+int64(len(in.raw)) {
		return nil, nil, fmt.Errorf("%w: inline data inode %d of %d bytes", ErrCorrupt, in.Num, in.Size)
	}
	size := int(in.Size)
	first := min(size, 60)
	data := append(make([]byte, 0, size), in.iblock()[:first]...)
	var ranges []Range
	if first > 0 {
		ranges = append(ranges, Range{Offset: in.off + 0x28, Length: int64(first)})
	}
	if size > 60 {
		off, n, err := fs.inlineXattr(in)
		if err != nil {
			return nil, nil, err
		}
		if n < size-60 {
			return nil, nil, fmt.Errorf("%w: inline data inode %d of %d bytes holds only %d", ErrCorrupt, in.Num, size, 60+n)
		}
		data = append(data, in.raw[off:off+size-60]...)
		ranges = append(ranges, Range{Offset: in.off + int64(off), Length: int64(size - 60)})
	}
	return data, ranges, nil
}

// lookupIn returns the inode number of name in directory dir.
func (fs *FS) lookupIn(dir *Inode, name string, bud *budget) (uint32, error) {
	var found uint32
	err := fs.walkDir(dir, bud, func(n []byte, ino uint32, _ FileType) error {
		if string(n) == name {
			found = ino
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return 0, err
	}
	if found == 0 {
		return 0, ErrNotFound
	}
	return found, nil
}

// resolve returns the inode path names. Symbolic links in intermediate
// components are always followed, the final one only with followLast.
// Links resolve within this filesystem: an absolute target starts at its
// root.
func (fs *FS) resolve(path string, followLast bool) (*Inode, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%q: %w (paths must be absolute)", path, ErrNotFound)
	}
	root, err := fs.readInode(rootIno)
	if err != nil {
		return nil, fmt.Errorf("%q: root directory: %w", path, err)
	}
	cur := root
	pending := strings.Split(path, "/")
	hops, lookups := 0, 0
	// Directory blocks read for the whole path: more than the filesystem
	// holds means directories read over and over.
	bud := &budget{left: fs.blocksCount}
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		if name == "" || name == "." {
			continue
		}
		if lookups++; lookups > maxLookups {
			return nil, fmt.Errorf("%q: %w: more than %d lookups", path, ErrLoop, maxLookups)
		}
		if !cur.IsDir() {
			return nil, fmt.Errorf("%q: %w (inode %d)", path, ErrNotDir, cur.Num)
		}
		ino, err := fs.lookupIn(cur, name, bud)
		if err != nil {
			return nil, fmt.Errorf("%q: looking up %q in directory inode %d: %w", path, name, cur.Num, err)
		}
		child, err := fs.readInode(ino)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", path, err)
		}
		if child.IsSymlink() && (followLast || hasMore(pending)) {
			if hops++; hops > maxSymlinkHops {
				return nil, fmt.Errorf("%q: %w", path, ErrLoop)
			}
			target, err := fs.readlink(child)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", path, err)
			}
			if target == "" {
				return nil, fmt.Errorf("%q: empty symbolic link (inode %d): %w", path, child.Num, ErrNotFound)
			}
			if strings.HasPrefix(target, "/") {
				cur = root
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		cur = child
	}
	return cur, nil
}

// hasMore reports whether components are left; a trailing slash
// ("link/") too asks for the directory a link names.
func hasMore(pending []string) bool { return len(pending) > 0 }

// readlink returns the target of symlink in.
func (fs *FS) readlink(in *Inode) (string, error) {
	if !in.IsSymlink() {
		return "", fmt.Errorf("%w: inode %d", ErrNotSymlink, in.Num)
	}
	if in.Flags&flagEncrypt != 0 {
		return "", fmt.Errorf("%w: encrypted symbolic link (inode %d)", ErrUnsupported, in.Num)
	}
	if in.Size > fs.blockSize || in.Size > 4096 {
		return "", fmt.Errorf("%w: symbolic link inode %d of %d bytes", ErrCorrupt, in.Num, in.Size)
	}
	if fs.fastSymlink(in) {
		if in.Size >= 60 {
			return "", fmt.Errorf("%w: fast symbolic link inode %d of %d bytes", ErrCorrupt, in.Num, in.Size)
		}
		return string(in.iblock()[:in.Size]), nil
	}
	data, err := fs.readData(in)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// ReadDir returns the entries of directory path in on-disk order,
// without "." and "..". Symbolic links in path are followed.
func (fs *FS) ReadDir(path string) ([]DirEntry, error) {
	dir, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	err = fs.walkDir(dir, nil, func(name []byte, ino uint32, t FileType) error {
		if s := string(name); s != "." && s != ".." {
			out = append(out, DirEntry{Name: s, Inode: ino, Type: t})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return out, nil
}

// Lookup returns the inode of the absolute path. Symbolic links in
// intermediate components are followed (at most 40 in all); a final
// symbolic link is returned as is.
func (fs *FS) Lookup(path string) (Inode, error) {
	in, err := fs.resolve(path, false)
	if err != nil {
		return Inode{}, err
	}
	return *in, nil
}

// LookupFollow is Lookup that follows a final symbolic link too.
func (fs *FS) LookupFollow(path string) (Inode, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return Inode{}, err
	}
	return *in, nil
}

// Readlink returns the target of the symbolic link path.
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

// fastSymlink reports whether symlink in keeps its target in i_block,
// as the kernel's ext4_inode_is_fast_symlink decides: it owns no block
// but, perhaps, an extended attribute block.
func (fs *FS) fastSymlink(in *Inode) bool {
	if in.Flags&flagInlineData != 0 {
		return false
	}
	le := binary.LittleEndian
	if in.Flags&flagEAInode != 0 {
		return in.Size > 0 && in.Size < 60
	}
	blocks := uint64(le.Uint32(in.raw[0x1C:])) | uint64(le.Uint16(in.raw[0x74:]))<<32
	if in.Flags&flagHugeFile != 0 {
		blocks *= uint64(fs.blockSize / 512)
	}
	var ea uint64
	if le.Uint32(in.raw[0x68:]) != 0 || le.Uint16(in.raw[0x76:]) != 0 {
		ea = uint64(fs.blockSize<<fs.clusterBits) / 512
	}
	return blocks == ea
}
