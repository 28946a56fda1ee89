package aipimage

import (
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// ImagePoint is a point of an ImageSet.
type ImagePoint struct {
	layers  []*File // full image first, this point last
	workers int
}

// Info describes the point.
func (p *ImagePoint) Info() PointInfo { return p.layers[len(p.layers)-1].info }

// Changed returns the ranges this point's file holds for disk d.
func (p *ImagePoint) Changed(d int) ([]Extent, error) { return p.layers[len(p.layers)-1].Changed(d) }

// Disk returns disk d's content at this point.
func (p *ImagePoint) Disk(d int) (*io.SectionReader, error) {
	info := p.Info()
	if d < 0 || d >= len(info.Disks) {
		return nil, invalidf("disk %d of %d", d, len(info.Disks))
	}
	// A file may supply only the blocks that no later resize moved: a
	// block past a disk's old end, or a last block that changed length,
	// comes from the resizing file or a later one (or is zero).
	limits := make([]int64, len(p.layers))
	limit := info.blocks(d)
	for i := len(p.layers) - 1; i >= 0; i-- {
		limits[i] = limit
		limit = min(limit, p.layers[i].info.stableBlocks(d))
	}
	cr := &chainReader{layers: p.layers, limits: limits, disk: d, info: &p.layers[len(p.layers)-1].info, workers: p.workers}
	return io.NewSectionReader(cr, 0, info.Disks[d].Size), nil
}

// chainReader reads one disk through a chain of files, newest block wins.
type chainReader struct {
	layers  []*File
	limits  []int64 // layers[i] supplies blocks below limits[i] only
	disk    int
	info    *PointInfo // the point's: its disk sizes are the ones read
	workers int
	partial blockCache
}

// blockCache keeps the last few blocks decoded for reads smaller than a
// block, so that a caller reading 4 KiB at a time (a filesystem parser, or
// io.Copy's 32 KiB) decodes each block once, not once per read.
type blockCache struct {
	mu    sync.Mutex
	valid [8]bool
	block [8]int64
	data  [8][]byte
	next  int
}

func (c *blockCache) get(b int64, start int, dst []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.block {
		if c.valid[i] && c.block[i] == b {
			copy(dst, c.data[i][start:])
			return true
		}
	}
	return false
}

func (c *blockCache) put(b int64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.next
	c.next = (c.next + 1) % len(c.block)
	c.valid[i], c.block[i] = true, b
	c.data[i] = append(c.data[i][:0], data...)
}

// layerCursor remembers the index page last used in one layer during one
// ReadAt, so sequential blocks cost a binary search and no locking.
type layerCursor struct {
	ref     pageRef
	entries []indexEntry
}

// step is one block's part of a read: where its bytes go and where they
// come from.
type step struct {
	dst   []byte
	start int // offset of dst inside the block
	layer *File
	entry indexEntry
}

// maxRun bounds the bytes fetched by one coalesced read.
const maxRun = 4 << 20

var runPool = sync.Pool{New: func() any { return new([]byte) }}

func (c *chainReader) ReadAt(p []byte, off int64) (int, error) {
	size := c.info.Disks[c.disk].Size
	if off < 0 {
		return 0, invalidf("negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	curs := make([]layerCursor, len(c.layers))
	bs := int64(c.info.BlockSize)
	var steps []step
	for n := 0; n < len(p); {
		pos := off + int64(n)
		b, start := pos/bs, int(pos%bs)
		chunk := min(c.info.blockLen(c.disk, b)-start, len(p)-n)
		dst := p[n : n+chunk]
		if chunk < c.info.blockLen(c.disk, b) && c.partial.get(b, start, dst) {
			n += chunk
			continue
		}
		layer, e, err := c.find(curs, b)
		if err != nil {
			return 0, err
		}
		if layer == nil {
			e = indexEntry{block: b, flags: flagZero}
		}
		steps = append(steps, step{dst: dst, start: start, layer: layer, entry: e})
		n += chunk
	}
	// Blocks stored back to back in one file are fetched with one read
	// (unless the file is mapped, where every block is at hand).
	var runs [][]step
	for i := 0; i < len(steps); {
		j := i + 1
		if s := steps[i]; s.entry.flags&flagZero == 0 && s.layer.mapped == nil {
			end := s.entry.offset + blockHeaderLen + int64(s.entry.length)
			for j < len(steps) && steps[j].layer == s.layer && steps[j].entry.flags&flagZero == 0 &&
				steps[j].entry.offset == end && end-s.entry.offset < maxRun {
				end += blockHeaderLen + int64(steps[j].entry.length)
				j++
			}
		}
		runs = append(runs, steps[i:j])
		i = j
	}
	if err := c.readRuns(runs); err != nil {
		return 0, err
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readRuns decodes runs, spreading them over the reader's workers when
// there are several: decompression, not I/O, bounds a read from page cache.
func (c *chainReader) readRuns(runs [][]step) error {
	workers := min(c.workers, len(runs))
	if workers <= 1 {
		for _, run := range runs {
			if err := c.readRun(run); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for i := next.Add(1) - 1; i < int64(len(runs)); i = next.Add(1) - 1 {
				if err := c.readRun(runs[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// readRun decodes steps whose stored records are contiguous in one file.
func (c *chainReader) readRun(run []step) (err error) {
	first := run[0]
	if first.entry.flags&flagZero != 0 {
		clear(first.dst)
		return nil
	}
	f := first.layer
	last := run[len(run)-1].entry
	length := int(last.offset + blockHeaderLen + int64(last.length) - first.entry.offset)
	buf, mapped := []byte(nil), false
	if f.mapped != nil {
		buf, mapped = f.mapped.slice(first.entry.offset, length)
	}
	if mapped {
		defer faultGuard()()
		defer catchFault(&err)
	} else {
		bp := runPool.Get().(*[]byte)
		defer runPool.Put(bp)
		if cap(*bp) < length {
			*bp = make([]byte, length)
		}
		buf = (*bp)[:length]
		if _, err := f.r.ReadAt(buf, first.entry.offset); err != nil {
			return &FileError{File: f.info.File, Err: err}
		}
	}
	var whole []byte
	for _, s := range run {
		rec := buf[s.entry.offset-first.entry.offset:][:blockHeaderLen+int(s.entry.length)]
		if err := checkBlockHeader(rec, c.disk, s.entry); err != nil {
			return &FileError{File: f.info.File, Err: err}
		}
		blen := c.info.blockLen(c.disk, s.entry.block)
		dst := s.dst
		if len(dst) != blen {
			if whole == nil {
				whole = make([]byte, c.info.BlockSize)
			}
			dst = whole[:blen]
		}
		if err := decodeBlock(dst, rec[blockHeaderLen:], s.entry, c.disk, f.aead, f.pointID); err != nil {
			return &FileError{File: f.info.File, Err: err}
		}
		if len(s.dst) != blen {
			copy(s.dst, whole[s.start:])
			c.partial.put(s.entry.block, dst)
		}
	}
	return nil
}

// find returns the newest layer holding block b, or nil.
func (c *chainReader) find(curs []layerCursor, b int64) (*File, indexEntry, error) {
	for i := len(c.layers) - 1; i >= 0; i-- {
		if b >= c.limits[i] {
			break // limits only shrink towards older layers
		}
		f, cur := c.layers[i], &curs[i]
		if cur.entries == nil || b < cur.ref.first || b > cur.ref.last {
			refs := f.pages[c.disk]
			k := sort.Search(len(refs), func(k int) bool { return refs[k].last >= b })
			if k == len(refs) || refs[k].first > b {
				continue
			}
			entries, err := f.page(refs[k])
			if err != nil {
				return nil, indexEntry{}, &FileError{File: f.info.File, Err: err}
			}
			cur.ref, cur.entries = refs[k], entries
		}
		j := sort.Search(len(cur.entries), func(j int) bool { return cur.entries[j].block >= b })
		if j < len(cur.entries) && cur.entries[j].block == b {
			return f, cur.entries[j], nil
		}
	}
	return nil, indexEntry{}, nil
}
