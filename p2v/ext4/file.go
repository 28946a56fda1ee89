package ext4

import "fmt"

// Range is a run of a file's bytes. Offset is a byte offset within the
// filesystem; a Zero range (a hole or an unwritten extent) reads as
// zeros and has Offset -1.
type Range struct {
	Offset int64
	Length int64
	Zero   bool
}

// readData returns the first in.Size bytes of in.
func (fs *FS) readData(in *Inode) ([]byte, error) {
	if in.Flags&flagEncrypt != 0 {
		return nil, fmt.Errorf("%w: encrypted inode %d", ErrUnsupported, in.Num)
	}
	if in.Size > MaxReadSize {
		return nil, fmt.Errorf("%w: inode %d has %d bytes, more than the %d this package reads at once",
			ErrUnsupported, in.Num, in.Size, MaxReadSize)
	}
	if in.Flags&flagInlineData != 0 {
		data, _, err := fs.inlineData(in)
		return data, err
	}
	ranges, err := fs.ranges(in)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, in.Size)
	pos := int64(0)
	for _, r := range ranges {
		if !r.Zero {
			if err := fs.readAt(buf[pos:pos+r.Length], r.Offset); err != nil {
				return nil, fmt.Errorf("inode %d: %w", in.Num, err)
			}
		}
		pos += r.Length
	}
	return buf, nil
}

// ranges returns where the in.Size bytes of in are, in file order.
func (fs *FS) ranges(in *Inode) ([]Range, error) {
	if in.Flags&flagInlineData != 0 {
		_, r, err := fs.inlineData(in)
		return r, err
	}
	n := fs.blocksFor(in.Size)
	if n > 1<<32 {
		return nil, fmt.Errorf("%w: inode %d: size %d exceeds 2^32 blocks", ErrCorrupt, in.Num, in.Size)
	}
	m, err := fs.mapFile(in, n)
	if err != nil {
		return nil, err
	}
	var out []Range
	add := func(r Range) {
		if k := len(out); k > 0 && out[k-1].Zero == r.Zero && (r.Zero || out[k-1].Offset+out[k-1].Length == r.Offset) {
			out[k-1].Length += r.Length
			return
		}
		out = append(out, r)
	}
	pos := uint64(0) // next logical block
	for _, e := range m.extents {
		if e.logical >= n {
			break
		}
		if e.logical > pos {
			add(Range{Offset: -1, Length: int64(e.logical-pos) * fs.blockSize, Zero: true})
		}
		k := min(e.length, n-e.logical)
		if e.uninit {
			add(Range{Offset: -1, Length: int64(k) * fs.blockSize, Zero: true})
		} else {
			add(Range{Offset: int64(e.physical) * fs.blockSize, Length: int64(k) * fs.blockSize})
		}
		pos = e.logical + k
	}
	if pos < n {
		add(Range{Offset: -1, Length: int64(n-pos) * fs.blockSize, Zero: true})
	}
	// The last block holds only the file's tail.
	excess := int64(n)*fs.blockSize - in.Size
	for excess > 0 && len(out) > 0 {
		last := &out[len(out)-1]
		cut := min(excess, last.Length)
		last.Length -= cut
		excess -= cut
		if last.Length == 0 {
			out = out[:len(out)-1]
		}
	}
	return out, nil
}

// ReadFile returns the content of the regular file path, following
// symbolic links. Files larger than MaxReadSize are refused.
func (fs *FS) ReadFile(path string) ([]byte, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	if !in.IsRegular() {
		return nil, fmt.Errorf("%q: %w (inode %d, mode %#o)", path, ErrNotRegular, in.Num, in.Mode)
	}
	data, err := fs.readData(in)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return data, nil
}

// FileRanges returns where the bytes of the regular file path are, in
// file order: reading the ranges from the filesystem (zeros for Zero
// ranges) and concatenating them yields the file's content. Adjacent
// ranges are merged; an inline-data file's ranges lie in its inode.
func (fs *FS) FileRanges(path string) ([]Range, error) {
	in, err := fs.resolve(path, true)
	if err != nil {
		return nil, err
	}
	if !in.IsRegular() {
		return nil, fmt.Errorf("%q: %w (inode %d, mode %#o)", path, ErrNotRegular, in.Num, in.Mode)
	}
	if in.Flags&flagEncrypt != 0 {
		return nil, fmt.Errorf("%q: %w: encrypted inode %d", path, ErrUnsupported, in.Num)
	}
	r, err := fs.ranges(in)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return r, nil
}
