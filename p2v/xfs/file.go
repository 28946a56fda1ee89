package xfs

import (
	"fmt"
)

// Range is a run of a file's bytes. Offset is a byte offset within the
// filesystem; a Zero range (a hole or an unwritten extent) reads as zeros
// and has Offset -1.
type Range struct {
	Offset int64
	Length int64
	Zero   bool
}

// ranges returns the byte ranges of the first size bytes of in's data fork
// mapping, in file order.
func (fs *FS) ranges(in *Inode, size int64) ([]Range, error) {
	ext, err := fs.extents(in)
	if err != nil {
		return nil, err
	}
	var out []Range
	add := func(r Range) {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.Zero && r.Zero || !p.Zero && !r.Zero && p.Offset+p.Length == r.Offset {
				p.Length += r.Length
				return
			}
		}
		out = append(out, r)
	}
	var pos int64 // bytes covered so far
	for _, e := range ext {
		if pos >= size {
			break
		}
		start := int64(e.lblk) * fs.blockSize
		if start > pos {
			n := min(start, size) - pos
			add(Range{Offset: -1, Length: n, Zero: true})
			pos += n
			if pos >= size {
				break
			}
		}
		n := min(int64(e.count)*fs.blockSize, size-pos)
		if e.unwritten {
			add(Range{Offset: -1, Length: n, Zero: true})
		} else {
			off, _ := fs.fsbOffset(e.fsb, e.count)
			add(Range{Offset: off, Length: n})
		}
		pos += n
	}
	if pos < size {
		add(Range{Offset: -1, Length: size - pos, Zero: true})
	}
	return out, nil
}

// readData returns the content of in (a regular file or remote symlink).
func (fs *FS) readData(in *Inode) ([]byte, error) {
	if in.Size > MaxReadSize {
		return nil, fmt.Errorf("%w: inode %d of %d bytes (limit %d)", ErrTooLarge, in.Num, in.Size, MaxReadSize)
	}
	switch in.Format {
	case fmtLocal:
		if in.Size > int64(len(in.fork)) {
			return nil, fmt.Errorf("%w: inode %d: %d bytes in a %d-byte fork", ErrCorrupt, in.Num, in.Size, len(in.fork))
		}
		return append([]byte(nil), in.fork[:in.Size]...), nil
	case fmtExtents, fmtBtree:
	default:
		return nil, fmt.Errorf("%w: inode %d: data fork format %d", ErrCorrupt, in.Num, in.Format)
	}
	rs, err := fs.ranges(in, in.Size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, in.Size)
	pos := int64(0)
	for _, r := range rs {
		if !r.Zero {
			if _, err := fs.r.ReadAt(buf[pos:pos+r.Length], r.Offset); err != nil {
				return nil, fmt.Errorf("xfs: inode %d: reading %d bytes at %d: %w", in.Num, r.Length, r.Offset, err)
			}
		}
		pos += r.Length
	}
	return buf, nil
}

// ReadFile returns the content of the regular file at path, following
// symbolic links. Files larger than MaxReadSize are refused.
func (fs *FS) ReadFile(path string) ([]byte, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, in); err != nil {
		return nil, err
	}
	b, err := fs.readData(in)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return b, nil
}

// FileRanges returns where the bytes of the regular file at path lie in
// the filesystem, in file order: holes and unwritten extents are Zero
// ranges. The last range ends at the file size, not at a block boundary.
func (fs *FS) FileRanges(path string) ([]Range, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, in); err != nil {
		return nil, err
	}
	rs, err := fs.ranges(in, in.Size)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return rs, nil
}

// checkRegular: in is a regular file whose data lies in blocks. XFS keeps
// only directories and symbolic links in the inode itself; Linux refuses
// a regular file stored there as corruption, and so does this package.
func checkRegular(path string, in *Inode) error {
	if !in.IsRegular() {
		return fmt.Errorf("%q: %w (inode %d, mode %#o)", path, ErrNotRegular, in.Num, in.Mode)
	}
	if in.Format == fmtLocal {
		return fmt.Errorf("%q: %w: inode %d: a regular file stored in its inode", path, ErrCorrupt, in.Num)
	}
	return nil
}

// readlink returns the target of symbolic link in.
func (fs *FS) readlink(in *Inode) (string, error) {
	if !in.IsSymlink() {
		return "", fmt.Errorf("%w: inode %d", ErrNotSymlink, in.Num)
	}
	if in.Size <= 0 || in.Size > 1024 {
		return "", fmt.Errorf("%w: symbolic link inode %d of %d bytes", ErrCorrupt, in.Num, in.Size)
	}
	if in.Format == fmtLocal {
		b, err := fs.readData(in)
		return string(b), err
	}
	if in.Format != fmtExtents && in.Format != fmtBtree {
		return "", fmt.Errorf("%w: symbolic link inode %d: format %d", ErrCorrupt, in.Num, in.Format)
	}
	ext, err := fs.extents(in)
	if err != nil {
		return "", err
	}
	var out []byte
	for _, e := range ext {
		off, _ := fs.fsbOffset(e.fsb, e.count)
		for b := uint64(0); b < e.count && int64(len(out)) < in.Size; b++ {
			blk, err := fs.readAt(off+int64(b)*fs.blockSize, fs.blockSize)
			if err != nil {
				return "", err
			}
			if fs.version == 5 {
				if string(blk[0:4]) != "XSLM" {
					return "", fmt.Errorf("%w: symbolic link inode %d: bad block magic %q", ErrCorrupt, in.Num, blk[0:4])
				}
				if !cksumOK(blk, 12) {
					return "", fmt.Errorf("%w: symbolic link block of inode %d", ErrChecksum, in.Num)
				}
				o, n := int64(be.Uint32(blk[4:])), int64(be.Uint32(blk[8:]))
				if be.Uint64(blk[32:]) != in.Num || o != int64(len(out)) || n > fs.blockSize-56 || n == 0 {
					return "", fmt.Errorf("%w: symbolic link inode %d: block header (owner %d, offset %d, %d bytes)",
						ErrCorrupt, in.Num, be.Uint64(blk[32:]), o, n)
				}
				out = append(out, blk[56:56+n]...)
			} else {
				out = append(out, blk...)
			}
		}
	}
	if int64(len(out)) < in.Size {
		return "", fmt.Errorf("%w: symbolic link inode %d: %d of %d bytes mapped", ErrCorrupt, in.Num, len(out), in.Size)
	}
	return string(out[:in.Size]), nil
}
