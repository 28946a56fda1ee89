package bootpoint

import (
	"fmt"
	"io"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/extent"
	"github.com/standbykit/standbykit/p2v"
)

// Delta is what the disk of one boot point must receive on top of the
// previous boot point's disk: the bytes of Source inside Extents.
type Delta struct {
	Disk    int
	Size    int64             // the disk's capacity
	Extents []aipimage.Extent // sorted, disjoint, aligned to the grain PlanDelta was given (clipped to Size)
	Source  io.ReaderAt       // the point's content with its patches applied
	// Base, when set, is what the disk holds before the change (the
	// current boot point's content): a hypervisor may check it before
	// writing, so that changes never land on a disk in another state.
	// Nil for a base disk, or when the caller cannot tell.
	Base io.ReaderAt
}

// Bytes returns the total length of the extents.
func (d Delta) Bytes() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Len
	}
	return n
}

// PlanDelta computes the delta of disk d for a boot point made from point
// with plan cur, on top of a boot point made with plan prev (nil for the
// first boot point, whose delta is the base disk):
//
//	changed(k) ∪ patched(k-1) ∪ patched(k), widened to grain
//
// with data from point ⊕ patches(k). Patched(k-1) is included so that a
// patch that moved or vanished is undone: its range gets point k's bytes.
// changed must be what point k changed since the point of the previous
// boot point (for catch-up over several increments, the union of theirs).
func PlanDelta(point aipimage.Point, d int, changed []aipimage.Extent, prev, cur *p2v.Plan, grain int64) (Delta, error) {
	info := point.Info()
	if d < 0 || d >= len(info.Disks) {
		return Delta{}, fmt.Errorf("bootpoint: disk %d of %d", d, len(info.Disks))
	}
	if grain <= 0 {
		return Delta{}, fmt.Errorf("bootpoint: grain %d", grain)
	}
	size := info.Disks[d].Size
	var set extent.Set
	for _, e := range changed {
		set.Add(e.Off, e.Len)
	}
	if cur == nil {
		cur = &p2v.Plan{}
	}
	for _, plan := range []*p2v.Plan{prev, cur} {
		if plan == nil {
			continue
		}
		patches, err := plan.DiskPatches(d)
		if err != nil {
			return Delta{}, err
		}
		for _, p := range patches {
			if p.End() > size {
				return Delta{}, fmt.Errorf("bootpoint: patch [%d,%d) beyond disk %d of %d bytes", p.Offset, p.End(), d, size)
			}
			set.Add(p.Offset, int64(len(p.Data)))
		}
	}
	disk, err := point.Disk(d)
	if err != nil {
		return Delta{}, err
	}
	src, err := p2v.NewOverlay(disk, cur, d)
	if err != nil {
		return Delta{}, err
	}
	return Delta{Disk: d, Size: size, Extents: set.AlignOut(grain).Clip(0, size).Extents(), Source: src}, nil
}

// ChangedSince returns the union of what points after..upto changed on disk
// d: the changed blocks of one boot point that covers several increments.
func ChangedSince(set aipimage.Set, after, upto, d int) ([]aipimage.Extent, error) {
	var s extent.Set
	for k := after + 1; k <= upto; k++ {
		p, err := set.Point(k)
		if err != nil {
			return nil, err
		}
		exts, err := p.Changed(d)
		if err != nil {
			return nil, err
		}
		for _, e := range exts {
			s.Add(e.Off, e.Len)
		}
	}
	return s.Extents(), nil
}
