package vmdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"

	stdzlib "compress/zlib"

	"github.com/klauspost/compress/zlib"

	"github.com/standbykit/standbykit/internal/extent"
)

// Range is a byte range [Off, Off+Len) of a disk: a struct of two int64
// fields, Off and Len, with a method End returning the offset just past
// the range.
//
// It is an alias of the one extent type shared by every StandbyKit
// package, so ranges computed elsewhere pass to this package's writers
// without conversion.
type Range = extent.Extent

// StreamOptions configures WriteStreamOptimized. The zero value writes the
// whole disk with one worker per CPU.
type StreamOptions struct {
	// ExtentName is the file name recorded in the embedded descriptor;
	// empty means "disk.vmdk". Importers ignore it, qemu shows it.
	ExtentName string
	// AdapterType is ddb.adapterType; empty means "lsilogic".
	AdapterType string
	// Data lists where the disk holds data (sorted, disjoint); everything
	// else is written as unallocated (reads as zero). Nil means the whole
	// disk. All-zero grains are skipped either way.
	Data []Range
	// Workers compress grains in parallel; 0 means GOMAXPROCS.
	Workers int
	// Level is the zlib level (1 fastest … 9 smallest); 0 means 6.
	Level int
	// Progress, when set, is called from the writing goroutine with the
	// input bytes processed so far and the total to process.
	Progress func(done, total int64)

	// stdlib selects compress/zlib instead of klauspost's implementation
	// (kept for the benchmark that chose between them).
	stdlib bool
}

// StreamResult describes a written streamOptimized file.
type StreamResult struct {
	Size       int64 // bytes written
	Grains     int   // non-zero grains stored
	Descriptor *Descriptor
}

// grainJob is one grain on its way through the compression workers; the
// writer consumes jobs in LBA order.
type grainJob struct {
	index int64
	out   *bytes.Buffer // marker + compressed grain, padded; nil for a zero grain
	err   error
	done  chan struct{}
}

// WriteStreamOptimized writes the capacity bytes of src as a
// streamOptimized VMDK to w in a single pass: header, embedded descriptor,
// compressed grains in ascending order with a grain table after each
// 32 MiB group, then the grain directory, footer and end-of-stream marker.
// Grains are compressed in parallel; memory stays at a few grains per
// worker whatever the disk size. Capacity must be a multiple of 512.
func WriteStreamOptimized(ctx context.Context, w io.Writer, src io.ReaderAt, capacity int64, o StreamOptions) (StreamResult, error) {
	if capacity <= 0 || capacity%SectorSize != 0 {
		return StreamResult{}, fmt.Errorf("%w: capacity %d is not a positive multiple of 512", ErrInvalidInput, capacity)
	}
	data := o.Data
	if data == nil {
		data = []Range{{Off: 0, Len: capacity}}
	}
	if err := checkRanges(data, capacity); err != nil {
		return StreamResult{}, err
	}
	if o.ExtentName == "" {
		o.ExtentName = "disk.vmdk"
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	level := o.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return StreamResult{}, fmt.Errorf("%w: zlib level %d", ErrInvalidInput, level)
	}

	desc := BaseDescriptor(CreateStreamOptimized, ExtentSparse, o.ExtentName, capacity, o.AdapterType)
	descText, err := desc.MarshalText()
	if err != nil {
		return StreamResult{}, err
	}
	const descSectors = 20
	if len(descText) > descSectors*SectorSize {
		return StreamResult{}, fmt.Errorf("%w: descriptor of %d bytes", ErrInvalidInput, len(descText))
	}
	numGrains := ceilDiv(capacity, streamGrainSize)
	numGTs := ceilDiv(numGrains, gtesPerGT)
	hdr := sparseHeader{
		Version:           3,
		Flags:             flagNewlineTest | flagCompressed | flagMarkers,
		Capacity:          uint64(capacity / SectorSize),
		GrainSize:         streamGrainSectors,
		DescriptorOffset:  1,
		DescriptorSize:    descSectors,
		NumGTEsPerGT:      gtesPerGT,
		GDOffset:          gdAtEnd,
		OverHead:          1 + descSectors,
		CompressAlgorithm: 1,
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sw := &sectorWriter{w: bufio.NewWriterSize(w, 1<<20)}
	head := make([]byte, (1+descSectors)*SectorSize)
	hdr.encode(head)
	copy(head[SectorSize:], descText)
	sw.write(head)

	var total int64
	for _, g := range grainRuns(data) {
		total += (g.Len) * streamGrainSize
	}
	jobs := make(chan *grainJob, 2*workers) // in LBA order, for the writer
	work := make(chan *grainJob, 2*workers) // for the workers
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	go func() {
		defer close(jobs)
		defer close(work)
		for _, run := range grainRuns(data) {
			for g := run.Off; g < run.End(); g++ {
				j := &grainJob{index: g, done: make(chan struct{})}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
				select {
				case work <- j:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newGrainCompressor(level, o.stdlib)
			for j := range work {
				j.out, j.err = c.compress(src, j.index, capacity, &bufs)
				close(j.done)
			}
		}()
	}
	defer func() {
		cancel() // stops the producer, which stops the workers
		wg.Wait()
	}()

	gd := make([]uint32, numGTs)
	gt := make([]uint32, gtesPerGT)
	group := int64(-1) // the group whose grain table gt is filling
	groupUsed := false
	flushGT := func() {
		if group >= 0 && groupUsed {
			sw.marker(gtSectors, markerGT)
			gd[group] = uint32(sw.sector())
			sw.uint32s(gt)
		}
		clear(gt)
		groupUsed = false
	}
	res := StreamResult{Descriptor: desc}
	var done int64
	for j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return StreamResult{}, ctx.Err()
		}
		if j.err != nil {
			return StreamResult{}, j.err
		}
		if g := j.index / gtesPerGT; g != group {
			flushGT()
			group = g
		}
		if j.out != nil {
			gt[j.index%gtesPerGT] = uint32(sw.sector())
			groupUsed = true
			sw.write(j.out.Bytes())
			bufs.Put(j.out)
			res.Grains++
		}
		if sw.err != nil {
			return StreamResult{}, sw.err
		}
		if sw.sector() > 0xffffffff {
			return StreamResult{}, fmt.Errorf("%w: compressed stream beyond 2 TiB", ErrTooLarge)
		}
		done += streamGrainSize
		if o.Progress != nil {
			o.Progress(done, total)
		}
	}
	if err := ctx.Err(); err != nil {
		return StreamResult{}, err
	}
	flushGT()
	gdSectors := ceilDiv(numGTs*4, SectorSize)
	sw.marker(gdSectors, markerGD)
	hdr.GDOffset = uint64(sw.sector())
	sw.uint32s(gd)
	sw.marker(1, markerFooter)
	foot := make([]byte, SectorSize)
	hdr.encode(foot)
	sw.write(foot)
	sw.marker(0, markerEOS)
	if err := sw.flush(); err != nil {
		return StreamResult{}, err
	}
	res.Size = sw.n
	return res, nil
}

// checkRanges validates a sorted, disjoint list of ranges inside capacity.
func checkRanges(rs []Range, capacity int64) error {
	var prev int64
	for i, r := range rs {
		if r.Off < prev || r.Len < 0 || r.End() > capacity || (i > 0 && r.Off < rs[i-1].End()) {
			return fmt.Errorf("%w: data range [%d,%d) unsorted, overlapping or outside the %d-byte disk", ErrInvalidInput, r.Off, r.End(), capacity)
		}
		prev = r.End()
	}
	return nil
}

// grainRuns turns byte ranges into runs of stream grain indexes (Off and
// Len in grains), merged and ascending.
func grainRuns(rs []Range) []Range {
	var out []Range
	for _, r := range rs {
		if r.Len == 0 {
			continue
		}
		first, end := r.Off/streamGrainSize, ceilDiv(r.End(), streamGrainSize)
		if n := len(out); n > 0 && first <= out[n-1].End() {
			if end > out[n-1].End() {
				out[n-1].Len = end - out[n-1].Off
			}
			continue
		}
		out = append(out, Range{Off: first, Len: end - first})
	}
	return out
}

// grainCompressor holds one worker's buffers and zlib state.
type grainCompressor struct {
	raw []byte
	zw  interface {
		io.WriteCloser
		Reset(io.Writer)
	}
}

func newGrainCompressor(level int, stdlib bool) *grainCompressor {
	c := &grainCompressor{raw: make([]byte, streamGrainSize)}
	var err error
	if stdlib {
		c.zw, err = stdzlib.NewWriterLevel(io.Discard, level)
	} else {
		c.zw, err = zlib.NewWriterLevel(io.Discard, level)
	}
	if err != nil {
		panic(err) // level was checked by the caller
	}
	return c
}

// compress reads grain g and returns its record (12-byte marker, zlib data,
// padding to a sector), or nil for an all-zero grain.
func (c *grainCompressor) compress(src io.ReaderAt, g, capacity int64, pool *sync.Pool) (*bytes.Buffer, error) {
	off := g * streamGrainSize
	n := min(int64(streamGrainSize), capacity-off)
	raw := c.raw
	clear(raw[n:])
	if _, err := src.ReadAt(raw[:n], off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk: reading the disk at %d: %w", off, err)
	}
	if isZero(raw) {
		return nil, nil
	}
	out := pool.Get().(*bytes.Buffer)
	out.Reset()
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(off/SectorSize))
	out.Write(hdr[:])
	c.zw.Reset(out)
	if _, err := c.zw.Write(raw); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, err
	}
	b := out.Bytes()
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)-12))
	if pad := (SectorSize - out.Len()%SectorSize) % SectorSize; pad > 0 {
		out.Write(make([]byte, pad))
	}
	return out, nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sectorWriter counts what it writes and keeps the first error.
type sectorWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (s *sectorWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	var n int
	n, s.err = s.w.Write(b)
	s.n += int64(n)
}

func (s *sectorWriter) sector() int64 { return s.n / SectorSize }

// marker writes a 512-byte metadata marker: val, size 0, type.
func (s *sectorWriter) marker(val int64, typ uint32) {
	var m [SectorSize]byte
	binary.LittleEndian.PutUint64(m[0:], uint64(val))
	binary.LittleEndian.PutUint32(m[12:], typ)
	s.write(m[:])
}

// uint32s writes a table of little-endian entries padded to a sector.
func (s *sectorWriter) uint32s(v []uint32) {
	b := make([]byte, ceilDiv(int64(len(v))*4, SectorSize)*SectorSize)
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[i*4:], x)
	}
	s.write(b)
}

func (s *sectorWriter) flush() error {
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}
