package aipimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/standbykit/standbykit/internal/extent"
)

// DiskSource is the content of one disk to write.
type DiskSource struct {
	// Info describes the disk (full images only: incrementals take the
	// parent's disks).
	Info DiskInfo
	// Content is the disk's content at the new point; it must be readable
	// over the disk's whole size.
	Content io.ReaderAt
	// Changed lists the byte ranges that changed since the parent point,
	// in any order (incrementals only). They are widened to whole blocks,
	// and every block they touch is stored.
	Changed []Extent
	// Previous is the parent point's content of this disk, used to find
	// the changed blocks by comparison when Changed is nil.
	Previous io.ReaderAt
}

// WriteFull writes a full image of machine's disks to path, skipping
// blocks that are all zero, and returns its point.
func WriteFull(ctx context.Context, path string, machine Machine, disks []DiskSource, opts *WriterOptions) (PointInfo, error) {
	infos := make([]DiskInfo, len(disks))
	for i, d := range disks {
		infos[i] = d.Info
	}
	w, err := NewFullWriter(path, machine, infos, opts)
	if err != nil {
		return PointInfo{}, err
	}
	return writeDisks(ctx, w, disks, opts, func(d int, src DiskSource) (*extent.Set, error) {
		return extent.Of(extent.Extent{Off: 0, Len: w.info.Disks[d].Size}), nil
	})
}

// WriteIncremental writes an incremental image on top of parent to path,
// storing the blocks that changed, and returns its point. disks must match
// the parent's disks one for one.
//
// A disk's size at the new point is its Info.Size, or when that is zero
// the size its Content reports (a Size method, as *bytes.Reader and
// *io.SectionReader have, or a regular *os.File), or else the parent's.
// A size other than the parent's fails with a *ResizeError (matching
// ErrDiskResized) unless opts.Resized says the disks were resized: then
// the file takes the new sizes and records the resize, and the blocks past
// a disk's old end are examined whatever Changed says.
func WriteIncremental(ctx context.Context, path string, parent PointInfo, disks []DiskSource, opts *WriterOptions) (PointInfo, error) {
	if len(disks) != len(parent.Disks) {
		return PointInfo{}, invalidf("%d disk sources for a parent with %d disks", len(disks), len(parent.Disks))
	}
	infos := append([]DiskInfo(nil), parent.Disks...)
	resized := false
	for i, d := range disks {
		if d.Changed == nil && d.Previous == nil {
			return PointInfo{}, invalidf("disk %d: neither Changed nor Previous given", i)
		}
		if d.Info.SectorSize != 0 && d.Info.SectorSize != parent.Disks[i].SectorSize {
			return PointInfo{}, invalidf("disk %d: sector size %d, the parent's is %d", i, d.Info.SectorSize, parent.Disks[i].SectorSize)
		}
		if size := sourceSize(d); size != 0 && size != parent.Disks[i].Size {
			if opts == nil || !opts.Resized {
				return PointInfo{}, &ResizeError{Disk: i, Old: parent.Disks[i].Size, New: size}
			}
			infos[i].Size, resized = size, true
		}
	}
	var w *Writer
	var err error
	if resized {
		w, err = NewResizedWriter(path, parent, infos, opts)
	} else {
		w, err = NewIncrementalWriter(path, parent, opts)
	}
	if err != nil {
		return PointInfo{}, err
	}
	return writeDisks(ctx, w, disks, opts, func(d int, src DiskSource) (*extent.Set, error) {
		size := w.info.Disks[d].Size
		if src.Changed == nil {
			return extent.Of(extent.Extent{Off: 0, Len: size}), nil
		}
		var s extent.Set
		for _, e := range src.Changed {
			if e.Off < 0 || e.Len < 0 || e.Off+e.Len > size {
				return nil, invalidf("disk %d: changed range [%d,+%d) outside the disk of %d bytes", d, e.Off, e.Len, size)
			}
			s.Add(e.Off, e.Len)
		}
		return s.AlignOut(int64(w.info.BlockSize)).Clip(0, size), nil
	})
}

// sourceSize is the size a disk source states or its content reveals; 0
// when neither tells.
func sourceSize(src DiskSource) int64 {
	if src.Info.Size != 0 {
		return src.Info.Size
	}
	switch c := src.Content.(type) {
	case interface{ Size() int64 }:
		return c.Size()
	case interface{ Stat() (fs.FileInfo, error) }:
		if st, err := c.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size()
		}
	}
	return 0
}

// WriteIncrementalAfter writes the next point after point k of set: an
// incremental image on top of it, in dir, under the name FileName gives
// it, and returns the new point. It is how a backup tool adds a point to a
// set, typically after the newest one:
//
//	set, err := aipimage.OpenDir(dir, opts)
//	...
//	next, err := aipimage.WriteIncrementalAfter(ctx, set, len(set.Points())-1, dir, disks, wopts)
//
// disks give each disk's content at the new point, one for one with the
// parent's disks; a disk whose Changed and Previous are both nil is
// compared with point k's content, block by block, so only what differs
// is stored. Disk sizes are checked as WriteIncremental does: a disk of
// another size than point k's fails with a *ResizeError unless
// opts.Resized says it was resized. The caller's slice is not modified.
//
// k must be a usable point of set: an index into set.Points(), else the
// error matches ErrNotInSet (ImageSet.IndexOf finds the index of a file).
// A count of disks other than the parent's fails with ErrInvalidInput.
// Writing after a point that already has a successor in
// dir would fork the chain, and fails with a *ChainError matching
// ErrForkedChain. An encrypted set needs its passphrase in opts.
//
// As with WriteIncremental, nothing appears in dir until the file is
// complete.
func WriteIncrementalAfter(ctx context.Context, set Set, k int, dir string, disks []DiskSource, opts *WriterOptions) (PointInfo, error) {
	points := set.Points()
	if k < 0 || k >= len(points) {
		return PointInfo{}, fmt.Errorf("%w: point %d, the set has %d usable points", ErrNotInSet, k, len(points))
	}
	if k+1 < len(points) && points[k+1].Full() {
		return PointInfo{}, &ChainError{ErrForkedChain, points[k+1].File,
			fmt.Sprintf("a newer full image follows point %d: its chain has ended", points[k].Sequence)}
	}
	if k+1 < len(points) && points[k+1].File != "" && sameDir(filepath.Dir(points[k+1].File), dir) {
		return PointInfo{}, &ChainError{ErrForkedChain, points[k+1].File,
			fmt.Sprintf("already follows point %d in %s: another point after it would fork the chain", points[k].Sequence, dir)}
	}
	point, err := set.Point(k)
	if err != nil {
		return PointInfo{}, err
	}
	parent := point.Info()
	if len(disks) != len(parent.Disks) {
		return PointInfo{}, invalidf("%d disks given, point %d has %d", len(disks), parent.Sequence, len(parent.Disks))
	}
	disks = append([]DiskSource(nil), disks...)
	for d := range disks {
		if disks[d].Changed == nil && disks[d].Previous == nil {
			if disks[d].Previous, err = point.Disk(d); err != nil {
				return PointInfo{}, err
			}
		}
	}
	next := parent
	next.Sequence++
	return WriteIncremental(ctx, filepath.Join(dir, FileName(next)), parent, disks, opts)
}

// WriteFullAfter writes a full image that starts a new chain in set, after
// its newest point (a weekly "active full"): of the same set id, with the
// sequence after the newest point's, in dir under the name FileName gives
// it. The set then reads the new chain after the old one (Points,
// ImageSet.Chains). opts.SetID and opts.Sequence are ignored.
//
// A set with files still arriving (ImageSet.Pending) is refused with
// ErrIncomplete: a sequence number taken now could be one of theirs.
func WriteFullAfter(ctx context.Context, set Set, dir string, machine Machine, disks []DiskSource, opts *WriterOptions) (PointInfo, error) {
	points := set.Points()
	if len(points) == 0 {
		return PointInfo{}, fmt.Errorf("%w: the set has no usable point to follow", ErrNotInSet)
	}
	if pl, ok := set.(interface{ Pending() []Pending }); ok {
		if p := pl.Pending(); len(p) > 0 {
			return PointInfo{}, &ChainError{ErrIncomplete, p[0].File, "still arriving: write the new full image once the set is complete"}
		}
	}
	newest := points[len(points)-1]
	o := WriterOptions{}
	if opts != nil {
		o = *opts
	}
	o.SetID, o.Sequence = newest.SetID, newest.Sequence+1
	next := PointInfo{SetID: o.SetID, Sequence: o.Sequence, Machine: machine}
	return WriteFull(ctx, filepath.Join(dir, FileName(next)), machine, disks, &o)
}

// sameDir reports whether a and b name the same existing folder.
func sameDir(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// writeDisks feeds the blocks of every disk inside ranges(d) to w and
// closes it. When a block's previous content is known and equal, it is
// skipped.
func writeDisks(ctx context.Context, w *Writer, disks []DiskSource, opts *WriterOptions,
	ranges func(int, DiskSource) (*extent.Set, error)) (PointInfo, error) {
	var progress func(WriteProgress)
	if opts != nil {
		progress = opts.Progress
	}
	bs := int64(w.info.BlockSize)
	buf := make([]byte, bs)
	var prev []byte
	for d, src := range disks {
		if src.Content == nil {
			w.Abort()
			return PointInfo{}, invalidf("disk %d: no content", d)
		}
		set, err := ranges(d, src)
		if err != nil {
			w.Abort()
			return PointInfo{}, err
		}
		compare := !w.full && src.Changed == nil
		if compare && prev == nil {
			prev = make([]byte, bs)
		}
		// Past the blocks a resize left in place, older files are never
		// read: every block there that is not zero is stored, whatever
		// the caller says changed.
		fresh := w.info.blocks(d)
		if !w.full {
			fresh = w.info.stableBlocks(d)
			if size := w.info.Disks[d].Size; fresh*bs < size {
				set.Add(fresh*bs, size-fresh*bs)
			}
		}
		total, done := set.Bytes(), int64(0)
		for _, e := range set.All() {
			for b := e.Off / bs; b*bs < e.End(); b++ {
				if err := ctx.Err(); err != nil {
					w.Abort()
					return PointInfo{}, err
				}
				n := w.info.blockLen(d, b)
				if err := readFull(src.Content, buf[:n], b*bs); err != nil {
					w.Abort()
					return PointInfo{}, fmt.Errorf("disk %d: reading content at %d: %w", d, b*bs, err)
				}
				same := false
				if b >= fresh {
					same = isZero(buf[:n])
				} else if compare {
					if err := readFull(src.Previous, prev[:n], b*bs); err != nil {
						w.Abort()
						return PointInfo{}, fmt.Errorf("disk %d: reading previous content at %d: %w", d, b*bs, err)
					}
					same = string(prev[:n]) == string(buf[:n])
				}
				if !same {
					if err := w.WriteBlock(d, b, buf[:n]); err != nil {
						w.Abort()
						return PointInfo{}, err
					}
				}
				done += int64(n)
				if progress != nil && (done%(64*bs) == 0 || done == total) {
					progress(WriteProgress{Disk: d, Done: done, Total: total})
				}
			}
		}
	}
	if err := w.Close(); err != nil {
		return PointInfo{}, err
	}
	return w.Info(), nil
}

// readFull reads exactly len(p) bytes at off; io.EOF after a full read is
// success, a short read is io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
