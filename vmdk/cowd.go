package vmdk

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
)

// Delta is a vmfsSparse delta link ready to be written: a COWD extent
// (name-00000N-delta.vmdk) holding the given ranges, and the descriptor
// (name-00000N.vmdk) that puts it on top of its parent. Its layout is
// fixed when it is made, so its size is known before a byte is written.
type Delta struct {
	// Descriptor is the delta's descriptor: a new CID, parentCID = the
	// parent's CID, parentFileNameHint, one VMFSSPARSE extent.
	Descriptor     *Descriptor
	DescriptorName string
	ExtentName     string
	// ExtentSize is the size in bytes of the extent WriteExtent writes.
	ExtentSize int64

	capacity int64
	data     []Range
	gd       []uint32 // sector of each region's grain table, 0 if untouched
	free     uint32   // first sector after the data
}

// NewDelta plans a delta on top of the parent link named parentName (its
// file name as the delta's descriptor will refer to it, relative to the
// delta's directory) whose descriptor is parent. data lists the byte
// ranges the delta holds, sorted, disjoint and 512-byte aligned; nil makes
// an empty delta (a scratch leaf: the disk reads as its parent).
//
// vmfsSparse addresses sectors with 32-bit numbers: a disk of 2 TiB or
// more, or a delta file that would pass 2 TiB, is refused with
// ErrTooLarge.
func NewDelta(parentName string, parent *Descriptor, data []Range) (*Delta, error) {
	if parent == nil || parentName == "" {
		return nil, fmt.Errorf("%w: a delta needs its parent's name and descriptor", ErrInvalidInput)
	}
	capacity := parent.Capacity()
	if capacity <= 0 {
		return nil, fmt.Errorf("%w: parent %s has no capacity", ErrInvalidInput, parentName)
	}
	if capacity/SectorSize > cowdMaxSectors {
		return nil, fmt.Errorf("%w: a vmfsSparse delta holds at most 2 TiB - 512 bytes; %s is %d bytes", ErrTooLarge, parentName, capacity)
	}
	if err := checkRanges(data, capacity); err != nil {
		return nil, err
	}
	for _, r := range data {
		if r.Off%SectorSize != 0 || r.Len%SectorSize != 0 {
			return nil, fmt.Errorf("%w: range [%d,%d) is not sector-aligned", ErrInvalidInput, r.Off, r.End())
		}
	}
	descName, extName := NextDeltaName(parentName)
	numSectors := capacity / SectorSize
	d := &Delta{
		DescriptorName: descName,
		ExtentName:     extName,
		capacity:       capacity,
		data:           data,
		gd:             make([]uint32, ceilDiv(numSectors, cowdGTEntries)),
	}
	// Lay out: header, GD, then per touched region its grain table followed
	// by its data sectors.
	next := int64(cowdHeaderSectors) + ceilDiv(int64(len(d.gd))*4, SectorSize)
	forEachRegion(data, func(region int64, rs []Range) {
		d.gd[region] = uint32(next) // checked below, before any use
		next += cowdGTSectors
		for _, r := range rs {
			next += r.Len / SectorSize
		}
	})
	if next > cowdMaxSectors {
		return nil, fmt.Errorf("%w: the delta file would pass 2 TiB", ErrTooLarge)
	}
	d.free = uint32(next)
	// The spec wants freeSector below the file's length: pad to the next
	// 64 KiB (ESXi's own deltas grow in larger steps; 64 KiB keeps small
	// boot points small).
	d.ExtentSize = (next*SectorSize/extentPad + 1) * extentPad

	desc := &Descriptor{
		Version:            1,
		Encoding:           "UTF-8",
		ParentCID:          parent.CID,
		CreateType:         CreateVMFSSparse,
		ParentFileNameHint: parentName,
		Other:              []KeyValue{{"isNativeSnapshot", "no"}},
		Extents:            []Extent{{Access: "RW", Sectors: numSectors, Type: ExtentVMFSSparse, File: path.Base(extName)}},
	}
	desc.SetCID(NewCID())
	d.Descriptor = desc
	return d, nil
}

// extentPad is the unit a COWD extent's length is padded to.
const extentPad = 64 << 10

// forEachRegion calls f for each 2 MiB region that ranges touch, in
// ascending order, with the ranges clipped to it.
func forEachRegion(ranges []Range, f func(region int64, rs []Range)) {
	var cur []Range
	region := int64(-1)
	for _, r := range ranges {
		for off := r.Off; off < r.End(); {
			reg := off / cowdRegion
			end := min(r.End(), (reg+1)*cowdRegion)
			if reg != region {
				if region >= 0 {
					f(region, cur)
				}
				region, cur = reg, cur[:0:0]
			}
			cur = append(cur, Range{Off: off, Len: end - off})
			off = end
		}
	}
	if region >= 0 {
		f(region, cur)
	}
}

// DescriptorText returns the delta's descriptor file content.
func (d *Delta) DescriptorText() []byte {
	b, err := d.Descriptor.MarshalText()
	if err != nil {
		panic(err) // NewDelta built a valid descriptor
	}
	return b
}

// WriteExtent writes the COWD extent to w, reading the delta's ranges from
// src, in one sequential pass of exactly ExtentSize bytes. progress, when
// set, hears the data bytes written so far and their total.
func (d *Delta) WriteExtent(ctx context.Context, w io.Writer, src io.ReaderAt, progress func(done, total int64)) (int64, error) {
	sw := &sectorWriter{w: bufio.NewWriterSize(w, 1<<20)}
	hdr := cowdHeader{
		NumSectors:   uint32(d.capacity / SectorSize),
		GrainSize:    1,
		GDOffset:     cowdHeaderSectors,
		NumGDEntries: uint32(len(d.gd)),
		FreeSector:   d.free,
	}
	head := make([]byte, cowdHeaderSectors*SectorSize)
	hdr.encode(head)
	sw.write(head)
	sw.uint32s(d.gd)

	var total, done int64
	for _, r := range d.data {
		total += r.Len
	}
	gt := make([]uint32, cowdGTEntries)
	buf := make([]byte, 1<<20)
	var err error
	forEachRegion(d.data, func(region int64, rs []Range) {
		if err != nil {
			return
		}
		if e := ctx.Err(); e != nil {
			err = e
			return
		}
		clear(gt)
		next := uint32(sw.sector()) + cowdGTSectors
		base := region * cowdRegion
		for _, r := range rs {
			for s := r.Off; s < r.End(); s += SectorSize {
				gt[(s-base)/SectorSize] = next
				next++
			}
		}
		sw.uint32s(gt)
		for _, r := range rs {
			for off := r.Off; off < r.End() && sw.err == nil; {
				n := min(int64(len(buf)), r.End()-off)
				if _, e := src.ReadAt(buf[:n], off); e != nil && e != io.EOF {
					err = fmt.Errorf("vmdk: reading the disk at %d: %w", off, e)
					return
				}
				sw.write(buf[:n])
				off += n
				done += n
				if progress != nil {
					progress(done, total)
				}
			}
		}
	})
	if err != nil {
		return sw.n, err
	}
	if sw.sector() != int64(d.free) {
		return sw.n, fmt.Errorf("vmdk: internal error: wrote %d sectors, planned %d", sw.sector(), d.free)
	}
	sw.write(make([]byte, d.ExtentSize-sw.n))
	if err := sw.flush(); err != nil {
		return sw.n, err
	}
	return sw.n, nil
}
